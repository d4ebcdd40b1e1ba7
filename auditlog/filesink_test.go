package auditlog

import (
	"context"
	"crypto/ed25519"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileSinkLocksFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a")})
	require.NoError(t, err)
	_, err = NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a")})
	assert.ErrorIs(t, err, ErrLocked)
	require.NoError(t, fs.Close())
	fs, err = NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a")})
	require.NoError(t, err)
	require.NoError(t, fs.Close())
}

func TestFileSinkRefusesTamperedTrail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTrail(t, dir, trailSpec{events: 30})
	lines := readFileLines(t, segPath(dir, 1))
	lines[3], lines[4] = lines[4], lines[3]
	writeFileLines(t, segPath(dir, 1), lines)
	_, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a")})
	assert.ErrorIs(t, err, ErrTampered, "the writer must not sign over a tampered trail")
	// Another key cannot extend the trail either.
	dir2 := t.TempDir()
	writeTrail(t, dir2, trailSpec{events: 3})
	_, err = NewFileSink(dir2, &FileOptions{SigningKey: testSigningKey("b")})
	assert.ErrorIs(t, err, ErrTampered)
}

// TestFileSinkCutsTornLine takes a copy of a live trail (the state a crash
// leaves: an open segment, no end checkpoint), adds a half-written line,
// and reopens it.
func TestFileSinkCutsTornLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a"), CheckpointInterval: time.Hour})
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs)
	require.NoError(t, err)
	f := gofakeit.New(9)
	for range 40 {
		require.NoError(t, l.Record(context.Background(), fakeEvent(f, newSynthetic(f))))
	}
	crashed := copyDir(t, dir)
	require.NoError(t, l.Close())

	pub := testSigningKey("a").Public().(ed25519.PublicKey)
	fh, err := os.OpenFile(segPath(crashed, 1), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fh.WriteString(`{"id":"half-writ`)
	require.NoError(t, err)
	require.NoError(t, fh.Close())

	r, err := Verify(crashed, pub, nil)
	require.NoError(t, err, describe(r))
	assert.True(t, r.TornTail)
	assert.EqualValues(t, 40, r.Unsealed, "no checkpoint was signed before the crash")

	fs2, err := NewFileSink(crashed, &FileOptions{SigningKey: testSigningKey("a")})
	require.NoError(t, err)
	require.NoError(t, fs2.Close())
	r, err = Verify(crashed, pub, &VerifyOptions{RequireSealed: true})
	require.NoError(t, err, describe(r))
	assert.False(t, r.TornTail)
	assert.EqualValues(t, 40, r.Events)
	assert.Equal(t, 2, r.Segments, "reopen seals the crashed segment and starts a new one")
}

func TestFileSinkAsyncBackPressure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a"), Mode: Async, MaxPending: 4})
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			f := gofakeit.New(uint64(g + 1)) // seed 0 means a random seed
			for range 100 {
				assert.NoError(t, l.Record(context.Background(), fakeEvent(f, newSynthetic(f))))
			}
		})
	}
	wg.Wait()
	// A full queue and an ended context: Write gives up instead of blocking.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 8 {
		_ = fs.Write(ctx, []byte(`{"id":"x"}`))
	}
	require.NoError(t, l.Close())
	r, err := Verify(dir, testSigningKey("a").Public().(ed25519.PublicKey), &VerifyOptions{RequireSealed: true})
	require.NoError(t, err, describe(r))
	assert.GreaterOrEqual(t, r.Events, int64(800))
	assert.ErrorIs(t, fs.Write(context.Background(), []byte(`{"id":"y"}`)), ErrClosed)
}

// TestFileSinkFailsClosedAfterWriteError breaks the segment file under a
// live sink (its descriptor closed): the failed write is reported, and the
// sink refuses every later write and reports not ready.
func TestFileSinkFailsClosedAfterWriteError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a")})
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs)
	require.NoError(t, err)
	f := gofakeit.New(51)
	require.NoError(t, l.Record(context.Background(), fakeEvent(f, newSynthetic(f))))
	require.NoError(t, l.Check(context.Background()))

	require.NoError(t, fs.trail.cur.(*fileSegment).ev.Close())
	assert.Error(t, l.Record(context.Background(), fakeEvent(f, newSynthetic(f))))
	assert.Error(t, l.Record(context.Background(), fakeEvent(f, newSynthetic(f))), "the failure is sticky")
	assert.Error(t, l.Check(context.Background()))
	assert.Equal(t, Stats{Recorded: 1, Failed: 2}, l.Stats())
	assert.Error(t, l.Close())
	// What was acknowledged before the failure is intact.
	r, err := Verify(dir, testSigningKey("a").Public().(ed25519.PublicKey), nil)
	require.NoError(t, err, describe(r))
	assert.EqualValues(t, 1, r.Events)
}
