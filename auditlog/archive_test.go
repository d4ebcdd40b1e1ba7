package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
)

func archivePub() ed25519.PublicKey { return testSigningKey("a").Public().(ed25519.PublicKey) }

// containerName is the last path segment of a container client's URL.
func containerName(t testing.TB, c *container.Client) string {
	t.Helper()
	u, err := url.Parse(c.URL())
	require.NoError(t, err)
	return path.Base(u.Path)
}

// quickClient opens the container through conn with one short retry, so an
// outage shows at once (the gate refuses and cuts connections; nothing
// hangs). The try time-out stays long: the shared Azurite is slow under the
// package's parallel tests, and the gate is open in most of the test.
func quickClient(t testing.TB, conn, name string) *container.Client {
	t.Helper()
	o := &container.ClientOptions{}
	o.Retry = policy.RetryOptions{MaxRetries: 1, TryTimeout: 30 * time.Second, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond}
	c, err := container.NewClientFromConnectionString(conn, name, o)
	require.NoError(t, err)
	return c
}

func archiveOpts(instance, spool string) *ArchiveOptions {
	return &ArchiveOptions{
		SigningKey: testSigningKey("a"), Service: "api", Instance: instance, SpoolDir: spool,
		CheckpointInterval: 20 * time.Millisecond,
	}
}

func newArchiveLogger(t testing.TB, c *container.Client, o *ArchiveOptions) (*Logger, *ArchiveSink) {
	t.Helper()
	s, err := NewArchiveSink(c, o)
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey(), Observer: Observer{Service: o.Service, Instance: o.Instance}}, s)
	require.NoError(t, err)
	return l, s
}

// recordIDs records n events with the given IDs prefix from `writers`
// goroutines and returns the IDs of events whose Record returned nil.
func recordIDs(t testing.TB, l *Logger, prefix string, writers, n int, people *[]synthetic, mu *sync.Mutex) []string {
	t.Helper()
	var (
		wg    sync.WaitGroup
		idsMu sync.Mutex
		ids   []string
	)
	for g := range writers {
		wg.Go(func() {
			f := gofakeit.New(uint64(g + 11))
			for i := range n {
				p := newSynthetic(f)
				if people != nil {
					mu.Lock()
					*people = append(*people, p)
					mu.Unlock()
				}
				e := fakeEvent(f, p)
				e.ID = fmt.Sprintf("%s-g%d-%05d", prefix, g, i)
				if err := l.Record(context.Background(), e); err != nil {
					t.Errorf("record %s: %v", e.ID, err)
					return
				}
				idsMu.Lock()
				ids = append(ids, e.ID)
				idsMu.Unlock()
			}
		})
	}
	wg.Wait()
	return ids
}

func missingIDs(r *Report, ids []string) int {
	n := 0
	for _, id := range ids {
		if _, ok := r.Found[id]; !ok {
			n++
		}
	}
	return n
}

// readContainer returns every blob of c by name.
func readContainer(t testing.TB, c *container.Client) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	pager := c.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		require.NoError(t, err)
		for _, b := range page.Segment.BlobItems {
			resp, err := c.NewBlobClient(*b.Name).DownloadStream(ctx, nil)
			require.NoError(t, err)
			data, err := io.ReadAll(resp.Body)
			require.NoError(t, resp.Body.Close())
			require.NoError(t, err)
			out[*b.Name] = data
		}
	}
	return out
}

