package health

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	healthgo "github.com/hellofresh/health-go/v5"
)

// Defaults applied when the corresponding field of Options is zero.
const (
	DefaultInterval        = 5 * time.Second
	DefaultStartupInterval = time.Second
	DefaultTimeout         = 2 * time.Second
	// MinTokenLength is the shortest details token New accepts: a short
	// token could be guessed by probing the public endpoint.
	MinTokenLength = 16
)

// Sentinel errors callers may branch on with errors.Is.
var (
	// ErrInvalidName: a check name is empty, too long or has characters
	// outside [A-Za-z0-9._-] (names travel in ?exclude= and JSON keys).
	ErrInvalidName = errors.New("health: invalid check name")
	// ErrDuplicate: a check of that kind with that name is already registered.
	ErrDuplicate = errors.New("health: duplicate check name")
	// ErrStartupComplete: a startup check was added after startup had passed;
	// it would never run.
	ErrStartupComplete = errors.New("health: startup already complete")
	// ErrInvalidOptions: an option is out of range (negative duration, short token, ...).
	ErrInvalidOptions = errors.New("health: invalid options")
	// ErrCheckTimeout is the error recorded for a check that did not return
	// within its time-out.
	ErrCheckTimeout = errors.New("health: check timed out")
	// ErrCheckPanic is the error recorded for a check that panicked. The
	// panic value is not kept: it may hold data the check was working on.
	ErrCheckPanic = errors.New("health: check panicked")
)

// Component names the service in detailed responses (description and
// version of draft-inadarei-api-health-check). It is health-go's type, so
// values can be shared with code that already uses health-go. It never
// appears in a public response.
type Component = healthgo.Component

// Options configures a Health. A nil *Options means all defaults.
type Options struct {
	// Interval between runs of each liveness and readiness check.
	// Zero means DefaultInterval. A probe never triggers a run: handlers
	// serve the result of the last run.
	Interval time.Duration
	// StartupInterval between runs of startup checks until they first all
	// pass. Zero means DefaultStartupInterval.
	StartupInterval time.Duration
	// Timeout is the default per-check time-out (WithTimeout overrides it).
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// DetailsToken, when set, lets a request carrying
	// "Authorization: Bearer <DetailsToken>" and ?verbose see per-check
	// details on the public handlers. Empty means details are never shown
	// there (use InternalHandler on a separate listener instead). It must be
	// at least MinTokenLength bytes. It is compared in constant time and never
	// logged.
	DetailsToken string
	// Component is shown in detailed responses only.
	Component Component
	// Logger receives one record per status change (check or endpoint).
	// Nil means no logging.
	Logger *slog.Logger
	// OnChange is called after each status change, one call at a time and in
	// the order the changes happened, from a goroutine of Health's (a check
	// runner) or from the caller of Drain or Start. No lock is held during
	// the call, so it may call Drain or Status; it should return quickly, as
	// it delays the delivery of later changes.
	OnChange func(Change)
}

// Change describes one status change, for Options.OnChange.
type Change struct {
	Kind Kind
	// Check is the check's name, or "" for the endpoint's overall status.
	Check    string
	From, To Status
	// Err is the check's error when To is StatusFail and Check is set.
	// It is meant for in-process handling: do not send it to callers of the
	// public endpoints.
	Err error
	At  time.Time
}

// CheckOption tunes one check at registration.
type CheckOption func(*checkConfig)

type checkConfig struct {
	timeout  time.Duration
	interval time.Duration
	critical bool
}

// WithTimeout sets the check's time-out: its context is cancelled after d
// and, if it has not returned by then, it is recorded as failing with
// ErrCheckTimeout.
func WithTimeout(d time.Duration) CheckOption {
	return func(c *checkConfig) { c.timeout = d }
}

// WithInterval sets how often the check runs, overriding Options.Interval
// (or Options.StartupInterval for startup checks).
func WithInterval(d time.Duration) CheckOption {
	return func(c *checkConfig) { c.interval = d }
}

// NonCritical marks the check as non-critical: its failure is reported
// (status "warn" in details) but does not fail the endpoint.
func NonCritical() CheckOption {
	return func(c *checkConfig) { c.critical = false }
}

