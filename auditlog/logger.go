package auditlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phiguard/phiguard/phimask"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNoKey: Options.PseudonymKey is missing or shorter than MinKeyLen.
	ErrNoKey = errors.New("auditlog: pseudonym key missing or shorter than 32 bytes")
	// ErrNoSink: New was called without a sink.
	ErrNoSink = errors.New("auditlog: no sink")
	// ErrInvalidEvent: the event lacks a required element.
	ErrInvalidEvent = errors.New("auditlog: invalid event")
	// ErrClosed: the logger or sink is closed.
	ErrClosed = errors.New("auditlog: closed")
	// ErrTampered: the trail does not verify (modified, missing, inserted,
	// reordered or forged data, or a bad signature).
	ErrTampered = errors.New("auditlog: trail does not verify")
	// ErrRollback: the trail is older than a checkpoint seen elsewhere.
	ErrRollback = errors.New("auditlog: trail rolled back behind a trusted checkpoint")
	// ErrLocked: another writer holds the trail folder.
	ErrLocked = errors.New("auditlog: trail folder is in use by another writer")
	// ErrUnavailable: a sink cannot currently deliver (see Check).
	ErrUnavailable = errors.New("auditlog: sink unavailable")
)

// MinKeyLen is the minimum length of Options.PseudonymKey.
const MinKeyLen = 32

// Sink receives recorded events as JSON lines. Implementations must be safe
// for concurrent use.
//
// Write is given one event encoded as a JSON object without trailing newline;
// the slice is the sink's to keep and is never modified afterwards. Write
// returns nil only once the event is as durable as the sink promises (see each
// sink). Check reports whether the sink can accept and deliver events now.
// Close flushes and releases the sink; the Logger closes its sinks.
type Sink interface {
	Write(ctx context.Context, line []byte) error
	Check(ctx context.Context) error
	Close() error
}

// Options configure a Logger. The zero value is not usable on its own: a
// PseudonymKey is required, because without it the trail would either hold
// raw identifiers or tokens nobody can match to the service's logs.
type Options struct {
	// PseudonymKey is the phimask token key (at least 32 bytes), the same key
	// the service's phimask log handler uses, so an auditor holding it can
	// match an audit event to a log line. Required: New fails with ErrNoKey.
	PseudonymKey []byte

	// Observer fills Event.Observer fields the caller leaves empty.
	Observer Observer

	// FailOpen makes a failed Record count the failure (Stats.Failed) and
	// return nil. The default (false) returns the error: a request touching
	// PHI whose access cannot be audited must not proceed.
	FailOpen bool

	// KeepClientIP keeps Actor.ClientIP as given instead of its token.
	KeepClientIP bool

	// Now returns the current time; time.Now when nil (tests set it).
	Now func() time.Time
}

// Stats counts Record outcomes since New.
type Stats struct {
	Recorded uint64 // events accepted by every sink
	Failed   uint64 // events at least one sink refused
}

// Logger records audit events to its sinks. It is safe for concurrent use.
// Close it to flush and close the sinks.
type Logger struct {
	opts     Options
	tokens   *phimask.Tokenizer // keyed with Options.PseudonymKey
	sinks    []Sink
	recorded atomic.Uint64
	failed   atomic.Uint64

	closeOnce sync.Once
	closed    atomic.Bool
	closeErr  error
}

// New returns a Logger writing to sinks, which it owns from then on (Close
// closes them). It fails closed: ErrNoKey without a valid PseudonymKey,
// ErrNoSink without a sink.
func New(opts *Options, sinks ...Sink) (*Logger, error) {
	if opts == nil || len(opts.PseudonymKey) < MinKeyLen {
		return nil, ErrNoKey
	}
	if len(sinks) == 0 {
		return nil, ErrNoSink
	}
	for i, s := range sinks {
		if s == nil {
			return nil, fmt.Errorf("%w: sink %d is nil", ErrNoSink, i)
		}
	}
	l := &Logger{opts: *opts, sinks: append([]Sink(nil), sinks...)}
	l.tokens = phimask.NewTokenizer(opts.PseudonymKey)
	l.opts.PseudonymKey = nil // the Tokenizer holds its own copy: keep one
	if l.opts.Now == nil {
		l.opts.Now = time.Now
	}
	return l, nil
}

