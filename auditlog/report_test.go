package auditlog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/azquery"
	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/phimask"
)

// queryTransport is the Log Analytics service as the real LogsClient sees
// it: it records each query and answers with a canned result table.
type queryTransport struct {
	mu      sync.Mutex
	queries []string
	spans   []string
	result  string
}

func (q *queryTransport) Do(req *http.Request) (*http.Response, error) {
	var body struct {
		Query    string `json:"query"`
		Timespan string `json:"timespan"`
	}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return nil, err
		}
	}
	q.mu.Lock()
	q.queries = append(q.queries, body.Query)
	q.spans = append(q.spans, body.Timespan)
	res := q.result
	q.mu.Unlock()
	if res == "" {
		res = `{"tables":[{"name":"PrimaryResult","columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"EventId","type":"string"},{"name":"Action","type":"string"},{"name":"Outcome","type":"int"},{"name":"ActorId","type":"string"}],"rows":[]}]}`
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(res)), Request: req}, nil
}

func (q *queryTransport) last() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queries) == 0 {
		return ""
	}
	return q.queries[len(q.queries)-1]
}

func (q *queryTransport) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queries)
}

func newTestReporter(t *testing.T, tr *queryTransport) *Reporter {
	t.Helper()
	c, err := azquery.NewLogsClient(&azfake.TokenCredential{}, &azquery.LogsClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr}})
	require.NoError(t, err)
	r, err := NewReporter(c, "00000000-0000-0000-0000-000000000001", &ReporterOptions{PseudonymKey: testPseudonymKey()})
	require.NoError(t, err)
	return r
}

var testSpan = Span{Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}

