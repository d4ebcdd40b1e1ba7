package health_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/health"
)

// The drain sequence end to end over loopback: requests in flight when the
// shutdown starts all complete, readiness is 503 while draining, the
// listener keeps serving during the drain delay, and Serve returns nil.
func TestServeDrainsWithoutCuttingRequests(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	fetch := func(path string) (int, string, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	// During the drain (called synchronously from Drain, before the delay
	// and before Shutdown) the server must still answer, and say 503.
	type drainObs struct {
		ready, live, work int
		err               error
	}
	observed := make(chan drainObs, 1)
	h := newHealth(t, &health.Options{Interval: fast, OnChange: func(c health.Change) {
		if c.Kind != health.KindReadiness || c.To != health.StatusFail {
			return
		}
		var o drainObs
		var err1, err2, err3 error
		o.ready, _, err1 = fetch("/readyz")
		o.live, _, err2 = fetch("/livez")
		o.work, _, err3 = fetch("/fast")
		o.err = errors.Join(err1, err2, err3)
		observed <- o
	}})

	const inflight = 20
	entered := make(chan struct{}, inflight)
	release := make(chan struct{})
	mux := http.NewServeMux()
	h.Mount(mux)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		fmt.Fprint(w, "done")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	// Release the slow requests only once Shutdown has begun: they are then
	// truly in flight during the shutdown.
	srv.RegisterOnShutdown(func() { close(release) })

	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- health.Serve(ctx, srv, h, &health.ServeOptions{
			Listener: ln, DrainDelay: 20 * time.Millisecond, GracePeriod: 10 * time.Second,
			Signals: []os.Signal{}, // only ctx: signals are tested in a child process
		})
	}()
	eventuallyCode(t, base+"/readyz", http.StatusOK)

	results := make(chan error, inflight)
	var wg sync.WaitGroup
	for range inflight {
		wg.Go(func() {
			code, body, err := fetch("/slow")
			if err == nil && (code != http.StatusOK || body != "done") {
				err = fmt.Errorf("status %d body %q", code, body)
			}
			results <- err
		})
	}
	for range inflight {
		<-entered
	}
	cancel()

	o := <-observed
	require.NoError(t, o.err)
	assert.Equal(t, http.StatusServiceUnavailable, o.ready, "readiness while draining")
	assert.Equal(t, http.StatusOK, o.live, "liveness while draining")
	assert.Equal(t, http.StatusOK, o.work, "new requests are still served during the drain delay")

	require.NoError(t, <-served, "clean shutdown")
	wg.Wait()
	close(results)
	for err := range results {
		assert.NoError(t, err, "an in-flight request was cut")
	}
	_, _, err = fetch("/livez")
	assert.Error(t, err, "listener closed after Serve returns")
}

func TestServeGracePeriodExceeded(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := newHealth(t, nil)
	entered := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/stuck", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // only a forced close ends it
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- health.Serve(ctx, srv, h, &health.ServeOptions{Listener: ln, DrainDelay: -1, GracePeriod: 50 * time.Millisecond, Signals: []os.Signal{}})
	}()
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ln.Addr().String()+"/stuck", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	require.ErrorIs(t, <-served, health.ErrShutdownTimeout)
}

func TestServeListenError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	h := newHealth(t, nil)
	srv := &http.Server{Addr: ln.Addr().String(), ReadHeaderTimeout: time.Second}
	err = health.Serve(t.Context(), srv, h, &health.ServeOptions{Signals: []os.Signal{}})
	require.Error(t, err, "address in use")
	assert.True(t, strings.HasPrefix(err.Error(), "health: listen:"))
}

// The signal path runs in a child process (this test binary re-executed),
// so the test process itself never receives SIGTERM.
const childEnv = "PHIGUARD_HEALTH_SERVE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		serveChild()
	}
	os.Exit(m.Run())
}

// serveChild is the child process of TestServeStopsOnSIGTERM: it serves
// with the default signal handling and exits 0 only after a clean shutdown.
func serveChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen error:", err)
		os.Exit(3)
	}
	h, err := health.New(&health.Options{OnChange: func(c health.Change) {
		fmt.Printf("change %s %s->%s\n", c.Kind, c.From, c.To)
	}})
	if err != nil {
		os.Exit(3)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	fmt.Println("listening", ln.Addr().String())
	err = health.Serve(context.Background(), &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}, h,
		&health.ServeOptions{Listener: ln, DrainDelay: 10 * time.Millisecond})
	fmt.Println("serve returned", err)
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

func TestServeStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(out)
	var addr string
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			addr = a
			break
		}
	}
	require.NotEmpty(t, addr, "child did not start")
	eventuallyCode(t, "http://"+addr+"/readyz", http.StatusOK)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	require.NoError(t, cmd.Wait(), "child exit status; output: %q", rest)
	assert.Contains(t, rest, "change readyz pass->fail")
	assert.Contains(t, rest, "serve returned <nil>")
}
