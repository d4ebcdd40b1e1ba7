// Package reqbody gives HTTP request bodies over byte slices that their
// owner can take back once the request has returned.
//
// net/http's Transport may go on reading a request body after RoundTrip has
// returned: a server that answers before it has read the whole body (an
// error, a 5xx that azcore retries, an append-position conflict) leaves the
// transport's write loop still copying it. The Azure SDK's upload calls take
// an io.ReadSeekCloser and return on the response, so a caller that reuses
// its buffer once the call returns would race with that late read, and the
// bytes sent could change under it. Detach makes every later Read fail, and
// waits for a Read in progress, so the buffer is the caller's again.
// Within one call, the lock also orders azcore's rewind for a retry after a
// late read of the try before; a try that lost bytes that way fails on its
// content length instead of sending other data.
//
// No library does this: streaming.NopCloser and io.NopCloser cannot tell the
// caller when the transport is done, and waiting for Close is not enough
// either (azcore's retry policy keeps the body open across tries).
package reqbody

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// ErrDetached is what a Read or Seek gets after Detach.
var ErrDetached = errors.New("reqbody: the request body was taken back by its owner")

// Body is an io.ReadSeekCloser over a byte slice, for one request.
type Body struct {
	mu       sync.Mutex
	r        bytes.Reader
	detached bool
}

var _ io.ReadSeekCloser = (*Body)(nil)

// New returns a body that reads b. The caller must not change b until it
// has called Detach.
func New(b []byte) *Body {
	body := &Body{}
	body.r.Reset(b)
	return body
}

// Read reads from the slice, or fails after Detach.
func (b *Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, ErrDetached
	}
	return b.r.Read(p)
}

// Seek sets the offset of the next Read (azcore rewinds a body to retry).
func (b *Body) Seek(offset int64, whence int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, ErrDetached
	}
	return b.r.Seek(offset, whence)
}

// Close does nothing: the owner ends the body's use with Detach.
func (b *Body) Close() error { return nil }

// Detach ends the body's use. It returns once no Read is in progress; after
// it, the slice given to New is the caller's to change or reuse.
func (b *Body) Detach() {
	b.mu.Lock()
	b.detached = true
	b.mu.Unlock()
}