// decodeKQLString decodes one double-quoted KQL literal that must span all
// of s; ok is false if s is anything else (an unescaped quote or newline
// would end the literal early and let the rest run as query text).
func decodeKQLString(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	in := s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch c {
		case '"', '\n', '\r':
			return "", false
		case '\\':
			if i+1 >= len(in) {
				return "", false
			}
			i++
			switch in[i] {
			case '\\':
				b.WriteByte('\\')
			case '"':
				b.WriteByte('"')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default:
				return "", false
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func TestReportQueriesResistInjection(t *testing.T) {
	t.Parallel()
	tr := &queryTransport{}
	r := newTestReporter(t, tr)
	ctx := context.Background()
	const marker = "benign-marker"
	_, err := r.UserActivity(ctx, marker, testSpan)
	require.NoError(t, err)
	benign := tr.last()
	lit, _ := KQLLiteral(marker)
	prefix, suffix, found := strings.Cut(benign, lit)
	require.True(t, found)

	cases := []struct {
		name    string
		input   string
		refused bool
	}{
		{name: "double quote and pipe", input: `alice" | take 1 //`},
		{name: "escaped quote", input: `\" ; .drop table PhiguardAudit_CL`},
		{name: "trailing backslash", input: `alice\`},
		{name: "backslashes", input: `a\\\"b\n`},
		{name: "newline then operator", input: "alice\n| where 1 == 1"},
		{name: "carriage return", input: "alice\r\n| union *"},
		{name: "tab", input: "a\tb"},
		{name: "semicolon", input: "x; let y = 1; y"},
		{name: "line comment", input: "alice // comment"},
		{name: "block comment", input: "/* c */ alice"},
		{name: "single quotes", input: `'alice' or '1'=='1'`},
		{name: "verbatim and multiline markers", input: "@\"x\" ```y```"},
		{name: "unicode", input: "Zoë 中文 😀 Ωmega"},
		{name: "empty", input: ""},
		{name: "right-to-left override", input: "alice\u202e1==1", refused: true},
		{name: "zero width space", input: "ali\u200bce", refused: true},
		{name: "line separator", input: "alice\u2028| take 1", refused: true},
		{name: "nul byte", input: "alice\x00", refused: true},
		{name: "escape char", input: "alice\x1b[2J", refused: true},
		{name: "invalid utf-8", input: "alice\xff\xfe", refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tr.count()
			_, err := r.UserActivity(ctx, tc.input, testSpan)
			if tc.refused {
				assert.ErrorIs(t, err, ErrUnsafeKQL)
				assert.Equal(t, before, tr.count(), "a refused value must not reach the service")
				return
			}
			require.NoError(t, err)
			q := tr.last()
			require.True(t, strings.HasPrefix(q, prefix) && strings.HasSuffix(q, suffix), "query structure changed")
			got, ok := decodeKQLString(q[len(prefix) : len(q)-len(suffix)])
			require.True(t, ok, "the value is not one string literal")
			assert.Equal(t, tc.input, got, "the literal must decode to the input")
		})
	}
}

func TestReportQueries(t *testing.T) {
	t.Parallel()
	tr := &queryTransport{}
	r := newTestReporter(t, tr)
	ctx := context.Background()
	f := gofakeit.New(21)
	p := newSynthetic(f)

	_, err := r.PatientAccess(ctx, phimask.KindMRN, p.MRN, testSpan)
	require.NoError(t, err)
	q := tr.last()
	assertNoLeak(t, []byte(q), []synthetic{p})
	assert.Contains(t, q, phimask.Tokenize(testPseudonymKey(), phimask.KindMRN, p.MRN))
	assert.Contains(t, q, "PhiguardAudit_CL\n| where TimeGenerated >= datetime(2026-01-01T00:00:00.0000000Z) and TimeGenerated < datetime(2026-02-01T00:00:00.0000000Z)")
	assert.Contains(t, q, "set_has_element(EntityIds, ")
	assert.True(t, strings.HasSuffix(q, "| summarize arg_max(TimeGenerated, *) by EventId\n| order by TimeGenerated asc\n| take long(10001)"),
		"results are de-duplicated on EventId, and bounded")
	tr.mu.Lock()
	assert.Equal(t, "2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", tr.spans[len(tr.spans)-1])
	tr.mu.Unlock()

	_, err = r.Failures(ctx, testSpan)
	require.NoError(t, err)
	assert.Contains(t, tr.last(), "| where Outcome != long(0)")

	_, err = r.OutsidePurpose(ctx, []string{"TREAT", `x"y`}, testSpan)
	require.NoError(t, err)
	assert.Contains(t, tr.last(), `set_intersect(todynamic(PurposeOfUse), dynamic(["TREAT", "x\"y"])`)

	_, err = r.OutsidePurpose(ctx, nil, testSpan)
	assert.Error(t, err)
	_, err = r.UserActivity(ctx, "u", Span{Start: testSpan.End, End: testSpan.Start})
	assert.Error(t, err, "an empty span is refused")

	noKey, err := NewReporter(r.client, "ws", nil)
	require.NoError(t, err)
	_, err = noKey.PatientAccess(ctx, "", "x", testSpan)
	assert.ErrorIs(t, err, ErrNoKey)
	_, err = NewReporter(r.client, "ws", &ReporterOptions{Table: "T | take 1"})
	assert.ErrorIs(t, err, ErrUnsafeKQL)
}

func TestReportTypedRows(t *testing.T) {
	t.Parallel()
	tr := &queryTransport{result: `{"tables":[{"name":"PrimaryResult","columns":[
		{"name":"TimeGenerated","type":"datetime"},{"name":"EventId","type":"string"},{"name":"Action","type":"string"},
		{"name":"Outcome","type":"int"},{"name":"TypeCode","type":"string"},{"name":"ActorId","type":"string"},
		{"name":"ActorRoles","type":"dynamic"},{"name":"ClientIp","type":"string"},{"name":"EntityIds","type":"dynamic"},
		{"name":"PurposeOfUse","type":"dynamic"},{"name":"Service","type":"string"},{"name":"Instance","type":"string"},
		{"name":"RequestId","type":"string"},{"name":"TraceId","type":"string"}],
		"rows":[
		["2026-01-05T10:00:00.123Z","e1","R",0,"110110","user-1","[\"clinician\"]","[IP:00]","[\"[MRN:aa]\",\"[ID:bb]\"]","[\"TREAT\"]","api","pod-1","req-1","trace-1"],
		["2026-01-06T11:00:00Z","e2","U",8,"rest","user-2","","","[]",null,"api","pod-2","",""]]}]}`}
	r := newTestReporter(t, tr)
	rows, err := r.UserActivity(context.Background(), "user-1", testSpan)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, AuditRow{
		Time: time.Date(2026, 1, 5, 10, 0, 0, 123e6, time.UTC), EventID: "e1", Action: ActionRead, Outcome: OutcomeSuccess,
		TypeCode: "110110", ActorID: "user-1", ActorRoles: []string{"clinician"}, ClientIP: "[IP:00]",
		EntityIDs: []string{"[MRN:aa]", "[ID:bb]"}, PurposeOfUse: []string{"TREAT"}, Service: "api", Instance: "pod-1",
		RequestID: "req-1", TraceID: "trace-1",
	}, rows[0])
	assert.Equal(t, OutcomeSeriousFailure, rows[1].Outcome)
	assert.Empty(t, rows[1].EntityIDs)

	// More rows than MaxRows: an error, not a silently cut answer.
	c, err := azquery.NewLogsClient(&azfake.TokenCredential{}, &azquery.LogsClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr}})
	require.NoError(t, err)
	small, err := NewReporter(c, "00000000-0000-0000-0000-000000000001", &ReporterOptions{MaxRows: 1})
	require.NoError(t, err)
	_, err = small.UserActivity(context.Background(), "user-1", testSpan)
	require.ErrorIs(t, err, ErrTooManyRows)
	assert.True(t, strings.HasSuffix(tr.last(), "| take long(2)"), "the service is asked for at most MaxRows+1 rows")

	tr.mu.Lock()
	tr.result = `{"tables":[{"name":"PrimaryResult","columns":[{"name":"EventId","type":"string"}],"rows":[["e1"]]}]}`
	tr.mu.Unlock()
	_, err = r.UserActivity(context.Background(), "user-1", testSpan)
	assert.Error(t, err, "a result without the expected columns is an error")
}

