package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Development issuer constants. Tokens they sign are accepted only by the
// development verifier, which the service refuses to use in production.
const (
	DevIssuer   = "https://phiguard.invalid/dev"
	DevAudience = "phiguard-api"
	devKeyFile  = "dev-signing-key.pem"
)

// Dev signs and verifies development tokens with an ES256 key kept in a
// folder (0600 file in a 0700 folder), so tokens survive a restart.
type Dev struct {
	key      *ecdsa.PrivateKey
	verifier *oidc.IDTokenVerifier
}

// OpenDev loads the development key from dir, creating it on first use.
func OpenDev(dir string) (*Dev, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: dev key folder: %w", err)
	}
	path := filepath.Join(dir, devKeyFile)
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	ks := &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}}
	return &Dev{key: key, verifier: oidc.NewVerifier(DevIssuer, ks, &oidc.Config{
		ClientID:             DevAudience,
		SupportedSigningAlgs: []string{oidc.ES256},
	})}, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("auth: dev key: not PEM")
	}
	k, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	return k, nil
}

func createKey(path string) (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	// Written to a temporary file, then linked into place: a process
	// starting at the same time sees no key or a whole key, never half of
	// one, and a lost race reads the winner's key.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dev-key-*")
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	return k, nil
}

// Token signs a development token for subject with role, valid for ttl.
func (d *Dev) Token(subject string, role Role, ttl time.Duration) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: d.key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("auth: signer: %w", err)
	}
	now := time.Now()
	claims := jwt.Claims{
		Issuer:   DevIssuer,
		Subject:  subject,
		Audience: jwt.Audience{DevAudience},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(ttl)),
	}
	extra := map[string]any{"roles": []string{string(role)}}
	raw, err := jwt.Signed(signer).Claims(claims).Claims(extra).Serialize()
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return raw, nil
}

// Verify implements Verifier for development tokens.
func (d *Dev) Verify(ctx context.Context, raw string) (*Principal, error) {
	return (&oidcVerifier{v: d.verifier}).Verify(ctx, raw)
}
