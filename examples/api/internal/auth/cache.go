package auth

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// CacheOptions configures NewCache. Nil means the defaults.
type CacheOptions struct {
	// TTL caps how long a verified token is trusted without a new check
	// (default 5 minutes); never past the token's own expiry.
	TTL time.Duration
	// Size bounds the entries kept (default 10,000).
	Size int
	// Now is the clock (tests).
	Now func() time.Time
}

// cache remembers verified tokens by their SHA-256, so a client that sends
// the same bearer token on every request pays for one signature check
// (an ECDSA or RSA verification costs more than the rest of a request).
// Only successes are cached: a bad token is checked every time.
type cache struct {
	next Verifier
	ttl  time.Duration
	size int
	now  func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	p     *Principal
	until time.Time
}

// NewCache returns a Verifier that asks next once per distinct token and
// TTL. It is safe for concurrent use.
func NewCache(next Verifier, opts *CacheOptions) Verifier {
	c := &cache{next: next, ttl: 5 * time.Minute, size: 10_000, now: time.Now, entries: map[[32]byte]cacheEntry{}}
	if opts != nil {
		if opts.TTL > 0 {
			c.ttl = opts.TTL
		}
		if opts.Size > 0 {
			c.size = opts.Size
		}
		if opts.Now != nil {
			c.now = opts.Now
		}
	}
	return c
}

func (c *cache) Verify(ctx context.Context, raw string) (*Principal, error) {
	k := sha256.Sum256([]byte(raw))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.p, nil
	}
	p, err := c.next.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	until := now.Add(c.ttl)
	if !p.Expiry.IsZero() && p.Expiry.Before(until) {
		until = p.Expiry
	}
	c.mu.Lock()
	if len(c.entries) >= c.size {
		// Drop the expired entries; if none, start over: a full cache is
		// rare and a miss only costs one verification.
		for key, old := range c.entries {
			if !now.Before(old.until) {
				delete(c.entries, key)
			}
		}
		if len(c.entries) >= c.size {
			clear(c.entries)
		}
	}
	c.entries[k] = cacheEntry{p: p, until: until}
	c.mu.Unlock()
	return p, nil
}
