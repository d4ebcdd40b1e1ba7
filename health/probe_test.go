package health_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/health"
	"github.com/phiguard/phiguard/internal/testenv"
)

func statusServer(t *testing.T, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code == http.StatusFound {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", code)
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestProbe(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		code      int
		unhealthy bool
	}{
		"200":                 {http.StatusOK, false},
		"204":                 {http.StatusNoContent, false},
		"302 is not followed": {http.StatusFound, false},
		"404":                 {http.StatusNotFound, true},
		"503":                 {http.StatusServiceUnavailable, true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := health.Probe(t.Context(), statusServer(t, c.code))
			if c.unhealthy {
				require.ErrorIs(t, err, health.ErrUnhealthy)
			} else {
				require.NoError(t, err)
			}
		})
	}
	t.Run("invalid URL", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{"", "localhost:8080", "ftp://x/y", "http://"} {
			assert.Error(t, health.Probe(t.Context(), u), u)
		}
	})
}

func TestHealthcheckExitCodes(t *testing.T) {
	t.Parallel()
	// A real Health behind a real listener: the binary probing itself.
	h := newHealth(t, &health.Options{Interval: fast})
	srv := mounted(t, h)
	h.Start(t.Context())
	failing := newHealth(t, &health.Options{Interval: fast})
	require.NoError(t, failing.AddReadiness("db", func(context.Context) error { return context.DeadlineExceeded }))
	bad := mounted(t, failing)
	failing.Start(t.Context())
	eventuallyCode(t, bad.URL+"/readyz", http.StatusServiceUnavailable)

	refused := "http://" + testenv.RefusedAddr(t) + "/readyz"

	hang, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	require.NoError(t, err)
	t.Cleanup(func() { hang.Close() })

	cases := map[string]struct {
		url  string
		args []string
		want int
	}{
		"healthy":            {url: srv.URL + "/readyz", want: health.ExitHealthy},
		"unhealthy":          {url: bad.URL + "/readyz", want: health.ExitUnhealthy},
		"liveness still ok":  {url: bad.URL + "/livez", want: health.ExitHealthy},
		"url flag overrides": {url: bad.URL + "/readyz", args: []string{"-url", srv.URL + "/readyz"}, want: health.ExitHealthy},
		"connection refused": {url: refused, want: health.ExitUnhealthy},
		"time-out":           {url: "http://" + hang.Addr().String() + "/readyz", args: []string{"-timeout", "50ms"}, want: health.ExitUnhealthy},
		"unknown flag":       {url: srv.URL, args: []string{"-nope"}, want: health.ExitUsage},
		"stray argument":     {url: srv.URL, args: []string{"extra"}, want: health.ExitUsage},
		"invalid url":        {url: "localhost:8080/readyz", want: health.ExitUsage},
		"empty url":          {url: "", want: health.ExitUsage},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			got := health.Healthcheck(ctx, c.url, c.args, &stderr)
			assert.Equal(t, c.want, got, "stderr: %s", stderr.String())
			if got == health.ExitHealthy {
				assert.Empty(t, stderr.String())
			} else {
				assert.NotEmpty(t, stderr.String())
			}
		})
	}
}

func TestLoopbackURL(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ addr, want string }{
		"port only":     {":8080", "http://127.0.0.1:8080/readyz"},
		"ipv4 wildcard": {"0.0.0.0:9000", "http://127.0.0.1:9000/readyz"},
		"ipv6 wildcard": {"[::]:9000", "http://127.0.0.1:9000/readyz"},
		"explicit host": {"127.0.0.2:81", "http://127.0.0.2:81/readyz"},
		"ipv6 loopback": {"[::1]:81", "http://[::1]:81/readyz"},
		"no port":       {"localhost", "http://localhost:80/readyz"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, c.want, health.LoopbackURL(c.addr, "/readyz"))
		})
	}
}
