package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/app"
	"github.com/phiguard/phiguard/examples/api/internal/server"
	"github.com/phiguard/phiguard/phimask"
)

// trailWith records the events in a fresh local trail and closes it.
func trailWith(t *testing.T, events []auditlog.Event) (dir string, q *app.TrailQuery) {
	t.Helper()
	dir = t.TempDir()
	seed := make([]byte, ed25519.SeedSize)
	key := make([]byte, 32)
	_, err := rand.Read(seed)
	require.NoError(t, err)
	_, err = rand.Read(key)
	require.NoError(t, err)
	signer := ed25519.NewKeyFromSeed(seed)
	sink, err := auditlog.NewFileSink(dir, &auditlog.FileOptions{SigningKey: signer, SegmentBytes: 4 << 10})
	require.NoError(t, err)
	l, err := auditlog.New(&auditlog.Options{PseudonymKey: key}, sink)
	require.NoError(t, err)
	for _, e := range events {
		require.NoError(t, l.Record(context.Background(), e))
	}
	require.NoError(t, l.Close())
	// A logger for tokens only: same key, a sink that is never written.
	tokens, err := auditlog.New(&auditlog.Options{PseudonymKey: key}, auditlog.NewWriterSink(&bytes.Buffer{}))
	require.NoError(t, err)
	return dir, &app.TrailQuery{Dir: dir, Public: signer.Public().(ed25519.PublicKey), Audit: tokens}
}

func readEvent(at time.Time, user, patient string) auditlog.Event {
	return auditlog.Event{
		Time: at, Type: auditlog.TypeRESTful, Action: auditlog.ActionRead, Outcome: auditlog.OutcomeSuccess,
		Actor:    auditlog.Actor{ID: user, Requestor: true},
		Observer: auditlog.Observer{Service: "api", Instance: "test"},
		Entities: []auditlog.Entity{{Type: "Patient", Identifier: patient, Kind: phimask.KindID, Role: "1"}},
	}
}

func TestTrailQuery(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Synthetic IDs; 60 events over several segments.
	var events []auditlog.Event
	for i := range 60 {
		patient, user := "patient-a", "clinician-1"
		if i%3 == 1 {
			patient = "patient-b"
		}
		if i%2 == 1 {
			user = "clinician-2"
		}
		events = append(events, readEvent(t0.Add(time.Duration(i)*time.Minute), user, patient))
	}
	dir, q := trailWith(t, events)
	all := server.EventQuery{From: t0, To: t0.Add(time.Hour), Limit: 1000}
	ctx := context.Background()

	tests := []struct {
		name  string
		query func(server.EventQuery) server.EventQuery
		want  int
	}{
		{"by patient", func(eq server.EventQuery) server.EventQuery { eq.PatientID = "patient-a"; return eq }, 40},
		{"by other patient", func(eq server.EventQuery) server.EventQuery { eq.PatientID = "patient-b"; return eq }, 20},
		{"unknown patient", func(eq server.EventQuery) server.EventQuery { eq.PatientID = "patient-z"; return eq }, 0},
		{"by user", func(eq server.EventQuery) server.EventQuery { eq.UserID = "clinician-2"; return eq }, 30},
		{"time window", func(eq server.EventQuery) server.EventQuery {
			eq.PatientID, eq.From, eq.To = "patient-a", t0.Add(30*time.Minute), t0.Add(40*time.Minute)
			return eq
		}, 7}, // minutes 30..39 where i%3 != 1: 30,32,33,35,36,38,39
		{"limit", func(eq server.EventQuery) server.EventQuery { eq.UserID = "clinician-1"; eq.Limit = 5; return eq }, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eq := tc.query(all)
			rows, err := q.Events(ctx, eq)
			require.NoError(t, err)
			assert.Len(t, rows, tc.want)
			for i, r := range rows {
				assert.False(t, r.Time.Before(eq.From) || !r.Time.Before(eq.To), "row %d outside the window", i)
				if i > 0 {
					assert.False(t, r.Time.Before(rows[i-1].Time), "rows in trail order")
				}
				if eq.UserID != "" {
					assert.Equal(t, eq.UserID, r.ActorID)
				}
				if eq.PatientID != "" {
					assert.Equal(t, []string{q.Audit.Token(phimask.KindID, eq.PatientID)}, r.EntityIDs)
				}
			}
		})
	}

	// A trail edited after the fact answers nothing, whatever the query.
	seg := filepath.Join(dir, "audit-00000001.jsonl")
	b, err := os.ReadFile(seg)
	require.NoError(t, err, "segment file name")
	edited := bytes.Replace(b, []byte(`"clinician-1"`), []byte(`"clinician-3"`), 1)
	require.NotEqual(t, b, edited)
	require.NoError(t, os.WriteFile(seg, edited, 0o600))
	rows, err := q.Events(ctx, server.EventQuery{PatientID: "patient-a", From: t0, To: t0.Add(time.Hour), Limit: 1000})
	require.ErrorIs(t, err, auditlog.ErrTampered)
	assert.Empty(t, rows)
}