func TestArchiveNamesAndOptions(t *testing.T) {
	t.Parallel()
	c := testenv.NewContainer(t)
	for _, tc := range []struct {
		name, service, instance string
	}{
		{"empty instance", "api", ""},
		{"slash", "api", "pod/1"},
		{"dot dot", "api", "pod..1"},
		{"space", "api", "pod 1"},
		{"leading dash", "api", "-pod"},
		{"phone number", "api", "555-123-4567"},
		{"ssn", "123-45-6789", "pod-1"},
		{"too long", "api", strings.Repeat("a", 129)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := archiveOpts(tc.instance, t.TempDir())
			o.Service = tc.service
			_, err := NewArchiveSink(c, o)
			require.ErrorIs(t, err, ErrBadName)
			for _, name := range []string{tc.instance, tc.service} {
				if name != "api" && len(name) >= 4 { // the rejected part, long enough to look for
					assert.False(t, strings.Contains(err.Error(), name), "the name must not be echoed")
				}
			}
			_, err = ArchiveSource(c, tc.service, tc.instance)
			require.ErrorIs(t, err, ErrBadName)
		})
	}
	_, err := NewArchiveSink(c, &ArchiveOptions{Service: "api", Instance: "pod-1", SpoolDir: t.TempDir()})
	require.ErrorContains(t, err, "a signing key is required")
	_, err = NewArchiveSink(c, &ArchiveOptions{SigningKey: testSigningKey("a"), Service: "api", Instance: "pod-1"})
	require.ErrorContains(t, err, "a spool folder is required")
	_, err = NewArchiveSink(nil, archiveOpts("pod-1", t.TempDir()))
	require.ErrorContains(t, err, "a container client is required")

	// One sink per spool folder.
	spool := t.TempDir()
	s, err := NewArchiveSink(c, archiveOpts("pod-1", spool))
	require.NoError(t, err)
	_, err = NewArchiveSink(c, archiveOpts("pod-2", spool))
	require.ErrorIs(t, err, ErrLocked)
	// A line the archive cannot take in one append is refused up front.
	err = s.Write(context.Background(), append(append([]byte(`{"id":"x","p":"`), bytes.Repeat([]byte("a"), MaxAppendBytes)...), '"', '}'))
	require.ErrorIs(t, err, ErrInvalidEvent)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	assert.ErrorIs(t, s.Check(context.Background()), ErrClosed)
}

// TestArchiveManyInstances: three replicas write their own trails at once,
// rotating segments on the block limit; the archive verifies as a whole,
// holds no PHI, and a replica restarting under its name extends its trail.
func TestArchiveManyInstances(t *testing.T) {
	t.Parallel()
	c := testenv.NewContainer(t)
	ctx := context.Background()
	var (
		mu     sync.Mutex
		people []synthetic
		wg     sync.WaitGroup
		ids    = map[string][]string{}
	)
	instances := []string{"pod-a", "pod-b", "pod-c"}
	for _, inst := range instances {
		wg.Go(func() {
			o := archiveOpts(inst, t.TempDir())
			o.SegmentBlocks = 40 // several segments per trail
			l, s := newArchiveLogger(t, c, o)
			got := recordIDs(t, l, inst, 6, 60, &people, &mu)
			assert.NoError(t, s.Check(ctx))
			assert.NoError(t, l.Close())
			mu.Lock()
			ids[inst] = got
			mu.Unlock()
		})
	}
	wg.Wait()

	trails, err := ArchiveTrails(ctx, c, "")
	require.NoError(t, err)
	require.Len(t, trails, 3)
	reports, err := VerifyArchive(ctx, c, "api", archivePub(), &ArchiveVerifyOptions{VerifyOptions: VerifyOptions{RequireSealed: true}})
	require.NoError(t, err)
	require.Len(t, reports, 3)
	for _, ar := range reports {
		require.NoError(t, ar.Err)
		assert.Equal(t, int64(360), ar.Report.Events, ar.Trail.String())
		assert.Greater(t, ar.Report.Segments, 1, "the block limit rotates segments")
		assert.True(t, ar.Report.Sealed)
	}
	for inst, want := range ids {
		src, err := ArchiveSource(c, "api", inst)
		require.NoError(t, err)
		r, err := VerifySource(ctx, src, archivePub(), &VerifyOptions{FindIDs: want, Origin: "phiguard-audit/api/" + inst})
		require.NoError(t, err, describe(r))
		assert.Zero(t, missingIDs(r, want), "instance %s: acknowledged events missing", inst)
	}
	// Each blob stays under the block limit, and none holds PHI.
	for name, data := range readContainer(t, c) {
		props, err := c.NewBlobClient(name).GetProperties(ctx, nil)
		require.NoError(t, err)
		require.NotNil(t, props.BlobCommittedBlockCount, name)
		assert.LessOrEqual(t, *props.BlobCommittedBlockCount, int32(40), name)
		assertNoLeak(t, append([]byte(name+"\n"), data...), people)
	}

	// A restart under the same name extends the trail after sealing it.
	l, _ := newArchiveLogger(t, c, archiveOpts("pod-a", t.TempDir()))
	more := recordIDs(t, l, "again", 2, 10, nil, nil)
	require.NoError(t, l.Close())
	src, err := ArchiveSource(c, "api", "pod-a")
	require.NoError(t, err)
	r, err := VerifySource(ctx, src, archivePub(), &VerifyOptions{RequireSealed: true, FindIDs: more})
	require.NoError(t, err, describe(r))
	assert.Equal(t, int64(380), r.Events)
	assert.Zero(t, missingIDs(r, more))
}

