package checks_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/health/checks"
	"github.com/phiguard/phiguard/internal/testenv"
)

func TestHTTPGet(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/needkey":
			if r.Header.Get("X-Api-Key") != "k-123" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/missing":
			http.NotFound(w, r)
		case "/slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	refused := "http://" + testenv.RefusedAddr(t)

	const secretQuery = "sig=secret-signature-value"
	cases := map[string]struct {
		url     string
		opts    *checks.HTTPOptions
		wantErr string
		timeout time.Duration // 0: long enough for a loaded machine
	}{
		"200":                   {url: srv.URL + "/ok"},
		"header sent":           {url: srv.URL + "/needkey", opts: &checks.HTTPOptions{Header: http.Header{"X-Api-Key": {"k-123"}}}},
		"header missing":        {url: srv.URL + "/needkey", wantErr: "status 401"},
		"404 fails":             {url: srv.URL + "/missing?" + secretQuery, wantErr: "status 404"},
		"503 fails":             {url: srv.URL + "/down", wantErr: "status 503"},
		"redirect not followed": {url: srv.URL + "/moved", wantErr: "status 302"},
		"custom OK accepts 302": {url: srv.URL + "/moved", opts: &checks.HTTPOptions{OK: func(s int) bool { return s == 302 }}},
		"connection refused":    {url: refused + "/x?" + secretQuery, wantErr: "connection refused"},
		"time-out":              {url: srv.URL + "/slow?" + secretQuery, wantErr: "deadline exceeded", timeout: 200 * time.Millisecond},
		"invalid URL":           {url: "::not a url", wantErr: "invalid URL"},
		"no scheme":             {url: "example.com/health", wantErr: "invalid URL"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			timeout := c.timeout
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			err := checks.HTTPGet(c.url, c.opts)(ctx)
			if c.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
			if strings.Contains(err.Error(), "secret-signature-value") {
				t.Fatal("error text leaks the URL query")
			}
		})
	}
}

func TestTCPDial(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	require.NoError(t, checks.TCPDial(ln.Addr().String())(t.Context()))
	err = checks.TCPDial(testenv.RefusedAddr(t))(t.Context())
	require.ErrorIs(t, err, syscallECONNREFUSED())
}

// A tiny database/sql driver, so Ping is exercised through a real *sql.DB
// and its connection pool.
type testDriver struct{ down *atomic.Bool }
type testConn struct{ down *atomic.Bool }

var errDown = errors.New("database is down")

func (d testDriver) Open(string) (driver.Conn, error) {
	if d.down.Load() {
		return nil, errDown
	}
	return testConn(d), nil
}
func (c testConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (c testConn) Close() error                        { return nil }
func (c testConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }
func (c testConn) Ping(context.Context) error {
	if c.down.Load() {
		return driver.ErrBadConn
	}
	return nil
}

type connector struct{ d testDriver }

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.d.Open("") }
func (c connector) Driver() driver.Driver                        { return c.d }

func TestPing(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	db := sql.OpenDB(connector{testDriver{down: &down}})
	t.Cleanup(func() { db.Close() })
	check := checks.Ping(db)
	require.NoError(t, check(t.Context()))
	down.Store(true)
	err := check(t.Context())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "checks: ping:"))
	down.Store(false)
	require.NoError(t, check(t.Context()))
	require.Error(t, checks.Ping(nil)(t.Context()))
}

func TestVolume(t *testing.T) {
	t.Parallel()
	dir := func(perm os.FileMode) string {
		d := filepath.Join(t.TempDir(), "vol")
		require.NoError(t, os.Mkdir(d, 0o700))
		require.NoError(t, os.Chmod(d, perm))
		return d
	}
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	cases := map[string]struct {
		path    string
		opts    *checks.VolumeOptions
		wantErr string
	}{
		"private dir":             {path: dir(0o700)},
		"group dir":               {path: dir(0o770)},
		"world-writable default":  {path: dir(0o777), wantErr: "permissions 0777 exceed 0770"},
		"world-writable allowed":  {path: dir(0o777), opts: &checks.VolumeOptions{MaxPerm: 0o777}},
		"tighter max":             {path: dir(0o750), opts: &checks.VolumeOptions{MaxPerm: 0o700}, wantErr: "exceed 0700"},
		"missing":                 {path: filepath.Join(t.TempDir(), "nope"), wantErr: "no such file"},
		"not a directory":         {path: file, wantErr: "not a directory"},
		"not enough free space":   {path: dir(0o700), opts: &checks.VolumeOptions{MinFreeBytes: 1 << 62}, wantErr: "bytes free, want at least"},
		"free space check off":    {path: dir(0o700), opts: &checks.VolumeOptions{MinFreeBytes: -1}},
		"not writable (procfs)":   {path: "/proc/self", opts: &checks.VolumeOptions{MaxPerm: 0o777}, wantErr: "not writable"},
		"read-only mount, listed": {path: "/proc/self", opts: &checks.VolumeOptions{MaxPerm: 0o777, ReadOnly: true}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := checks.Volume(c.path, c.opts)(t.Context())
			if c.wantErr == "" {
				require.NoError(t, err)
				entries, rerr := os.ReadDir(c.path)
				require.NoError(t, rerr)
				for _, e := range entries {
					assert.False(t, strings.HasPrefix(e.Name(), ".health-probe-"), "probe file left behind")
				}
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		require.ErrorIs(t, checks.Volume(dir(0o700), nil)(ctx), context.Canceled)
	})
}
