package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/health"
)

func TestNewValidation(t *testing.T) {
	t.Parallel()
	cases := map[string]*health.Options{
		"negative interval": {Interval: -1},
		"negative timeout":  {Timeout: -1},
		"short token":       {DetailsToken: "short"},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := health.New(o)
			require.ErrorIs(t, err, health.ErrInvalidOptions)
		})
	}
	h, err := health.New(nil)
	require.NoError(t, err)
	assert.Equal(t, health.StatusPass, h.Status(health.KindLiveness))
	assert.Equal(t, health.StatusPass, h.Status(health.KindReadiness))
}

func TestAddValidation(t *testing.T) {
	t.Parallel()
	h := newHealth(t, nil)
	ok := func(context.Context) error { return nil }
	require.NoError(t, h.AddReadiness("db", ok))
	require.NoError(t, h.AddLiveness("db", ok), "names are per endpoint")
	cases := map[string]struct {
		name string
		fn   func(context.Context) error
		opts []health.CheckOption
		want error
	}{
		"duplicate":     {name: "db", fn: ok, want: health.ErrDuplicate},
		"empty name":    {name: "", fn: ok, want: health.ErrInvalidName},
		"space in name": {name: "a b", fn: ok, want: health.ErrInvalidName},
		"comma in name": {name: "a,b", fn: ok, want: health.ErrInvalidName},
		"zero timeout":  {name: "x", fn: ok, opts: []health.CheckOption{health.WithTimeout(0)}, want: health.ErrInvalidOptions},
		"zero interval": {name: "y", fn: ok, opts: []health.CheckOption{health.WithInterval(0)}, want: health.ErrInvalidOptions},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, h.AddReadiness(c.name, c.fn, c.opts...), c.want)
		})
	}
	require.Error(t, h.AddReadiness("nilfn", nil))
}

// Before the first result: liveness 200, readiness and startup 503.
func TestUnknownUntilFirstResult(t *testing.T) {
	t.Parallel()
	h := newHealth(t, nil)
	never := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	require.NoError(t, h.AddLiveness("loop", never))
	require.NoError(t, h.AddReadiness("db", never))
	require.NoError(t, h.AddStartup("migrations", never))
	srv := mounted(t, h) // not started: nothing has run
	cases := map[string]struct {
		path string
		code int
		body string
	}{
		"liveness":  {"/livez", http.StatusOK, `{"status":"pass"}` + "\n"},
		"readiness": {"/readyz", http.StatusServiceUnavailable, `{"status":"fail"}` + "\n"},
		"startup":   {"/startupz", http.StatusServiceUnavailable, `{"status":"fail"}` + "\n"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := get(t, srv.URL+c.path, nil)
			assert.Equal(t, c.code, r.code)
			assert.Equal(t, c.body, r.body)
		})
	}
	assert.Equal(t, health.StatusUnknown, h.Status(health.KindReadiness))
}

