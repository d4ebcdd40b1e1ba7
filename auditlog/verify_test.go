package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
)

// The tamper-matrix trail: an "old" snapshot of 1000 events, and the "full"
// trail that went on to 3000 events, several segments, interval checkpoints.
type matrixTrail struct {
	old, full string
	oldCkpt   []byte // the latest checkpoint of the old snapshot
	fullCkpt  []byte
}

var (
	matrixOnce sync.Once
	matrix     matrixTrail
	matrixDir  string
)

func buildMatrix(t *testing.T) matrixTrail {
	t.Helper()
	matrixOnce.Do(func() {
		// Not t.TempDir: the trail is shared by parallel tests of this run.
		base, err := os.MkdirTemp("", "auditlog-matrix-")
		require.NoError(t, err)
		matrixDir = base
		cfg := trailSpec{segmentBytes: 160 << 10, interval: 2 * time.Millisecond, pauseEvery: 400}
		full := base + "/full"
		cfg.events = 1000
		writeTrail(t, full, cfg)
		old := base + "/old"
		require.NoError(t, os.Mkdir(old, 0o700))
		for _, e := range mustReadDir(t, full) {
			b, err := os.ReadFile(full + "/" + e)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(old+"/"+e, b, 0o600))
		}
		cfg.events = 2000
		writeTrail(t, full, cfg)
		pub := testSigningKey("a").Public().(ed25519.PublicKey)
		ro, err := Verify(old, pub, nil)
		require.NoError(t, err, describe(ro))
		rf, err := Verify(full, pub, nil)
		require.NoError(t, err, describe(rf))
		matrix = matrixTrail{old: old, full: full, oldCkpt: ro.Checkpoint, fullCkpt: rf.Checkpoint}
	})
	require.NotEmpty(t, matrix.full, "matrix trail was not built")
	return matrix
}

