package auth_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/examples/api/internal/auth"
)

// countingVerifier wraps a real development verifier and counts its calls.
type countingVerifier struct {
	next  auth.Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, raw string) (*auth.Principal, error) {
	c.calls.Add(1)
	return c.next.Verify(ctx, raw)
}

func TestCache(t *testing.T) {
	t.Parallel()
	dev, err := auth.OpenDev(t.TempDir())
	require.NoError(t, err)
	cv := &countingVerifier{next: dev}
	now := time.Now()
	clock := func() time.Time { return now }
	v := auth.NewCache(cv, &auth.CacheOptions{TTL: time.Minute, Size: 2, Now: clock})
	ctx := context.Background()

	tok, err := dev.Token("u1", auth.RoleClinician, 30*time.Second)
	require.NoError(t, err)
	for range 5 {
		p, err := v.Verify(ctx, tok)
		require.NoError(t, err)
		assert.Equal(t, "u1", p.Subject)
	}
	assert.Equal(t, int64(1), cv.calls.Load(), "one verification for repeated use")

	_, err = v.Verify(ctx, tok+"x")
	require.True(t, errors.Is(err, auth.ErrInvalidToken))
	_, err = v.Verify(ctx, tok+"x")
	require.Error(t, err)
	assert.Equal(t, int64(3), cv.calls.Load(), "failures are never cached")

	now = now.Add(31 * time.Second) // past the token's own expiry, within TTL
	_, _ = v.Verify(ctx, tok)
	assert.Equal(t, int64(4), cv.calls.Load(), "past the token's expiry the cache asks the verifier again")

	for i := range 5 { // more distinct tokens than Size: bounded, still correct
		tk, err := dev.Token("u", auth.RoleAuditor, time.Hour)
		require.NoError(t, err)
		p, err := v.Verify(ctx, tk)
		require.NoError(t, err, "token %d", i)
		assert.True(t, p.Has(auth.RoleAuditor))
	}
}
