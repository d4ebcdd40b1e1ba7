package app

import (
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
// whole trail (signatures, Merkle tree, no gap) in the same pass that reads
// the events, so a tampered trail yields an error, not a quietly wrong
// answer.
type TrailQuery struct {
	Dir    string
	Public ed25519.PublicKey
	Audit  *auditlog.Logger // for the patient ID's token
}

// errUndecodable stops the pass at an event line that is not an Event.
var errUndecodable = errors.New("app: audit trail: undecodable event")

// Events implements server.AuditQuery.
func (q *TrailQuery) Events(ctx context.Context, eq server.EventQuery) ([]auditlog.AuditRow, error) {
	var token string
	if eq.PatientID != "" {
		token = q.Audit.Token(phimask.KindID, eq.PatientID)
	}
	// Only events the pass read and verified are answered: a line being
	// written now is either complete and verified, or not read.
	var out []auditlog.AuditRow
	_, err := auditlog.VerifySource(ctx, auditlog.DirSource(q.Dir), q.Public, &auditlog.VerifyOptions{
		Visit: func(_ int64, line []byte) error {
			if len(out) >= eq.Limit {
				return nil // the rest is read for the verification only
			}
			var e auditlog.Event
			if err := json.Unmarshal(line, &e); err != nil {
				return errUndecodable
			}
			if !e.Time.Before(eq.From) && e.Time.Before(eq.To) && matches(&e, eq, token) {
				out = append(out, row(&e))
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("app: audit trail: %w", err)
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
