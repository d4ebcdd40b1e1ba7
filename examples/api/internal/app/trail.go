package app

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/server"
	"github.com/phiguard/phiguard/phimask"
)

// TrailQuery answers the auditor from the local trail. It verifies the
// whole trail first (signatures, Merkle tree, no gap), so a tampered trail
// yields an error, not a quietly wrong answer.
type TrailQuery struct {
	Dir    string
	Public ed25519.PublicKey
	Audit  *auditlog.Logger // for the patient ID's token
}

// maxLine bounds one event line when scanning.
const maxLine = 1 << 20

// Events implements server.AuditQuery.
func (q *TrailQuery) Events(ctx context.Context, eq server.EventQuery) ([]auditlog.AuditRow, error) {
	src := auditlog.DirSource(q.Dir)
	report, err := auditlog.VerifySource(ctx, src, q.Public, nil)
	if err != nil {
		return nil, fmt.Errorf("app: audit trail: %w", err)
	}
	// Only the events the verification covered: a line being written now
	// (or appended after the check) is neither read nor returned.
	remaining := report.Events
	var token string
	if eq.PatientID != "" {
		token = q.Audit.Token(phimask.KindID, eq.PatientID)
	}
	segs, err := src.Segments(ctx)
	if err != nil {
		return nil, fmt.Errorf("app: audit trail: %w", err)
	}
	var out []auditlog.AuditRow
	for _, n := range segs {
		if remaining <= 0 {
			break
		}
		if err := scanSegment(ctx, src, n, &remaining, func(e *auditlog.Event) bool {
			if e.Time.Before(eq.From) || !e.Time.Before(eq.To) || !matches(e, eq, token) {
				return true
			}
			out = append(out, row(e))
			return len(out) < eq.Limit
		}); err != nil {
			return nil, err
		}
		if len(out) >= eq.Limit {
			break
		}
	}
	return out, nil
}

func matches(e *auditlog.Event, eq server.EventQuery, token string) bool {
	if eq.UserID != "" {
		return e.Actor.ID == eq.UserID
	}
	for _, ent := range e.Entities {
		if ent.Identifier == token {
			return true
		}
	}
	return false
}

// scanSegment decodes the events of segment n, at most *remaining of them.
func scanSegment(ctx context.Context, src auditlog.Source, n int64, remaining *int64, yield func(*auditlog.Event) bool) error {
	rc, err := src.OpenEvents(ctx, n)
	if err != nil {
		return fmt.Errorf("app: audit segment: %w", err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for *remaining > 0 && sc.Scan() {
		*remaining--
		var e auditlog.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return errors.New("app: audit segment: undecodable event")
		}
		if !yield(&e) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("app: audit segment: %w", err)
	}
	return nil
}

// row maps a trail event to the typed row the workspace reports return, so
// the auditor's endpoint answers the same shape from either source.
func row(e *auditlog.Event) auditlog.AuditRow {
	r := auditlog.AuditRow{
		Time: e.Time, EventID: e.ID, Action: e.Action, Outcome: e.Outcome, TypeCode: e.Type.Code,
		ActorID: e.Actor.ID, ActorRoles: e.Actor.Roles, ClientIP: e.Actor.ClientIP,
		PurposeOfUse: e.PurposeOfUse, Service: e.Observer.Service, Instance: e.Observer.Instance,
		RequestID: e.RequestID, TraceID: e.TraceID,
	}
	for _, ent := range e.Entities {
		r.EntityIDs = append(r.EntityIDs, ent.Identifier)
	}
	return r
}

// WorkspaceQuery answers the auditor from the Log Analytics workspace that
// the ingestion sink feeds, through auditlog's KQL-safe Reporter.
type WorkspaceQuery struct {
	Reporter *auditlog.Reporter
}

// Events implements server.AuditQuery.
func (w *WorkspaceQuery) Events(ctx context.Context, eq server.EventQuery) ([]auditlog.AuditRow, error) {
	span := auditlog.Span{Start: eq.From, End: eq.To}
	var rows []auditlog.AuditRow
	var err error
	if eq.PatientID != "" {
		rows, err = w.Reporter.PatientAccess(ctx, phimask.KindID, eq.PatientID, span)
	} else {
		rows, err = w.Reporter.UserActivity(ctx, eq.UserID, span)
	}
	if err != nil {
		return nil, fmt.Errorf("app: audit report: %w", err)
	}
	if len(rows) > eq.Limit {
		rows = rows[:eq.Limit]
	}
	return rows, nil
}
