package auth_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/examples/api/internal/auth"
	"github.com/phiguard/phiguard/examples/api/internal/oidctest"
)

func TestOIDCVerifierMatrix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	is := oidctest.New(t, "api://phiguard")
	v, err := auth.NewOIDCVerifier(ctx, is.URL(), is.Audience, nil)
	require.NoError(t, err)

	tests := []struct {
		name  string
		token string
		ok    bool
		roles []auth.Role
	}{
		{"valid clinician", is.Token(t, oidctest.Claims{Roles: []string{"clinician"}}), true, []auth.Role{auth.RoleClinician}},
		{"unknown roles dropped", is.Token(t, oidctest.Claims{Roles: []string{"admin", "auditor"}}), true, []auth.Role{auth.RoleAuditor}},
		{"expired", is.Token(t, oidctest.Claims{Expiry: time.Now().Add(-time.Hour)}), false, nil},
		{"wrong audience", is.Token(t, oidctest.Claims{Audience: "api://other"}), false, nil},
		{"wrong issuer", is.Token(t, oidctest.Claims{Issuer: "https://evil.invalid"}), false, nil},
		{"bad signature", is.BadSignature(t, oidctest.Claims{}), false, nil},
		{"alg none", is.Unsigned(t, oidctest.Claims{}), false, nil},
		{"garbage", "not.a.jwt", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(ctx, tc.token)
			if !tc.ok {
				require.ErrorIs(t, err, auth.ErrInvalidToken)
				assert.False(t, strings.Contains(err.Error(), tc.token), "error must not echo the token")
				want := "invalid"
				if tc.name == "expired" {
					want = "expired"
				}
				assert.Equal(t, want, auth.Reason(err), "the fixed reason logged for the rejection")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.roles, p.Roles)
			assert.Equal(t, "user-1", p.Subject)
		})
	}
}

func TestDevTokensSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d1, err := auth.OpenDev(dir)
	require.NoError(t, err)
	tok, err := d1.Token("dev-user", auth.RoleAuditor, time.Hour)
	require.NoError(t, err)

	d2, err := auth.OpenDev(dir)
	require.NoError(t, err)
	p, err := d2.Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.True(t, p.Has(auth.RoleAuditor))
	assert.False(t, p.Has(auth.RoleClinician))

	other, err := auth.OpenDev(t.TempDir())
	require.NoError(t, err)
	_, err = other.Verify(context.Background(), tok)
	require.ErrorIs(t, err, auth.ErrInvalidToken, "a token from another key must fail")

	expired, err := d1.Token("dev-user", auth.RoleAuditor, -time.Minute)
	require.NoError(t, err)
	_, err = d2.Verify(context.Background(), expired)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{"Bearer abc": true, "bearer abc": true, "Basic abc": false, "Bearer ": false, "": false, "Bearerabc": false}
	for h, ok := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		tok, err := auth.BearerToken(r)
		if ok {
			require.NoError(t, err, h)
			assert.Equal(t, "abc", tok)
		} else {
			require.ErrorIs(t, err, auth.ErrNoToken, h)
		}
	}
}
