package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
	"github.com/phiguard/phiguard/phimask"
)

func TestNewFailsClosed(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	sink := NewWriterSink(&buf)
	cases := []struct {
		name  string
		opts  *Options
		sinks []Sink
		want  error
	}{
		{"nil options", nil, []Sink{sink}, ErrNoKey},
		{"no key", &Options{}, []Sink{sink}, ErrNoKey},
		{"short key", &Options{PseudonymKey: make([]byte, 31)}, []Sink{sink}, ErrNoKey},
		{"no sink", &Options{PseudonymKey: testPseudonymKey()}, nil, ErrNoSink},
		{"nil sink", &Options{PseudonymKey: testPseudonymKey()}, []Sink{nil}, ErrNoSink},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.opts, tc.sinks...)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	_, err := NewFileSink(t.TempDir(), nil)
	assert.Error(t, err, "a file sink without a signing key must be refused")
	_, err = NewFileSink(t.TempDir(), &FileOptions{SigningKey: ed25519.PrivateKey("short")})
	assert.Error(t, err)
}

func TestRecordRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := New(&Options{PseudonymKey: testPseudonymKey(), FailOpen: true}, NewWriterSink(&buf))
	require.NoError(t, err)
	f := gofakeit.New(1)
	valid := fakeEvent(f, newSynthetic(f))
	cases := []struct {
		name   string
		mutate func(e *Event)
	}{
		{"no type", func(e *Event) { e.Type = Coding{} }},
		{"bad action", func(e *Event) { e.Action = "X" }},
		{"bad outcome", func(e *Event) { e.Outcome = 3 }},
		{"no actor", func(e *Event) { e.Actor.ID = "" }},
		{"no observer", func(e *Event) { e.Observer.Service = "" }},
		{"empty entity id", func(e *Event) { e.Entities = []Entity{{Type: "Patient"}} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := valid
			e.Entities = append([]Entity(nil), valid.Entities...)
			tc.mutate(&e)
			// Even with FailOpen, an invalid event is a programming error.
			assert.ErrorIs(t, l.Record(context.Background(), e), ErrInvalidEvent)
		})
	}
	assert.Zero(t, buf.Len())
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestFailClosedAndFailOpen(t *testing.T) {
	t.Parallel()
	f := gofakeit.New(2)
	e := fakeEvent(f, newSynthetic(f))

	closed, err := New(&Options{PseudonymKey: testPseudonymKey()}, NewWriterSink(failingWriter{}))
	require.NoError(t, err)
	assert.Error(t, closed.Record(context.Background(), e), "the default must return the sink's error")
	assert.Error(t, closed.Check(context.Background()))
	assert.Equal(t, Stats{Failed: 1}, closed.Stats())

	open, err := New(&Options{PseudonymKey: testPseudonymKey(), FailOpen: true}, NewWriterSink(failingWriter{}))
	require.NoError(t, err)
	assert.NoError(t, open.Record(context.Background(), e))
	assert.Equal(t, Stats{Failed: 1}, open.Stats())

	require.NoError(t, closed.Close())
	assert.ErrorIs(t, closed.Record(context.Background(), e), ErrClosed)
	assert.ErrorIs(t, closed.Check(context.Background()), ErrClosed)
}

// TestTrailHoldsNoPHI records events about synthetic patients to every
// local sink and searches all output, and the FHIR form, for their PHI.
func TestTrailHoldsNoPHI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a")})
	require.NoError(t, err)
	var stdout bytes.Buffer
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs, NewWriterSink(&stdout))
	require.NoError(t, err)
	f := gofakeit.New(3)
	var people []synthetic
	for range 50 {
		p := newSynthetic(f)
		people = append(people, p)
		e := fakeEvent(f, p)
		e.Entities = append(e.Entities, Entity{Type: "Patient", Identifier: p.Email, Kind: phimask.KindEmail})
		// Free text goes through phimask.Redact.
		e.OutcomeDesc = "notified " + p.Email + " from " + p.IP
		require.NoError(t, l.Record(context.Background(), e))
	}
	require.NoError(t, l.Close())

	assertNoLeak(t, stdout.Bytes(), people)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		require.NoError(t, err)
		assertNoLeak(t, b, people)
	}
	// Each patient is findable by its token, as an auditor holding the key would.
	for i, p := range people {
		if !bytes.Contains(stdout.Bytes(), []byte(l.Token(phimask.KindMRN, p.MRN))) {
			t.Errorf("person %d: MRN token not in the trail", i)
		}
	}
	// FHIR output of recorded events holds no PHI either.
	for _, line := range bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n")) {
		var e Event
		require.NoError(t, json.Unmarshal(line, &e))
		fh, err := e.FHIR()
		require.NoError(t, err)
		assertNoLeak(t, fh, people)
	}
}

func TestRecordFillsAndKeepsCallerEvent(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	l, err := New(&Options{PseudonymKey: testPseudonymKey(), Observer: Observer{Service: "svc", Instance: "i-1"},
		Now: func() time.Time { return now }, KeepClientIP: true}, NewWriterSink(&buf))
	require.NoError(t, err)
	f := gofakeit.New(4)
	p := newSynthetic(f)
	e := fakeEvent(f, p)
	e.Observer = Observer{}
	require.NoError(t, l.Record(context.Background(), e))
	assert.Equal(t, p.MRN, e.Entities[0].Identifier, "the caller's event must not be modified")
	var got Event
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.Len(t, got.ID, 32)
	assert.Equal(t, now.UTC(), got.Time)
	assert.Equal(t, time.UTC, got.Time.Location())
	assert.Equal(t, Observer{Service: "svc", Instance: "i-1"}, got.Observer)
	assert.Equal(t, p.IP, got.Actor.ClientIP, "KeepClientIP keeps the address")
	assert.True(t, got.Actor.Requestor)
	assert.Equal(t, phimask.Tokenize(testPseudonymKey(), phimask.KindMRN, p.MRN), got.Entities[0].Identifier)
}

