package storage_test

// An independent implementation of the Azure Storage client-side encryption
// v2 format, written from the format's description only (issue 7 and the
// published SDK behaviour), sharing no code with the package: its own RFC
// 3394 key wrap (checked against the RFC's test vector), its own region
// loop and its own JSON. Data it writes must be readable by Get, and data
// Put writes must be readable by it.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/storage"
)

// refWrap is RFC 3394 section 2.2.1 (AES key wrap, default IV).
func refWrap(kek, plain []byte) []byte {
	block, err := aes.NewCipher(kek)
	if err != nil {
		panic(err)
	}
	n := len(plain) / 8
	a := []byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}
	r := make([][]byte, n)
	for i := range r {
		r[i] = append([]byte{}, plain[8*i:8*i+8]...)
	}
	b := make([]byte, 16)
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			block.Encrypt(b, append(append([]byte{}, a...), r[i-1]...))
			t := uint64(n*j + i)
			a = b[:8:8]
			var tb [8]byte
			binary.BigEndian.PutUint64(tb[:], t)
			a = append([]byte{}, a...)
			for k := range a {
				a[k] ^= tb[k]
			}
			r[i-1] = append([]byte{}, b[8:]...)
		}
	}
	out := append([]byte{}, a...)
	for _, ri := range r {
		out = append(out, ri...)
	}
	return out
}

// refUnwrap is RFC 3394 section 2.2.2.
func refUnwrap(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped)%8 != 0 || len(wrapped) < 24 {
		return nil, errors.New("ref: bad wrapped length")
	}
	n := len(wrapped)/8 - 1
	a := append([]byte{}, wrapped[:8]...)
	r := make([][]byte, n)
	for i := range r {
		r[i] = append([]byte{}, wrapped[8*(i+1):8*(i+2)]...)
	}
	b := make([]byte, 16)
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			var tb [8]byte
			binary.BigEndian.PutUint64(tb[:], uint64(n*j+i))
			for k := range a {
				a[k] ^= tb[k]
			}
			block.Decrypt(b, append(append([]byte{}, a...), r[i-1]...))
			a = append([]byte{}, b[:8]...)
			r[i-1] = append([]byte{}, b[8:]...)
		}
	}
	if subtle.ConstantTimeCompare(a, []byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}) != 1 {
		return nil, errors.New("ref: key unwrap integrity check failed")
	}
	var out []byte
	for _, ri := range r {
		out = append(out, ri...)
	}
	return out, nil
}

