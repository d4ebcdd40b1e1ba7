package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is one of the three probe endpoints.
type Kind uint8

// The three endpoints, in the order Kubernetes consults them.
const (
	KindLiveness Kind = iota
	KindReadiness
	KindStartup
	kindCount
)

func (k Kind) String() string {
	switch k {
	case KindLiveness:
		return "livez"
	case KindReadiness:
		return "readyz"
	case KindStartup:
		return "startupz"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Status of one check or of an endpoint.
type Status uint8

// Statuses. Warn exists only for endpoints: a non-critical check fails.
const (
	StatusUnknown Status = iota // no result yet
	StatusPass
	StatusWarn
	StatusFail
)

func (s Status) String() string {
	switch s {
	case StatusPass:
		return "pass"
	case StatusWarn:
		return "warn"
	case StatusFail:
		return "fail"
	}
	return "unknown"
}

// maxErrLen bounds the error text kept per check: enough to diagnose,
// small enough that a chatty driver cannot bloat every detailed response.
const maxErrLen = 512

// view is the immutable, precomputed state of one endpoint. It is replaced
// (never modified) after every run, so a handler needs one atomic load.
type view struct {
	status Status
	code   int
	body   []byte   // public body: {"status":"pass"|"fail"}
	clen   []string // Content-Length of body, ready for the header map
	reason string   // why readiness is held down ("draining", "starting"), details only
	checks []result // sorted by name
}

// result is a copy of one check's state at rebuild time.
type result struct {
	name     string
	critical bool
	status   Status
	err      string
	duration time.Duration
	at       time.Time
	since    time.Time
}

func (h *Health) startLoopLocked(k Kind, c *check) {
	ctx, wg := h.runCtx, h.runWG
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.loop(ctx, k, c)
	}()
}

func (h *Health) loop(ctx context.Context, k Kind, c *check) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		if k == KindStartup && h.started.Load() {
			return // startup latched: its checks have done their job
		}
		if ctx.Err() != nil {
			return
		}
		h.runOnce(ctx, k, c)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runOnce runs the check in its own goroutine with its own time-out. The
// runner never waits past the time-out, whether or not the check honours
// its context, and never starts a second run while a timed-out one is still
// executing, so a hung dependency costs at most one goroutine per check.
// (health-go v5.5.4 leaks one goroutine per timed-out run and passes no
// deadline to the check; this runner depends on neither.)
func (h *Health) runOnce(ctx context.Context, k Kind, c *check) {
	if c.inflight.Load() {
		return // the last timed-out run is still executing; its failure stands
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	done := make(chan error, 1) // buffered: a late check never blocks on send
	c.inflight.Store(true)
	start := time.Now()
	go func() {
		defer c.inflight.Store(false)
		defer func() {
			if r := recover(); r != nil {
				done <- ErrCheckPanic // the panic value is deliberately dropped
			}
		}()
		done <- c.cfg.Check(cctx)
	}()

	var err error
	returned := false
	select {
	case err = <-done:
		returned = true
	case <-cctx.Done():
		err = context.DeadlineExceeded
	}
	if ctx.Err() != nil && (!returned || err != nil) {
		return // stopping: an aborted run says nothing about the dependency
	}
	if err != nil && cctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w after %s", ErrCheckTimeout, c.cfg.Timeout)
	}
	h.record(k, c, err, start, time.Now())
}

func (h *Health) record(k Kind, c *check, err error, start, end time.Time) {
	st := StatusPass
	if err != nil {
		st = StatusFail
	}
	var changes []Change
	h.mu.Lock()
	if from := c.status; from != st {
		c.since = end
		changes = append(changes, Change{Kind: k, Check: c.cfg.Name, From: from, To: st, Err: err, At: end})
	}
	c.status, c.err, c.duration, c.at = st, err, end.Sub(start), end
	if ch := h.rebuildLocked(k); ch != nil {
		changes = append(changes, *ch)
	}
	if k == KindStartup && !h.started.Load() {
		if s := h.views[KindStartup].Load().status; s == StatusPass || s == StatusWarn {
			h.started.Store(true)
			if ch := h.rebuildLocked(KindStartup); ch != nil {
				changes = append(changes, *ch)
			}
			if ch := h.rebuildLocked(KindReadiness); ch != nil {
				changes = append(changes, *ch)
			}
		}
	}
	h.publishAndUnlock(changes)
}

// publishAndUnlock queues changes and, unless another goroutine is already
// delivering, delivers the queue in order without holding h.mu (so OnChange
// may call Drain without deadlock). Called with h.mu held; releases it.
func (h *Health) publishAndUnlock(changes []Change) {
	h.pending = append(h.pending, changes...)
	if h.delivering || len(h.pending) == 0 {
		h.mu.Unlock()
		return
	}
	h.delivering = true
	for len(h.pending) > 0 {
		batch := h.pending
		h.pending = nil
		h.mu.Unlock()
		h.report(batch...)
		h.mu.Lock()
	}
	h.delivering = false
	h.mu.Unlock()
}

// startedLocked: readiness is gated on startup only when there is startup work.
func (h *Health) startedLocked() bool {
	return h.started.Load() || len(h.groups[KindStartup].checks) == 0
}

// aggregate folds check results into an endpoint status. excluded names
// are skipped (?exclude=).
func aggregate(rs []result, excluded func(string) bool) Status {
	st := StatusPass
	unknown := false
	for i := range rs {
		r := &rs[i]
		if excluded != nil && excluded(r.name) {
			continue
		}
		switch {
		case r.critical && r.status == StatusFail:
			return StatusFail
		case r.critical && r.status == StatusUnknown:
			unknown = true
		case !r.critical && r.status == StatusFail:
			st = StatusWarn
		}
	}
	if unknown {
		return StatusUnknown
	}
	return st
}

// gate applies what overrides the checks: drain and startup for readiness,
// the startup latch for startup.
func (h *Health) gateLocked(k Kind, st Status) (Status, string) {
	switch k {
	case KindReadiness:
		if h.draining.Load() {
			return StatusFail, "draining"
		}
		if !h.startedLocked() {
			return StatusUnknown, "starting"
		}
	case KindStartup:
		if h.started.Load() {
			return StatusPass, ""
		}
	}
	return st, ""
}

// httpCode maps an endpoint status to the HTTP status code. Unknown (no
// result yet) keeps liveness at 200, because restarting a process whose
// checks have not run yet helps nobody, and holds readiness and startup at
// 503, because traffic must not reach a replica not known to work.
func httpCode(k Kind, st Status) int {
	switch st {
	case StatusPass, StatusWarn:
		return 200
	case StatusUnknown:
		if k == KindLiveness {
			return 200
		}
	}
	return 503
}

var (
	bodyPass = `{"status":"pass"}` + "\n"
	bodyFail = `{"status":"fail"}` + "\n"
)

func publicBody(code int) string {
	if code == 200 {
		return bodyPass
	}
	return bodyFail
}

// rebuildLocked recomputes and publishes the view of k. It returns the
// endpoint's status change, if any.
func (h *Health) rebuildLocked(k Kind) *Change {
	g := h.groups[k]
	rs := make([]result, len(g.checks))
	for i, c := range g.checks {
		rs[i] = result{
			name: c.cfg.Name, critical: !c.cfg.SkipOnErr, status: c.status,
			duration: c.duration, at: c.at, since: c.since,
		}
		if c.err != nil {
			rs[i].err = truncate(c.err.Error(), maxErrLen)
		}
	}
	slices.SortFunc(rs, func(a, b result) int { return strings.Compare(a.name, b.name) })
	st, reason := h.gateLocked(k, aggregate(rs, nil))
	code := httpCode(k, st)
	body := publicBody(code)
	v := &view{
		status: st, code: code, body: []byte(body),
		clen:   []string{strconv.Itoa(len(body))},
		reason: reason, checks: rs,
	}
	h.views[k].Store(v)
	if g.status == st {
		return nil
	}
	ch := &Change{Kind: k, From: g.status, To: st, At: time.Now()}
	g.status = st
	return ch
}

// report logs and publishes changes. Called without h.mu held.
func (h *Health) report(changes ...Change) {
	for _, ch := range changes {
		if l := h.opts.Logger; l != nil {
			level := slog.LevelInfo
			if ch.To == StatusFail || ch.To == StatusWarn {
				level = slog.LevelWarn
			}
			attrs := []slog.Attr{
				slog.String("endpoint", ch.Kind.String()),
				slog.String("from", ch.From.String()),
				slog.String("to", ch.To.String()),
			}
			if ch.Check != "" {
				attrs = append(attrs, slog.String("check", ch.Check))
			}
			if ch.Err != nil {
				attrs = append(attrs, slog.String("error", truncate(ch.Err.Error(), maxErrLen)))
			}
			l.LogAttrs(context.Background(), level, "health: status changed", attrs...)
		}
		if h.opts.OnChange != nil {
			h.opts.OnChange(ch)
		}
	}
}

// truncate cuts s to at most n bytes on a rune boundary and makes it valid UTF-8.
func truncate(s string, n int) string {
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
