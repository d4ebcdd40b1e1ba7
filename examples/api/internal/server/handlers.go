package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/model"
	"github.com/phiguard/phiguard/phimask"
	"github.com/phiguard/phiguard/storage"
)

// Patient is a patient record. Every field is PHI: it is stored encrypted
// and never logged, audited or echoed in an error.
type Patient struct {
	Name      string `json:"name"`
	BirthDate string `json:"birth_date"`
	MRN       string `json:"mrn"`
	SSN       string `json:"ssn"`
	Phone     string `json:"phone"`
	Email     string `json:"email"`
	Address   string `json:"address"`
	Notes     string `json:"notes"`
}

func (p *Patient) validate() error {
	if p.Name == "" || len(p.Name) > 200 {
		return &apiError{http.StatusUnprocessableEntity, "name is required (at most 200 bytes)"}
	}
	d, err := time.Parse(time.DateOnly, p.BirthDate)
	if err != nil || d.After(time.Now()) || d.Year() < 1880 {
		return &apiError{http.StatusUnprocessableEntity, "birth_date must be a past date as YYYY-MM-DD"}
	}
	for _, f := range []string{p.MRN, p.SSN, p.Phone, p.Email, p.Address} {
		if len(f) > 500 {
			return &apiError{http.StatusUnprocessableEntity, "a field is longer than 500 bytes"}
		}
	}
	if len(p.Notes) > 16<<10 {
		return &apiError{http.StatusUnprocessableEntity, "notes longer than 16 KiB"}
	}
	return nil
}

// IDs are random UUIDs: opaque, never derived from PHI, and of a shape that
// phimask and storage accept as object names.
var idPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func patientObject(id string) string       { return "patients/" + id + "/record.json" }
func documentObject(id, doc string) string { return "patients/" + id + "/documents/" + doc }

func patientEntity(id string) auditlog.Entity {
	return auditlog.Entity{Type: "Patient", Identifier: id, Kind: phimask.KindID, Role: "1"}
}

func documentEntity(doc string) auditlog.Entity {
	return auditlog.Entity{Type: "DocumentReference", Identifier: doc, Kind: phimask.KindID, Role: "3"}
}

// pathID returns the named path value when it is a well-formed ID.
func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if !idPattern.MatchString(id) {
		return "", errBadID
	}
	return id, nil
}

// decodeJSON decodes exactly one JSON object with no unknown fields from a
// body of at most limit bytes. Its errors are fixed strings: Go's decoder
// messages quote field names and values, which may be PHI.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errMediaType
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err == nil {
			return errMalformedJSON
		}
		return jsonError(err)
	}
	return nil
}

func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errTooLarge
	case isUnknownField(err):
		return errUnknownField
	}
	return errMalformedJSON
}

func isUnknownField(err error) bool {
	// encoding/json has no typed error for unknown fields; its message
	// starts with this fixed prefix.
	const prefix = "json: unknown field "
	return len(err.Error()) > len(prefix) && err.Error()[:len(prefix)] == prefix
}

func (s *Server) createPatient(w http.ResponseWriter, r *http.Request, rc *reqCtx) (int, any, error) {
	var p Patient
	if err := decodeJSON(w, r, s.cfg.MaxJSONBytes, &p); err != nil {
		return 0, nil, err
	}
	if err := p.validate(); err != nil {
		return 0, nil, err
	}
	body, err := json.Marshal(&p)
	if err != nil {
		return 0, nil, err
	}
	id := newID()
	rc.entities = []auditlog.Entity{patientEntity(id)}
	if _, err := s.cfg.Store.Put(r.Context(), patientObject(id), bytesReader(body), &storage.PutOptions{NoOverwrite: true}); err != nil {
		return 0, nil, fmt.Errorf("store patient: %w", err)
	}
	if err := s.auditOrUndo(r, rc, http.StatusCreated, patientObject(id)); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]string{"id": id}, nil
}

func (s *Server) getPatient(w http.ResponseWriter, r *http.Request, rc *reqCtx) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	rc.entities = []auditlog.Entity{patientEntity(id)}
	p, err := s.loadPatient(r, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		ID string `json:"id"`
		*Patient
	}{id, p}, nil
}

func (s *Server) loadPatient(r *http.Request, id string) (*Patient, error) {
	rd, _, err := s.cfg.Store.Get(r.Context(), patientObject(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load patient: %w", err)
	}
	defer rd.Close()
	var p Patient
	if err := json.NewDecoder(io.LimitReader(rd, 1<<20)).Decode(&p); err != nil {
		return nil, fmt.Errorf("decode patient: %w", err)
	}
	return &p, nil
}

// Document content types the API stores; anything else is refused (415).
var documentTypes = map[string]bool{
	"application/pdf": true, "text/plain": true, "application/octet-stream": true,
	"image/png": true, "image/jpeg": true, "application/dicom": true, "application/fhir+json": true,
}

func (s *Server) createDocument(w http.ResponseWriter, r *http.Request, rc *reqCtx) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	rc.entities = []auditlog.Entity{patientEntity(id)}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || !documentTypes[mt] {
		return 0, nil, errMediaType
	}
	if r.ContentLength > s.cfg.MaxDocumentBytes {
		return 0, nil, errTooLarge
	}
	if _, err := s.loadPatient(r, id); err != nil {
		return 0, nil, err
	}
	doc := newID()
	rc.entities = append(rc.entities, documentEntity(doc))
	// Streamed: storage encrypts block by block, never holding the whole
	// document; a body over the limit fails the Put and leaves no object.
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxDocumentBytes)
	opts := &storage.PutOptions{NoOverwrite: true}
	if r.ContentLength > 0 {
		opts.Size = r.ContentLength
	}
	obj, err := s.cfg.Store.Put(r.Context(), documentObject(id, doc), body, opts)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return 0, nil, errTooLarge
		}
		return 0, nil, fmt.Errorf("store document: %w", err)
	}
	if err := s.auditOrUndo(r, rc, http.StatusCreated, documentObject(id, doc)); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"id": doc, "size": obj.Size}, nil
}

