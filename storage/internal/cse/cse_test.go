package cse

import (
	"bytes"
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

func TestEncrypterDecrypter(t *testing.T) {
	t.Parallel()
	aead, err := NewAEAD(bytes.Repeat([]byte{1}, KeySize))
	require.NoError(t, err)
	for _, n := range []int{0, 1, RegionSize, RegionSize + 1} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		var ct bytes.Buffer
		e := NewEncrypter(&ct, aead)
		// Mixed Write and ReadFrom.
		half := n / 2
		_, err := e.Write(data[:half])
		require.NoError(t, err)
		_, err = e.ReadFrom(bytes.NewReader(data[half:]))
		require.NoError(t, err)
		require.NoError(t, e.Close())
		assert.Equal(t, int64(n), e.Length())
		assert.Equal(t, EncryptedSize(int64(n)), int64(ct.Len()))
		d, err := NewDecrypter(bytes.NewReader(ct.Bytes()), aead, int64(ct.Len()))
		require.NoError(t, err)
		got, err := io.ReadAll(d)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got))
		// Extra bytes beyond the declared size are an error.
		d, err = NewDecrypter(io.MultiReader(bytes.NewReader(ct.Bytes()), strings.NewReader("x")), aead, int64(ct.Len()))
		require.NoError(t, err)
		_, err = io.ReadAll(d)
		require.ErrorIs(t, err, ErrFormat)
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
	var ct bytes.Buffer
	e := NewEncrypter(&ct, aead)
	_, _ = e.Write([]byte("hello, regions"))
	_ = e.Close()
	f.Add(ct.Bytes(), int64(ct.Len()))
	f.Add([]byte{}, int64(0))
	f.Add(make([]byte, 40), int64(40))
	f.Fuzz(func(t *testing.T, content []byte, size int64) {
		d, err := NewDecrypter(bytes.NewReader(content), aead, size)
		if err != nil {
			return
		}
		got, err := io.ReadAll(d)
		var again bytes.Buffer
		e := NewEncrypter(&again, aead)
		_, _ = e.Write(got)
		_ = e.Close()
		if err != nil {
			assert.True(t, bytes.HasPrefix(content, again.Bytes()), "released bytes that did not authenticate")
			return
		}
		assert.True(t, bytes.Equal(content, again.Bytes()), "authenticated content does not re-encrypt to itself")
	})
}
