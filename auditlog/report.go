package auditlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/monitor/azquery"

	"github.com/phiguard/phiguard/phimask"
)

// DefaultTable is the Log Analytics table the ingestion sink's rows land in
// (see docs/auditlog.md for its columns and the data collection rule).
const DefaultTable = "PhiguardAudit_CL"

// The columns of the audit table, and the only names a report query may use.
var reportColumns = []string{
	"TimeGenerated", "EventId", "Action", "Outcome", "TypeCode", "ActorId", "ActorRoles", "ClientIp",
	"EntityIds", "PurposeOfUse", "Service", "Instance", "RequestId", "TraceId",
}

// ReporterOptions configure a Reporter.
type ReporterOptions struct {
	// Table is the audit table (DefaultTable if empty); a plain identifier.
	Table string
	// MaxRows bounds a report (10,000 if 0). A query that matches more rows
	// fails with ErrTooManyRows rather than return a silently cut answer:
	// narrow its span. The query itself asks for at most MaxRows+1 rows, so
	// a broad question cannot pull a whole table into memory.
	MaxRows int
	// PseudonymKey is the Logger's key, needed by PatientAccess to turn a
	// patient identifier into its token: the identifier itself never leaves
	// the process, not even in a query.
	PseudonymKey []byte
}

// Reporter answers the auditors' questions from the audit table in a Log
// Analytics workspace through the caller's *azquery.LogsClient. Every value
// in a query is a checked KQL literal, every name from an allow-list.
// Results are de-duplicated on EventId (delivery is at-least-once). Safe for
// concurrent use.
type Reporter struct {
	client      *azquery.LogsClient
	workspaceID string
	table       string
	key         []byte
	maxRows     int
}

// ErrTooManyRows means a report matched more than ReporterOptions.MaxRows
// rows.
var ErrTooManyRows = errors.New("auditlog: reporter: too many rows")

// DefaultMaxRows is ReporterOptions.MaxRows when zero.
const DefaultMaxRows = 10_000

// AuditRow is one event as stored in the audit table.
type AuditRow struct {
	Time         time.Time
	EventID      string
	Action       Action
	Outcome      Outcome
	TypeCode     string
	ActorID      string
	ActorRoles   []string
	ClientIP     string
	EntityIDs    []string
	PurposeOfUse []string
	Service      string
	Instance     string
	RequestID    string
	TraceID      string
}

// Span is a half-open time range [Start, End).
type Span struct{ Start, End time.Time }

// NewReporter returns a reporter on workspaceID.
func NewReporter(client *azquery.LogsClient, workspaceID string, opts *ReporterOptions) (*Reporter, error) {
	if client == nil || workspaceID == "" {
		return nil, errors.New("auditlog: reporter: client and workspace ID are required")
	}
	r := &Reporter{client: client, workspaceID: workspaceID, table: DefaultTable, maxRows: DefaultMaxRows}
	if opts != nil {
		if opts.Table != "" {
			r.table = opts.Table
		}
		if opts.MaxRows > 0 {
			r.maxRows = opts.MaxRows
		}
		r.key = append([]byte(nil), opts.PseudonymKey...)
	}
	if !identRE.MatchString(r.table) {
		return nil, fmt.Errorf("%w: table name", ErrUnsafeKQL)
	}
	return r, nil
}

func (r *Reporter) query(span Span) *KQL {
	q := NewKQL(append([]string{r.table}, reportColumns...)...)
	q.Name(r.table).Text("\n| where ").Name("TimeGenerated").Text(" >= ").Value(span.Start).
		Text(" and ").Name("TimeGenerated").Text(" < ").Value(span.End)
	return q
}

func (r *Reporter) finish(q *KQL) *KQL {
	return q.Text("\n| summarize arg_max(TimeGenerated, *) by EventId\n| order by TimeGenerated asc\n| take ").
		Value(int64(r.maxRows) + 1)
}

// PatientAccess lists every access to the records of one patient over span:
// identifier is tokenized with the key and kind (KindID if empty) first.
func (r *Reporter) PatientAccess(ctx context.Context, kind phimask.Kind, identifier string, span Span) ([]AuditRow, error) {
	if len(r.key) < MinKeyLen {
		return nil, ErrNoKey
	}
	if kind == "" {
		kind = phimask.KindID
	}
	tok := phimask.Tokenize(r.key, kind, identifier)
	q := r.query(span).Text("\n| where set_has_element(").Name("EntityIds").Text(", ").Value(tok).Text(")")
	return r.run(ctx, r.finish(q), span)
}

