package storage

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	josecipher "github.com/go-jose/go-jose/v4/cipher"

	"github.com/phiguard/phiguard/storage/internal/cse"
)

// Key-wrapping algorithms, as named in the encryptiondata metadata.
const (
	AlgorithmA256KW     = "A256KW"
	AlgorithmRSAOAEP256 = "RSA-OAEP-256"
	AlgorithmRSAOAEP    = "RSA-OAEP"
)

// WrappedKey is a content key wrapped by a key-encryption key: what is
// stored, in clear, in a blob's encryptiondata metadata.
type WrappedKey struct {
	// KeyID identifies the key-encryption key (for Key Vault, its full key
	// identifier with version, so a rotated key can still unwrap old blobs).
	KeyID string
	// Algorithm is the key-wrapping algorithm, e.g. AlgorithmA256KW.
	Algorithm string
	// EncryptedKey is the wrapped value.
	EncryptedKey []byte
}

// KeyWrapper wraps and unwraps content keys with a key-encryption key the
// storage account never sees, like filippo.io/age's Recipient and Identity
// in one small interface. Implementations must be safe for concurrent use
// and must never log or return key material in errors.
//
// WrapKey returns the wrapped key together with the key ID and algorithm to
// record; the key ID may differ from call to call (a Key Vault key without a
// pinned version records the version that wrapped).
//
// UnwrapKey returns ErrKeyMismatch (wrapped) when wk names a key or an
// algorithm this wrapper does not hold, so that a Store can try its other
// keys; any other error means the wrapped value itself was refused.
type KeyWrapper interface {
	WrapKey(ctx context.Context, key []byte) (WrappedKey, error)
	UnwrapKey(ctx context.Context, wk WrappedKey) ([]byte, error)
}

// LocalKey is an AES-256 key-encryption key held in memory, wrapping with
// AES Key Wrap (RFC 3394, A256KW). It is safe for concurrent use.
type LocalKey struct {
	kid string
	key []byte
}

// NewLocalKey returns an A256KW key wrapper for the 32-byte key, recorded
// under kid (which must be non-empty; it is stored in clear and must not
// contain PHI or secrets). The key is copied.
func NewLocalKey(kid string, key []byte) (*LocalKey, error) {
	if kid == "" {
		return nil, errors.New("storage: local key: empty key ID")
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("storage: local key: need a 32-byte key, got %d bytes", len(key))
	}
	return &LocalKey{kid: kid, key: bytes.Clone(key)}, nil
}

// KeyID returns the key ID recorded with the keys it wraps.
func (k *LocalKey) KeyID() string { return k.kid }

// WrapKey wraps key with RFC 3394 AES Key Wrap.
func (k *LocalKey) WrapKey(_ context.Context, key []byte) (WrappedKey, error) {
	block, err := aes.NewCipher(k.key)
	if err != nil {
		return WrappedKey{}, fmt.Errorf("storage: local key: %w", err)
	}
	// go-jose's KeyWrap is a maintained RFC 3394 implementation; the
	// standard library has none.
	out, err := josecipher.KeyWrap(block, key)
	if err != nil {
		return WrappedKey{}, fmt.Errorf("storage: local key: wrap: %w", err)
	}
	return WrappedKey{KeyID: k.kid, Algorithm: AlgorithmA256KW, EncryptedKey: out}, nil
}

// UnwrapKey unwraps a key wrapped by WrapKey with the same key ID.
func (k *LocalKey) UnwrapKey(_ context.Context, wk WrappedKey) ([]byte, error) {
	if subtle.ConstantTimeCompare([]byte(wk.KeyID), []byte(k.kid)) != 1 {
		return nil, fmt.Errorf("storage: local key: %w", ErrKeyMismatch)
	}
	if wk.Algorithm != AlgorithmA256KW {
		return nil, fmt.Errorf("storage: local key: algorithm %q: %w", cse.Clip(wk.Algorithm), ErrKeyMismatch)
	}
	block, err := aes.NewCipher(k.key)
	if err != nil {
		return nil, fmt.Errorf("storage: local key: %w", err)
	}
	out, err := josecipher.KeyUnwrap(block, wk.EncryptedKey)
	if err != nil {
		return nil, fmt.Errorf("storage: local key: unwrap: %w", ErrAuthentication)
	}
	return out, nil
}

