package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/auditlog"
)

func writeTrail(t *testing.T, dir string, key ed25519.PrivateKey, n int) []string {
	t.Helper()
	fs, err := auditlog.NewFileSink(dir, &auditlog.FileOptions{SigningKey: key, Mode: auditlog.Async})
	require.NoError(t, err)
	pk := sha256.Sum256([]byte("cli test pseudonym key"))
	l, err := auditlog.New(&auditlog.Options{PseudonymKey: pk[:], Observer: auditlog.Observer{Service: "cli-test"}}, fs)
	require.NoError(t, err)
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%032x", i)
		ids = append(ids, id)
		require.NoError(t, l.Record(context.Background(), auditlog.Event{ID: id, Type: auditlog.TypeRESTful,
			Action: auditlog.ActionRead, Actor: auditlog.Actor{ID: "u"}}))
	}
	require.NoError(t, l.Close())
	return ids
}

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	seed := sha256.Sum256([]byte("cli test signing key"))
	key := ed25519.NewKeyFromSeed(seed[:])
	pub := key.Public().(ed25519.PublicKey)
	pubB64 := base64.StdEncoding.EncodeToString(pub)
	dir := t.TempDir()
	ids := writeTrail(t, dir, key, 30)

	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	pemFile := filepath.Join(t.TempDir(), "pub.pem")
	require.NoError(t, os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	ckFile := filepath.Join(t.TempDir(), "latest.ckpt")

	run1 := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		code := run(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := run1("-pub", pubB64, "-sealed", "-checkpoint-out", ckFile, "-prove", ids[7], dir)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "events: 30")
	assert.Contains(t, out, `"treeSize": 30`)
	assert.Contains(t, out, "RESULT: OK")

	code, out = run1("-pub", "@"+pemFile, "-trusted", ckFile, dir)
	assert.Equal(t, 0, code, out)

	// Tamper: drop the last event line of the segment.
	seg := filepath.Join(dir, "audit-00000001.jsonl")
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	require.NoError(t, os.WriteFile(seg, []byte(strings.Join(lines[:len(lines)-2], "")), 0o600))
	code, out = run1("-pub", pubB64, dir)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "RESULT: FAIL")

	code, _ = run1(dir)
	assert.Equal(t, 2, code, "missing key is a usage error")
	code, _ = run1("-pub", "bm90IGEga2V5", dir)
	assert.Equal(t, 2, code)
}
