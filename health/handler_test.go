package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/health"
)

type details struct {
	Status      string `json:"status"`
	Version     string `json:"version"`
	Description string `json:"description"`
	Output      string `json:"output"`
	Notes       []string
	Checks      map[string][]struct {
		Status        string  `json:"status"`
		Critical      bool    `json:"critical"`
		Excluded      bool    `json:"excluded"`
		ObservedValue float64 `json:"observedValue"`
		ObservedUnit  string  `json:"observedUnit"`
		Time          string  `json:"time"`
		Since         string  `json:"since"`
		Output        string  `json:"output"`
	} `json:"checks"`
}

// A failing dependency whose error names an internal host: it must reach
// only authorised callers.
const internalHost = "db-7.internal.example:5432"

func failingService(t *testing.T, token string) (*health.Health, *httptest.Server) {
	t.Helper()
	h := newHealth(t, &health.Options{
		Interval:     fast,
		DetailsToken: token,
		Component:    health.Component{Name: "records-api", Version: "v9.9.9-secret-build"},
	})
	require.NoError(t, h.AddReadiness("postgres", func(context.Context) error {
		return errors.New("dial tcp " + internalHost + ": connection refused")
	}))
	require.NoError(t, h.AddReadiness("keyvault", func(context.Context) error { return nil }))
	srv := mounted(t, h)
	h.Start(t.Context())
	// Wait for both checks' results, not just a 503: /readyz also answers
	// 503 before any check has run.
	require.Eventually(t, func() bool { return h.Status(health.KindReadiness) == health.StatusFail },
		10*time.Second, time.Millisecond, "postgres never reported")
	eventuallyCode(t, srv.URL+"/readyz?exclude=postgres", http.StatusOK) // keyvault has passed
	return h, srv
}

func TestDetailsNeedTheToken(t *testing.T) {
	t.Parallel()
	token := randomToken(t)
	_, srv := failingService(t, token)
	public := []string{internalHost, "postgres", "keyvault", "v9.9.9", "records-api", token}
	cases := map[string]struct {
		query  string
		header map[string]string
		detail bool
	}{
		"plain":                       {query: "", detail: false},
		"verbose without token":       {query: "?verbose", detail: false},
		"verbose with wrong token":    {query: "?verbose", header: map[string]string{"Authorization": "Bearer " + strings.Repeat("x", len(token))}, detail: false},
		"verbose with token prefix":   {query: "?verbose", header: map[string]string{"Authorization": "Bearer " + token[:len(token)-1]}, detail: false},
		"verbose with basic auth":     {query: "?verbose", header: map[string]string{"Authorization": "Basic " + token}, detail: false},
		"token without verbose":       {query: "", header: map[string]string{"Authorization": "Bearer " + token}, detail: false},
		"token and exclude":           {query: "?exclude=keyvault", header: map[string]string{"Authorization": "Bearer " + token}, detail: false},
		"verbose with token":          {query: "?verbose", header: map[string]string{"Authorization": "Bearer " + token}, detail: true},
		"verbose=1, bearer lowercase": {query: "?verbose=1", header: map[string]string{"Authorization": "bearer " + token}, detail: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := get(t, srv.URL+"/readyz"+c.query, c.header)
			assert.Equal(t, http.StatusServiceUnavailable, r.code)
			assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
			if !c.detail {
				assert.Equal(t, `{"status":"fail"}`+"\n", r.body)
				requireNoLeak(t, r.body, public...)
				return
			}
			var d details
			require.NoError(t, json.Unmarshal([]byte(r.body), &d))
			assert.Equal(t, "fail", d.Status)
			assert.Equal(t, "records-api", d.Description)
			assert.Equal(t, "v9.9.9-secret-build", d.Version)
			pg := d.Checks["postgres:responseTime"]
			require.Len(t, pg, 1)
			assert.Equal(t, "fail", pg[0].Status)
			assert.True(t, pg[0].Critical)
			assert.Contains(t, pg[0].Output, internalHost)
			assert.Equal(t, "ms", pg[0].ObservedUnit)
			_, err := time.Parse(time.RFC3339Nano, pg[0].Since)
			assert.NoError(t, err)
			_, err = time.Parse(time.RFC3339Nano, pg[0].Time)
			assert.NoError(t, err)
			assert.Equal(t, "pass", d.Checks["keyvault:responseTime"][0].Status)
			requireNoLeak(t, r.body, token)
		})
	}
}

func TestNoTokenConfiguredMeansNoDetails(t *testing.T) {
	t.Parallel()
	_, srv := failingService(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		r := get(t, srv.URL+"/readyz?verbose", map[string]string{"Authorization": auth})
		assert.Equal(t, `{"status":"fail"}`+"\n", r.body)
	}
}

