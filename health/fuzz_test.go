package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phiguard/phiguard/health"
)

// FuzzReadyHandler feeds arbitrary query strings, Accept and Authorization
// headers to the readiness handler. Without the token nothing but the
// public pass/fail body may come out, and nothing may panic.
func FuzzReadyHandler(f *testing.F) {
	const token = "fuzz-token-0123456789abcdef"
	const secretErr = "dial tcp 10.9.8.7:5432 (db-secret-host)"
	h, err := health.New(&health.Options{Interval: time.Hour, DetailsToken: token})
	if err != nil {
		f.Fatal(err)
	}
	_ = h.AddReadiness("postgres", func(context.Context) error { return errors.New(secretErr) })
	_ = h.AddReadiness("cache", func(context.Context) error { return nil }, health.NonCritical())
	h.Start(f.Context())
	defer h.Stop()
	for h.Status(health.KindReadiness) == health.StatusUnknown {
		time.Sleep(time.Millisecond)
	}
	handler := h.ReadyHandler()

	f.Add("", "", "")
	f.Add("verbose", "application/health+json", "Bearer "+token)
	f.Add("verbose&exclude=postgres", "text/plain", "Bearer nope")
	f.Add("exclude=postgres,cache&exclude=x", "*/*", "")
	f.Fuzz(func(t *testing.T, query, accept, auth string) {
		req := &http.Request{
			Method: http.MethodGet,
			URL:    &url.URL{Path: "/readyz", RawQuery: query},
			Header: http.Header{"Accept": {accept}, "Authorization": {auth}},
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("missing Cache-Control: no-store")
		}
		body := rec.Body.String()
		if strings.Contains(auth, token) {
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/") && !json.Valid(rec.Body.Bytes()) {
				t.Fatal("invalid JSON details")
			}
			return
		}
		if body != `{"status":"pass"}`+"\n" && body != `{"status":"fail"}`+"\n" {
			t.Fatalf("unauthorised caller got a non-public body of %d bytes", len(body))
		}
		requireNoLeak(t, body, secretErr, "postgres", "cache")
	})
}
