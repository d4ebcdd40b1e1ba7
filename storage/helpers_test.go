package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
	"github.com/phiguard/phiguard/storage"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	mib    = 1 << 20
	region = storage.RegionSize
)

// env is one back end under test, with raw access to what it stores.
type env struct {
	kind string
	// newStore opens a Store on the same container or folder.
	newStore func(t *testing.T, kek storage.KeyWrapper, o *storage.Options) *storage.Store
	// readRaw returns the stored content bytes and metadata, bypassing the
	// package (plain azblob, or the file format as docs/storage.md states it).
	readRaw func(t *testing.T, name string) ([]byte, map[string]string)
	// writeRaw stores content and metadata directly.
	writeRaw func(t *testing.T, name string, content []byte, md map[string]string)
	// exists reports whether an object of that name is visible.
	exists func(t *testing.T, name string) bool
}

// backends returns constructors for the two back ends; each test gets a
// fresh container or folder.
var backends = []struct {
	kind string
	mk   func(t *testing.T) *env
}{{"blob", newBlobEnv}, {"dir", newDirEnv}}

func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.kind, func(t *testing.T) {
			t.Parallel()
			fn(t, b.mk(t))
		})
	}
}

func newBlobEnv(t *testing.T) *env {
	c := testenv.NewContainer(t)
	return blobEnv(c)
}

func blobEnv(c *container.Client) *env {
	return &env{
		kind: "blob",
		newStore: func(t *testing.T, kek storage.KeyWrapper, o *storage.Options) *storage.Store {
			var bo storage.BlobStoreOptions
			if o != nil {
				bo.Options = *o
			}
			s, err := storage.NewBlobStore(c, kek, &bo)
			require.NoError(t, err)
			return s
		},
		readRaw: func(t *testing.T, name string) ([]byte, map[string]string) {
			ctx := context.Background()
			resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			md := map[string]string{}
			for k, v := range resp.Metadata {
				md[strings.ToLower(k)] = *v
			}
			return b, md
		},
		writeRaw: func(t *testing.T, name string, content []byte, md map[string]string) {
			m := map[string]*string{}
			for k, v := range md {
				m[k] = to.Ptr(v)
			}
			_, err := c.NewBlockBlobClient(name).Upload(context.Background(), streaming.NopCloser(bytes.NewReader(content)),
				&blockblob.UploadOptions{Metadata: m})
			require.NoError(t, err)
		},
		exists: func(t *testing.T, name string) bool {
			_, err := c.NewBlobClient(name).GetProperties(context.Background(), nil)
			if bloberror.HasCode(err, bloberror.BlobNotFound) {
				return false
			}
			require.NoError(t, err)
			return true
		},
	}
}

func devEnv(string) string { return "" }

func newDirEnv(t *testing.T) *env {
	dir := filepath.Join(t.TempDir(), "store")
	return dirEnv(dir)
}

func dirEnv(dir string) *env {
	return &env{
		kind: "dir",
		newStore: func(t *testing.T, kek storage.KeyWrapper, o *storage.Options) *storage.Store {
			do := storage.DirStoreOptions{Getenv: devEnv}
			if o != nil {
				do.Options = *o
			}
			s, err := storage.NewDirStore(dir, kek, &do)
			require.NoError(t, err)
			return s
		},
		readRaw: func(t *testing.T, name string) ([]byte, map[string]string) {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			require.NoError(t, err)
			// Layout from docs/storage.md: magic line, JSON metadata line, content.
			br := bufio.NewReader(bytes.NewReader(b))
			magic, err := br.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "phiguard-cse-v2\n", magic)
			line, err := br.ReadBytes('\n')
			require.NoError(t, err)
			md := map[string]string{}
			require.NoError(t, json.Unmarshal(line, &md))
			return b[len(magic)+len(line):], md
		},
		writeRaw: func(t *testing.T, name string, content []byte, md map[string]string) {
			j, err := json.Marshal(md)
			require.NoError(t, err)
			var b bytes.Buffer
			b.WriteString("phiguard-cse-v2\n")
			b.Write(j)
			b.WriteByte('\n')
			b.Write(content)
			p := filepath.Join(dir, filepath.FromSlash(name))
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
			require.NoError(t, os.WriteFile(p, b.Bytes(), 0o600))
		},
		exists: func(t *testing.T, name string) bool {
			_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
			if errors.Is(err, fs.ErrNotExist) {
				return false
			}
			require.NoError(t, err)
			return true
		},
	}
}

func newKey(t testing.TB, kid string) *storage.LocalKey {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	lk, err := storage.NewLocalKey(kid, k)
	require.NoError(t, err)
	return lk
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// onlyReader hides Len and WriteTo, so Put sees a plain stream of unknown size.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// assertNoPlaintext checks that the stored bytes do not contain the
// plaintext: 16 windows of 32 bytes spread over it are searched for
// anywhere in raw, and each region's ciphertext, compared byte by byte with
// the plaintext at the same place, matches no more than chance allows. It
// reports only offsets and counts, never data.
func assertNoPlaintext(t *testing.T, raw, pt []byte) {
	t.Helper()
	const w = 32
	if len(pt) >= w {
		step := max(1, (len(pt)-w)/15)
		for off := 0; off+w <= len(pt); off += step {
			if bytes.Contains(raw, pt[off:off+w]) {
				t.Errorf("plaintext window at offset %d found in the stored bytes", off)
				return
			}
		}
	}
	same := 0
	for j := 0; j*region < len(pt); j++ {
		p := pt[j*region : min(len(pt), (j+1)*region)]
		x := make([]byte, len(p))
		subtle.XORBytes(x, p, raw[j*encRegion+12:])
		same += bytes.Count(x, []byte{0})
	}
	// Random bytes agree with probability 1/256; allow a wide margin.
	if limit := len(pt)/128 + 8; same > limit {
		t.Errorf("%d of %d stored bytes equal the plaintext in place (limit %d)", same, len(pt), limit)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func putBytes(t *testing.T, s *storage.Store, name string, data []byte) *storage.Object {
	t.Helper()
	obj, err := s.Put(ctxT(t), name, bytes.NewReader(data), nil)
	require.NoError(t, err)
	return obj
}

// getAll reads name fully; it returns the bytes released before any error.
func getAll(t *testing.T, s *storage.Store, name string) ([]byte, *storage.Object, error) {
	t.Helper()
	rc, obj, err := s.Get(ctxT(t), name)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, obj, err
}

func bytesReader(s string) io.Reader { return strings.NewReader(s) }
