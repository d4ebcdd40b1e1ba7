// Package cse implements the Azure Storage client-side encryption v2 format
// (protocol "2.0", AES-256-GCM in 4 MiB regions) as the Python, .NET and
// Java SDKs write it, plus phiguard's length MAC that closes the format's
// truncation gap. It is pure: no I/O beyond the io.Reader and io.Writer it
// is given, no keys other than those passed in.
//
// The format, as stored on a blob:
//
//   - metadata "encryptiondata": a JSON object (see EncryptionData) naming the
//     key-encryption key, the wrapped content key and the region layout;
//   - the wrapped value is Protocol zero-padded to 8 bytes followed by the
//     32-byte content key, so that a v2 key cannot be replayed as a v1 one;
//   - the content is a sequence of regions, each nonce(12) || ciphertext ||
//     tag(16), the plaintext of each exactly RegionSize bytes except the
//     last, which is shorter or equal and never empty; an empty plaintext
//     gives an empty content. Region i has the nonce i as a 12-byte
//     big-endian counter, starting at 0. There is no additional data.
//   - metadata "phiguardlengthmac" (phiguard's own, ignored by other SDKs):
//     HMAC-SHA256 over the plaintext length under a key derived from the
//     content key with HKDF-SHA256, so a content cut at a region boundary is
//     detected.
package cse

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Layout of the v2 format.
const (
	Protocol            = "2.0"
	EncryptionAlgorithm = "AES_GCM_256"
	EncryptionMode      = "FullBlob"
	RegionSize          = 4 << 20 // plaintext bytes per region
	NonceSize           = 12
	TagSize             = 16
	Overhead            = NonceSize + TagSize // per region
	EncryptedRegionSize = RegionSize + Overhead
	KeySize             = 32 // AES-256 content key
	protocolPadLen      = 8
	// WrappedPayloadSize is the size of the value handed to a key wrapper.
	WrappedPayloadSize = protocolPadLen + KeySize
)

// Metadata keys. Azure metadata keys are case-insensitive and some clients
// change their case, so look them up with Lookup.
const (
	MetadataKey          = "encryptiondata"
	LengthMACMetadataKey = "phiguardlengthmac"
)

// maxMetadataSize bounds the encryptiondata JSON a reader will parse; real
// values are well under 2 KiB.
const maxMetadataSize = 64 << 10

var (
	// ErrFormat reports metadata or content that is not valid v2.
	ErrFormat = errors.New("not a valid client-side encryption v2 blob")
	// ErrAuth reports content, metadata or a key that failed authentication.
	ErrAuth = errors.New("authentication failed")
	// ErrProtocol reports an encryption protocol this package does not read.
	ErrProtocol = errors.New("unsupported encryption protocol")
)

// WrappedContentKey is the "WrappedContentKey" member of encryptiondata.
type WrappedContentKey struct {
	KeyID        string `json:"KeyId"`
	EncryptedKey []byte `json:"EncryptedKey"` // standard base64 in JSON
	Algorithm    string `json:"Algorithm"`
}