// KeyVaultKey wraps content keys with an RSA key in Azure Key Vault or
// Managed HSM (RSA-OAEP-256); the private key never leaves the vault. It is
// safe for concurrent use (the azkeys client is).
type KeyVaultKey struct {
	client  *azkeys.Client
	name    string
	version string
}

// NewKeyVaultKey returns a key wrapper that calls Key Vault's wrapKey and
// unwrapKey on key name. With version "" wrapping uses the key's current
// version, and each blob records the full versioned key ID, so unwrapping
// keeps working after the key is rotated in the vault. The caller's client
// decides credentials, retries and transport.
func NewKeyVaultKey(client *azkeys.Client, name, version string) (*KeyVaultKey, error) {
	if client == nil {
		return nil, errors.New("storage: key vault key: nil client")
	}
	if name == "" {
		return nil, errors.New("storage: key vault key: empty key name")
	}
	return &KeyVaultKey{client: client, name: name, version: version}, nil
}

// WrapKey wraps key with RSA-OAEP-256 in Key Vault.
func (k *KeyVaultKey) WrapKey(ctx context.Context, key []byte) (WrappedKey, error) {
	alg := azkeys.EncryptionAlgorithmRSAOAEP256
	resp, err := k.client.WrapKey(ctx, k.name, k.version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: key}, nil)
	if err != nil {
		return WrappedKey{}, fmt.Errorf("storage: key vault key: wrap: %w", err)
	}
	if len(resp.Result) == 0 {
		return WrappedKey{}, errors.New("storage: key vault key: wrap: empty result")
	}
	kid := k.name
	if k.version != "" {
		kid += "/" + k.version
	}
	if resp.KID != nil && *resp.KID != "" {
		kid = string(*resp.KID)
	}
	return WrappedKey{KeyID: kid, Algorithm: AlgorithmRSAOAEP256, EncryptedKey: resp.Result}, nil
}

// UnwrapKey unwraps with the key version recorded in wk.KeyID (or the
// configured version when the ID has none). Keys wrapped with RSA-OAEP by
// other SDKs are accepted too.
func (k *KeyVaultKey) UnwrapKey(ctx context.Context, wk WrappedKey) ([]byte, error) {
	var alg azkeys.EncryptionAlgorithm
	switch wk.Algorithm {
	case AlgorithmRSAOAEP256:
		alg = azkeys.EncryptionAlgorithmRSAOAEP256
	case AlgorithmRSAOAEP:
		alg = azkeys.EncryptionAlgorithmRSAOAEP
	default:
		return nil, fmt.Errorf("storage: key vault key: algorithm %q: %w", cse.Clip(wk.Algorithm), ErrKeyMismatch)
	}
	name, version := parseKeyVaultID(wk.KeyID)
	if name != k.name {
		return nil, fmt.Errorf("storage: key vault key: %w", ErrKeyMismatch)
	}
	if version == "" {
		version = k.version
	}
	resp, err := k.client.UnwrapKey(ctx, k.name, version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: wk.EncryptedKey}, nil)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest {
		// Key Vault answers 400 to a wrapped value that does not decrypt.
		return nil, fmt.Errorf("storage: key vault key: unwrap: %w: %w", ErrAuthentication, err)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: key vault key: unwrap: %w", err)
	}
	return resp.Result, nil
}

// parseKeyVaultID splits "https://vault/keys/NAME/VERSION", "NAME/VERSION"
// or "NAME".
func parseKeyVaultID(kid string) (name, version string) {
	if i := strings.Index(kid, "/keys/"); i >= 0 {
		kid = kid[i+len("/keys/"):]
	}
	name, version, _ = strings.Cut(strings.Trim(kid, "/"), "/")
	return name, strings.Trim(version, "/")
}