// Health holds the liveness, readiness and startup checks of one process,
// runs them in the background and serves their cached results.
//
// All methods are safe for concurrent use. Checks run only between Start
// and Stop (Serve calls both); until a check's first result its status is
// StatusUnknown.
type Health struct {
	opts      Options
	tokenHash [sha256.Size]byte
	hasToken  bool

	mu      sync.Mutex
	groups  [kindCount]*group
	runCtx  context.Context // nil until Start
	stopRun context.CancelFunc
	runWG   *sync.WaitGroup // the check loops of the current run (one per Start, so a Stop waits only for its own)
	lastWG  *sync.WaitGroup // the run Stop took last: a concurrent Stop waits for it too

	// Status changes waiting for delivery; see publishAndUnlock.
	pending    []Change
	delivering bool

	views    [kindCount]atomic.Pointer[view]
	draining atomic.Bool
	started  atomic.Bool // startup checks have all passed once
}

type group struct {
	reg    *healthgo.Health // name registry: rejects empty and duplicate names
	checks []*check
	status Status // last overall status, for change reporting
}

type check struct {
	cfg      healthgo.Config // Name, Timeout, SkipOnErr (= non-critical), Check
	interval time.Duration
	inflight atomic.Bool // a run (possibly timed out) has not returned yet

	// Guarded by Health.mu.
	status   Status
	err      error
	duration time.Duration
	at       time.Time // end of the last run
	since    time.Time // when status last changed
}

// New returns a Health with no checks. Liveness and readiness with no
// checks pass; see Start for when checks run.
func New(opts *Options) (*Health, error) {
	h := &Health{}
	if opts != nil {
		h.opts = *opts
	}
	o := &h.opts
	if o.Interval < 0 || o.StartupInterval < 0 || o.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative duration", ErrInvalidOptions)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.StartupInterval == 0 {
		o.StartupInterval = DefaultStartupInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DetailsToken != "" {
		if len(o.DetailsToken) < MinTokenLength {
			return nil, fmt.Errorf("%w: details token shorter than %d bytes", ErrInvalidOptions, MinTokenLength)
		}
		h.tokenHash = sha256.Sum256([]byte(o.DetailsToken))
		h.hasToken = true
		o.DetailsToken = "" // keep only the hash
	}
	for k := range kindCount {
		reg, err := healthgo.New()
		if err != nil {
			return nil, fmt.Errorf("health: %w", err)
		}
		h.groups[k] = &group{reg: reg, status: StatusPass}
	}
	h.mu.Lock()
	for k := range kindCount {
		h.rebuildLocked(k)
	}
	h.mu.Unlock()
	return h, nil
}

// AddLiveness registers a process-level check: a deadlock detector, a
// goroutine or memory ceiling, never a dependency. A failing liveness check
// makes the orchestrator restart the container, so a database outage must
// not be able to fail it.
func (h *Health) AddLiveness(name string, fn func(context.Context) error, opts ...CheckOption) error {
	return h.add(KindLiveness, name, fn, opts)
}

// AddReadiness registers a dependency check (database, key vault, storage).
// While a critical readiness check fails, /readyz answers 503 and the
// orchestrator stops routing traffic to this replica.
func (h *Health) AddReadiness(name string, fn func(context.Context) error, opts ...CheckOption) error {
	return h.add(KindReadiness, name, fn, opts)
}

// AddStartup registers a check that must pass once before the process
// counts as started (migrations applied, caches warmed, secrets loaded).
// Startup checks run every StartupInterval until they all pass, then stop:
// /startupz stays 200 from then on, and /readyz is 503 until then.
func (h *Health) AddStartup(name string, fn func(context.Context) error, opts ...CheckOption) error {
	return h.add(KindStartup, name, fn, opts)
}