// EncryptionAgent is the "EncryptionAgent" member of encryptiondata.
type EncryptionAgent struct {
	Protocol            string `json:"Protocol"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

// EncryptedRegionInfo is the "EncryptedRegionInfo" member of encryptiondata.
type EncryptedRegionInfo struct {
	DataLength  int64 `json:"DataLength"`
	NonceLength int64 `json:"NonceLength"`
}

// EncryptionData is the JSON value of the "encryptiondata" metadata.
// Unknown fields are ignored on read, in any order.
type EncryptionData struct {
	WrappedContentKey   WrappedContentKey    `json:"WrappedContentKey"`
	EncryptionAgent     EncryptionAgent      `json:"EncryptionAgent"`
	EncryptedRegionInfo *EncryptedRegionInfo `json:"EncryptedRegionInfo,omitempty"`
	KeyWrappingMetadata map[string]string    `json:"KeyWrappingMetadata,omitempty"`
	EncryptionMode      string               `json:"EncryptionMode"`
}

// NewEncryptionData returns the encryptiondata of a v2 blob whose content key
// was wrapped into wrapped by the key keyID with algorithm alg.
func NewEncryptionData(keyID, alg string, wrapped []byte, library string) *EncryptionData {
	return &EncryptionData{
		WrappedContentKey: WrappedContentKey{KeyID: keyID, EncryptedKey: wrapped, Algorithm: alg},
		EncryptionAgent:   EncryptionAgent{Protocol: Protocol, EncryptionAlgorithm: EncryptionAlgorithm},
		EncryptedRegionInfo: &EncryptedRegionInfo{
			DataLength:  RegionSize,
			NonceLength: NonceSize,
		},
		KeyWrappingMetadata: map[string]string{"EncryptionLibrary": library},
		EncryptionMode:      EncryptionMode,
	}
}

// Marshal returns the JSON text stored in the metadata.
func (e *EncryptionData) Marshal() (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode encryptiondata: %w", err)
	}
	return string(b), nil
}

// ParseEncryptionData parses and validates an encryptiondata JSON value. It
// accepts only protocol 2.0 with AES_GCM_256, 4 MiB regions and 12-byte
// nonces; anything else is ErrProtocol or ErrFormat.
func ParseEncryptionData(s string) (*EncryptionData, error) {
	if len(s) > maxMetadataSize {
		return nil, fmt.Errorf("%w: encryptiondata too large", ErrFormat)
	}
	var e EncryptionData
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		// The JSON error names only offsets and types, never values.
		return nil, fmt.Errorf("%w: encryptiondata: %w", ErrFormat, err)
	}
	switch {
	case e.EncryptionAgent.Protocol != Protocol:
		return nil, fmt.Errorf("%w: %q", ErrProtocol, Clip(e.EncryptionAgent.Protocol))
	case e.EncryptionAgent.EncryptionAlgorithm != EncryptionAlgorithm:
		return nil, fmt.Errorf("%w: encryption algorithm %q", ErrProtocol, Clip(e.EncryptionAgent.EncryptionAlgorithm))
	case e.EncryptedRegionInfo == nil:
		return nil, fmt.Errorf("%w: EncryptedRegionInfo missing", ErrFormat)
	case e.EncryptedRegionInfo.DataLength != RegionSize || e.EncryptedRegionInfo.NonceLength != NonceSize:
		return nil, fmt.Errorf("%w: region layout %d/%d, want %d/%d", ErrFormat,
			e.EncryptedRegionInfo.DataLength, e.EncryptedRegionInfo.NonceLength, RegionSize, NonceSize)
	case e.EncryptionMode != "" && e.EncryptionMode != EncryptionMode:
		return nil, fmt.Errorf("%w: encryption mode %q", ErrProtocol, Clip(e.EncryptionMode))
	case len(e.WrappedContentKey.EncryptedKey) == 0:
		return nil, fmt.Errorf("%w: no wrapped content key", ErrFormat)
	}
	return &e, nil
}

// Clip keeps attacker-controlled metadata short in error messages.
func Clip(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return s
}

// WrapPayload returns the value a key wrapper wraps: Protocol zero-padded to
// 8 bytes, then the content key.
func WrapPayload(cek []byte) []byte {
	p := make([]byte, protocolPadLen, WrappedPayloadSize)
	copy(p, Protocol)
	return append(p, cek...)
}

// ContentKey checks the protocol prefix of an unwrapped value and returns
// the content key. A mismatch means the key was wrapped for another protocol
// (a downgrade attempt) or unwrapped with the wrong key.
func ContentKey(payload []byte) ([]byte, error) {
	if len(payload) != WrappedPayloadSize {
		return nil, fmt.Errorf("%w: unwrapped content key has %d bytes, want %d", ErrAuth, len(payload), WrappedPayloadSize)
	}
	var want [protocolPadLen]byte
	copy(want[:], Protocol)
	if subtle.ConstantTimeCompare(payload[:protocolPadLen], want[:]) != 1 {
		return nil, fmt.Errorf("%w: content key was not wrapped for protocol %s", ErrAuth, Protocol)
	}
	return bytes.Clone(payload[protocolPadLen:]), nil
}

// NewAEAD returns AES-256-GCM with the content key.
func NewAEAD(cek []byte) (cipher.AEAD, error) {
	if len(cek) != KeySize {
		return nil, fmt.Errorf("%w: content key has %d bytes", ErrFormat, len(cek))
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("content cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// Nonce writes the nonce of region i into dst[:NonceSize].
func Nonce(dst []byte, i uint64) {
	clear(dst[:NonceSize-8])
	binary.BigEndian.PutUint64(dst[NonceSize-8:NonceSize], i)
}

// SealRegion encrypts one region in place. buf holds, from its start, room
// for the nonce, then n plaintext bytes, then room for the tag:
// len(buf) >= NonceSize+n+TagSize. It returns the encrypted region
// buf[:NonceSize+n+TagSize].
func SealRegion(aead cipher.AEAD, buf []byte, n int, i uint64) []byte {
	Nonce(buf, i)
	pt := buf[NonceSize : NonceSize+n]
	aead.Seal(pt[:0], buf[:NonceSize], pt, nil)
	return buf[:NonceSize+n+TagSize]
}

// OpenRegion authenticates and decrypts encrypted region i in place and
// returns its plaintext (a sub-slice of region). The stored nonce must be the
// counter i: a region moved from elsewhere is rejected even though GCM would
// accept its own nonce.
func OpenRegion(aead cipher.AEAD, region []byte, i uint64) ([]byte, error) {
	if len(region) <= Overhead || len(region) > EncryptedRegionSize {
		return nil, fmt.Errorf("%w: region %d has %d bytes", ErrFormat, i, len(region))
	}
	var want [NonceSize]byte
	Nonce(want[:], i)
	if subtle.ConstantTimeCompare(region[:NonceSize], want[:]) != 1 {
		return nil, fmt.Errorf("%w: region %d is out of order", ErrAuth, i)
	}
	ct := region[NonceSize:]
	pt, err := aead.Open(ct[:0], want[:], ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: region %d", ErrAuth, i)
	}
	return pt, nil
}

// EncryptedSize returns the content size of a plaintext of n bytes.
func EncryptedSize(n int64) int64 {
	regions := (n + RegionSize - 1) / RegionSize
	return n + regions*Overhead
}

// PlaintextSize returns the plaintext size of a content of n bytes, or an
// error when no plaintext encrypts to that size (a cut inside a region).
func PlaintextSize(n int64) (int64, error) {
	if n < 0 {
		return 0, fmt.Errorf("%w: negative size", ErrFormat)
	}
	full, rest := n/EncryptedRegionSize, n%EncryptedRegionSize
	if rest != 0 && rest <= Overhead {
		return 0, fmt.Errorf("%w: content size %d is not a whole number of regions", ErrFormat, n)
	}
	size := full * RegionSize
	if rest != 0 {
		size += rest - Overhead
	}
	return size, nil
}

// lengthMACInfo separates this key from any other use of the content key.
const lengthMACInfo = "phiguard storage v1: plaintext length MAC"

// LengthMAC returns HMAC-SHA256 over the 8-byte big-endian plaintext length,
// keyed with HKDF-SHA256(cek, info=lengthMACInfo).
func LengthMAC(cek []byte, length int64) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, cek, nil, lengthMACInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("derive length key: %w", err)
	}
	m := hmac.New(sha256.New, key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(length)) //nolint:gosec // G115: lengths are never negative here.
	m.Write(b[:])
	return m.Sum(nil), nil
}

// EncodeLengthMAC returns the metadata value for LengthMAC(cek, length).
func EncodeLengthMAC(cek []byte, length int64) (string, error) {
	mac, err := LengthMAC(cek, length)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(mac), nil
}

// EncodedLengthMACSize is the length of EncodeLengthMAC's result.
var EncodedLengthMACSize = base64.StdEncoding.EncodedLen(sha256.Size)

// VerifyLengthMAC checks a metadata value against the plaintext length.
func VerifyLengthMAC(cek []byte, length int64, value string) error {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return fmt.Errorf("%w: length MAC is not base64", ErrFormat)
	}
	want, err := LengthMAC(cek, length)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w: content length does not match its MAC (truncated or extended)", ErrAuth)
	}
	return nil
}

// Lookup finds a metadata value by key, ignoring case.
func Lookup(md map[string]string, key string) (string, bool) {
	if v, ok := md[key]; ok {
		return v, true
	}
	for k, v := range md {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// Decrypter reads a v2 content region by region (ReadRegion) for
// authentication and decryption (Open), possibly on other goroutines; the
// end of the content is reported only once exactly the expected number of
// bytes has been read. ReadRegion is not safe for concurrent use.
type Decrypter struct {
	r         io.Reader
	aead      cipher.AEAD
	remaining int64 // content bytes still to read
	index     uint64
}

// NewDecrypter returns a Decrypter of content r, which must be exactly size
// bytes long (size comes from the blob's properties and was checked against
// the length MAC by the caller).
func NewDecrypter(r io.Reader, aead cipher.AEAD, size int64) (*Decrypter, error) {
	if _, err := PlaintextSize(size); err != nil {
		return nil, err
	}
	return &Decrypter{r: r, aead: aead, remaining: size}, nil
}

// BufferSize is the buffer size ReadRegion needs: one encrypted region, or
// less for a smaller content.
func (d *Decrypter) BufferSize() int {
	return int(min(d.remaining, EncryptedRegionSize))
}

// ReadRegion reads the next encrypted region into buf, which must hold
// BufferSize() bytes, without decrypting it; it returns the region and its
// index for Open, or io.EOF after the last region. Reading and opening are
// separate so that they can run on different goroutines; regions must be
// read in order.
func (d *Decrypter) ReadRegion(buf []byte) ([]byte, uint64, error) {
	if d.remaining == 0 {
		// The stream must end here: extra bytes mean the size lied.
		var one [1]byte
		if n, _ := io.ReadFull(d.r, one[:]); n != 0 {
			return nil, 0, fmt.Errorf("%w: content longer than its size", ErrFormat)
		}
		return nil, 0, io.EOF
	}
	n := min(d.remaining, EncryptedRegionSize)
	if int64(len(buf)) < n {
		return nil, 0, errors.New("cse: region buffer too small")
	}
	region := buf[:n]
	if _, err := io.ReadFull(d.r, region); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("%w: content shorter than its size", ErrFormat)
		}
		return nil, 0, fmt.Errorf("read content: %w", err)
	}
	i := d.index
	d.remaining -= n
	d.index++
	return region, i, nil
}

// Open authenticates and decrypts, in place, region i read by ReadRegion.
// It is safe to call from another goroutine than ReadRegion.
func (d *Decrypter) Open(region []byte, i uint64) ([]byte, error) {
	return OpenRegion(d.aead, region, i)
}
