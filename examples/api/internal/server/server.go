// Package server is the HTTP API of the reference service: routes, access
// control, PHI-safe access logging and one audit event per request.
package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/auth"
	"github.com/phiguard/phiguard/examples/api/internal/model"
	"github.com/phiguard/phiguard/phimask"
	"github.com/phiguard/phiguard/storage"
)

// Store is the part of *storage.Store the API uses.
type Store interface {
	Put(ctx context.Context, name string, r io.Reader, opts *storage.PutOptions) (*storage.Object, error)
	Get(ctx context.Context, name string) (io.ReadCloser, *storage.Object, error)
	Delete(ctx context.Context, name string) error
}

// Auditor records audit events; *auditlog.Logger implements it.
type Auditor interface {
	Record(ctx context.Context, e auditlog.Event) error
	Check(ctx context.Context) error
}

// AuditQuery answers the auditor's questions; see NewTrailQuery and
// NewWorkspaceQuery.
type AuditQuery interface {
	Events(ctx context.Context, q EventQuery) ([]auditlog.AuditRow, error)
}

// EventQuery selects audit events. Exactly one of PatientID and UserID is
// set; PatientID is the raw ID and is turned into its token by the query.
type EventQuery struct {
	PatientID string
	UserID    string
	From, To  time.Time
	Limit     int
}

// Config holds the server's collaborators. Every field but AuditQuery is
// required.
type Config struct {
	Logger   *slog.Logger // already behind phimask.Handler
	Store    Store
	Audit    Auditor
	Query    AuditQuery // nil: GET /v1/audit/events answers 501
	Verifier auth.Verifier
	Model    *model.Model
	// TokenKey pseudonymizes actors in the access log (phimask.Tokenize).
	TokenKey []byte
	// Service names the observer in audit events.
	Service, Instance string
	// MaxJSONBytes bounds JSON bodies (default 64 KiB); MaxDocumentBytes
	// bounds documents (default 256 MiB).
	MaxJSONBytes, MaxDocumentBytes int64
}

// Server is the API's http.Handler.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	tokens *phimask.Tokenizer // actor pseudonyms in the access log
}

// New returns the API handler.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Logger == nil, cfg.Store == nil, cfg.Audit == nil, cfg.Verifier == nil, cfg.Model == nil:
		return nil, errors.New("server: logger, store, audit, verifier and model are required")
	case len(cfg.TokenKey) < 32:
		return nil, errors.New("server: token key must be at least 32 bytes")
	}
	if cfg.MaxJSONBytes <= 0 {
		cfg.MaxJSONBytes = 64 << 10
	}
	if cfg.MaxDocumentBytes <= 0 {
		cfg.MaxDocumentBytes = 256 << 20
	}
	if cfg.Service == "" {
		cfg.Service = "phiguard-api"
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), tokens: phimask.NewTokenizer(cfg.TokenKey)}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route describes one endpoint: who may call it and what it audits.
type route struct {
	pattern string
	roles   []auth.Role
	action  auditlog.Action
	phi     bool // touches PHI: refused when the audit trail is down
	handle  func(w http.ResponseWriter, r *http.Request, rc *reqCtx) (int, any, error)
}

func (s *Server) routes() {
	clin := []auth.Role{auth.RoleClinician}
	for _, rt := range []route{
		{"POST /v1/patients", clin, auditlog.ActionCreate, true, s.createPatient},
		{"GET /v1/patients/{id}", clin, auditlog.ActionRead, true, s.getPatient},
		{"POST /v1/patients/{id}/documents", clin, auditlog.ActionCreate, true, s.createDocument},
		{"GET /v1/patients/{id}/documents/{doc}", clin, auditlog.ActionRead, true, s.getDocument},
		{"POST /v1/predict/readmission", []auth.Role{auth.RoleClinician, auth.RoleService}, auditlog.ActionExecute, true, s.predict},
		{"GET /v1/audit/events", []auth.Role{auth.RoleAuditor}, auditlog.ActionRead, true, s.auditEvents},
	} {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	// Everything else: 404 through the same logging and audit path.
	s.mux.Handle("/", s.wrap(route{pattern: "/", action: auditlog.ActionRead, handle: notFound}))
}

func notFound(http.ResponseWriter, *http.Request, *reqCtx) (int, any, error) {
	return 0, nil, errNotFound
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
