package cse

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleED = `{"WrappedContentKey":{"KeyId":"k","EncryptedKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==","Algorithm":"A256KW"},` +
	`"EncryptionAgent":{"Protocol":"2.0","EncryptionAlgorithm":"AES_GCM_256"},` +
	`"EncryptedRegionInfo":{"DataLength":4194304,"NonceLength":12},` +
	`"KeyWrappingMetadata":{"EncryptionLibrary":"x"},"EncryptionMode":"FullBlob"}`

func TestParseEncryptionData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"valid", sampleED, nil},
		{"protocol 1.0", strings.Replace(sampleED, `"2.0"`, `"1.0"`, 1), ErrProtocol},
		{"protocol 2.1", strings.Replace(sampleED, `"2.0"`, `"2.1"`, 1), ErrProtocol},
		{"algorithm", strings.Replace(sampleED, "AES_GCM_256", "AES_CBC_256", 1), ErrProtocol},
		{"region length", strings.Replace(sampleED, "4194304", "65536", 1), ErrFormat},
		{"nonce length", strings.Replace(sampleED, `"NonceLength":12`, `"NonceLength":16`, 1), ErrFormat},
		{"no region info", strings.Replace(sampleED, `"EncryptedRegionInfo":{"DataLength":4194304,"NonceLength":12},`, "", 1), ErrFormat},
		{"mode", strings.Replace(sampleED, "FullBlob", "Partial", 1), ErrProtocol},
		{"no key", strings.Replace(sampleED, `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="`, `""`, 1), ErrFormat},
		{"not JSON", "{", ErrFormat},
		{"bad base64", strings.Replace(sampleED, "AAAA", "!!!!", 1), ErrFormat},
		{"too large", `{"x":"` + strings.Repeat("a", maxMetadataSize) + `"}`, ErrFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseEncryptionData(tc.in)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestSizes(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{0, 1, RegionSize - 1, RegionSize, RegionSize + 1, 3*RegionSize + 7} {
		got, err := PlaintextSize(EncryptedSize(n))
		require.NoError(t, err)
		assert.Equal(t, n, got)
	}
	for _, bad := range []int64{-1, 1, Overhead, EncryptedRegionSize + Overhead} {
		_, err := PlaintextSize(bad)
		require.ErrorIs(t, err, ErrFormat, "size %d", bad)
	}
}

func TestContentKeyChecksProtocolPrefix(t *testing.T) {
	t.Parallel()
	cek := bytes.Repeat([]byte{7}, KeySize)
	p := WrapPayload(cek)
	assert.Equal(t, []byte("2.0\x00\x00\x00\x00\x00"), p[:8])
	got, err := ContentKey(p)
	require.NoError(t, err)
	assert.Equal(t, cek, got)
	p[2] = '1'
	_, err = ContentKey(p)
	require.ErrorIs(t, err, ErrAuth)
	_, err = ContentKey(cek)
	require.ErrorIs(t, err, ErrAuth)
}

// sealAll encrypts data into a v2 content with SealRegion, as Store.Put
// does region by region.
func sealAll(aead cipher.AEAD, data []byte) []byte {
	out := make([]byte, 0, EncryptedSize(int64(len(data))))
	buf := make([]byte, EncryptedRegionSize)
	for i := uint64(0); len(data) > 0; i++ {
		n := min(len(data), RegionSize)
		copy(buf[NonceSize:], data[:n])
		out = append(out, SealRegion(aead, buf, n, i)...)
		data = data[n:]
	}
	return out
}

// openAll decrypts a content with ReadRegion and Open, as Store.Get does,
// returning the plaintext of the regions that authenticated before any error.
func openAll(r io.Reader, aead cipher.AEAD, size int64) ([]byte, error) {
	d, err := NewDecrypter(r, aead, size)
	if err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, d.BufferSize())
	for {
		region, i, err := d.ReadRegion(buf)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		pt, err := d.Open(region, i)
		if err != nil {
			return out, err
		}
		out = append(out, pt...)
	}
}

func TestSealAndOpenRegions(t *testing.T) {
	t.Parallel()
	aead, err := NewAEAD(bytes.Repeat([]byte{1}, KeySize))
	require.NoError(t, err)
	for _, n := range []int{0, 1, RegionSize, RegionSize + 1} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		ct := sealAll(aead, data)
		assert.Equal(t, EncryptedSize(int64(n)), int64(len(ct)))
		got, err := openAll(bytes.NewReader(ct), aead, int64(len(ct)))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got))
		// Extra bytes beyond the declared size are an error.
		_, err = openAll(io.MultiReader(bytes.NewReader(ct), strings.NewReader("x")), aead, int64(len(ct)))
		require.ErrorIs(t, err, ErrFormat)
		if n > RegionSize {
			// Regions in the wrong order fail although each is intact.
			swapped := append(append([]byte(nil), ct[EncryptedRegionSize:]...), ct[:EncryptedRegionSize]...)
			_, err = openAll(bytes.NewReader(swapped), aead, int64(len(swapped)))
			require.Error(t, err)
		}
	}
}

func TestLengthMAC(t *testing.T) {
	t.Parallel()
	cek := bytes.Repeat([]byte{2}, KeySize)
	v, err := EncodeLengthMAC(cek, 12345)
	require.NoError(t, err)
	assert.Len(t, v, EncodedLengthMACSize)
	require.NoError(t, VerifyLengthMAC(cek, 12345, v))
	require.ErrorIs(t, VerifyLengthMAC(cek, 12344, v), ErrAuth)
	require.ErrorIs(t, VerifyLengthMAC(bytes.Repeat([]byte{3}, KeySize), 12345, v), ErrAuth)
	require.ErrorIs(t, VerifyLengthMAC(cek, 12345, "%%%"), ErrFormat)
}

// FuzzParseEncryptionData: any metadata parses or fails cleanly, and what
// parses re-encodes to something that parses the same.
func FuzzParseEncryptionData(f *testing.F) {
	f.Add(sampleED)
	f.Add(`{}`)
	f.Add(`{"EncryptionAgent":{"Protocol":"2.0"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		ed, err := ParseEncryptionData(s)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrProtocol) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		again, err := ed.Marshal()
		require.NoError(t, err)
		ed2, err := ParseEncryptionData(again)
		require.NoError(t, err)
		again2, err := ed2.Marshal()
		require.NoError(t, err)
		assert.Equal(t, again, again2)
	})
}

// FuzzDecrypter: arbitrary content under a fixed key never panics, and
// yields only plaintext that authenticates: whatever it returned,
// re-encrypted, is a prefix of the content.
func FuzzDecrypter(f *testing.F) {
	aead, _ := NewAEAD(make([]byte, KeySize))
	ct := sealAll(aead, []byte("hello, regions"))
	f.Add(ct, int64(len(ct)))
	f.Add([]byte{}, int64(0))
	f.Add(make([]byte, 40), int64(40))
	f.Fuzz(func(t *testing.T, content []byte, size int64) {
		got, err := openAll(bytes.NewReader(content), aead, size)
		again := sealAll(aead, got)
		if err != nil {
			assert.True(t, bytes.HasPrefix(content, again), "released bytes that did not authenticate")
			return
		}
		assert.True(t, bytes.Equal(content, again), "authenticated content does not re-encrypt to itself")
	})
}
