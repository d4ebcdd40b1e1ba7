package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/auth"
	"github.com/phiguard/phiguard/phimask"
)

// reqCtx is what the middleware knows about one request.
type reqCtx struct {
	id        string
	principal *auth.Principal
	route     route
	entities  []auditlog.Entity
	start     time.Time
	audited   bool
	auditErr  error
	r         *http.Request
}

// apiError is an error with a fixed, PHI-free message for the client. The
// server never echoes request content (field names, values, paths) in
// errors: any of them may hold PHI.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

var (
	errNotFound        = &apiError{http.StatusNotFound, "not found"}
	errBadID           = &apiError{http.StatusBadRequest, "invalid id"}
	errMalformedJSON   = &apiError{http.StatusBadRequest, "malformed JSON body"}
	errUnknownField    = &apiError{http.StatusBadRequest, "unknown field in JSON body"}
	errTooLarge        = &apiError{http.StatusRequestEntityTooLarge, "request body too large"}
	errMediaType       = &apiError{http.StatusUnsupportedMediaType, "unsupported content type"}
	errUnauthenticated = &apiError{http.StatusUnauthorized, "authentication required"}
	errForbidden       = &apiError{http.StatusForbidden, "forbidden"}
	errAuditDown       = &apiError{http.StatusServiceUnavailable, "audit trail unavailable: request refused"}
	errInternal        = &apiError{http.StatusInternalServerError, "internal error"}
	errNotConfigured   = &apiError{http.StatusNotImplemented, "not configured"}
)

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap applies the per-request pipeline: request ID, authentication,
// authorization (deny by default), the handler, one audit event, and a
// PHI-safe access log line.
//
// It does not use auditlog.Middleware, which records after the response:
// here a PHI response is held back until its event is recorded (fail
// closed), which needs the handler's result before anything is written.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rc := &reqCtx{id: requestID(), route: rt, start: time.Now(), r: r}
		w := &statusWriter{ResponseWriter: rw}
		w.Header().Set("X-Request-ID", rc.id)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		defer s.accessLog(w, rc)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					s.auditAfter(r.Context(), rc, http.StatusInternalServerError)
					panic(p)
				}
				// The panic value may hold PHI: log only its type.
				s.cfg.Logger.ErrorContext(r.Context(), "handler panic", "request_id", rc.id, "panic_type", fmt.Sprintf("%T", p))
				if w.status == 0 {
					s.writeError(w, rc, errInternal)
				}
				s.auditAfter(r.Context(), rc, http.StatusInternalServerError)
			}
		}()

		if err := s.authorize(r, rc); err != nil {
			s.writeError(w, rc, err)
			s.auditAfter(r.Context(), rc, w.status)
			return
		}
		status, body, err := rt.handle(w, r, rc)
		switch {
		case err != nil:
			s.writeError(w, rc, err)
			s.auditAfter(r.Context(), rc, w.status)
		case status == 0: // the handler streamed its response after auditing
			if !rc.audited {
				s.auditAfter(r.Context(), rc, w.status)
			}
		default:
			// Fail closed: PHI leaves only once its access is on the trail.
			if aerr := s.audit(r.Context(), rc, status); aerr != nil && rt.phi {
				s.writeError(w, rc, errAuditDown)
				return
			}
			writeJSON(w, status, body)
		}
	})
}

func (s *Server) authorize(r *http.Request, rc *reqCtx) error {
	if rc.route.roles == nil {
		return nil // the not-found route: nothing to protect
	}
	raw, err := auth.BearerToken(r)
	if err != nil {
		return errUnauthenticated
	}
	p, err := s.cfg.Verifier.Verify(r.Context(), raw)
	if err != nil {
		// A fixed reason only: go-oidc's messages quote claim values, which
		// the caller chose.
		s.cfg.Logger.InfoContext(r.Context(), "token rejected", "request_id", rc.id, "reason", auth.Reason(err))
		return errUnauthenticated
	}
	rc.principal = p
	if !p.Has(rc.route.roles...) {
		return errForbidden
	}
	return nil
}

