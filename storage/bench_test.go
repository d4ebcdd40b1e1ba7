package storage_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/phiguard/phiguard/internal/testenv"
	"github.com/phiguard/phiguard/storage"
)

// BenchmarkBlob compares Put and Get with plain azblob UploadStream and
// DownloadStream of the same 64 MiB to the same Azurite, with the same block
// size (4 MiB) and concurrency (4). Ratios from the MB/s column:
// Put/AzblobUploadStream and Get/AzblobDownloadStream (goal >= 0.8).
func BenchmarkBlob(b *testing.B) {
	const size, blockSize, concurrency = 64 << 20, 4 << 20, 4
	c := testenv.NewContainer(b)
	data := randomBytes(size)
	s, err := storage.NewBlobStore(c, newKey(b, "bench"), &storage.BlobStoreOptions{
		Options: storage.Options{BlockSize: blockSize, Concurrency: concurrency},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Objects for the Get benchmarks, so they can run alone.
	if _, err := s.Put(ctx, "enc", bytes.NewReader(data), nil); err != nil {
		b.Fatal(err)
	}
	if _, err := c.NewBlockBlobClient("plain").UploadStream(ctx, bytes.NewReader(data), nil); err != nil {
		b.Fatal(err)
	}

	b.Run("Put", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Put(ctx, "enc", bytes.NewReader(data), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AzblobUploadStream", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			_, err := c.NewBlockBlobClient("plain").UploadStream(ctx, bytes.NewReader(data),
				&blockblob.UploadStreamOptions{BlockSize: blockSize, Concurrency: concurrency})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			rc, _, err := s.Get(ctx, "enc")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			_ = rc.Close()
		}
	})
	b.Run("AzblobDownloadStream", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.NewBlobClient("plain").DownloadStream(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				b.Fatal(err)
			}
			_ = resp.Body.Close()
		}
	})
}