func (h *Health) add(k Kind, name string, fn func(context.Context) error, opts []CheckOption) error {
	if !validName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, truncate(name, 64))
	}
	if fn == nil {
		return fmt.Errorf("health: check %q: nil function", name)
	}
	cc := checkConfig{timeout: h.opts.Timeout, interval: h.opts.Interval, critical: true}
	if k == KindStartup {
		cc.interval = h.opts.StartupInterval
	}
	for _, o := range opts {
		o(&cc)
	}
	if cc.timeout <= 0 || cc.interval <= 0 {
		return fmt.Errorf("%w: check %q: time-out and interval must be positive", ErrInvalidOptions, name)
	}
	c := &check{
		cfg:      healthgo.Config{Name: name, Timeout: cc.timeout, SkipOnErr: !cc.critical, Check: fn},
		interval: cc.interval,
		status:   StatusUnknown,
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if k == KindStartup && h.started.Load() {
		return fmt.Errorf("%w: check %q", ErrStartupComplete, name)
	}
	g := h.groups[k]
	if err := g.reg.Register(c.cfg); err != nil {
		return fmt.Errorf("%w: %s %q", ErrDuplicate, k, name)
	}
	c.since = time.Now()
	g.checks = append(g.checks, c)
	h.rebuildLocked(k)
	if k == KindStartup {
		h.rebuildLocked(KindReadiness)
	}
	if h.runningLocked() {
		h.startLoopLocked(k, c)
	}
	return nil
}

// Start runs every registered check (and any added later) in the background:
// immediately, then on its interval, until ctx ends or Stop is called.
// Calling Start while running does nothing; after ctx has ended or Stop,
// Start runs the checks again.
func (h *Health) Start(ctx context.Context) {
	h.mu.Lock()
	if h.runningLocked() {
		h.mu.Unlock()
		return
	}
	if h.stopRun != nil {
		h.stopRun() // ctx ended: release the old context
	}
	h.runCtx, h.stopRun = context.WithCancel(ctx)
	if h.runWG == nil {
		// A fresh one after a Stop, which may still be waiting on the old.
		// Loops of a run whose ctx ended stay in the same one, so that Stop
		// waits for them too.
		h.runWG = &sync.WaitGroup{}
	}
	var changes []Change
	if len(h.groups[KindStartup].checks) == 0 && !h.started.Load() {
		// Nothing to wait for: latch now, so a later AddStartup is refused
		// rather than silently holding readiness down.
		h.started.Store(true)
		for _, k := range []Kind{KindStartup, KindReadiness} {
			if ch := h.rebuildLocked(k); ch != nil {
				changes = append(changes, *ch)
			}
		}
	}
	for k := range kindCount {
		for _, c := range h.groups[k].checks {
			h.startLoopLocked(k, c)
		}
	}
	h.publishAndUnlock(changes)
}

func (h *Health) runningLocked() bool {
	return h.runCtx != nil && h.runCtx.Err() == nil
}

// Stop stops the background runs and waits for the runner goroutines to
// exit. A check that ignores its context keeps its own goroutine until it
// returns; Stop does not wait for it. Cached results stay served. Start may
// be called again after Stop.
func (h *Health) Stop() {
	h.mu.Lock()
	stop, wg := h.stopRun, h.runWG
	if wg != nil {
		h.lastWG = wg // nothing adds to it any more: any number may wait
	} else {
		wg = h.lastWG
	}
	h.runCtx, h.stopRun, h.runWG = nil, nil, nil
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
	if wg != nil {
		wg.Wait()
	}
}

// Drain marks the process as shutting down: from now on /readyz answers 503
// (so the load balancer takes the replica out) while /livez is unaffected
// (so the orchestrator does not kill it mid-drain). Drain cannot be undone.
func (h *Health) Drain() {
	if h.draining.Swap(true) {
		return
	}
	h.mu.Lock()
	var changes []Change
	if ch := h.rebuildLocked(KindReadiness); ch != nil {
		changes = append(changes, *ch)
	}
	h.publishAndUnlock(changes)
}

// Draining reports whether Drain has been called.
func (h *Health) Draining() bool { return h.draining.Load() }

// Status returns the current overall status of an endpoint, as served.
func (h *Health) Status(k Kind) Status {
	if k >= kindCount {
		return StatusUnknown
	}
	return h.views[k].Load().status
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