func (s *Server) getDocument(w http.ResponseWriter, r *http.Request, rc *reqCtx) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	doc, err := pathID(r, "doc")
	if err != nil {
		return 0, nil, err
	}
	rc.entities = []auditlog.Entity{patientEntity(id), documentEntity(doc)}
	rd, obj, err := s.cfg.Store.Get(r.Context(), documentObject(id, doc))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil, errNotFound
	}
	if err != nil {
		return 0, nil, fmt.Errorf("open document: %w", err)
	}
	defer rd.Close()
	if err := s.audit(r.Context(), rc, http.StatusOK); err != nil {
		return 0, nil, errAuditDown
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rd); err != nil {
		// Tampered or unreadable past the first region: the success event is
		// already on the trail, so a second event records the failure; then
		// cut the connection so the client cannot mistake a partial body for
		// the document.
		s.cfg.Logger.ErrorContext(r.Context(), "document stream failed", "request_id", rc.id, "error", err)
		if aerr := s.cfg.Audit.Record(context.WithoutCancel(r.Context()), s.event(rc, http.StatusInternalServerError)); aerr != nil {
			s.cfg.Logger.ErrorContext(r.Context(), "audit record failed", "request_id", rc.id, "error", aerr)
		}
		panic(http.ErrAbortHandler)
	}
	return 0, nil, nil
}

// auditOrUndo records a create before its response is released. When the
// trail cannot record it, the new object is deleted again: PHI must not be
// stored by a request whose access is not on the trail.
func (s *Server) auditOrUndo(r *http.Request, rc *reqCtx, status int, object string) error {
	if err := s.audit(r.Context(), rc, status); err != nil {
		if derr := s.cfg.Store.Delete(context.WithoutCancel(r.Context()), object); derr != nil {
			s.cfg.Logger.ErrorContext(r.Context(), "unaudited object could not be deleted", "request_id", rc.id, "error", derr)
		}
		return errAuditDown
	}
	return nil
}

// PredictRequest asks for a readmission risk. PatientID, when given, is
// recorded (as a token) in the audit event.
type PredictRequest struct {
	PatientID string             `json:"patient_id,omitempty"`
	Features  map[string]float64 `json:"features"`
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request, rc *reqCtx) (int, any, error) {
	var req PredictRequest
	if err := decodeJSON(w, r, s.cfg.MaxJSONBytes, &req); err != nil {
		return 0, nil, err
	}
	if req.PatientID != "" {
		if !idPattern.MatchString(req.PatientID) {
			return 0, nil, errBadID
		}
		rc.entities = []auditlog.Entity{patientEntity(req.PatientID)}
	}
	risk, err := s.cfg.Model.Score(req.Features)
	if err != nil {
		var ie *model.InputError
		if errors.As(err, &ie) {
			if ie.Reason == model.ReasonUnknown {
				// The name came from the request: do not echo it.
				return 0, nil, &apiError{http.StatusUnprocessableEntity, "unknown feature"}
			}
			return 0, nil, &apiError{http.StatusUnprocessableEntity, ie.Error()}
		}
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"risk": risk, "model": s.cfg.Model.Name, "version": s.cfg.Model.Version,
	}, nil
}

func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, rc *reqCtx) (int, any, error) {
	if s.cfg.Query == nil {
		return 0, nil, errNotConfigured
	}
	q := r.URL.Query()
	eq := EventQuery{PatientID: q.Get("patient"), UserID: q.Get("user"), Limit: 1000}
	if (eq.PatientID == "") == (eq.UserID == "") {
		return 0, nil, &apiError{http.StatusBadRequest, "give exactly one of patient or user"}
	}
	if eq.PatientID != "" {
		if !idPattern.MatchString(eq.PatientID) {
			return 0, nil, errBadID
		}
		rc.entities = []auditlog.Entity{patientEntity(eq.PatientID)}
	}
	var err error
	if eq.From, err = parseTime(q.Get("from"), time.Now().Add(-30*24*time.Hour)); err != nil {
		return 0, nil, err
	}
	if eq.To, err = parseTime(q.Get("to"), time.Now().Add(time.Minute)); err != nil {
		return 0, nil, err
	}
	if !eq.From.Before(eq.To) {
		return 0, nil, &apiError{http.StatusBadRequest, "from must be before to"}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return 0, nil, &apiError{http.StatusBadRequest, "limit must be 1..10000"}
		}
		eq.Limit = n
	}
	events, err := s.cfg.Query.Events(r.Context(), eq)
	if errors.Is(err, auditlog.ErrTooManyRows) {
		return 0, nil, &apiError{http.StatusUnprocessableEntity, "too many events: narrow from and to"}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("audit query: %w", err)
	}
	return http.StatusOK, map[string]any{"events": events, "count": len(events)}, nil
}

func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &apiError{http.StatusBadRequest, "times must be RFC 3339"}
	}
	return t, nil
}