func TestRefKeyWrapRFC3394Vector(t *testing.T) {
	t.Parallel()
	// RFC 3394 section 4.6: 256 bits of key data with a 256-bit KEK.
	kek, _ := hex.DecodeString("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	data, _ := hex.DecodeString("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	want, _ := hex.DecodeString("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
	assert.Equal(t, want, refWrap(kek, data))
	got, err := refUnwrap(kek, want)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	// The package's A256KW (go-jose) agrees with the vector.
	lk, err := storage.NewLocalKey("rfc", kek)
	require.NoError(t, err)
	wk, err := lk.WrapKey(t.Context(), data)
	require.NoError(t, err)
	assert.Equal(t, want, wk.EncryptedKey)
}

const (
	refRegion = 4 * 1024 * 1024
	refNonce  = 12
	refTag    = 16
)

// refEncrypt produces the content and encryptiondata JSON of plaintext, as
// another SDK would: fresh content key, "2.0" zero-padded to 8 bytes before
// it, A256KW under kek, regions with big-endian counter nonces from 0. It
// writes the JSON fields in an unusual order, with extra unknown ones.
func refEncrypt(kek []byte, kid string, plaintext []byte) ([]byte, string) {
	cek := make([]byte, 32)
	_, _ = rand.Read(cek)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	var content []byte
	for i := 0; i*refRegion < len(plaintext); i++ {
		chunk := plaintext[i*refRegion : min(len(plaintext), (i+1)*refRegion)]
		nonce := make([]byte, refNonce)
		binary.BigEndian.PutUint64(nonce[4:], uint64(i))
		content = append(content, nonce...)
		content = append(content, gcm.Seal(nil, nonce, chunk, nil)...)
	}
	wrapped := refWrap(kek, append([]byte("2.0\x00\x00\x00\x00\x00"), cek...))
	ed := fmt.Sprintf(`{"EncryptionMode":"FullBlob","SomethingNew":{"x":1},`+
		`"KeyWrappingMetadata":{"EncryptionLibrary":"Reference 0.1"},`+
		`"EncryptedRegionInfo":{"NonceLength":12,"DataLength":4194304},`+
		`"EncryptionAgent":{"EncryptionAlgorithm":"AES_GCM_256","Protocol":"2.0"},`+
		`"WrappedContentKey":{"Algorithm":"A256KW","EncryptedKey":"%s","KeyId":%q}}`,
		base64.StdEncoding.EncodeToString(wrapped), kid)
	return content, ed
}

// refDecrypt reads content written in the v2 format.
func refDecrypt(kek []byte, content []byte, encryptionData string) ([]byte, error) {
	var ed struct {
		WrappedContentKey struct {
			KeyID        string `json:"KeyId"`
			EncryptedKey string
			Algorithm    string
		}
		EncryptionAgent struct {
			Protocol            string
			EncryptionAlgorithm string
		}
		EncryptedRegionInfo struct {
			DataLength  int
			NonceLength int
		}
		EncryptionMode string
	}
	if err := json.Unmarshal([]byte(encryptionData), &ed); err != nil {
		return nil, err
	}
	if ed.EncryptionAgent.Protocol != "2.0" || ed.EncryptionAgent.EncryptionAlgorithm != "AES_GCM_256" ||
		ed.WrappedContentKey.Algorithm != "A256KW" || ed.EncryptionMode != "FullBlob" {
		return nil, errors.New("ref: unexpected encryptiondata")
	}
	if ed.EncryptedRegionInfo.DataLength != refRegion || ed.EncryptedRegionInfo.NonceLength != refNonce {
		return nil, errors.New("ref: unexpected region info")
	}
	wrapped, err := base64.StdEncoding.DecodeString(ed.WrappedContentKey.EncryptedKey)
	if err != nil {
		return nil, err
	}
	payload, err := refUnwrap(kek, wrapped)
	if err != nil {
		return nil, err
	}
	if len(payload) != 40 || !bytes.Equal(payload[:8], []byte("2.0\x00\x00\x00\x00\x00")) {
		return nil, errors.New("ref: bad protocol prefix")
	}
	block, _ := aes.NewCipher(payload[8:])
	gcm, _ := cipher.NewGCM(block)
	var out []byte
	for i := 0; len(content) > 0; i++ {
		n := min(len(content), refNonce+refRegion+refTag)
		nonce, ct := content[:refNonce], content[refNonce:n]
		want := make([]byte, refNonce)
		binary.BigEndian.PutUint64(want[4:], uint64(i))
		if !bytes.Equal(nonce, want) {
			return nil, fmt.Errorf("ref: region %d nonce is not the counter", i)
		}
		pt, err := gcm.Open(nil, nonce, ct, nil)
		if err != nil {
			return nil, fmt.Errorf("ref: region %d: %w", i, err)
		}
		out = append(out, pt...)
		content = content[n:]
	}
	return out, nil
}

func TestInteroperability(t *testing.T) {
	t.Parallel()
	sizes := []int{0, 1, refRegion - 1, refRegion, refRegion + 1, 2*refRegion + 3}
	forEachBackend(t, func(t *testing.T, e *env) {
		kekBytes := randomBytes(32)
		kek, err := storage.NewLocalKey("interop-kek", kekBytes)
		require.NoError(t, err)
		s := e.newStore(t, kek, &storage.Options{AcceptMissingLengthMAC: true})
		strict := e.newStore(t, kek, nil)
		for _, n := range sizes {
			data := randomBytes(n)
			t.Run(fmt.Sprintf("reference reads Put/%d", n), func(t *testing.T) {
				name := fmt.Sprintf("from-put-%d", n)
				putBytes(t, s, name, data)
				raw, md := e.readRaw(t, name)
				got, err := refDecrypt(kekBytes, raw, md["encryptiondata"])
				require.NoError(t, err)
				assert.True(t, bytes.Equal(data, got), "reference decryption differs")
			})
			t.Run(fmt.Sprintf("Get reads reference/%d", n), func(t *testing.T) {
				name := fmt.Sprintf("from-ref-%d", n)
				content, ed := refEncrypt(kekBytes, "interop-kek", data)
				e.writeRaw(t, name, content, map[string]string{"encryptiondata": ed, "othertool": "x"})
				got, obj, err := getAll(t, s, name)
				require.NoError(t, err)
				assert.Equal(t, int64(n), obj.Size)
				assert.True(t, bytes.Equal(data, got), "Get differs from reference plaintext")
				// Without the length MAC a strict store refuses it.
				_, _, err = getAll(t, strict, name)
				require.ErrorIs(t, err, storage.ErrAuthentication)
			})
		}
	})
}