// UserActivity lists everything actorID did over span.
func (r *Reporter) UserActivity(ctx context.Context, actorID string, span Span) ([]AuditRow, error) {
	q := r.query(span).Text("\n| where ").Name("ActorId").Text(" == ").Value(actorID)
	return r.run(ctx, r.finish(q), span)
}

// Failures lists failed and denied accesses (outcome other than success).
func (r *Reporter) Failures(ctx context.Context, span Span) ([]AuditRow, error) {
	q := r.query(span).Text("\n| where ").Name("Outcome").Text(" != ").Value(OutcomeSuccess)
	return r.run(ctx, r.finish(q), span)
}

// OutsidePurpose lists accesses whose purpose of use is none of allowed
// (v3-ActReason codes such as "TREAT"), including those without a purpose.
func (r *Reporter) OutsidePurpose(ctx context.Context, allowed []string, span Span) ([]AuditRow, error) {
	if len(allowed) == 0 {
		return nil, errors.New("auditlog: reporter: no allowed purpose given")
	}
	q := r.query(span).Text("\n| where array_length(set_intersect(todynamic(").Name("PurposeOfUse").
		Text("), ").Value(allowed).Text(")) == 0")
	return r.run(ctx, r.finish(q), span)
}

func (r *Reporter) run(ctx context.Context, q *KQL, span Span) ([]AuditRow, error) {
	if !span.Start.Before(span.End) {
		return nil, errors.New("auditlog: reporter: empty time span")
	}
	text, err := q.Build()
	if err != nil {
		return nil, err
	}
	ti := azquery.NewTimeInterval(span.Start.UTC(), span.End.UTC())
	resp, err := r.client.QueryWorkspace(ctx, r.workspaceID, azquery.Body{Query: &text, Timespan: &ti}, nil)
	if err != nil {
		return nil, fmt.Errorf("auditlog: reporter: query: %w", err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("auditlog: reporter: partial result: %s", resp.Error.Code)
	}
	if len(resp.Tables) == 0 {
		return nil, nil
	}
	rows, err := parseRows(resp.Tables[0])
	if err != nil {
		return nil, err
	}
	if len(rows) > r.maxRows {
		return nil, fmt.Errorf("%w: more than %d; narrow the time span", ErrTooManyRows, r.maxRows)
	}
	return rows, nil
}

func parseRows(t *azquery.Table) ([]AuditRow, error) {
	col := map[string]int{}
	for i, c := range t.Columns {
		if c != nil && c.Name != nil {
			col[*c.Name] = i
		}
	}
	for _, need := range []string{"TimeGenerated", "EventId", "Action", "Outcome", "ActorId"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("auditlog: reporter: result lacks column %s", need)
		}
	}
	out := make([]AuditRow, 0, len(t.Rows))
	for n, row := range t.Rows {
		get := func(name string) any {
			i, ok := col[name]
			if !ok || i >= len(row) {
				return nil
			}
			return row[i]
		}
		str := func(name string) string {
			s, _ := get(name).(string)
			return s
		}
		var a AuditRow
		var err error
		if a.Time, err = time.Parse(time.RFC3339Nano, str("TimeGenerated")); err != nil {
			return nil, fmt.Errorf("auditlog: reporter: row %d: bad TimeGenerated", n)
		}
		a.EventID, a.Action, a.TypeCode, a.ActorID = str("EventId"), Action(str("Action")), str("TypeCode"), str("ActorId")
		a.ClientIP, a.Service, a.Instance, a.RequestID, a.TraceID = str("ClientIp"), str("Service"), str("Instance"), str("RequestId"), str("TraceId")
		switch o := get("Outcome").(type) {
		case float64:
			a.Outcome = Outcome(int(o))
		case string:
			v, _ := strconv.Atoi(o)
			a.Outcome = Outcome(v)
		}
		if a.ActorRoles, err = dynStrings(get("ActorRoles")); err == nil {
			if a.EntityIDs, err = dynStrings(get("EntityIds")); err == nil {
				a.PurposeOfUse, err = dynStrings(get("PurposeOfUse"))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("auditlog: reporter: row %d: %w", n, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// dynStrings reads a dynamic column: Log Analytics returns it as JSON text.
func dynStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if x == "" {
			return nil, nil
		}
		var out []string
		if err := json.Unmarshal([]byte(x), &out); err != nil {
			return nil, errors.New("dynamic column is not a string array")
		}
		return out, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("dynamic column is not a string array")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("dynamic column has an unexpected type")
}
