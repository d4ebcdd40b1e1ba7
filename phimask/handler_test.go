package phimask

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newJSON returns a logger writing JSON through a phimask Handler into buf.
// The record time is left out: its digits could match a value a test
// searches for ("93" in the nanoseconds).
func newJSON(opts *Options) (*slog.Logger, *Handler, *bytes.Buffer) {
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTime}), opts)
	return slog.New(h), h, &buf
}

// dropTime removes the record time.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// decode parses the single JSON line in buf.
func decode(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m), "output is not one JSON object")
	return m
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

type panicky struct{}

func (panicky) String() string       { panic("boom") }
func (panicky) Error() string        { panic("boom") }
func (panicky) LogValue() slog.Value { panic("boom") }

type valuer struct{ name, ssn string }

func (v valuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", v.name), slog.String("note", "ssn "+v.ssn))
}

type record struct {
	ID       string `json:"id"`
	Notes    string `json:"notes"`
	Insurer  string `phi:"member_id"`
	Phone    string
	internal string
	Visits   []visit
	Extra    map[string]any
	Next     *record
	When     time.Time
}

type visit struct {
	Ward string
	Note string
}

func TestHandlerKeysAnyCaseAndSeparator(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"patientName", "patient-name", "PATIENT_NAME", "patient.name", "name", "firstName", "LastName", "ssn", "SSN", "dob", "date_of_birth", "homePhone", "emergencyContactPhoneNumber", "email", "zip", "mrn", "member_id", "policyNumber", "ip", "client_ip", "deviceSerial", "X-Forwarded-For", "userName", "addressLine1", "phone2", "patientDOB", "mobile", "emailAddress"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			l, _, buf := newJSON(nil)
			l.Info("m", key, "opaque-value-xyz")
			assertNoLeak(t, buf.String(), []string{"opaque-value-xyz"}, nil)
			assertKept(t, buf.String(), "[REDACTED:")
		})
	}
	for _, key := range []string{"hostName", "service_name", "status", "ward", "address_family", "cacheAge", "fileName", "sendMail", "isMobile", "tableCell", "listenAddress", "email_verified", "shouldSkip", "user_id"} {
		t.Run("not "+key, func(t *testing.T) {
			t.Parallel()
			l, _, buf := newJSON(nil)
			l.Info("m", key, "opaque-value-xyz")
			assertKept(t, buf.String(), "opaque-value-xyz")
		})
	}
}

func TestHandlerMessageAndStrings(t *testing.T) {
	t.Parallel()
	l, h, buf := newJSON(nil)
	l.Info("admitted patient SSN 123-45-6789 to ward 4", "note", "call 555-234-5678 after 5", "status", 200)
	m := decode(t, buf)
	assertRedacted(t, "admitted patient SSN [REDACTED:SSN] to ward 4", m["msg"])
	assertRedacted(t, "call [REDACTED:PHONE] after 5", m["note"])
	assertRedacted(t, float64(200), m["status"])
	st := h.Stats()
	assert.Equal(t, uint64(1), st.ByKind[KindSSN])
	assert.Equal(t, uint64(1), st.ByKind[KindPhone])
	assert.Equal(t, uint64(1), st.ByKey["note"])
	assert.Equal(t, uint64(1), st.Records)
	assert.Equal(t, uint64(1), st.RecordsRedacted)
}

