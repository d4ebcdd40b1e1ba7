package health_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/health"
)

// fast keeps background runs frequent so tests wait milliseconds, not seconds.
const fast = 5 * time.Millisecond

func newHealth(t *testing.T, o *health.Options) *health.Health {
	t.Helper()
	h, err := health.New(o)
	require.NoError(t, err)
	t.Cleanup(h.Stop)
	return h
}

func mounted(t *testing.T, h *health.Health) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	code   int
	body   string
	header http.Header
}

func get(t *testing.T, url string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{code: resp.StatusCode, body: string(b), header: resp.Header}
}

// eventually polls until the endpoint answers code; a result, not a timing, is asserted.
func eventuallyCode(t *testing.T, url string, code int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return get(t, url, nil).code == code
	}, 10*time.Second, time.Millisecond, "%s never answered %d", url, code)
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// switchable is a dependency whose health the test flips.
type switchable struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (s *switchable) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *switchable) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.err
}

func (s *switchable) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// requireNoLeak fails if body contains any of the secrets, reporting only
// which one (by index), never its value.
func requireNoLeak(t *testing.T, body string, secrets ...string) {
	t.Helper()
	for i, s := range secrets {
		if strings.Contains(body, s) {
			t.Fatalf("response leaks secret #%d", i)
		}
	}
}