func TestInternalHandlerShowsDetails(t *testing.T) {
	t.Parallel()
	h, _ := failingService(t, "")
	internal := httptest.NewServer(h.InternalHandler())
	t.Cleanup(internal.Close)
	r := get(t, internal.URL+"/readyz", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	var d details
	require.NoError(t, json.Unmarshal([]byte(r.body), &d))
	assert.Contains(t, d.Checks["postgres:responseTime"][0].Output, internalHost)
	for _, p := range []string{"/livez", "/startupz"} {
		r := get(t, internal.URL+p, nil)
		assert.Equal(t, http.StatusOK, r.code, p)
		require.NoError(t, json.Unmarshal([]byte(r.body), &d), p)
		assert.Equal(t, "pass", d.Status, p)
	}
}

func TestContentNegotiationAndMethods(t *testing.T) {
	t.Parallel()
	token := randomToken(t)
	_, srv := failingService(t, token)
	auth := "Bearer " + token
	cases := map[string]struct {
		query, accept, auth string
		wantType            string
		wantPrefix          string
	}{
		"default json":          {wantType: "application/json", wantPrefix: `{"status":"fail"}`},
		"health+json":           {accept: "application/health+json", wantType: "application/health+json", wantPrefix: `{"status":"fail"}`},
		"health+json in a list": {accept: "text/html, Application/Health+JSON;q=0.9", wantType: "application/health+json", wantPrefix: `{"status":"fail"}`},
		"details health+json":   {query: "?verbose", auth: auth, accept: "application/health+json", wantType: "application/health+json", wantPrefix: `{"status":"fail","version"`},
		"details text":          {query: "?verbose", auth: auth, accept: "text/plain", wantType: "text/plain; charset=utf-8", wantPrefix: "[+]keyvault ok\n[-]postgres failed: dial tcp"},
		"public text request":   {query: "?verbose", accept: "text/plain", wantType: "application/json", wantPrefix: `{"status":"fail"}`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := get(t, srv.URL+"/readyz"+c.query, map[string]string{"Accept": c.accept, "Authorization": c.auth})
			assert.Equal(t, c.wantType, r.header.Get("Content-Type"))
			assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
			assert.True(t, strings.HasPrefix(r.body, c.wantPrefix), "body starts %q", r.body[:min(len(r.body), 40)])
		})
	}

	t.Run("HEAD has no body", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, srv.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Empty(t, b)
	})
	t.Run("POST is refused", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	})
}

func TestExclude(t *testing.T) {
	t.Parallel()
	token := randomToken(t)
	_, srv := failingService(t, token)
	auth := map[string]string{"Authorization": "Bearer " + token}
	cases := map[string]struct {
		query string
		code  int
	}{
		"nothing excluded":        {"", http.StatusServiceUnavailable},
		"failing check excluded":  {"?exclude=postgres", http.StatusOK},
		"passing check excluded":  {"?exclude=keyvault", http.StatusServiceUnavailable},
		"comma separated":         {"?exclude=keyvault,postgres", http.StatusOK},
		"repeated":                {"?exclude=keyvault&exclude=postgres", http.StatusOK},
		"unknown name":            {"?exclude=nope", http.StatusServiceUnavailable},
		"malformed query ignored": {"?exclude=%zz&exclude=postgres", http.StatusOK},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := get(t, srv.URL+"/readyz"+c.query, nil)
			assert.Equal(t, c.code, r.code)
		})
	}
	t.Run("verbose shows exclusions and unknown names", func(t *testing.T) {
		t.Parallel()
		r := get(t, srv.URL+"/readyz?verbose&exclude=postgres&exclude=nope", auth)
		assert.Equal(t, http.StatusOK, r.code)
		var d details
		require.NoError(t, json.Unmarshal([]byte(r.body), &d))
		assert.Equal(t, "pass", d.Status)
		assert.True(t, d.Checks["postgres:responseTime"][0].Excluded)
		assert.Equal(t, []string{`cannot exclude "nope": no such check`}, d.Notes)

		auth := map[string]string{"Authorization": auth["Authorization"], "Accept": "text/plain"}
		r = get(t, srv.URL+"/readyz?verbose&exclude=postgres&exclude=nope", auth)
		assert.Equal(t, "[+]keyvault ok\n[-]postgres excluded: failed: dial tcp "+internalHost+": connection refused\n"+
			"warn: some health checks cannot be excluded: no matches for \"nope\"\nreadyz check passed\n", r.body)
	})
}
