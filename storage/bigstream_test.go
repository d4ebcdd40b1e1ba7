package storage_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/storage"
)

// genReader generates n bytes from a repeated random pattern whose length is
// not a multiple of the region size, so regions differ. It never holds more
// than the pattern.
type genReader struct {
	pattern []byte
	pos, n  int64
}

func newGenReader(n int64) *genReader {
	return &genReader{pattern: randomBytes(1<<20 + 4099), n: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.pos >= g.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n-g.pos)]
	total := 0
	for total < len(p) {
		off := int((g.pos + int64(total)) % int64(len(g.pattern)))
		total += copy(p[total:], g.pattern[off:])
	}
	g.pos += int64(total)
	return total, nil
}

// heapPeak samples the heap (live and not yet collected objects) until
// stop is called, and returns the highest value seen.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// A 1 GiB stream through Put and Get, with the heap staying under 64 MiB +
// block size x concurrency. The 1 GiB run goes through the folder back end;
// the blob back end streams 256 MiB, since 1 GiB through Azurite takes about
// a minute under -race on two cores (PHIGUARD_STORAGE_BIG_BLOB=1 makes it
// 1 GiB too). The pipeline is the same code; only stage/commit differ.
// Not parallel, so that other tests' allocations are not counted.
func TestOneGiBStreamBoundedMemory(t *testing.T) {
	const blockSize, concurrency = 4 * mib, 4
	blobSize := int64(256 * mib)
	if os.Getenv("PHIGUARD_STORAGE_BIG_BLOB") == "1" {
		blobSize = 1 << 30
	}
	runs := []struct {
		e    *env
		size int64
	}{{newDirEnv(t), 1 << 30}, {newBlobEnv(t), blobSize}}
	for _, run := range runs {
		e, size := run.e, run.size
		t.Run(fmt.Sprintf("%s/%dMiB", e.kind, size>>20), func(t *testing.T) {
			s := e.newStore(t, newKey(t, "k"), &storage.Options{BlockSize: blockSize, Concurrency: concurrency})
			limit := uint64(64*mib + blockSize*concurrency)

			runtime.GC()
			stop := heapPeak()
			want := sha256.New()
			obj, err := s.Put(ctxT(t), "big", io.TeeReader(onlyReader{newGenReader(size)}, want), nil)
			putPeak := stop()
			require.NoError(t, err)
			require.Equal(t, size, obj.Size)

			runtime.GC()
			stop = heapPeak()
			rc, gobj, err := s.Get(ctxT(t), "big")
			require.NoError(t, err)
			got := sha256.New()
			n, err := io.Copy(got, rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			getPeak := stop()

			assert.Equal(t, size, n)
			assert.Equal(t, size, gobj.Size)
			assert.Equal(t, want.Sum(nil), got.Sum(nil), "round trip differs")
			t.Logf("peak heap: Put %.1f MiB, Get %.1f MiB (limit %.0f MiB)", float64(putPeak)/mib, float64(getPeak)/mib, float64(limit)/mib)
			assert.Less(t, putPeak, limit, "Put heap peak")
			assert.Less(t, getPeak, limit, "Get heap peak")
		})
	}
}
