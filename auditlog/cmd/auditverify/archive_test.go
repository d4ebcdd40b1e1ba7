package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestAuditVerifyArchive(t *testing.T) {
	az := testenv.Shared(t)
	c := az.NewContainer(t)
	u, err := url.Parse(c.URL())
	require.NoError(t, err)
	name := path.Base(u.Path)
	seed := sha256.Sum256([]byte("cli test signing key"))
	key := ed25519.NewKeyFromSeed(seed[:])
	pubB64 := base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	pk := sha256.Sum256([]byte("cli test pseudonym key"))
	var firstID string
	for _, inst := range []string{"pod-1", "pod-2"} {
		s, err := auditlog.NewArchiveSink(c, &auditlog.ArchiveOptions{SigningKey: key, Service: "api", Instance: inst, SpoolDir: t.TempDir()})
		require.NoError(t, err)
		l, err := auditlog.New(&auditlog.Options{PseudonymKey: pk[:], Observer: auditlog.Observer{Service: "api", Instance: inst}}, s)
		require.NoError(t, err)
		for i := range 25 {
			id := fmt.Sprintf("%s-%03d", inst, i)
			if firstID == "" {
				firstID = id
			}
			require.NoError(t, l.Record(context.Background(), auditlog.Event{ID: id, Type: auditlog.TypeRESTful,
				Action: auditlog.ActionRead, Actor: auditlog.Actor{ID: "u"}}))
		}
		require.NoError(t, l.Close())
	}
	t.Setenv(connEnv, az.ConnectionString())
	run1 := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		code := run(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := run1("-pub", pubB64, "-sealed", "-container", name)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "trails: 2")
	assert.Contains(t, out, "trail: api/pod-2")
	assert.Equal(t, 2, strings.Count(out, "RESULT: OK"))

	ck := filepath.Join(t.TempDir(), "latest.ckpt")
	code, out = run1("-pub", pubB64, "-container", name, "-connection-string", az.ConnectionString(),
		"-service", "api", "-instance", "pod-1", "-checkpoint-out", ck, "-prove", firstID)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "events: 25")
	assert.Contains(t, out, `"treeSize": 25`)
	code, out = run1("-pub", pubB64, "-container", name, "-service", "api", "-instance", "pod-1", "-trusted", ck)
	require.Equal(t, 0, code, out)

	// Tamper: delete one trail's events blob.
	_, err = c.NewBlobClient("api/pod-2/audit-00000001.jsonl").Delete(context.Background(), nil)
	require.NoError(t, err)
	code, out = run1("-pub", pubB64, "-container", name)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "RESULT: FAIL")
	code, out = run1("-pub", pubB64, "-container", name, "-service", "api", "-instance", "pod-1")
	assert.Equal(t, 0, code, out)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"instance without service", []string{"-pub", pubB64, "-container", name, "-instance", "pod-1"}},
		{"trusted without instance", []string{"-pub", pubB64, "-container", name, "-trusted", ck}},
		{"service on a folder", []string{"-pub", pubB64, "-service", "api", t.TempDir()}},
		{"container and folder", []string{"-pub", pubB64, "-container", name, t.TempDir()}},
		{"bad instance name", []string{"-pub", pubB64, "-container", name, "-service", "api", "-instance", "a/b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run1(tc.args...)
			assert.Equal(t, 2, code, out)
		})
	}
	t.Setenv(connEnv, "")
	code, out = run1("-pub", pubB64, "-container", name)
	assert.Equal(t, 2, code, "no connection string: %s", out)
	code, out = run1("-pub", pubB64, "-container", name, "-connection-string", "AccountKey=not-a-secret-but-unparsable")
	assert.Equal(t, 2, code)
	assert.NotContains(t, out, "not-a-secret-but-unparsable", "the connection string must not be printed")
}