func TestHandlerShapes(t *testing.T) {
	t.Parallel()
	rec := &record{
		ID: "r-1", Notes: "seen by Dr. Jane Doe", Insurer: "INS-998877", Phone: "555-234-5678", internal: "secret-internal",
		Visits: []visit{{Ward: "4B", Note: "email jd@example.org"}},
		Extra:  map[string]any{"ssn": "123-45-6789", "ok": "fine", "jd@example.org": 1},
		When:   time.Date(2024, 3, 5, 14, 7, 0, 0, time.UTC),
	}
	rec.Next = rec // cycle
	tests := []struct {
		name  string
		attr  slog.Attr
		leaks []string
		keep  []string
	}{
		{"group", slog.Group("visit", slog.String("name", "Jane Roe"), slog.String("ward", "4B")), []string{"Jane Roe"}, []string{"4B"}},
		{"group under PHI key", slog.Group("patient", slog.String("id", "p-77"), slog.Int("age", 93)), []string{"p-77", "93"}, []string{`"patient":{"id":"[REDACTED:NAME]","age":"[REDACTED:AGE]"}`}},
		{"nested group", slog.Group("a", slog.Group("b", slog.Group("c", slog.String("note", "ssn 123-45-6789")))), []string{"123-45-6789"}, []string{`"c"`}},
		{"log valuer", slog.Any("v", valuer{name: "Jane Roe", ssn: "123-45-6789"}), []string{"Jane Roe", "123-45-6789"}, []string{"ssn [REDACTED:SSN]"}},
		{"error", slog.Any("err", errors.New("no match for jd@example.org")), []string{"jd@example.org"}, []string{"no match for"}},
		{"wrapped error", slog.Any("err", fmt.Errorf("lookup: %w", errors.New("ssn 123-45-6789"))), []string{"123-45-6789"}, []string{"lookup"}},
		{"stringer", slog.Any("s", stringer{"call 555-234-5678"}), []string{"555-234-5678"}, []string{"call"}},
		{"bytes", slog.Any("b", []byte("ssn 123-45-6789")), []string{"123-45-6789"}, []string{"ssn"}},
		{"struct", slog.Any("rec", rec), []string{"Jane Doe", "INS-998877", "555-234-5678", "secret-internal", "jd@example.org", "123-45-6789"}, []string{"r-1", "4B", "fine", "2024-03-05T14:07:00Z"}},
		{"map", slog.Any("m", map[string]string{"mrn": "A-77812", "ward": "4B"}), []string{"A-77812"}, []string{"4B"}},
		{"slice", slog.Any("s", []string{"ok", "dob 1980-03-05"}), []string{"1980-03-05"}, []string{"ok"}},
		{"pointer to string", slog.Any("p", ptr("ssn 123-45-6789")), []string{"123-45-6789"}, nil},
		{"number under PHI key", slog.Int("ssn", 123456789), []string{"123456789"}, nil},
		{"time under PHI key", slog.Time("dob", time.Date(1980, 3, 5, 0, 0, 0, 0, time.UTC)), []string{"1980-03-05"}, nil},
		{"url", slog.Any("u", mustURL("https://x.example/patients/77812?email=jd@example.org&page=2")), []string{"77812", "jd@example.org"}, []string{"page=2"}},
		{"url value", slog.Any("u", *mustURL("https://jdoe:s3cret@x.example/p?ssn=123-45-6789")), []string{"jdoe", "s3cret", "123-45-6789"}, []string{"x.example"}},
		{"url in struct", slog.Any("s", struct{ U *url.URL }{mustURL("https://jdoe:s3cret@x.example/")}), []string{"jdoe", "s3cret"}, []string{"x.example"}},
		{"userinfo", slog.Any("u", url.UserPassword("jdoe", "s3cret")), []string{"jdoe", "s3cret"}, []string{"REDACTED"}},
		{"nil", slog.Any("n", nil), nil, []string{`"n":null`}},
		{"typed nil pointer", slog.Any("n", (*record)(nil)), nil, []string{`"n":null`}},
		{"func", slog.Any("f", func() {}), nil, []string{`"f":"[REDACTED]"`}},
		{"log valuer in struct", slog.Any("s", struct{ V valuer }{valuer{name: "Jane Roe", ssn: "123-45-6789"}}), []string{"Jane Roe", "123-45-6789"}, []string{`"note":"ssn [REDACTED:SSN]"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, _, buf := newJSON(nil)
			l.LogAttrs(context.Background(), slog.LevelInfo, "m", tt.attr)
			out := buf.String()
			require.True(t, json.Valid(buf.Bytes()))
			assertNoLeak(t, out, tt.leaks, nil)
			assertKept(t, out, tt.keep...)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestHandlerNeverPanics(t *testing.T) {
	t.Parallel()
	l, h, buf := newJSON(nil)
	require.NotPanics(t, func() {
		l.Info("m", "stringer", panicky{}, "valuer", slog.AnyValue(panicky{}), "ok", "kept")
		l.Info("m", slog.Any("err", error(panicky{})))
		l.Info("m", slog.Any("s", []fmt.Stringer{panicky{}}))
	})
	assertKept(t, buf.String(), `"ok":"kept"`)
	assertNoLeak(t, buf.String(), []string{"boom"}, nil)
	assert.Positive(t, h.Stats().Failures)
}

type panicHandler struct{ slog.Handler }

func (panicHandler) Handle(context.Context, slog.Record) error { panic("next") }

func TestHandlerNextPanics(t *testing.T) {
	t.Parallel()
	h := NewHandler(panicHandler{slog.DiscardHandler}, nil)
	err := h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0))
	assert.ErrorIs(t, err, errNextPanicked)
}

func TestHandlerDepthLimit(t *testing.T) {
	t.Parallel()
	type node struct{ Next *node }
	n := &node{}
	n.Next = n
	m := map[string]any{}
	m["self"] = m
	l, h, buf := newJSON(&Options{MaxDepth: 4})
	require.NotPanics(t, func() { l.Info("m", "n", n, "m", m) })
	assertKept(t, buf.String(), depthValue)
	assert.Positive(t, h.Stats().Failures)
}

func TestHandlerWithAttrsRedactsOnce(t *testing.T) {
	t.Parallel()
	l, h, buf := newJSON(nil)
	l2 := l.With("patientName", "Jane Roe", "note", "ssn 123-45-6789").WithGroup("visit").With("email", "jd@example.org")
	for i := 0; i < 3; i++ {
		l2.Info("seen", "ward", "4B")
	}
	out := buf.String()
	assertNoLeak(t, out, []string{"Jane Roe", "123-45-6789", "jd@example.org"}, []string{"name", "ssn", "email"})
	assert.Equal(t, 3, strings.Count(out, `"visit":{"email":"[REDACTED:EMAIL]","ward":"4B"}`))
	st := h.Stats()
	assert.Equal(t, uint64(1), st.ByKind[KindName], "attached attributes are counted once")
	assert.Equal(t, uint64(1), st.ByKind[KindSSN])
	assert.Equal(t, uint64(3), st.Records)
	assert.Equal(t, uint64(0), st.RecordsRedacted, "the records themselves held no PHI")
}

func TestHandlerWithGroupNameScanned(t *testing.T) {
	t.Parallel()
	l, _, buf := newJSON(nil)
	l.WithGroup("jd@example.org").Info("m", "a", 1)
	assertNoLeak(t, buf.String(), []string{"jd@example.org"}, nil)
}

func TestHandlerAllowList(t *testing.T) {
	t.Parallel()
	l, h, buf := newJSON(&Options{AllowKeys: []string{"status", "route", "ssn"}})
	l.Info("m", "status", 200, "route", "/p?ssn=123-45-6789", "user_agent", "curl", "ssn", "123-45-6789",
		slog.Group("g", slog.String("status", "ok"), slog.String("other", "x")))
	m := decode(t, buf)
	assertRedacted(t, float64(200), m["status"])
	assertRedacted(t, "/p?ssn=[REDACTED:SSN]", m["route"], "allowed values are still scanned")
	assertRedacted(t, "[REDACTED]", m["user_agent"])
	assertRedacted(t, "[REDACTED:SSN]", m["ssn"], "PHI keys stay redacted even when allowed")
	assertRedacted(t, map[string]any{"status": "ok", "other": "[REDACTED]"}, m["g"])
	assert.Equal(t, uint64(2), h.Stats().Denied)
}

func TestHandlerPassKeys(t *testing.T) {
	t.Parallel()
	l, _, buf := newJSON(&Options{PassKeys: []string{"build_date"}, PHIKeys: map[string]Kind{"insuranceNo": KindMemberID}})
	l.Info("m", "BuildDate", "2024-03-05", "primary_insurance_no", "XK-1")
	m := decode(t, buf)
	assertRedacted(t, "2024-03-05", m["BuildDate"])
	assertRedacted(t, "[REDACTED:MEMBER_ID]", m["primary_insurance_no"])
}

func TestHandlerKeyedTokens(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	l, _, buf := newJSON(&Options{Key: key})
	l.Info("ssn 123-45-6789", "ssn", "123 45 6789")
	m := decode(t, buf)
	tok := Tokenize(key, KindSSN, "123456789")
	assertRedacted(t, "ssn "+tok, m["msg"])
	assertRedacted(t, tok, m["ssn"], "same value in another format gives the same token")
	assert.Regexp(t, `^\[SSN:[0-9a-f]{16}\]$`, tok)
}

func TestHandlerSafeHarbor(t *testing.T) {
	t.Parallel()
	l, _, buf := newJSON(&Options{SafeHarbor: true})
	old := time.Now().Year() - 95
	l.Info("admitted 2024-03-05, aged 92, Springfield, IL 62704 and 03601",
		"dob", "1980-03-05", "zip", "62704", "zip2", "03601-1234", "age", 45, "age2", 93,
		"born", time.Date(1980, 3, 5, 0, 0, 0, 0, time.UTC), "dob2", fmt.Sprintf("%d-01-02", old))
	m := decode(t, buf)
	assertRedacted(t, "admitted 2024, aged 90+, [REDACTED:ADDRESS], IL 627 and 03601", m["msg"])
	assertRedacted(t, "1980", m["dob"])
	assertRedacted(t, "627", m["zip"])
	assertRedacted(t, "000", m["zip2"], "036 is a restricted prefix")
	assertRedacted(t, float64(45), m["age"])
	assertRedacted(t, "90+", m["age2"])
	assertRedacted(t, "[REDACTED:DATE]", m["dob2"], "a year revealing an age over 89 is removed")
}

func TestHandlerTextOutput(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(NewHandler(slog.NewTextHandler(&buf, nil), nil))
	l.Info("patient John Smith", "rec", &record{Notes: "ssn 123-45-6789"}, slog.Group("g", "email", "jd@example.org"))
	assertNoLeak(t, buf.String(), []string{"John Smith", "123-45-6789", "jd@example.org"}, []string{"name", "ssn", "email"})
}

func TestHandlerConcurrent(t *testing.T) {
	t.Parallel()
	l, h, _ := newJSON(nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			lg := l.With("worker", g)
			for i := 0; i < 200; i++ {
				lg.Info("ssn 123-45-6789", fmt.Sprintf("key%d", i%50), "jd@example.org")
			}
		}(g)
	}
	wg.Wait()
	st := h.Stats()
	assert.Equal(t, uint64(1600), st.Records)
	assert.Equal(t, uint64(1600), st.ByKind[KindSSN])
	assert.Equal(t, uint64(1600), st.ByKind[KindEmail])
}

func TestHandlerNoPHIPassesRecordThrough(t *testing.T) {
	t.Parallel()
	l, h, buf := newJSON(nil)
	l.Info("cache warmed", "n", 3, "ward", "4B", slog.Group("g", slog.String("unit", "x")))
	assert.Equal(t, uint64(0), h.Stats().RecordsRedacted)
	assertKept(t, buf.String(), `"msg":"cache warmed"`, `"ward":"4B"`, `"g":{"unit":"x"}`)
}

func TestHandlerEnabled(t *testing.T) {
	t.Parallel()
	h := NewHandler(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), nil)
	assert.False(t, h.Enabled(context.Background(), slog.LevelInfo))
	assert.True(t, h.Enabled(context.Background(), slog.LevelError))
	assert.Same(t, h, h.WithGroup(""))
	assert.Same(t, h, h.WithAttrs(nil))
}

func TestHandlerSharedSubvaluesBounded(t *testing.T) {
	t.Parallel()
	// 200 references to the same value at each of 6 levels: 200^6 nodes if
	// walked naively.
	var v any = "ssn 123-45-6789"
	for i := 0; i < 6; i++ {
		s := make([]any, 200)
		for j := range s {
			s[j] = v
		}
		v = s
	}
	g := slog.StringValue("x")
	for i := 0; i < 6; i++ {
		attrs := make([]slog.Attr, 50)
		for j := range attrs {
			attrs[j] = slog.Attr{Key: fmt.Sprintf("k%d", j), Value: g}
		}
		g = slog.GroupValue(attrs...)
	}
	l, _, buf := newJSON(&Options{MaxDepth: 10})
	l.Info("m", "v", v, slog.Attr{Key: "g", Value: g})
	assertNoLeak(t, buf.String(), []string{"123-45-6789"}, nil)
	assertKept(t, buf.String(), depthValue)
}

func TestHandlerStructFieldsAndMaps(t *testing.T) {
	t.Parallel()
	type person struct {
		Age     int     `json:"age"`
		SSN     int64   `json:"ssn"`
		Score   float64 `phi:"id"`
		Active  bool    `phi:"true"`
		Visits  uint    `json:"visits"`
		Build   string  `json:"build_date"`
		Comment string  `json:"comment"`
		Skip    string  `json:"-"`
		Card    string  `phi:"credit-card"`
	}
	p := person{Age: 93, SSN: 123456789, Score: 7.5, Active: true, Visits: 3, Build: "2024-03-05", Comment: "x", Skip: "hidden-value", Card: "4111111111111111"}
	l, _, buf := newJSON(&Options{PassKeys: []string{"buildDate"}, AllowKeys: []string{"visits", "build_date"}})
	l.Info("m", "p", p, "m", map[int]string{7: "ssn 123-45-6789"})
	m := decode(t, buf)
	got := m["p"].(map[string]any)
	assertRedacted(t, "[REDACTED:AGE]", got["age"])
	assertRedacted(t, "[REDACTED:SSN]", got["ssn"])
	assertRedacted(t, "[REDACTED:ID]", got["Score"])
	assertRedacted(t, "[REDACTED:ID]", got["Active"])
	assertRedacted(t, float64(3), got["visits"])
	assertRedacted(t, "2024-03-05", got["build_date"], "pass keys apply to struct fields")
	assertRedacted(t, "[REDACTED]", got["comment"], "allow-list applies to struct fields")
	assertRedacted(t, "[REDACTED:CREDIT_CARD]", got["Card"])
	assertNoLeak(t, buf.String(), []string{"hidden-value"}, nil)
	assertRedacted(t, map[string]any{"[REDACTED]#1": "[REDACTED]"}, m["m"], "map keys under a denied key are replaced")

	l, _, buf = newJSON(&Options{SafeHarbor: true})
	l.Info("m", "p", p, "flag", true, "d", time.Second, slog.Any("dob", nil))
	got = decode(t, buf)["p"].(map[string]any)
	assertRedacted(t, "90+", got["age"])
	p.Age = 45
	buf.Reset()
	l.Info("m", "p", p)
	got = decode(t, buf)["p"].(map[string]any)
	assertRedacted(t, float64(45), got["age"], "Safe Harbor keeps ages under 90")
}

func TestSafeHarborValues(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "1980", yearOf("19800305"))
	assert.Equal(t, "1980", yearOf("03051980"))
	assert.Equal(t, "2024", yearOf("March 5, 2024"))
	assert.Empty(t, yearOf("March 5"))
	assert.Equal(t, "627", safeHarborZIP("62704-1234"))
	assert.Equal(t, "000", safeHarborZIP("89012"))
	assert.Equal(t, "000", safeHarborZIP("123"))
	assert.Equal(t, kMember, kindFromTag("member"))
	assert.Equal(t, kMRN, kindFromTag(" MRN "))
	assert.Equal(t, kID, kindFromTag("whatever"))
}

func TestHandlerWithheldRecord(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, nil), nil)
	r := slog.NewRecord(time.Now(), slog.LevelWarn, "ssn 123-45-6789", 0)
	r.AddAttrs(slog.String("k", "v"))
	require.NoError(t, h.withheld(context.Background(), r))
	m := decode(t, &buf)
	assert.Equal(t, failedMessage, m["msg"])
	assert.Equal(t, "WARN", m["level"])
	assert.NotContains(t, m, "k")
	err := NewHandler(panicHandler{slog.DiscardHandler}, nil).withheld(context.Background(), r)
	assert.ErrorIs(t, err, errNextPanicked)
}
