package auditlog

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const crashEnv = "AUDITLOG_CRASH_CHILD_DIR"

// runCrashChild is the child side of TestCrashKeepsAcknowledgedEvents: it
// records events from 8 goroutines until killed, printing the ID of each
// event whose Record returned nil.
func runCrashChild() bool {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		return false
	}
	round := os.Getenv("AUDITLOG_CRASH_ROUND")
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a"), SegmentBytes: 64 << 10, CheckpointInterval: 1e6})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs)
	if err != nil {
		os.Exit(3)
	}
	recordUntilKilled(l, func(g, i int) string { return fmt.Sprintf("r%s-g%d-%07d", round, g, i) })
	return true
}

// recordUntilKilled records events from 8 goroutines, forever, printing on
// stdout the ID of each event whose Record returned nil: the parent kills
// the process and compares what it read with the trail.
func recordUntilKilled(l *Logger, id func(g, i int) string) {
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			f := gofakeit.New(uint64(g + 1))
			for i := 0; ; i++ {
				e := fakeEvent(f, newSynthetic(f))
				e.ID = id(g, i)
				if err := l.Record(context.Background(), e); err != nil {
					fmt.Fprintln(os.Stderr, "child: record:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintln(out, e.ID)
				_ = out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// crashRound starts a child writing into dir, kills it with SIGKILL after
// it acknowledged `after` events, and returns every acknowledged ID.
func crashRound(t *testing.T, dir string, round, after int) []string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprintf("AUDITLOG_CRASH_ROUND=%d", round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		acked = append(acked, sc.Text())
		if len(acked) == after {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		}
	}
	// Lines printed between the kill and the pipe closing were acknowledged too.
	err = cmd.Wait()
	require.Error(t, err, "the child must die of SIGKILL; stderr: %s", stderr.String())
	require.GreaterOrEqual(t, len(acked), after, "child stderr: %s", stderr.String())
	return acked
}

func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	t.Parallel()
	dir := t.TempDir()
	pub := testSigningKey("a").Public().(ed25519.PublicKey)
	var acked []string
	for round, after := range []int{1500, 900} {
		acked = append(acked, crashRound(t, dir, round, after)...)
		// The crashed trail verifies as it is (the unsigned tail is allowed).
		r, err := Verify(dir, pub, nil)
		require.NoError(t, err, describe(r))
	}
	// Reopen: the torn line is cut, the open segment sealed.
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a")})
	require.NoError(t, err)
	require.NoError(t, fs.Close())
	r, err := Verify(dir, pub, &VerifyOptions{RequireSealed: true, FindIDs: acked})
	require.NoError(t, err, describe(r))
	assert.False(t, r.TornTail)
	missing := 0
	for _, id := range acked {
		if _, ok := r.Found[id]; !ok {
			missing++
		}
	}
	assert.Zero(t, missing, "acknowledged events missing after the crash")
	assert.GreaterOrEqual(t, r.Events, int64(len(acked)))
}
