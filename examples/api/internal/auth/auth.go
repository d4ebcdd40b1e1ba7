// Package auth authenticates the reference service's callers with OpenID
// Connect bearer tokens and authorizes them by role, denying by default.
//
// In production the tokens come from Microsoft Entra ID and are checked with
// github.com/coreos/go-oidc/v3 against the issuer's published keys. In
// development a local ES256 key in the data folder signs tokens (see
// DevIssuer); they are checked by the same go-oidc verifier, so both modes
// share one code path after signature verification.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Role is an application role carried in the token's "roles" claim.
type Role string

// The service's roles.
const (
	RoleClinician Role = "clinician" // patients, documents, predictions
	RoleAuditor   Role = "auditor"   // audit events only
	RoleService   Role = "service"   // predictions only
)

// Principal is an authenticated caller.
type Principal struct {
	Subject string // the token's "sub" (Entra ID: the object ID), never PHI
	Issuer  string
	Roles   []Role
	Expiry  time.Time // the token's "exp"
}

// Has reports whether p holds one of roles.
func (p *Principal) Has(roles ...Role) bool {
	if p == nil {
		return false
	}
	for _, r := range p.Roles {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// Errors callers branch on. Their text never includes the token.
var (
	ErrNoToken      = errors.New("auth: no bearer token")
	ErrInvalidToken = errors.New("auth: invalid token")
)

// Verifier checks a raw bearer token and returns its principal.
type Verifier interface {
	Verify(ctx context.Context, rawToken string) (*Principal, error)
}

// AllowedAlgs is the signing algorithm allow-list: asymmetric only, so "none"
// and HMAC tokens made with a public key are rejected.
var allowedAlgs = []string{oidc.RS256, oidc.PS256, oidc.ES256}

// OIDCOptions configures NewOIDCVerifier.
type OIDCOptions struct {
	// HTTPClient fetches discovery and keys; nil means http.DefaultClient.
	HTTPClient *http.Client
}

type oidcVerifier struct {
	v *oidc.IDTokenVerifier
}

// NewOIDCVerifier discovers issuer's keys and returns a verifier that checks
// signature (asymmetric algorithms only), issuer, audience and expiry. For
// Entra ID the issuer is https://login.microsoftonline.com/TENANT/v2.0 and
// the audience the API's application (client) ID.
func NewOIDCVerifier(ctx context.Context, issuer, audience string, opts *OIDCOptions) (Verifier, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("auth: issuer and audience are required")
	}
	if opts != nil && opts.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, opts.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("auth: discover %s: %w", issuer, err)
	}
	return &oidcVerifier{v: p.VerifierContext(ctx, &oidc.Config{
		ClientID:             audience,
		SupportedSigningAlgs: allowedAlgs,
	})}, nil
}

func (o *oidcVerifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	tok, err := o.v.Verify(ctx, raw)
	if err != nil {
		// go-oidc's messages name claims, never the token itself.
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidToken, err)
	}
	p := &Principal{Subject: tok.Subject, Issuer: tok.Issuer, Expiry: tok.Expiry}
	for _, r := range claims.Roles {
		switch Role(r) {
		case RoleClinician, RoleAuditor, RoleService:
			p.Roles = append(p.Roles, Role(r))
		}
	}
	if p.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return p, nil
}

// BearerToken extracts the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", ErrNoToken
	}
	return strings.TrimSpace(tok), nil
}

// Reason classifies a verification error with a fixed word for logs:
// "no_token", "expired" or "invalid". The error text itself may quote claim
// values chosen by the caller, so it is never logged.
func Reason(err error) string {
	var expired *oidc.TokenExpiredError
	switch {
	case errors.Is(err, ErrNoToken):
		return "no_token"
	case errors.As(err, &expired):
		return "expired"
	}
	return "invalid"
}
