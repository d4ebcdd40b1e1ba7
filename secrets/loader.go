package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Mode says whether a Loader runs in production.
type Mode int

const (
	// ModeAuto (the zero value): production when the APP_ENV environment
	// variable is "production" (any case), development otherwise.
	ModeAuto Mode = iota
	// ModeProduction refuses development-only sources (.env files).
	ModeProduction
	// ModeDevelopment allows every source.
	ModeDevelopment
)

// DefaultParallelism bounds concurrent fetches when Options.Parallelism is 0.
const DefaultParallelism = 8

// DefaultRefreshJitter is the jitter used when Options.RefreshJitter is 0.
const DefaultRefreshJitter = 0.1

// Options configures a Loader. A nil *Options means the defaults.
type Options struct {
	// Mode: see [Mode]. Default ModeAuto.
	Mode Mode

	// Parallelism bounds how many keys Bind and Refresh resolve at once
	// (each may be a Key Vault GET). Default 8. Key Vault allows 4,000
	// GETs per 10 s per vault, shared by every replica of the service.
	Parallelism int

	// RefreshInterval is the period of the background refresh started by
	// [Loader.Start]. Zero means no background refresh.
	RefreshInterval time.Duration

	// RefreshJitter spreads refreshes of many replicas: each wait is
	// RefreshInterval times a random factor in [1-j, 1+j]. Default 0.1,
	// at most 1.
	RefreshJitter float64

	// Logger receives refresh failures, changes and skipped Key Vault
	// secrets, with keys and source names, never values. Default: discard.
	Logger *slog.Logger
}

// Change tells an OnChange callback that a refresh found a new value for a
// key already loaded.
type Change struct {
	Key    string
	Source string // the source that now gives the key
	Value  Value  // the new value; printing it gives [Redacted]
}

// Origin says which source gave a key. It never holds the value.
type Origin struct {
	Key    string
	Source string
}

// Loader resolves keys against its sources, caches the values in memory and
// can refresh them. All methods are safe for concurrent use.
//
// Nothing the Loader returns as an error or writes to its Logger contains a
// secret value. Call Close when done if Start was called.
type Loader struct {
	sources     []Source
	parallelism int
	interval    time.Duration
	jitter      float64
	log         *slog.Logger
	sf          singleflight.Group
	refreshMu   sync.Mutex // one refresh at a time, so a change is reported once

	mu        sync.RWMutex
	cache     map[string]cached
	required  map[string]struct{} // required keys seen by Bind, for Check
	defaulted map[string]struct{} // keys Bind filled from default=, for Provenance
	callbacks []func(Change)
	closed    bool
	started   bool
	stop      chan struct{}
	done      chan struct{}
}

