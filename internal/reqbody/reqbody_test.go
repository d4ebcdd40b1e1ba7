package reqbody_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/reqbody"
)

func TestReadSeekDetach(t *testing.T) {
	t.Parallel()
	data := []byte("0123456789")
	b := reqbody.New(data)
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	off, err := b.Seek(2, io.SeekStart)
	require.NoError(t, err)
	assert.EqualValues(t, 2, off)
	got, err = io.ReadAll(b)
	require.NoError(t, err)
	assert.Equal(t, data[2:], got)
	require.NoError(t, b.Close())

	b.Detach()
	_, err = b.Read(make([]byte, 1))
	require.ErrorIs(t, err, reqbody.ErrDetached)
	_, err = b.Seek(0, io.SeekStart)
	require.ErrorIs(t, err, reqbody.ErrDetached)
}

// TestBufferReusableAfterEarlyAnswer is the case the package exists for: a
// server answers before it has read the body, the request returns, and the
// caller overwrites its buffer while the transport may still be sending it.
// It proves its point under -race (make test always uses it): the same test
// with a plain bytes.Reader reports a data race.
func TestBufferReusableAfterEarlyAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // without reading the body
	}))
	t.Cleanup(srv.Close)
	buf := bytes.Repeat([]byte{'a'}, 8<<20)
	for range 5 {
		body := reqbody.New(buf)
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPut, srv.URL, body)
		require.NoError(t, err)
		req.ContentLength = int64(len(buf))
		resp, err := srv.Client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		}
		body.Detach()
		for i := range buf {
			buf[i]++ // the caller's again
		}
	}
}
