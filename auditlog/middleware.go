package auditlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Describe tells the middleware what a request is about. It is called after
// the handler has run, with the request (as the handler left its context)
// and the response status. It returns the event to record (the middleware
// fills time, outcome, client IP, user agent, request ID and trace ID when
// left empty) and ok false for a request that needs no audit event (health
// probes, static files).
type Describe func(r *http.Request, status int) (e Event, ok bool)

// MiddlewareOptions configure Middleware.
type MiddlewareOptions struct {
	// OnError is called when an event cannot be recorded after the
	// response. The response is already sent by then: a service that must
	// not serve PHI without an audit trail should check Logger.Check in its
	// readiness probe and record before the response for the riskiest
	// operations. The error holds no PHI. Nil ignores the error (it is also
	// counted in Logger.Stats).
	OnError func(r *http.Request, err error)
	// RequestIDHeader is read for Event.RequestID ("X-Request-ID" if empty).
	// Its value is scrubbed with phimask.Redact, but a detector cannot tell
	// every identifier from an opaque ID (a bare nine-digit number may be an
	// SSN): name a header that only a trusted proxy sets, or have describe
	// set Event.RequestID to an ID the service made itself.
	RequestIDHeader string
}

// Middleware returns an http.Handler that runs next and then records one
// event per request through l, with the HTTP status mapped to the outcome:
// below 400 success, 4xx minor failure (401, 403 and 404 included: denied
// accesses), 5xx serious failure, a handler panic major failure (the panic
// is re-raised after recording).
func Middleware(l *Logger, describe Describe, opts *MiddlewareOptions, next http.Handler) http.Handler {
	o := MiddlewareOptions{}
	if opts != nil {
		o = *opts
	}
	if o.RequestIDHeader == "" {
		o.RequestIDHeader = "X-Request-ID"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		panicked := true
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			var pv any
			if panicked {
				pv = recover()
				status = http.StatusInternalServerError
			}
			e, ok := describe(r, status)
			if ok {
				if e.Time.IsZero() {
					e.Time = start
				}
				if e.Outcome == OutcomeSuccess {
					e.Outcome = outcomeFor(status, panicked)
				}
				if e.Actor.ClientIP == "" {
					e.Actor.ClientIP = clientIP(r)
				}
				if e.Actor.UserAgent == "" {
					e.Actor.UserAgent = r.UserAgent()
				}
				if e.RequestID == "" {
					e.RequestID = r.Header.Get(o.RequestIDHeader)
				}
				if e.TraceID == "" {
					e.TraceID = traceID(r.Header.Get("traceparent"))
				}
				// The client may be gone; the event must still be recorded.
				if err := l.Record(context.WithoutCancel(r.Context()), e); err != nil && o.OnError != nil {
					o.OnError(r, err)
				}
			}
			// pv is nil only after runtime.Goexit (panic(nil) recovers as a
			// *runtime.PanicNilError): let Goexit go on unwinding.
			if panicked && pv != nil {
				panic(pv)
			}
		}()
		next.ServeHTTP(rec, r)
		panicked = false
	})
}

func outcomeFor(status int, panicked bool) Outcome {
	switch {
	case panicked:
		return OutcomeMajorFailure
	case status >= 500:
		return OutcomeSeriousFailure
	case status >= 400:
		return OutcomeMinorFailure
	}
	return OutcomeSuccess
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// traceID takes the trace ID of a W3C traceparent header.
func traceID(tp string) string {
	if len(tp) >= 55 && tp[2] == '-' && tp[35] == '-' {
		return tp[3:35]
	}
	return ""
}

// statusRecorder captures the status code; it keeps Flush and Hijack
// working for handlers that need them.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("auditlog: response writer does not support hijacking")
	}
	c, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("auditlog: hijack: %w", err)
	}
	return c, rw, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