// audit records the request's event once. Handlers that stream call it
// before the first byte of PHI is written.
func (s *Server) audit(ctx context.Context, rc *reqCtx, status int) error {
	if rc.audited {
		return rc.auditErr
	}
	rc.audited = true
	rc.auditErr = s.cfg.Audit.Record(ctx, s.event(rc, status))
	if rc.auditErr != nil {
		s.cfg.Logger.ErrorContext(ctx, "audit record failed", "request_id", rc.id, "error", rc.auditErr)
	}
	return rc.auditErr
}

// auditAfter records the event of a request whose response is already
// decided (errors, denials). A failure is logged and counted by auditlog.
func (s *Server) auditAfter(ctx context.Context, rc *reqCtx, status int) {
	// The client may have gone; the event must still be written.
	_ = s.audit(context.WithoutCancel(ctx), rc, status)
}

func (s *Server) event(rc *reqCtx, status int) auditlog.Event {
	e := auditlog.Event{
		Type:      auditlog.TypeRESTful,
		Subtype:   []auditlog.Coding{{System: auditlog.SystemFHIRInteract, Code: interaction(rc.route.action)}},
		Action:    rc.route.action,
		Outcome:   outcome(status),
		RequestID: rc.id,
		Observer:  auditlog.Observer{Service: s.cfg.Service, Instance: s.cfg.Instance},
		Entities:  rc.entities,
		Actor: auditlog.Actor{
			ID:        "anonymous",
			ClientIP:  clientIP(rc.r),
			UserAgent: rc.r.UserAgent(),
			Requestor: true,
		},
	}
	e.OutcomeDesc = strconv.Itoa(status) + " " + http.StatusText(status)
	if p := rc.principal; p != nil {
		e.Actor.ID = p.Subject
		for _, role := range p.Roles {
			e.Actor.Roles = append(e.Actor.Roles, string(role))
		}
		e.PurposeOfUse = purpose(p)
	}
	return e
}

func interaction(a auditlog.Action) string {
	switch a {
	case auditlog.ActionCreate:
		return "create"
	case auditlog.ActionRead:
		return "read"
	case auditlog.ActionUpdate:
		return "update"
	case auditlog.ActionDelete:
		return "delete"
	}
	return "operation"
}

func outcome(status int) auditlog.Outcome {
	switch {
	case status < 400:
		return auditlog.OutcomeSuccess
	case status < 500:
		return auditlog.OutcomeMinorFailure
	}
	return auditlog.OutcomeSeriousFailure
}

// purpose maps the caller's role to a v3-ActReason purpose of use.
func purpose(p *auth.Principal) []string {
	switch {
	case p.Has(auth.RoleClinician):
		return []string{"TREAT"}
	case p.Has(auth.RoleAuditor):
		return []string{"HCOMPL"}
	case p.Has(auth.RoleService):
		return []string{"HOPERAT"}
	}
	return nil
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// requestID makes a fresh ID for every request. A caller's X-Request-ID is
// not reused: it is caller-chosen text copied into every log line and audit
// event, and no check can prove such text free of PHI (a bare nine-digit
// number may be an SSN).
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) writeError(w http.ResponseWriter, rc *reqCtx, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		s.cfg.Logger.ErrorContext(rc.r.Context(), "request failed", "request_id", rc.id, "error", err)
		ae = errInternal
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, ae.status, map[string]string{"error": ae.msg, "request_id": rc.id})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// accessLog writes one line per request: never bodies, never raw URLs.
func (s *Server) accessLog(w *statusWriter, rc *reqCtx) {
	actor := "anonymous"
	if rc.principal != nil {
		actor = s.tokens.Token(phimask.KindID, rc.principal.Subject)
	}
	s.cfg.Logger.LogAttrs(rc.r.Context(), slog.LevelInfo, "request",
		slog.String("request_id", rc.id),
		slog.String("method", rc.r.Method),
		slog.String("route", rc.r.Pattern),
		slog.String("url", phimask.RedactURL(rc.r.URL)),
		slog.Int("status", w.status),
		slog.Int64("bytes", w.bytes),
		slog.Duration("duration", time.Since(rc.start)),
		slog.String("actor", actor),
	)
}