func TestProbeStormIsServedFromCache(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	slow := func(ctx context.Context) error {
		calls.Add(1)
		select {
		case <-time.After(200 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// One run per hour: the only run in this test is the initial one.
	h := newHealth(t, &health.Options{Interval: time.Hour, Timeout: 5 * time.Second})
	require.NoError(t, h.AddReadiness("slow-db", slow))
	srv := mounted(t, h)
	h.Start(t.Context())
	eventuallyCode(t, srv.URL+"/readyz", http.StatusOK)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
	t.Cleanup(client.CloseIdleConnections)
	const storm = 1000
	codes := make([]int, storm)
	errs := make([]error, storm)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range storm {
		wg.Go(func() {
			<-start
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/readyz", nil)
			if err != nil {
				errs[i] = err
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			codes[i] = resp.StatusCode
			resp.Body.Close()
		})
	}
	close(start)
	wg.Wait()
	for i := range storm {
		require.NoError(t, errs[i], "request %d", i)
		require.Equal(t, http.StatusOK, codes[i], "request %d", i)
	}
	assert.Equal(t, int32(1), calls.Load(), "a probe storm must never reach the dependency")
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var hungStarts, fastRuns atomic.Int32
	hung := func(context.Context) error { // ignores its context on purpose
		hungStarts.Add(1)
		<-release
		return nil
	}
	honours := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	counter := func(context.Context) error { fastRuns.Add(1); return nil }

	changes := make(chan health.Change, 64)
	h := newHealth(t, &health.Options{Interval: fast, OnChange: func(c health.Change) {
		if c.Check != "" && c.To == health.StatusFail {
			changes <- c
		}
	}})
	require.NoError(t, h.AddReadiness("hung", hung, health.WithTimeout(20*time.Millisecond)))
	require.NoError(t, h.AddReadiness("honours", honours, health.WithTimeout(20*time.Millisecond)))
	require.NoError(t, h.AddReadiness("counter", counter))
	srv := mounted(t, h)
	h.Start(t.Context())

	seen := map[string]bool{}
	for len(seen) < 2 {
		c := <-changes
		require.ErrorIs(t, c.Err, health.ErrCheckTimeout, c.Check)
		seen[c.Check] = true
	}
	assert.Equal(t, http.StatusServiceUnavailable, get(t, srv.URL+"/readyz", nil).code)
	// Many intervals later the hung check has still been started only once:
	// a check that ignores its context costs one goroutine, not one per run.
	require.Eventually(t, func() bool { return fastRuns.Load() > 20 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, int32(1), hungStarts.Load())
}

func TestPanicIsAFailure(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	changes := make(chan health.Change, 16)
	h := newHealth(t, &health.Options{
		Interval: fast,
		Logger:   slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil)),
		OnChange: func(c health.Change) { changes <- c },
	})
	const panicValue = "panic-payload-that-must-not-leak"
	require.NoError(t, h.AddReadiness("bomb", func(context.Context) error { panic(panicValue) }))
	srv := mounted(t, h)
	h.Start(t.Context())
	for c := range changes {
		if c.Check == "bomb" && c.To == health.StatusFail {
			require.ErrorIs(t, c.Err, health.ErrCheckPanic)
			break
		}
	}
	eventuallyCode(t, srv.URL+"/readyz", http.StatusServiceUnavailable)
	h.Stop()
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, logs.String(), "health: status changed")
	requireNoLeak(t, logs.String(), panicValue)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestLivenessUnaffectedByFailingDependency(t *testing.T) {
	t.Parallel()
	db := &switchable{}
	db.set(errors.New("connection refused"))
	h := newHealth(t, &health.Options{Interval: fast})
	require.NoError(t, h.AddLiveness("goroutines", func(context.Context) error { return nil }))
	require.NoError(t, h.AddReadiness("db", db.Check))
	srv := mounted(t, h)
	h.Start(t.Context())
	eventuallyCode(t, srv.URL+"/readyz", http.StatusServiceUnavailable)
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/livez", nil).code)

	db.set(nil)
	eventuallyCode(t, srv.URL+"/readyz", http.StatusOK)
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/livez", nil).code)
}

func TestFailingLivenessCheck(t *testing.T) {
	t.Parallel()
	h := newHealth(t, &health.Options{Interval: fast})
	require.NoError(t, h.AddLiveness("deadlock", func(context.Context) error { return errors.New("stuck") }))
	srv := mounted(t, h)
	h.Start(t.Context())
	eventuallyCode(t, srv.URL+"/livez", http.StatusServiceUnavailable)
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/readyz", nil).code)
}

func TestNonCriticalCheckWarns(t *testing.T) {
	t.Parallel()
	token := randomToken(t)
	h := newHealth(t, &health.Options{Interval: fast, DetailsToken: token})
	require.NoError(t, h.AddReadiness("cache", func(context.Context) error { return errors.New("cache down") }, health.NonCritical()))
	require.NoError(t, h.AddReadiness("db", func(context.Context) error { return nil }))
	srv := mounted(t, h)
	h.Start(t.Context())
	require.Eventually(t, func() bool { return h.Status(health.KindReadiness) == health.StatusWarn }, 10*time.Second, time.Millisecond)
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/readyz", nil).code)

	r := get(t, srv.URL+"/readyz?verbose", map[string]string{"Authorization": "Bearer " + token})
	var d details
	require.NoError(t, json.Unmarshal([]byte(r.body), &d))
	assert.Equal(t, "warn", d.Status)
	assert.Equal(t, "warn", d.Checks["cache:responseTime"][0].Status)
	assert.False(t, d.Checks["cache:responseTime"][0].Critical)
	assert.Equal(t, "pass", d.Checks["db:responseTime"][0].Status)
}

func TestStartupGatesReadinessAndLatches(t *testing.T) {
	t.Parallel()
	migrations := &switchable{}
	migrations.set(errors.New("pending"))
	h := newHealth(t, &health.Options{Interval: fast, StartupInterval: fast})
	require.NoError(t, h.AddStartup("migrations", migrations.Check))
	srv := mounted(t, h)
	h.Start(t.Context())
	require.Eventually(t, func() bool { return migrations.count() > 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, http.StatusServiceUnavailable, get(t, srv.URL+"/startupz", nil).code)
	assert.Equal(t, http.StatusServiceUnavailable, get(t, srv.URL+"/readyz", nil).code)

	migrations.set(nil)
	eventuallyCode(t, srv.URL+"/startupz", http.StatusOK)
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/readyz", nil).code)

	// Latched: the startup check no longer runs and a regression is not reported there.
	migrations.set(errors.New("would fail"))
	n := migrations.count()
	require.NoError(t, h.AddReadiness("later", func(context.Context) error { return nil }))
	eventuallyCode(t, srv.URL+"/readyz", http.StatusOK)
	assert.Equal(t, n, migrations.count())
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/startupz", nil).code)
	require.ErrorIs(t, h.AddStartup("too-late", migrations.Check), health.ErrStartupComplete)
}

func TestDrain(t *testing.T) {
	t.Parallel()
	var got []health.Change
	var mu sync.Mutex
	h := newHealth(t, &health.Options{OnChange: func(c health.Change) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	}})
	srv := mounted(t, h)
	h.Start(t.Context())
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/readyz", nil).code)
	assert.False(t, h.Draining())
	h.Drain()
	h.Drain() // idempotent
	assert.True(t, h.Draining())
	assert.Equal(t, http.StatusServiceUnavailable, get(t, srv.URL+"/readyz", nil).code)
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/livez", nil).code)
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/startupz", nil).code)
	// exclude cannot lift a drain
	assert.Equal(t, http.StatusServiceUnavailable, get(t, srv.URL+"/readyz?exclude=anything", nil).code)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	assert.Equal(t, health.Change{Kind: health.KindReadiness, From: health.StatusPass, To: health.StatusFail, At: got[0].At}, got[0])
}

func TestStopAndRestart(t *testing.T) {
	t.Parallel()
	dep := &switchable{}
	h := newHealth(t, &health.Options{Interval: fast})
	require.NoError(t, h.AddReadiness("dep", dep.Check))
	h.Start(t.Context())
	h.Start(t.Context()) // no-op
	require.Eventually(t, func() bool { return h.Status(health.KindReadiness) == health.StatusPass }, 10*time.Second, time.Millisecond)
	h.Stop()
	n := dep.count()
	assert.Equal(t, health.StatusPass, h.Status(health.KindReadiness), "results stay served after Stop")
	h.Start(t.Context())
	require.Eventually(t, func() bool { return dep.count() > n }, 10*time.Second, time.Millisecond)
}

// Start and Stop from different goroutines at once: each Stop waits for the
// loops of the run it stopped, and nothing panics (a shared WaitGroup would
// be reused while a Wait is in progress).
func TestConcurrentStartStop(t *testing.T) {
	t.Parallel()
	dep := &switchable{}
	h := newHealth(t, &health.Options{Interval: fast})
	require.NoError(t, h.AddReadiness("dep", dep.Check))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				h.Start(t.Context())
				h.Stop()
			}
		})
	}
	wg.Wait()
	n := dep.count()
	h.Start(t.Context())
	require.Eventually(t, func() bool { return dep.count() > n }, 10*time.Second, time.Millisecond, "checks run again after the storm")
}

