package health_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/phiguard/phiguard/health"
	"github.com/phiguard/phiguard/health/checks"
)

// The checks run in the background; the handlers only read the last result.
func ExampleHealth_Mount() {
	h, err := health.New(&health.Options{Interval: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	// Liveness: process-level only.
	_ = h.AddLiveness("heartbeat", func(context.Context) error { return nil })
	// Readiness: dependencies. A component hands over its Check method.
	_ = h.AddReadiness("keyvault", func(context.Context) error { return nil }, health.WithTimeout(time.Second))

	mux := http.NewServeMux()
	h.Mount(mux) // /livez, /readyz, /startupz
	srv := httptest.NewServer(mux)
	defer srv.Close()

	h.Start(context.Background())
	defer h.Stop()
	for h.Status(health.KindReadiness) == health.StatusUnknown {
		time.Sleep(time.Millisecond)
	}

	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Cache-Control"))
	fmt.Print(string(body))
	// Output:
	// 200 no-store
	// {"status":"pass"}
}

// Per-check details need ?verbose and the configured bearer token.
func ExampleHealth_ReadyHandler_verbose() {
	token := "example-token-change-me-0123456789" // in production: from a secret store
	h, _ := health.New(&health.Options{DetailsToken: token})
	_ = h.AddReadiness("db", func(context.Context) error { return nil })
	_ = h.AddReadiness("cache", func(context.Context) error { return fmt.Errorf("cache: connection refused") }, health.NonCritical())
	srv := httptest.NewServer(h.ReadyHandler())
	defer srv.Close()
	h.Start(context.Background())
	defer h.Stop()
	// Wait for both results: readiness is warn once the non-critical cache
	// has failed (pass could still mean the cache has not reported).
	for h.Status(health.KindReadiness) != health.StatusWarn {
		time.Sleep(time.Millisecond)
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/readyz?verbose", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output:
	// [+]cache non-critical, failed: cache: connection refused
	// [+]db ok
	// readyz check passed
}

// A service's main: generic checks, Serve with graceful drain, and the
// healthcheck subcommand for a distroless image
// (HEALTHCHECK CMD ["/app", "healthcheck"]).
func ExampleServe() {
	const addr = ":8080"
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(health.Healthcheck(context.Background(), health.LoopbackURL(addr, "/readyz"), os.Args[2:], os.Stderr))
	}

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	h, err := health.New(&health.Options{Logger: logger})
	if err != nil {
		logger.Error("health", "error", err)
		os.Exit(1)
	}
	var db *sql.DB // opened elsewhere
	_ = h.AddReadiness("postgres", checks.Ping(db), health.WithTimeout(time.Second))
	_ = h.AddReadiness("upstream", checks.HTTPGet("https://upstream.example/healthz", nil))
	_ = h.AddReadiness("data-volume", checks.Volume("/var/lib/app", nil))

	mux := http.NewServeMux()
	h.Mount(mux)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	// Returns after SIGTERM: readiness 503, 5 s drain, graceful shutdown.
	if err := health.Serve(context.Background(), srv, h, nil); err != nil {
		logger.Error("serve", "error", err)
		os.Exit(1)
	}
}
