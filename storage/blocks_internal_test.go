package storage

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingBackend records the blocks staged and committed.
type countingBackend struct {
	discardBackend
	mu        sync.Mutex
	sizes     map[int]int
	committed int
}

func (c *countingBackend) newUpload(context.Context, string, map[string]string) (upload, error) {
	return c, nil
}

func (c *countingBackend) stage(_ context.Context, index int, _ int64, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sizes[index] = len(data)
	return nil
}

func (c *countingBackend) commit(_ context.Context, blocks int, _ map[string]string, _ bool) (time.Time, error) {
	c.committed = blocks
	return time.Now(), nil
}

func (c *countingBackend) abort() {}

// The 50,000-block limit, scaled down to 3 blocks: a stream of unknown size
// that needs more fails with ErrTooLarge before anything is committed, and
// a size hint makes Put choose blocks large enough.
func TestBlockLimit(t *testing.T) {
	t.Parallel()
	kek, err := NewLocalKey("k", make([]byte, 32))
	require.NoError(t, err)
	data := make([]byte, 4*RegionSize+1) // 5 regions

	b := &countingBackend{sizes: map[int]int{}}
	s, err := newStore(b, kek, &Options{Concurrency: 2})
	require.NoError(t, err)
	s.maxBlocks = 3

	_, err = s.Put(t.Context(), "x", io.MultiReader(bytes.NewReader(data)), nil) // no Len()
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Zero(t, b.committed)

	b = &countingBackend{sizes: map[int]int{}}
	s.b = b
	obj, err := s.Put(t.Context(), "x", bytes.NewReader(data), nil) // Len() gives the size
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), obj.Size)
	assert.Equal(t, 3, b.committed)
	enc := RegionSize + 28
	assert.Equal(t, map[int]int{0: 2 * enc, 1: 2 * enc, 2: 1 + 28}, b.sizes)
}