// OnChange may call back into Health (here: drain on the first dependency
// failure) and receives changes one at a time, in order.
func TestOnChangeMayDrain(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got []string
		h   *health.Health
	)
	ready := make(chan struct{})
	done := make(chan struct{})
	h = newHealth(t, &health.Options{Interval: fast, OnChange: func(c health.Change) {
		<-ready
		mu.Lock()
		got = append(got, c.Kind.String()+"/"+c.Check+":"+c.From.String()+"->"+c.To.String())
		mu.Unlock()
		if c.Check == "db" && c.To == health.StatusFail {
			h.Drain()
		}
		if c.Check == "" && c.Kind == health.KindReadiness && h.Draining() {
			close(done)
		}
	}})
	require.NoError(t, h.AddReadiness("db", func(context.Context) error { return errors.New("down") }))
	close(ready)
	h.Start(t.Context())
	<-done
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		"readyz/db:unknown->fail",
		"readyz/:unknown->fail",
	}, got[:2])
	assert.True(t, h.Draining())
}

// checkGoroutines counts goroutines executing, for a runner, a check
// defined in the function named owner (other parallel tests have their own).
func checkGoroutines(owner string) int {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "health.(*Health).runOnce.func") && strings.Contains(g, owner) {
			count++
		}
	}
	return count
}

// A check that overruns its time-out but returns later must not leave a
// goroutine behind (health-go v5.5.4 leaks one per timed-out run).
func TestTimedOutCheckDoesNotLeak(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	overrun := func(context.Context) error { // ignores ctx, returns late
		runs.Add(1)
		time.Sleep(30 * time.Millisecond)
		return nil
	}
	h := newHealth(t, &health.Options{Interval: fast})
	require.NoError(t, h.AddReadiness("overrun-leak-probe", overrun, health.WithTimeout(time.Millisecond)))
	h.Start(t.Context())
	require.Eventually(t, func() bool { return runs.Load() >= 5 }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return checkGoroutines("TestTimedOutCheckDoesNotLeak") == 1 }, 10*time.Second, time.Millisecond,
		"the runner sees the check's goroutine")
	h.Stop()
	require.Eventually(t, func() bool { return checkGoroutines("TestTimedOutCheckDoesNotLeak") == 0 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, health.StatusFail, h.Status(health.KindReadiness))
}
