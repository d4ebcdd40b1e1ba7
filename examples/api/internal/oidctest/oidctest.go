// Package oidctest serves a real OpenID Connect issuer on loopback for
// tests: discovery document, JWKS, and tokens signed with its RSA key, plus
// deliberately broken tokens for authorization matrices.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is an OIDC issuer served by httptest.
type Issuer struct {
	Server   *httptest.Server
	Audience string
	key      *rsa.PrivateKey
	other    *rsa.PrivateKey // signs "bad signature" tokens with the same kid
}

// New starts an issuer whose tokens are for audience; it stops with the test.
func New(t testing.TB, audience string) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{Audience: audience, key: key, other: other}
	// Handlers read is.Server only after Start: set before any request.
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                is.URL(),
			"jwks_uri":                              is.URL() + "/keys",
			"authorization_endpoint":                is.URL() + "/authorize",
			"token_endpoint":                        is.URL() + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"},
		}})
	})
	is.Server = httptest.NewUnstartedServer(mux)
	is.Server.Start()
	t.Cleanup(is.Server.Close)
	return is
}

// URL returns the issuer identifier.
func (is *Issuer) URL() string { return is.Server.URL }

// Claims of a token; zero fields get valid defaults.
type Claims struct {
	Subject  string
	Roles    []string
	Issuer   string
	Audience string
	Expiry   time.Time
}

// Token signs claims with the issuer's key.
func (is *Issuer) Token(t testing.TB, c Claims) string {
	t.Helper()
	return is.sign(t, is.key, c)
}

// BadSignature signs claims with another key under the issuer's key ID.
func (is *Issuer) BadSignature(t testing.TB, c Claims) string {
	t.Helper()
	return is.sign(t, is.other, c)
}

// Unsigned returns the claims as an "alg":"none" token.
func (is *Issuer) Unsigned(t testing.TB, c Claims) string {
	t.Helper()
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	body, err := json.Marshal(is.claims(c))
	if err != nil {
		t.Fatal(err)
	}
	return hdr + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func (is *Issuer) claims(c Claims) map[string]any {
	if c.Subject == "" {
		c.Subject = "user-1"
	}
	if c.Issuer == "" {
		c.Issuer = is.URL()
	}
	if c.Audience == "" {
		c.Audience = is.Audience
	}
	if c.Expiry.IsZero() {
		c.Expiry = time.Now().Add(time.Hour)
	}
	return map[string]any{
		"sub": c.Subject, "iss": c.Issuer, "aud": c.Audience,
		"exp": c.Expiry.Unix(), "iat": time.Now().Add(-time.Minute).Unix(),
		"roles": c.Roles,
	}
}

func (is *Issuer) sign(t testing.TB, key *rsa.PrivateKey, c Claims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(is.claims(c)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