// Record pseudonymizes e, fills its ID and time when empty, and writes it to
// every sink. It returns nil once every sink has accepted the event (for a
// sync file sink: once it is on disk). With FailOpen a sink error is counted
// and nil returned; an invalid event is always an error.
func (l *Logger) Record(ctx context.Context, e Event) error {
	if l.closed.Load() {
		return l.fail(ErrClosed)
	}
	line, err := l.encode(&e)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range l.sinks {
		if err := s.Write(ctx, line); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return l.fail(fmt.Errorf("auditlog: record: %w", errors.Join(errs...)))
	}
	l.recorded.Add(1)
	return nil
}

func (l *Logger) fail(err error) error {
	l.failed.Add(1)
	if l.opts.FailOpen {
		return nil
	}
	return err
}

// encode validates, pseudonymizes and marshals e (a copy).
func (l *Logger) encode(e *Event) ([]byte, error) {
	if e.ID == "" {
		id, err := newEventID()
		if err != nil {
			return nil, l.fail(err)
		}
		e.ID = id
	}
	if e.Time.IsZero() {
		e.Time = l.opts.Now()
	}
	e.Time = e.Time.UTC()
	if e.Observer.Service == "" {
		e.Observer.Service = l.opts.Observer.Service
	}
	if e.Observer.Instance == "" {
		e.Observer.Instance = l.opts.Observer.Instance
	}
	if e.Observer.Site == "" {
		e.Observer.Site = l.opts.Observer.Site
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	if !e.Actor.Requestor {
		e.Actor.Requestor = true
	}
	l.scrub(e)
	return appendEvent(make([]byte, 0, 1024), e), nil
}

// scrub replaces PHI-bearing fields by tokens or redacted text. Slices it
// changes are copied so the caller's event is left alone.
func (l *Logger) scrub(e *Event) {
	if len(e.Entities) > 0 {
		ents := make([]Entity, len(e.Entities))
		for i, en := range e.Entities {
			kind := en.Kind
			if kind == "" {
				kind = phimask.KindID
			}
			en.Identifier = l.tokens.Token(kind, en.Identifier)
			en.Type = phimask.Redact(en.Type)
			ents[i] = en
		}
		e.Entities = ents
	}
	e.Type.Display = phimask.Redact(e.Type.Display)
	if len(e.Subtype) > 0 {
		sub := make([]Coding, len(e.Subtype))
		for i, c := range e.Subtype {
			c.Display = phimask.Redact(c.Display)
			sub[i] = c
		}
		e.Subtype = sub
	}
	if e.Actor.ClientIP != "" && !l.opts.KeepClientIP {
		e.Actor.ClientIP = l.tokens.Token(phimask.KindIP, e.Actor.ClientIP)
	}
	e.Actor.UserAgent = phimask.Redact(e.Actor.UserAgent)
	e.OutcomeDesc = phimask.Redact(e.OutcomeDesc)
	e.RequestID = phimask.Redact(e.RequestID)
	e.TraceID = phimask.Redact(e.TraceID)
}

// Token returns the token Record writes for an entity identifier of this
// kind (KindID when empty), for looking a patient up in the trail.
func (l *Logger) Token(kind phimask.Kind, identifier string) string {
	if kind == "" {
		kind = phimask.KindID
	}
	return l.tokens.Token(kind, identifier)
}

// Stats returns the counters since New.
func (l *Logger) Stats() Stats {
	return Stats{Recorded: l.recorded.Load(), Failed: l.failed.Load()}
}

// Check returns nil when every sink can accept and deliver events: use it as
// a readiness check (a pod that cannot audit should not take PHI traffic).
func (l *Logger) Check(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	var errs []error
	for _, s := range l.sinks {
		if err := s.Check(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("auditlog: check: %w", errors.Join(errs...))
	}
	return nil
}

// Close flushes and closes every sink. Records after Close fail with
// ErrClosed. Close is idempotent; concurrent Records finish before the sinks
// close only if they entered their sink first.
func (l *Logger) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		var errs []error
		for _, s := range l.sinks {
			if err := s.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			l.closeErr = fmt.Errorf("auditlog: close: %w", errors.Join(errs...))
		}
	})
	return l.closeErr
}