func TestKQLLiterals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   any
		want string
		err  bool
	}{
		{name: "string", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "time", in: time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600)), want: "datetime(2026-03-04T04:06:07.0000000Z)"},
		{name: "zero time", in: time.Time{}, err: true},
		{name: "int", in: -42, want: "long(-42)"},
		{name: "int64", in: int64(math.MaxInt64), want: "long(9223372036854775807)"},
		{name: "real", in: 1.5, want: "real(1.5)"},
		{name: "NaN", in: math.NaN(), err: true},
		{name: "Inf", in: math.Inf(1), err: true},
		{name: "bool", in: true, want: "true"},
		{name: "guid", in: GUID("0F8FAD5B-D9CB-469F-A165-70867728950E"), want: "guid(0f8fad5b-d9cb-469f-a165-70867728950e)"},
		{name: "bad guid", in: GUID("0f8fad5b) | take 1 //"), err: true},
		{name: "string array", in: []string{"a", `"`}, want: `dynamic(["a", "\""])`},
		{name: "unsupported", in: struct{}{}, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := KQLLiteral(tc.in)
			if tc.err {
				assert.ErrorIs(t, err, ErrUnsafeKQL)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := NewKQL("T").Name("T").Text(" | project ").Name("Secret").Build()
	assert.ErrorIs(t, err, ErrUnsafeKQL, "a name off the allow-list is refused")
	_, err = NewKQL("T x").Name("T x").Build()
	assert.ErrorIs(t, err, ErrUnsafeKQL, "an allow-listed name must still be an identifier")
	q, err := NewKQL("T", "C").Name("T").Text(" | where ").Name("C").Text(" == ").Value("v").Build()
	require.NoError(t, err)
	assert.Equal(t, `T | where C == "v"`, q)
}

func FuzzKQLString(f *testing.F) {
	for _, s := range []string{"", "a", `"`, `\`, "\n", "a\"b\\c\n\r\t", "中文", "\u202e", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit, err := KQLLiteral(s)
		if err != nil {
			return
		}
		got, ok := decodeKQLString(lit)
		if !ok || got != s {
			t.Fatalf("literal does not decode back to its input (len %d)", len(s))
		}
		if bytes.ContainsAny([]byte(lit[1:len(lit)-1]), "\n\r") {
			t.Fatal("raw newline in a literal")
		}
	})
}
