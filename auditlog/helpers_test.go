package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/phimask"
)

// testSigningKey is deterministic so failures reproduce.
func testSigningKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("auditlog test signing key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func testPseudonymKey() []byte {
	k := sha256.Sum256([]byte("auditlog test pseudonym key"))
	return k[:]
}

// synthetic is a synthetic patient made up by the test.
type synthetic struct {
	MRN, Name, IP, Email string
}

func newSynthetic(f *gofakeit.Faker) synthetic {
	return synthetic{
		MRN:   f.Numerify("MRN-#########"),
		Name:  f.Name(),
		IP:    f.IPv4Address(),
		Email: f.Email(),
	}
}

func fakeEvent(f *gofakeit.Faker, p synthetic) Event {
	return Event{
		Type:         TypePatientRecord,
		Action:       ActionRead,
		Outcome:      OutcomeSuccess,
		Actor:        Actor{ID: "user-" + f.Numerify("####"), Roles: []string{"clinician"}, ClientIP: p.IP, UserAgent: "test-agent/1.0"},
		Observer:     Observer{Service: "api", Instance: "pod-1"},
		Entities:     []Entity{{Type: "Patient", Identifier: p.MRN, Kind: phimask.KindMRN, Role: "1"}},
		PurposeOfUse: []string{"TREAT"},
		RequestID:    f.UUID(),
	}
}

// assertNoLeak fails when out holds any of the secret values, naming only
// the index and field of the leaked value, never the value.
func assertNoLeak(t *testing.T, out []byte, people []synthetic) {
	t.Helper()
	for i, p := range people {
		for field, v := range map[string]string{"mrn": p.MRN, "name": p.Name, "ip": p.IP, "email": p.Email} {
			if v != "" && bytes.Contains(out, []byte(v)) {
				t.Errorf("synthetic person %d: %s leaked into the output", i, field)
			}
		}
	}
}

type trailSpec struct {
	events       int
	segmentBytes int64
	interval     time.Duration
	pauseEvery   int // sleep briefly every N events so interval checkpoints happen
}

// writeTrail appends cfg.events events to the trail in dir and closes it.
func writeTrail(t testing.TB, dir string, cfg trailSpec) {
	t.Helper()
	fs, err := NewFileSink(dir, &FileOptions{
		SigningKey: testSigningKey("a"), SegmentBytes: cfg.segmentBytes,
		CheckpointInterval: cfg.interval, Mode: Async, // Close makes it durable; faster to build
	})
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs)
	require.NoError(t, err)
	f := gofakeit.New(7)
	for i := range cfg.events {
		require.NoError(t, l.Record(context.Background(), fakeEvent(f, newSynthetic(f))))
		if cfg.pauseEvery > 0 && i%cfg.pauseEvery == cfg.pauseEvery-1 {
			time.Sleep(3 * cfg.interval)
		}
	}
	require.NoError(t, l.Close())
}

func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
	return dst
}

func readFileLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(b, []byte("\n"))
}

func writeFileLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func segPath(dir string, n int64) string  { return filepath.Join(dir, eventsFile(n)) }
func ckptPath(dir string, n int64) string { return filepath.Join(dir, checkpointsFile(n)) }

func countSegments(t testing.TB, dir string) int {
	t.Helper()
	segs, err := DirSource(dir).Segments(context.Background())
	require.NoError(t, err)
	return len(segs)
}

func describe(r *Report) string {
	if r == nil {
		return "<nil report>"
	}
	return fmt.Sprintf("events=%d segs=%d ckpts=%d sealed=%v unsealed=%d problems=%s",
		r.Events, r.Segments, r.Checkpoints, r.Sealed, r.Unsealed, strings.Join(r.Problems, "; "))
}