// archiveMaster is one trail of several segments, and the trusted
// checkpoint of an earlier state of it, copied into a fresh container by
// each tamper case.
type archiveMaster struct {
	blobs    map[string][]byte
	old      map[string][]byte // the same trail before its last writer run
	trusted  []byte            // the latest checkpoint of the full trail
	segments int
}

func buildArchiveMaster(t *testing.T) archiveMaster {
	t.Helper()
	c := testenv.NewContainer(t)
	o := archiveOpts("pod-1", t.TempDir())
	o.SegmentBlocks = 12
	o.Mode = Sync
	l, _ := newArchiveLogger(t, c, o)
	recordIDs(t, l, "m1", 2, 30, nil, nil)
	require.NoError(t, l.Close())
	old := readContainer(t, c)
	l, s := newArchiveLogger(t, c, archiveOpts("pod-1", t.TempDir()))
	recordIDs(t, l, "m2", 2, 30, nil, nil)
	require.NoError(t, l.Close())
	m := archiveMaster{blobs: readContainer(t, c), old: old, trusted: s.Checkpoint()}
	src, err := ArchiveSource(c, "api", "pod-1")
	require.NoError(t, err)
	r, err := VerifySource(context.Background(), src, archivePub(), &VerifyOptions{RequireSealed: true, Trusted: m.trusted})
	require.NoError(t, err, describe(r))
	m.segments = r.Segments
	require.GreaterOrEqual(t, m.segments, 4)
	return m
}

func putBlobs(t *testing.T, c *container.Client, blobs map[string][]byte) {
	t.Helper()
	for name, data := range blobs {
		_, err := c.NewBlockBlobClient(name).UploadBuffer(context.Background(), data, nil)
		require.NoError(t, err)
	}
}