func TestFHIRRequiredElements(t *testing.T) {
	t.Parallel()
	f := gofakeit.New(5)
	e := fakeEvent(f, newSynthetic(f))
	e.ID, e.Time = "abc", time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	e.Actor.Requestor = true
	e.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	b, err := e.FHIR()
	require.NoError(t, err)
	var ae map[string]any
	require.NoError(t, json.Unmarshal(b, &ae))
	assert.Equal(t, "AuditEvent", ae["resourceType"])
	assert.Equal(t, "110110", ae["type"].(map[string]any)["code"], "type")
	assert.Equal(t, "2026-05-06T07:08:09Z", ae["recorded"], "recorded")
	assert.Equal(t, "R", ae["action"])
	assert.Equal(t, "0", ae["outcome"], "outcome is a code string in R4")
	agents := ae["agent"].([]any)
	require.Len(t, agents, 1)
	agent := agents[0].(map[string]any)
	assert.Equal(t, true, agent["requestor"], "agent.requestor is required")
	assert.NotEmpty(t, agent["who"])
	src := ae["source"].(map[string]any)
	assert.NotEmpty(t, src["observer"], "source.observer is required")
	require.Len(t, ae["entity"], 1)
	assert.NotEmpty(t, ae["purposeOfEvent"])

	e.Time = time.Time{}
	_, err = e.FHIR()
	assert.ErrorIs(t, err, ErrInvalidEvent)
}

func TestConcurrentRecordsVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var ckpts [][]byte
	var mu sync.Mutex
	fs, err := NewFileSink(dir, &FileOptions{SigningKey: testSigningKey("a"), SegmentBytes: 32 << 10,
		CheckpointInterval: 5 * time.Millisecond, OnCheckpoint: func(b []byte) { mu.Lock(); ckpts = append(ckpts, b); mu.Unlock() }})
	require.NoError(t, err)
	var buf testenv.Buffer
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs, NewWriterSink(&buf))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			f := gofakeit.New(uint64(100 + g))
			for range 150 {
				assert.NoError(t, l.Record(context.Background(), fakeEvent(f, newSynthetic(f))))
				_ = l.Check(context.Background())
				_ = fs.Checkpoint()
			}
		})
	}
	wg.Wait()
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")
	pub := testSigningKey("a").Public().(ed25519.PublicKey)
	r, err := Verify(dir, pub, &VerifyOptions{RequireSealed: true})
	require.NoError(t, err, describe(r))
	assert.EqualValues(t, 16*150, r.Events)
	assert.Equal(t, uint64(16*150), l.Stats().Recorded)
	assert.Equal(t, 16*150, bytes.Count(buf.Bytes(), []byte("\n")))
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, ckpts)
	assert.Equal(t, r.Checkpoint, ckpts[len(ckpts)-1], "the last shipped checkpoint is the trail's latest")
	// Every shipped checkpoint is a valid trusted checkpoint for the trail.
	for _, c := range [][]byte{ckpts[0], ckpts[len(ckpts)/2], ckpts[len(ckpts)-1]} {
		_, err := Verify(dir, pub, &VerifyOptions{Trusted: c})
		require.NoError(t, err)
	}
}

// TestAppendEventMatchesEncodingJSON holds the hand-written encoder to
// encoding/json's output, byte for byte.
func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	f := gofakeit.New(41)
	for i := range 300 {
		e := fakeEvent(f, newSynthetic(f))
		e.ID = f.UUID()
		e.Time = f.Date()
		if i%2 == 0 {
			e.Subtype = []Coding{{Code: "read"}, {System: SystemFHIRInteract, Code: "search", Display: f.HackerPhrase()}}
			e.OutcomeDesc = f.Sentence(8) + " <&> \u2028 \x01 \"q\" \\ \xff"
			e.Observer.Site = f.City()
			e.TraceID = f.LetterN(32)
		} else {
			e.Actor.Roles, e.PurposeOfUse, e.Entities, e.RequestID = nil, []string{}, nil, ""
		}
		want, err := json.Marshal(e)
		require.NoError(t, err)
		if got := appendEvent(nil, &e); !bytes.Equal(want, got) {
			t.Fatalf("event %d: encoders differ", i)
		}
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("id", "desc", "agent", "<&>", int64(0))
	f.Add("\xff", "\u2028\u2029", "\x00\x1f", `"\`, int64(1700000000123456789))
	f.Fuzz(func(t *testing.T, id, desc, ua, role string, nanos int64) {
		e := Event{ID: id, Time: time.Unix(0, nanos).UTC(), Type: Coding{Code: role}, Action: ActionRead,
			OutcomeDesc: desc, Actor: Actor{ID: id, UserAgent: ua, Roles: []string{role}},
			Observer: Observer{Service: desc}, Entities: []Entity{{Type: role, Identifier: ua, Role: role}}}
		want, err := json.Marshal(e)
		if err != nil {
			return
		}
		if got := appendEvent(nil, &e); !bytes.Equal(want, got) {
			t.Fatal("encoders differ")
		}
	})
}