type cached struct {
	v      Value
	source string
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// NewLoader returns a Loader over sources, asked in the order given (first
// hit wins). It validates the configuration now: a .env source in
// production mode fails with ErrProduction, a malformed .env file with
// ErrMalformed (naming the line), a Key Vault name mapping with two keys on
// one secret with ErrNameCollision. It does no network I/O.
func NewLoader(opts *Options, sources ...Source) (*Loader, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(sources) == 0 {
		return nil, errors.New("secrets: NewLoader: no sources")
	}
	if o.Parallelism < 0 || o.RefreshInterval < 0 || o.RefreshJitter < 0 || o.RefreshJitter > 1 {
		return nil, errors.New("secrets: NewLoader: Parallelism and RefreshInterval must not be negative, RefreshJitter must be in [0, 1]")
	}
	if o.Parallelism == 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.RefreshJitter == 0 {
		o.RefreshJitter = DefaultRefreshJitter
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	prod := o.Mode == ModeProduction ||
		o.Mode == ModeAuto && strings.EqualFold(strings.TrimSpace(os.Getenv("APP_ENV")), "production")
	for i, s := range sources {
		if s == nil {
			return nil, fmt.Errorf("secrets: NewLoader: source %d is nil", i)
		}
		if _, dev := s.(devOnly); dev && prod {
			return nil, fmt.Errorf("secrets: %s: %w: .env files are for development; in production use the environment, mounted files or Key Vault (set APP_ENV or Options.Mode to change the mode)", s.Name(), ErrProduction)
		}
		if su, ok := s.(setup); ok {
			if err := su.setup(o.Logger); err != nil {
				return nil, err
			}
		}
	}
	return &Loader{
		sources:     slices.Clone(sources),
		parallelism: o.Parallelism,
		interval:    o.RefreshInterval,
		jitter:      o.RefreshJitter,
		log:         o.Logger,
		cache:       map[string]cached{},
		required:    map[string]struct{}{},
		defaulted:   map[string]struct{}{},
	}, nil
}

// Get returns the value of key from the first source that holds it, from
// the in-memory cache after the first time. An empty value counts as absent.
// Errors: ErrInvalidKey, ErrNotFound (a *KeyError naming the key and the
// sources tried), ErrClosed, or a source's failure (a *KeyError; a Key Vault
// failure unwraps to *VaultError).
func (l *Loader) Get(ctx context.Context, key string) (Value, error) {
	v, _, err := l.get(ctx, key)
	return v, err
}

func (l *Loader) get(ctx context.Context, key string) (Value, string, error) {
	if err := checkKey(key); err != nil {
		return Value{}, "", err
	}
	l.mu.RLock()
	c, ok := l.cache[key]
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return Value{}, "", ErrClosed
	}
	if ok {
		return c.v, c.source, nil
	}
	r, err, _ := l.sf.Do(key, func() (any, error) {
		c, err := l.resolve(ctx, key)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		// A refresh may have stored a newer value meanwhile; keep it. After
		// Close nothing is stored: the cache must stay empty.
		if cur, ok := l.cache[key]; ok {
			c = cur
		} else if !l.closed {
			l.cache[key] = c
		}
		l.mu.Unlock()
		return c, nil
	})
	if err != nil {
		return Value{}, "", err
	}
	c = r.(cached)
	return c.v, c.source, nil
}

// resolve asks the sources in order, bypassing the loader's cache. A
// source's failure stops the walk: falling through could hand out a value of
// lower priority that the operator meant to override.
func (l *Loader) resolve(ctx context.Context, key string) (cached, error) {
	for _, s := range l.sources {
		v, found, err := s.Lookup(ctx, key)
		if err != nil {
			var ke *KeyError
			if errors.As(err, &ke) {
				return cached{}, err
			}
			return cached{}, &KeyError{Key: key, Source: s.Name(), Err: err}
		}
		if found && !v.IsZero() {
			return cached{v: v, source: s.Name()}, nil
		}
	}
	names := make([]string, len(l.sources))
	for i, s := range l.sources {
		names[i] = s.Name()
	}
	return cached{}, &KeyError{Key: key, Err: fmt.Errorf("%w (tried %s)", ErrNotFound, strings.Join(names, ", "))}
}

// DefaultSource is the Origin.Source of a key that Bind filled from its
// default= tag because no source held it.
const DefaultSource = "default"

// Provenance lists, sorted by key, which source gave each loaded key, and
// [DefaultSource] for keys Bind took from a default. It never includes
// values.
func (l *Loader) Provenance() []Origin {
	l.mu.RLock()
	out := make([]Origin, 0, len(l.cache)+len(l.defaulted))
	for k, c := range l.cache {
		out = append(out, Origin{Key: k, Source: c.source})
	}
	for k := range l.defaulted {
		if _, ok := l.cache[k]; !ok {
			out = append(out, Origin{Key: k, Source: DefaultSource})
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b Origin) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// OnChange registers fn to be called after a refresh finds a new value for a
// loaded key (rotation). Callbacks run one at a time, in key order, on the
// goroutine doing the refresh; a slow callback delays the next refresh, and
// a callback must not call Close (Close waits for the refresher).
func (l *Loader) OnChange(fn func(Change)) {
	if fn == nil {
		return
	}
	l.mu.Lock()
	l.callbacks = append(l.callbacks, fn)
	l.mu.Unlock()
}

// Refresh re-resolves every loaded key: sources that cache are told to look
// for changes first (Key Vault: one listing, then a GET only for secrets
// whose Attributes.Updated changed), mounted files are read again. Each
// changed key is stored and reported to the OnChange callbacks. A key that
// can no longer be resolved keeps its last value, and the failure is
// returned (joined with the others) and logged.
func (l *Loader) Refresh(ctx context.Context) error {
	l.refreshMu.Lock()
	defer l.refreshMu.Unlock()
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	keys := make([]string, 0, len(l.cache))
	for k := range l.cache {
		keys = append(keys, k)
	}
	l.mu.RUnlock()
	slices.Sort(keys)

	var errs []error
	for _, s := range l.sources {
		if r, ok := s.(Refresher); ok {
			if err := r.Refresh(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}

	results := make([]cached, len(keys))
	keyErrs := make([]error, len(keys))
	g := new(errgroup.Group)
	g.SetLimit(l.parallelism)
	for i, k := range keys {
		g.Go(func() error {
			results[i], keyErrs[i] = l.resolve(ctx, k)
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through keyErrs

	var changes []Change
	l.mu.Lock()
	if l.closed {
		// Closed while fetching: store nothing, call nobody.
		l.mu.Unlock()
		return ErrClosed
	}
	for i, k := range keys {
		if keyErrs[i] != nil {
			errs = append(errs, keyErrs[i])
			continue
		}
		old, ok := l.cache[k]
		n := results[i]
		if ok && old.source == n.source && old.v.Equal(n.v) {
			continue
		}
		l.cache[k] = n
		changes = append(changes, Change{Key: k, Source: n.source, Value: n.v})
	}
	callbacks := slices.Clone(l.callbacks)
	l.mu.Unlock()

	for _, c := range changes {
		l.log.LogAttrs(ctx, slog.LevelInfo, "secrets: value changed", slog.String("key", c.Key), slog.String("source", c.Source))
		for _, fn := range callbacks {
			fn(c)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		l.log.LogAttrs(ctx, slog.LevelWarn, "secrets: refresh failed", slog.String("error", err.Error()))
	}
	return err
}

// Start begins the background refresh every Options.RefreshInterval (with
// jitter). It returns at once; the refresher stops when ctx is done or
// Close is called. Without a RefreshInterval it does nothing. Calling Start
// twice is an error.
func (l *Loader) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrClosed
	case l.started:
		return errors.New("secrets: Start called twice")
	case l.interval <= 0:
		return nil
	}
	l.started = true
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.refreshLoop(ctx, l.stop, l.done)
	return nil
}

func (l *Loader) refreshLoop(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTimer(l.nextWait())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		// Refresh logs its own failures; the next tick tries again.
		_ = l.Refresh(ctx)
		t.Reset(l.nextWait())
	}
}

func (l *Loader) nextWait() time.Duration {
	// Jitter only spreads load; it needs no cryptographic randomness.
	f := 1 + l.jitter*(2*rand.Float64()-1) //nolint:gosec // G404: jitter, not security
	return time.Duration(float64(l.interval) * f)
}

// Close stops the background refresh, waits for it to exit, and makes
// further calls fail with ErrClosed. Values already handed out stay valid.
// Close is idempotent.
func (l *Loader) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stop, done := l.stop, l.done
	l.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	// Emptied after the refresher has stopped, so that no in-flight refresh
	// puts values back.
	l.mu.Lock()
	l.cache = map[string]cached{}
	l.mu.Unlock()
	return nil
}

// Check reports whether the loader can serve its secrets, for a readiness
// probe (it has the func(context.Context) error shape health components
// take). It fails when the loader is closed, when a required key of an
// earlier Bind is not loaded, or when a source says it is unreachable (Key
// Vault: one listing call; a mounted directory: that it exists).
//
// A Key Vault outage therefore makes Check fail even though cached values
// still work: register it as a critical readiness check only if the
// service must not run without reaching its vault.
func (l *Loader) Check(ctx context.Context) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	var missing []string
	for k := range l.required {
		if _, ok := l.cache[k]; !ok {
			missing = append(missing, k)
		}
	}
	l.mu.RUnlock()
	var errs []error
	if len(missing) > 0 {
		slices.Sort(missing)
		errs = append(errs, fmt.Errorf("secrets: required keys not loaded: %s: %w", strings.Join(missing, ", "), ErrNotFound))
	}
	for _, s := range l.sources {
		if c, ok := s.(Checker); ok {
			if err := c.Check(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
