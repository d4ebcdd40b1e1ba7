package auditlog

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
)

func TestMiddlewareRecordsOneEventPerRequest(t *testing.T) {
	t.Parallel()
	var buf testenv.Buffer
	l, err := New(&Options{PseudonymKey: testPseudonymKey(), Observer: Observer{Service: "api"}}, NewWriterSink(&buf))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/patients/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("status") {
		case "403":
			http.Error(w, "forbidden", http.StatusForbidden)
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
		case "panic":
			panic(http.ErrAbortHandler)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {})
	describe := func(r *http.Request, status int) (Event, bool) {
		if r.URL.Path == "/healthz" {
			return Event{}, false
		}
		return Event{
			Type:     TypeRESTful,
			Action:   ActionRead,
			Actor:    Actor{ID: r.Header.Get("X-User")},
			Entities: []Entity{{Type: "Patient", Identifier: r.PathValue("id"), Role: "1"}},
		}, true
	}
	p := newSynthetic(gofakeit.New(31))
	mrn := p.MRN
	srv := httptest.NewServer(Middleware(l, describe, nil, mux))
	defer srv.Close()

	cases := []struct {
		name    string
		query   string
		outcome Outcome
	}{
		{"success", "", OutcomeSuccess},
		{"denied", "?status=403", OutcomeMinorFailure},
		{"server error", "?status=500", OutcomeSeriousFailure},
		{"panic", "?status=panic", OutcomeMajorFailure},
	}
	for _, tc := range cases {
		// POST: a client does not retry it after the panic aborts the connection.
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/patients/"+mrn+tc.query, nil)
		require.NoError(t, err)
		req.Header.Set("X-User", "user-"+tc.name)
		req.Header.Set("X-Request-ID", "req-"+tc.name)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, l.Close())

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Equal(t, len(cases), len(lines), "one event per audited request, none for /healthz")
	byActor := map[string]Event{}
	for _, line := range lines {
		assertNoLeak(t, line, []synthetic{p})
		var e Event
		require.NoError(t, json.Unmarshal(line, &e))
		byActor[e.Actor.ID] = e
	}
	for _, tc := range cases {
		e, ok := byActor["user-"+tc.name]
		require.True(t, ok, tc.name)
		assert.Equal(t, tc.outcome, e.Outcome, tc.name)
		assert.Equal(t, "req-"+tc.name, e.RequestID)
		assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", e.TraceID)
		assert.True(t, strings.HasPrefix(e.Actor.ClientIP, "[IP:"), "client IP is tokenized")
		assert.Equal(t, "api", e.Observer.Service)
	}
}
