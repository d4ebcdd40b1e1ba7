package storage

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/phiguard/phiguard/storage/internal/cse"
)

// discardBackend accepts blocks and drops them: Put through it measures the
// encryption pipeline alone (reading, sealing, hand-off), no I/O.
type discardBackend struct{}

func (discardBackend) newUpload(context.Context, string, map[string]string) (upload, error) {
	return discardUpload{}, nil
}
func (discardBackend) open(context.Context, string) (*rawObject, error) { return nil, ErrNotFound }
func (discardBackend) properties(context.Context, string) (map[string]string, string, error) {
	return nil, "", ErrNotFound
}
func (discardBackend) setMetadata(context.Context, string, map[string]string, string) error {
	return ErrNotFound
}
func (discardBackend) remove(context.Context, string) error { return ErrNotFound }
func (discardBackend) check(context.Context) error          { return nil }

type discardUpload struct{}

func (discardUpload) stage(context.Context, int, int64, []byte) error { return nil }
func (discardUpload) commit(context.Context, int, map[string]string, bool) (time.Time, error) {
	return time.Time{}, nil
}
func (discardUpload) abort() {}

const benchSize = 64 << 20

func benchData(b *testing.B) []byte {
	b.Helper()
	data := make([]byte, benchSize)
	_, _ = rand.Read(data)
	return data
}

// BenchmarkEncryptPipeline compares the encryption pipeline with one
// AES-256-GCM Seal over the same buffer (this CPU's limit) and with
// filippo.io/age. Ratios: Put/SealBaseline (goal >= 0.8),
// Put/Age (goal >= 1), from the MB/s column.
func BenchmarkEncryptPipeline(b *testing.B) {
	data := benchData(b)
	kek := make([]byte, 32)
	lk, err := NewLocalKey("bench", kek)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("SealBaseline", func(b *testing.B) {
		key := make([]byte, 32)
		block, _ := aes.NewCipher(key)
		gcm, _ := cipher.NewGCM(block)
		nonce := make([]byte, 12)
		dst := make([]byte, 0, len(data)+16)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			dst = gcm.Seal(dst[:0], nonce, data, nil)
		}
	})

	for _, conc := range []int{1, 2, 4} {
		b.Run("Put/concurrency="+string(rune('0'+conc)), func(b *testing.B) {
			s, err := newStore(discardBackend{}, lk, &Options{Concurrency: conc})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Put(b.Context(), "bench", bytes.NewReader(data), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	b.Run("Age", func(b *testing.B) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			w, err := age.Encrypt(io.Discard, id.Recipient())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecryptPipeline compares region-by-region reading and opening (as
// Get does, on one goroutine here) with one
// AES-256-GCM Open over the same buffer.
func BenchmarkDecryptPipeline(b *testing.B) {
	data := benchData(b)
	cek := make([]byte, 32)
	aead, _ := cse.NewAEAD(cek)
	content := make([]byte, 0, cse.EncryptedSize(int64(len(data))))
	buf := make([]byte, cse.EncryptedRegionSize)
	for i, rest := uint64(0), data; len(rest) > 0; i++ {
		n := min(len(rest), cse.RegionSize)
		copy(buf[cse.NonceSize:], rest[:n])
		content = append(content, cse.SealRegion(aead, buf, n, i)...)
		rest = rest[n:]
	}

	b.Run("OpenBaseline", func(b *testing.B) {
		nonce := make([]byte, 12)
		sealed := aead.Seal(nil, nonce, data, nil)
		dst := make([]byte, 0, len(data))
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if dst, err = aead.Open(dst[:0], nonce, sealed, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Decrypter", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		src := bytes.NewReader(content)
		for b.Loop() {
			src.Reset(content)
			d, err := cse.NewDecrypter(src, aead, int64(len(content)))
			if err != nil {
				b.Fatal(err)
			}
			for {
				region, i, err := d.ReadRegion(buf)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Open(region, i); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