func TestArchiveTamperMatrix(t *testing.T) {
	t.Parallel()
	m := buildArchiveMaster(t)
	ev := func(n int64) string { return "api/pod-1/" + eventsFile(n) }
	ck := func(n int64) string { return "api/pod-1/" + checkpointsFile(n) }
	// Split a copy: the blobs are shared by the parallel cases, and the edits
	// append to the lines.
	lines := func(b []byte) [][]byte {
		return bytes.SplitAfter(bytes.TrimSuffix(bytes.Clone(b), []byte("\n")), []byte("\n"))
	}
	edit := func(name string, fn func(l [][]byte) [][]byte) func(map[string][]byte) {
		return func(bl map[string][]byte) {
			l := lines(bl[name])
			l[len(l)-1] = append(l[len(l)-1], '\n')
			bl[name] = bytes.Join(fn(l), nil)
		}
	}
	for _, tc := range []struct {
		name    string
		old     bool
		trusted bool
		tamper  func(bl map[string][]byte)
		want    error
	}{
		{name: "blob rewritten with one event changed", tamper: edit(ev(2), func(l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"action":"R"`), []byte(`"action":"D"`), 1)
			return l
		})},
		{name: "event deleted", tamper: edit(ev(2), func(l [][]byte) [][]byte { return append(l[:1], l[2:]...) })},
		{name: "event inserted", tamper: edit(ev(3), func(l [][]byte) [][]byte { return append(l[:2], append([][]byte{l[0]}, l[2:]...)...) })},
		{name: "events reordered", tamper: edit(ev(2), func(l [][]byte) [][]byte { l[0], l[1] = l[1], l[0]; return l })},
		{name: "segments reordered", tamper: func(bl map[string][]byte) { bl[ev(1)], bl[ev(2)] = bl[ev(2)], bl[ev(1)] }},
		{name: "segment blob deleted", tamper: func(bl map[string][]byte) { delete(bl, ev(2)) }},
		{name: "whole segment deleted", tamper: func(bl map[string][]byte) { delete(bl, ev(2)); delete(bl, ck(2)) }},
		{name: "checkpoint blob deleted", tamper: func(bl map[string][]byte) { delete(bl, ck(1)) }},
		{name: "checkpoint deleted", tamper: edit(ck(2), func(l [][]byte) [][]byte { return l[:len(l)-1] })},
		{name: "checkpoints reordered", tamper: func(bl map[string][]byte) { bl[ck(1)], bl[ck(2)] = bl[ck(2)], bl[ck(1)] }},
		{name: "rollback to an earlier archive", old: true, trusted: true, want: ErrRollback},
		{name: "newest segments deleted", trusted: true, want: ErrRollback, tamper: func(bl map[string][]byte) {
			for n := int64(m.segments - 1); n <= int64(m.segments); n++ {
				delete(bl, ev(n))
				delete(bl, ck(n))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := m.blobs
			if tc.old {
				src = m.old
			}
			bl := map[string][]byte{}
			for k, v := range src {
				bl[k] = v
			}
			if tc.tamper != nil {
				tc.tamper(bl)
			}
			c := testenv.NewContainer(t)
			putBlobs(t, c, bl)
			s, err := ArchiveSource(c, "api", "pod-1")
			require.NoError(t, err)
			opts := &VerifyOptions{}
			if tc.trusted {
				opts.Trusted = m.trusted
			}
			r, err := VerifySource(context.Background(), s, archivePub(), opts)
			require.ErrorIs(t, err, ErrTampered, describe(r))
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want, describe(r))
			}
			if tc.trusted {
				// Across the archive, the trail's checkpoint kept elsewhere
				// reveals the cut; without it a cut trail looks whole.
				_, err = VerifyArchive(context.Background(), c, "", archivePub(), &ArchiveVerifyOptions{
					TrustedCheckpoints: map[ArchiveTrail][]byte{{Service: "api", Instance: "pod-1"}: m.trusted},
				})
				require.ErrorIs(t, err, ErrRollback, "VerifyArchive")
				return
			}
			_, err = VerifyArchive(context.Background(), c, "", archivePub(), nil)
			require.ErrorIs(t, err, ErrTampered, "VerifyArchive")
			// The writer refuses to sign over it.
			_, err = NewArchiveSink(c, archiveOpts("pod-1", t.TempDir()))
			require.ErrorIs(t, err, ErrTampered)
		})
	}
}

// TestArchiveHiddenTrails covers what no single trail can show: a trail
// deleted whole, and blobs renamed out of the trail layout.
func TestArchiveHiddenTrails(t *testing.T) {
	t.Parallel()
	m := buildArchiveMaster(t)
	pod1 := ArchiveTrail{Service: "api", Instance: "pod-1"}
	pod2 := ArchiveTrail{Service: "api", Instance: "pod-2"}
	ctx := context.Background()

	t.Run("whole trail deleted", func(t *testing.T) {
		t.Parallel()
		c := testenv.NewContainer(t) // pod-2's trail was never there
		putBlobs(t, c, m.blobs)
		_, err := VerifyArchive(ctx, c, "api", archivePub(), nil)
		require.NoError(t, err, "nothing to see without an inventory")
		reports, err := VerifyArchive(ctx, c, "api", archivePub(), &ArchiveVerifyOptions{Expect: []ArchiveTrail{pod1, pod2}})
		require.ErrorIs(t, err, ErrRollback)
		assert.Len(t, reports, 1, "the trail that is there is still verified")
		_, err = VerifyArchive(ctx, c, "api", archivePub(), &ArchiveVerifyOptions{
			TrustedCheckpoints: map[ArchiveTrail][]byte{pod2: m.trusted},
		})
		require.ErrorIs(t, err, ErrRollback, "a trusted checkpoint of a missing trail")
	})
	t.Run("blobs renamed out of the layout", func(t *testing.T) {
		t.Parallel()
		c := testenv.NewContainer(t)
		renamed := map[string][]byte{}
		for name, data := range m.blobs {
			renamed["api/pod-1/hidden-"+name[len("api/pod-1/"):]] = data
		}
		putBlobs(t, c, renamed)
		_, err := VerifyArchive(ctx, c, "api", archivePub(), nil)
		require.ErrorIs(t, err, ErrTampered)
	})
	t.Run("Trusted is per trail", func(t *testing.T) {
		t.Parallel()
		c := testenv.NewContainer(t)
		_, err := VerifyArchive(ctx, c, "api", archivePub(), &ArchiveVerifyOptions{VerifyOptions: VerifyOptions{Trusted: m.trusted}})
		require.Error(t, err)
	})
}

const archiveChildEnv = "AUDITLOG_ARCHIVE_CHILD"

// runArchiveCrashChild is the child of TestArchiveCrashKeepsAcknowledgedEvents:
// it records events remote-durably from 8 goroutines until killed, printing
// the ID of each event whose Record returned nil. The connection string
// comes from the environment, never from the command line.
func runArchiveCrashChild() bool {
	conn := os.Getenv(archiveChildEnv)
	if conn == "" {
		return false
	}
	c, err := container.NewClientFromConnectionString(conn, os.Getenv("AUDITLOG_ARCHIVE_CONTAINER"), nil)
	if err != nil {
		os.Exit(3)
	}
	s, err := NewArchiveSink(c, &ArchiveOptions{
		SigningKey: testSigningKey("a"), Service: "api", Instance: "pod-crash",
		SpoolDir: os.Getenv("AUDITLOG_ARCHIVE_SPOOL"), CheckpointInterval: 10 * time.Millisecond, SegmentBlocks: 100,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, s)
	if err != nil {
		os.Exit(3)
	}
	round := os.Getenv("AUDITLOG_ARCHIVE_ROUND")
	recordUntilKilled(l, func(g, i int) string { return fmt.Sprintf("crash-%s-g%d-%06d", round, g, i) })
	return true
}

func TestArchiveCrashKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	t.Parallel()
	az := testenv.Shared(t)
	c := az.NewContainer(t)
	spool := t.TempDir()
	exe, err := os.Executable()
	require.NoError(t, err)
	var acked []string
	for round, after := range []int{400, 250} {
		cmd := exec.Command(exe, "-test.run=^$") //nolint:gosec // G204: the test binary itself
		cmd.Env = append(os.Environ(), archiveChildEnv+"="+az.ConnectionString(),
			"AUDITLOG_ARCHIVE_CONTAINER="+containerName(t, c), "AUDITLOG_ARCHIVE_SPOOL="+spool,
			fmt.Sprintf("AUDITLOG_ARCHIVE_ROUND=%d", round))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		n := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			acked = append(acked, sc.Text())
			if n++; n == after {
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "stderr: %s", stderr.String())
		require.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal(), "stderr: %s", stderr.String())
		require.GreaterOrEqual(t, n, after)
		// Read back from the archive as the crash left it.
		src, err := ArchiveSource(c, "api", "pod-crash")
		require.NoError(t, err)
		r, err := VerifySource(context.Background(), src, archivePub(), &VerifyOptions{FindIDs: acked})
		require.NoError(t, err, describe(r))
		assert.Zero(t, missingIDs(r, acked), "round %d: acknowledged events missing from the archive", round)
	}
	// A new run seals the crashed trail.
	s, err := NewArchiveSink(c, &ArchiveOptions{SigningKey: testSigningKey("a"), Service: "api", Instance: "pod-crash", SpoolDir: spool})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	src, err := ArchiveSource(c, "api", "pod-crash")
	require.NoError(t, err)
	r, err := VerifySource(context.Background(), src, archivePub(), &VerifyOptions{RequireSealed: true, FindIDs: acked})
	require.NoError(t, err, describe(r))
	assert.Zero(t, missingIDs(r, acked))
}

// TestArchiveOutage cuts Blob Storage off (a gate in front of Azurite)
// while events flow: Check follows, nothing is lost, order is kept; then
// the sink is closed during a second outage and a new one resumes the
// spool.
func TestArchiveOutage(t *testing.T) {
	t.Parallel()
	az := testenv.Shared(t)
	name := containerName(t, az.NewContainer(t))
	conn, gate := az.GatedConnectionString(t)
	c := quickClient(t, conn, name)
	ctx := context.Background()
	spool := t.TempDir()
	o := archiveOpts("pod-out", spool)
	o.AppendTimeout, o.RetryBase, o.RetryMax, o.CloseTimeout = 3*time.Second, 20*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond
	l, s := newArchiveLogger(t, c, o)

	const writers = 4
	var (
		mu       sync.Mutex
		attempts = map[int][]string{} // per writer, in the order recorded
		acked    []string
		spooled  int
		phase    sync.WaitGroup
		stop     = make(chan struct{})
	)
	stopWriters := sync.OnceFunc(func() { close(stop); phase.Wait() })
	t.Cleanup(stopWriters) // also when an assertion below ends the test early
	for g := range writers {
		phase.Go(func() {
			f := gofakeit.New(uint64(g + 31))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := fakeEvent(f, newSynthetic(f))
				e.ID = fmt.Sprintf("out-g%d-%06d", g, i)
				err := l.Record(ctx, e)
				mu.Lock()
				attempts[g] = append(attempts[g], e.ID)
				switch {
				case err == nil:
					acked = append(acked, e.ID)
				case errors.Is(err, ErrUnavailable):
					spooled++
				default:
					t.Errorf("record: %v", err)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // a refused request, as a service would answer 503
				}
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) + spooled }
	require.Eventually(t, func() bool { return count() > 200 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, l.Check(ctx))

	gate.Close()
	require.Eventually(t, func() bool { return l.Check(ctx) != nil }, 30*time.Second, 5*time.Millisecond, "Check must report the outage")
	require.ErrorIs(t, l.Check(ctx), ErrUnavailable)
	during := count()
	require.Eventually(t, func() bool { return count() > during+100 }, 30*time.Second, 5*time.Millisecond, "events keep flowing into the spool")
	assert.Positive(t, s.Stats().SpoolOps)

	gate.Open()
	if !assert.Eventually(t, func() bool { return l.Check(ctx) == nil }, 30*time.Second, 10*time.Millisecond, "Check must recover once the spool is drained") {
		t.Fatalf("check: %v; stats %+v", l.Check(ctx), s.Stats())
	}
	after := count()
	require.Eventually(t, func() bool { return count() > after+100 }, 30*time.Second, 5*time.Millisecond)
	stopWriters()
	st := s.Stats()
	assert.Positive(t, st.Spooled)
	assert.Positive(t, spooled, "Sync writers are told while the archive is away")

	// Second outage: close the sink while it lasts; the spool outlives it.
	gate.Close()
	f := gofakeit.New(77)
	var late []string
	for i := range 20 {
		e := fakeEvent(f, newSynthetic(f))
		e.ID = fmt.Sprintf("late-%03d", i)
		err := l.Record(ctx, e)
		require.True(t, err == nil || errors.Is(err, ErrUnavailable), "record: %v", err)
		late = append(late, e.ID)
	}
	require.ErrorIs(t, l.Close(), ErrUnavailable, "Close reports appends left in the spool")
	gate.Open()
	l2, s2 := newArchiveLogger(t, c, o) // drains the spool first, then seals
	assert.Zero(t, s2.Stats().SpoolOps)
	require.NoError(t, l2.Close())

	src, err := ArchiveSource(c, "api", "pod-out")
	require.NoError(t, err)
	var all []string
	for _, ids := range attempts {
		all = append(all, ids...)
	}
	all = append(all, late...)
	r, err := VerifySource(ctx, src, archivePub(), &VerifyOptions{RequireSealed: true, FindIDs: all})
	require.NoError(t, err, describe(r))
	assert.Zero(t, missingIDs(r, all), "events acknowledged or spooled are missing")
	assert.Equal(t, int64(len(all)), r.Events, "no event archived twice")
	for g, ids := range attempts {
		for i := 1; i < len(ids); i++ {
			if r.Found[ids[i-1]] >= r.Found[ids[i]] {
				t.Errorf("writer %d: event %d archived before event %d", g, i, i-1)
				break
			}
		}
	}
	assert.Equal(t, len(all)-len(late), len(acked)+spooled, "every attempt was acknowledged or spooled")
}

// TestArchiveAppendIsIdempotent replays appends as a retry after a lost
// answer would: the same bytes at a passed position succeed without being
// appended twice, a merged append of which a first part landed completes
// the rest, and other bytes are a conflict.
func TestArchiveAppendIsIdempotent(t *testing.T) {
	t.Parallel()
	c := testenv.NewContainer(t)
	ctx := context.Background()
	o := archiveOpts("pod-1", t.TempDir())
	o.AppendTimeout = 10 * time.Second
	sh, err := newShipper(c, o, nil)
	require.NoError(t, err)
	const name = "api/pod-1/audit-00000001.jsonl"
	require.NoError(t, sh.remote(ctx, &spoolOp{Kind: opCreate, Blob: name}))
	require.NoError(t, sh.remote(ctx, &spoolOp{Kind: opCreate, Blob: name}), "creating again is a retry")
	a, b := []byte("{\"id\":\"a\"}\n"), []byte("{\"id\":\"b\"}\n")
	require.NoError(t, sh.remote(ctx, &spoolOp{Kind: opAppend, Blob: name, data: a}))
	require.NoError(t, sh.remote(ctx, &spoolOp{Kind: opAppend, Blob: name, data: a}), "a replayed append is recognised")
	merged := append(append([]byte(nil), a...), b...)
	require.NoError(t, sh.remote(ctx, &spoolOp{Kind: opAppend, Blob: name, data: merged}), "the part not yet there is appended")
	got := readContainer(t, c)[name]
	assert.Equal(t, string(merged), string(got))
	err = sh.remote(ctx, &spoolOp{Kind: opAppend, Blob: name, data: b})
	require.ErrorIs(t, err, ErrConflict, "other bytes at a passed position")
	err = sh.remote(ctx, &spoolOp{Kind: opAppend, Blob: name, Pos: int64(len(merged)) + 5, data: b})
	require.ErrorIs(t, err, ErrConflict, "a blob shorter than written")
	_, err = c.NewBlockBlobClient("api/pod-1/other").UploadBuffer(ctx, []byte("x"), nil)
	require.NoError(t, err)
	require.ErrorIs(t, sh.remote(ctx, &spoolOp{Kind: opCreate, Blob: "api/pod-1/other"}), ErrConflict)
}

func FuzzSpoolOp(f *testing.F) {
	f.Add([]byte("{\"op\":\"append\",\"blob\":\"a/b/c\",\"pos\":0,\"len\":2,\"sha256\":\"x\"}\nab"))
	f.Add([]byte("{\"op\":\"create\",\"blob\":\"a/b/c\",\"pos\":0,\"len\":0,\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}\n"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := t.TempDir() + "/op-0000000000000001.spool"
		require.NoError(t, os.WriteFile(p, b, 0o600))
		op, err := readSpoolOp(p, true)
		if err != nil {
			return
		}
		assert.Len(t, op.data, op.Len)
		assert.Equal(t, int64(len(b)), op.size)
	})
}
