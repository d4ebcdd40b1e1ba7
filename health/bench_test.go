package health_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	healthgo "github.com/hellofresh/health-go/v5"

	"github.com/phiguard/phiguard/health"
)

// slowDependency is the benchmark's database: every call takes 50 ms.
func slowDependency(ctx context.Context) error {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// discard is a minimal http.ResponseWriter, so the benchmark measures the
// handlers and not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func benchHandler(b *testing.B, hd http.Handler) {
	b.Helper()
	req := httptest.NewRequestWithContext(b.Context(), http.MethodGet, "/readyz", nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: make(http.Header, 4)}
		for pb.Next() {
			hd.ServeHTTP(w, req)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkReadiness compares readiness requests per second with one 50 ms
// dependency check: phiguard's cached handler against health-go's own
// handler (the baseline), which runs the check on every request under a
// mutex. health-go needs at least 50 ms per request: run it with a small
// -benchtime, e.g. -benchtime=20x.
func BenchmarkReadiness(b *testing.B) {
	compareReadiness(b, benchHandler)
}

// BenchmarkReadinessLoopback is the same comparison over real HTTP on
// 127.0.0.1, connection reuse included: what a kubelet storm costs.
func BenchmarkReadinessLoopback(b *testing.B) {
	run := func(b *testing.B, hd http.Handler) {
		srv := httptest.NewServer(hd)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer client.CloseIdleConnections()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, srv.URL, nil)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var buf [256]byte
				for {
					if _, err := resp.Body.Read(buf[:]); err != nil {
						break
					}
				}
				resp.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	compareReadiness(b, run)
}

// compareReadiness runs measure on the two readiness handlers under
// comparison, each with the one slow dependency: phiguard's cached handler
// (started and passing first) and health-go's own.
func compareReadiness(b *testing.B, measure func(*testing.B, http.Handler)) {
	b.Run("cached", func(b *testing.B) {
		h, err := health.New(&health.Options{Interval: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if err := h.AddReadiness("db", slowDependency); err != nil {
			b.Fatal(err)
		}
		h.Start(b.Context())
		defer h.Stop()
		for h.Status(health.KindReadiness) != health.StatusPass {
			time.Sleep(time.Millisecond)
		}
		measure(b, h.ReadyHandler())
	})
	b.Run("health-go", func(b *testing.B) {
		hg, err := healthgo.New(healthgo.WithChecks(healthgo.Config{
			Name: "db", Timeout: time.Second, Check: slowDependency,
		}))
		if err != nil {
			b.Fatal(err)
		}
		measure(b, hg.Handler())
	})
}