func TestMain(m *testing.M) {
	if runCrashChild() || runArchiveCrashChild() {
		return
	}
	code := testenv.Main(m) // stops the shared Azurite of the archive tests
	if matrixDir != "" {
		_ = os.RemoveAll(matrixDir)
	}
	os.Exit(code)
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestVerifyUntouchedTrail(t *testing.T) {
	t.Parallel()
	m := buildMatrix(t)
	pub := testSigningKey("a").Public().(ed25519.PublicKey)
	r, err := Verify(m.full, pub, &VerifyOptions{RequireSealed: true, Trusted: m.oldCkpt})
	require.NoError(t, err, describe(r))
	assert.EqualValues(t, 3000, r.Events)
	assert.True(t, r.Sealed)
	assert.Zero(t, r.Unsealed)
	assert.False(t, r.TornTail)
	assert.GreaterOrEqual(t, r.Segments, 4, "the matrix trail must span several segments")
	// Interval checkpoints exist besides the end checkpoints.
	assert.Greater(t, r.Checkpoints, r.Segments+1)
}

func TestVerifyTamperMatrix(t *testing.T) {
	t.Parallel()
	m := buildMatrix(t)
	pub := testSigningKey("a").Public().(ed25519.PublicKey)
	other := testSigningKey("mallory")

	lineEdit := func(seg int64, edit func(lines [][]byte) [][]byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := segPath(dir, seg)
			writeFileLines(t, p, edit(readFileLines(t, p)))
		}
	}
	ckEdit := func(seg int64, edit func(lines [][]byte) [][]byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := ckptPath(dir, seg)
			writeFileLines(t, p, edit(readFileLines(t, p)))
		}
	}
	forgedLine := func(t *testing.T, tmpl []byte) []byte {
		var e Event
		require.NoError(t, json.Unmarshal(tmpl, &e))
		e.ID = "ffffffffffffffffffffffffffffffff"
		e.Action = ActionDelete
		b, err := json.Marshal(e)
		require.NoError(t, err)
		return b
	}

	cases := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		opts    *VerifyOptions
		dir     func() string
		want    error
		wantErr bool
	}{
		{name: "modified event", tamper: lineEdit(2, func(l [][]byte) [][]byte {
			l[5] = bytes.Replace(l[5], []byte(`"action":"R"`), []byte(`"action":"D"`), 1)
			return l
		})},
		{name: "modified event in the last segment", tamper: func(t *testing.T, dir string) {
			n := lastFilled(t, dir)
			lineEdit(n, func(l [][]byte) [][]byte {
				l[len(l)-1] = bytes.Replace(l[len(l)-1], []byte(`"outcome":0`), []byte(`"outcome":4`), 1)
				return l
			})(t, dir)
		}},
		{name: "deleted event", tamper: lineEdit(1, func(l [][]byte) [][]byte { return append(l[:10], l[11:]...) })},
		{name: "deleted first event", tamper: lineEdit(1, func(l [][]byte) [][]byte { return l[1:] })},
		{name: "inserted event (duplicate)", tamper: lineEdit(3, func(l [][]byte) [][]byte {
			return append(l[:7], append([][]byte{l[7]}, l[7:]...)...)
		})},
		{name: "reordered events", tamper: lineEdit(2, func(l [][]byte) [][]byte {
			l[3], l[4] = l[4], l[3]
			return l
		})},
		{name: "reordered across segments", tamper: func(t *testing.T, dir string) {
			a, b := readFileLines(t, segPath(dir, 1)), readFileLines(t, segPath(dir, 2))
			a[len(a)-1], b[0] = b[0], a[len(a)-1]
			writeFileLines(t, segPath(dir, 1), a)
			writeFileLines(t, segPath(dir, 2), b)
		}},
		{name: "forged event replacing one", tamper: lineEdit(2, func(l [][]byte) [][]byte {
			l[9] = forgedLine(t, l[9])
			return l
		})},
		{name: "forged event appended after the end checkpoint", tamper: func(t *testing.T, dir string) {
			n := int64(countSegments(t, dir))
			tmpl := readFileLines(t, segPath(dir, 1))[0]
			lineEdit(n, func(l [][]byte) [][]byte { return append(l, forgedLine(t, tmpl)) })(t, dir)
		}},
		{name: "forged segment appended", opts: &VerifyOptions{RequireSealed: true}, tamper: func(t *testing.T, dir string) {
			n := int64(countSegments(t, dir))
			l := readFileLines(t, segPath(dir, 1))
			writeFileLines(t, segPath(dir, n+1), [][]byte{forgedLine(t, l[0])})
		}},
		{name: "forged checkpoint signed by another key", tamper: func(t *testing.T, dir string) {
			n := int64(countSegments(t, dir))
			s, err := newSigner(DefaultKeyName, other)
			require.NoError(t, err)
			r, _ := Verify(dir, pub, nil)
			c := *r.checkpt
			c.Seq++
			c.Prev = noteDigest(r.Checkpoint)
			signed, err := signCheckpoint(&c, s)
			require.NoError(t, err)
			ckEdit(n, func(l [][]byte) [][]byte {
				return append(l, bytes.TrimSuffix(encodeCheckpointLine(signed), []byte("\n")))
			})(t, dir)
		}},
		{name: "truncated segment", tamper: lineEdit(2, func(l [][]byte) [][]byte { return l[:len(l)/2] })},
		{name: "truncated last segment", tamper: func(t *testing.T, dir string) {
			n := lastFilled(t, dir)
			lineEdit(n, func(l [][]byte) [][]byte { return l[:len(l)-3] })(t, dir)
		}},
		{name: "segment cut mid-line", tamper: func(t *testing.T, dir string) {
			b, err := os.ReadFile(segPath(dir, 1))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(segPath(dir, 1), b[:len(b)-40], 0o600))
		}},
		{name: "deleted segment", tamper: func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(segPath(dir, 2)))
			require.NoError(t, os.Remove(ckptPath(dir, 2)))
		}},
		{name: "deleted events file", tamper: func(t *testing.T, dir string) { require.NoError(t, os.Remove(segPath(dir, 3))) }},
		{name: "deleted checkpoint file", tamper: func(t *testing.T, dir string) { require.NoError(t, os.Remove(ckptPath(dir, 1))) }},
		{name: "deleted end checkpoint", tamper: ckEdit(2, func(l [][]byte) [][]byte { return l[:len(l)-1] })},
		{name: "deleted interval checkpoint", tamper: func(t *testing.T, dir string) {
			for seg := int64(1); ; seg++ {
				l := readFileLines(t, ckptPath(dir, seg))
				if len(l) >= 2 {
					ckEdit(seg, func(l [][]byte) [][]byte { return l[1:] })(t, dir)
					return
				}
			}
		}},
		{name: "altered checkpoint size", tamper: ckEdit(1, func(l [][]byte) [][]byte {
			signed, err := decodeCheckpointLine(l[0])
			require.NoError(t, err)
			c, err := parseCheckpoint(string(signed[:bytes.Index(signed, []byte("\n\n"))+1]))
			require.NoError(t, err)
			altered := bytes.Replace(signed, []byte("\n"+itoa(c.Size)+"\n"), []byte("\n"+itoa(c.Size-1)+"\n"), 1)
			l[0] = bytes.TrimSuffix(encodeCheckpointLine(altered), []byte("\n"))
			return l
		})},
		{name: "altered checkpoint signature", tamper: ckEdit(2, func(l [][]byte) [][]byte {
			i := bytes.LastIndex(l[0], []byte(`\n"`)) - 5
			l[0][i] ^= 1
			return l
		})},
		{name: "reordered checkpoints", tamper: func(t *testing.T, dir string) {
			a, b := readFileLines(t, ckptPath(dir, 1)), readFileLines(t, ckptPath(dir, 2))
			writeFileLines(t, ckptPath(dir, 1), b)
			writeFileLines(t, ckptPath(dir, 2), a)
		}},
		{name: "rollback to an old snapshot", dir: func() string { return m.old },
			opts: &VerifyOptions{Trusted: m.fullCkpt}, want: ErrRollback},
		{name: "rollback by deleting the newest segments", opts: &VerifyOptions{Trusted: m.fullCkpt}, want: ErrRollback,
			tamper: func(t *testing.T, dir string) {
				n := int64(countSegments(t, dir))
				require.NoError(t, os.Remove(segPath(dir, n)))
				require.NoError(t, os.Remove(ckptPath(dir, n)))
			}},
		{name: "trusted checkpoint from another key", opts: &VerifyOptions{Trusted: forgeTrusted(t, m.fullCkpt, other)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := m.full
			if tc.dir != nil {
				src = tc.dir()
			}
			dir := copyDir(t, src)
			if tc.tamper != nil {
				tc.tamper(t, dir)
			}
			r, err := Verify(dir, pub, tc.opts)
			require.Error(t, err, "tampering not detected: %s", describe(r))
			assert.ErrorIs(t, err, ErrTampered)
			t.Logf("detected: %v", err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

// lastFilled is the last segment holding at least 5 events.
func lastFilled(t *testing.T, dir string) int64 {
	t.Helper()
	for n := int64(countSegments(t, dir)); n > 0; n-- {
		if len(readFileLines(t, segPath(dir, n))) >= 5 {
			return n
		}
	}
	t.Fatal("no filled segment")
	return 0
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// forgeTrusted re-signs a checkpoint with another key.
func forgeTrusted(t *testing.T, signed []byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	if signed == nil {
		return nil
	}
	c, err := OpenCheckpoint(signed, testSigningKey("a").Public().(ed25519.PublicKey), "")
	require.NoError(t, err)
	s, err := newSigner(DefaultKeyName, key)
	require.NoError(t, err)
	out, err := signCheckpoint(c, s)
	require.NoError(t, err)
	return out
}

func TestVerifyForgedTailIsReportedUnsealed(t *testing.T) {
	t.Parallel()
	m := buildMatrix(t)
	pub := testSigningKey("a").Public().(ed25519.PublicKey)
	dir := copyDir(t, m.full)
	n := int64(countSegments(t, dir))
	l := readFileLines(t, segPath(dir, 1))
	writeFileLines(t, segPath(dir, n+1), l[:2])
	r, err := Verify(dir, pub, nil)
	require.NoError(t, err, describe(r))
	assert.EqualValues(t, 2, r.Unsealed, "events after the last checkpoint must be reported")
	assert.False(t, r.Sealed)
}

func TestInclusionAndConsistencyProofs(t *testing.T) {
	t.Parallel()
	m := buildMatrix(t)
	pub := testSigningKey("a").Public().(ed25519.PublicKey)
	r, err := Verify(m.full, pub, nil)
	require.NoError(t, err)

	lines := readFileLines(t, segPath(m.full, 2))
	seg1 := int64(len(readFileLines(t, segPath(m.full, 1))))
	idx := seg1 + 17
	p, err := r.ProveInclusion(idx)
	require.NoError(t, err)
	require.NoError(t, CheckInclusion(pub, "", r.Checkpoint, lines[17], p))
	// The proof fails for a changed line, another index, another key.
	changed := bytes.Replace(lines[17], []byte(`"R"`), []byte(`"D"`), 1)
	assert.ErrorIs(t, CheckInclusion(pub, "", r.Checkpoint, changed, p), ErrTampered)
	p2 := *p
	p2.Index++
	assert.ErrorIs(t, CheckInclusion(pub, "", r.Checkpoint, lines[17], &p2), ErrTampered)
	otherPub := testSigningKey("mallory").Public().(ed25519.PublicKey)
	assert.ErrorIs(t, CheckInclusion(otherPub, "", r.Checkpoint, lines[17], p), ErrTampered)

	// The full trail extends the old snapshot.
	tp, err := r.ProveConsistency(m.oldCkpt)
	require.NoError(t, err)
	require.NoError(t, CheckConsistency(pub, "", m.oldCkpt, r.Checkpoint, tp))
	// A fork (a different trail of the same key) is not consistent.
	fork := t.TempDir()
	writeTrail(t, fork, trailSpec{events: 50})
	rf, err := Verify(fork, pub, nil)
	require.NoError(t, err)
	tp2, err := r.ProveConsistency(rf.Checkpoint)
	require.NoError(t, err)
	assert.ErrorIs(t, CheckConsistency(pub, "", rf.Checkpoint, r.Checkpoint, tp2), ErrTampered)
	// Older and newer swapped is a rollback.
	assert.ErrorIs(t, CheckConsistency(pub, "", r.Checkpoint, m.oldCkpt, tp), ErrRollback)
}

func FuzzParseCheckpoint(f *testing.F) {
	c := Checkpoint{Origin: "o", Size: 3, Segment: 1, Seq: 2, Time: time.Unix(1700000000, 0).UTC(), End: true}
	f.Add(c.text())
	c.End = false
	f.Add(c.text())
	f.Add("o\n-1\nAAAA\nsegment 0\nseq 0\nprev x\ntime y\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := parseCheckpoint(text)
		if err != nil {
			return
		}
		// What parses re-formats to a checkpoint that parses the same.
		again, err := parseCheckpoint(c.text())
		if err != nil {
			t.Fatalf("re-formatted checkpoint does not parse: %v", err)
		}
		if again.Size != c.Size || again.Root != c.Root || again.Seq != c.Seq || again.Prev != c.Prev ||
			again.Segment != c.Segment || again.End != c.End || !again.Time.Equal(c.Time) {
			t.Fatal("checkpoint changed on a round trip")
		}
	})
}

func FuzzReadLines(f *testing.F) {
	f.Add([]byte("a\nb\n"), 8)
	f.Add([]byte("a\nbc"), 1)
	f.Add([]byte(""), 0)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = max%64 + 65
		var got [][]byte
		torn := false
		n, err := readLines(bytes.NewReader(data), max, func(line []byte, complete bool) error {
			if !complete {
				torn = true
			}
			got = append(got, append([]byte(nil), line...))
			return nil
		})
		if err != nil {
			return // a line longer than max
		}
		joined := bytes.Join(got, []byte("\n"))
		if !torn && len(got) > 0 {
			joined = append(joined, '\n')
		}
		if !bytes.Equal(joined, data) {
			t.Fatal("lines do not rebuild the input")
		}
		if want := int64(bytes.LastIndexByte(data, '\n') + 1); n != want {
			t.Fatalf("complete length %d, want %d", n, want)
		}
	})
}

// Visit sees every event line once, in order, with its leaf index, in the
// same pass that verifies them; its error stops the verification.
func TestVerifyVisit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Three runs of the writer: each reopening starts a new segment, so the
	// trail spans at least three whatever the batching.
	for range 3 {
		writeTrail(t, dir, trailSpec{events: 100})
	}
	require.GreaterOrEqual(t, countSegments(t, dir), 3)
	pub := testSigningKey("a").Public().(ed25519.PublicKey) // writeTrail's key
	var want [][]byte
	for n := int64(1); n <= int64(countSegments(t, dir)); n++ {
		want = append(want, readFileLines(t, segPath(dir, n))...)
	}

	var got [][]byte
	r, err := Verify(dir, pub, &VerifyOptions{RequireSealed: true, Visit: func(i int64, line []byte) error {
		require.Equal(t, int64(len(got)), i, "leaf indexes in order")
		got = append(got, bytes.Clone(line))
		return nil
	}})
	require.NoError(t, err, describe(r))
	assert.EqualValues(t, 300, r.Events)
	assert.Equal(t, want, got)

	stop := errors.New("enough")
	seen := 0
	_, err = Verify(dir, pub, &VerifyOptions{Visit: func(int64, []byte) error {
		seen++
		if seen == 3 {
			return stop
		}
		return nil
	}})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 3, seen)
}
