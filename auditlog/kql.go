package auditlog

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrUnsafeKQL: a value or name cannot be placed in a query safely.
var ErrUnsafeKQL = errors.New("auditlog: unsafe KQL")

// Log Analytics takes no query parameters, so every value that reaches a
// query goes through KQLLiteral and every table or column name through an
// allow-list: the only defence against KQL injection. Written by hand
// because no maintained Go library builds KQL.

// GUID is a value rendered as guid(...).
type GUID string

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// KQLLiteral renders v as a KQL literal: strings double-quoted with \\, \",
// \n, \r and \t escaped (other control, format and invalid UTF-8 characters
// are refused: they have no documented escape and could hide text from a
// reviewer), time.Time as datetime(), integers as long(), floats as real()
// (finite only), bool as true/false, GUID as guid() (validated), and
// []string as a dynamic([...]) array of string literals.
func KQLLiteral(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return kqlString(x)
	case GUID:
		if !guidRE.MatchString(string(x)) {
			return "", fmt.Errorf("%w: not a GUID", ErrUnsafeKQL)
		}
		return "guid(" + strings.ToLower(string(x)) + ")", nil
	case time.Time:
		if x.IsZero() {
			return "", fmt.Errorf("%w: zero time", ErrUnsafeKQL)
		}
		return "datetime(" + x.UTC().Format("2006-01-02T15:04:05.0000000Z") + ")", nil
	case int:
		return "long(" + strconv.Itoa(x) + ")", nil
	case int64:
		return "long(" + strconv.FormatInt(x, 10) + ")", nil
	case int32:
		return "long(" + strconv.FormatInt(int64(x), 10) + ")", nil
	case Outcome:
		return "long(" + strconv.Itoa(int(x)) + ")", nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("%w: non-finite real", ErrUnsafeKQL)
		}
		return "real(" + strconv.FormatFloat(x, 'g', -1, 64) + ")", nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case []string:
		parts := make([]string, len(x))
		for i, s := range x {
			lit, err := kqlString(s)
			if err != nil {
				return "", err
			}
			parts[i] = lit
		}
		return "dynamic([" + strings.Join(parts, ", ") + "])", nil
	}
	return "", fmt.Errorf("%w: unsupported literal type %T", ErrUnsafeKQL, v)
}

func kqlString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: string is not valid UTF-8", ErrUnsafeKQL)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
				return "", fmt.Errorf("%w: string holds control or format character U+%04X", ErrUnsafeKQL, r)
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)

// kqlText is query text written in code. The type is unexported so that
// only untyped string constants, not runtime strings, can be passed to
// KQL.Text: values must go through Value.
type kqlText string

// KQL builds one query from constant text, allow-listed names and literal
// values. The first error sticks and is returned by Build.
type KQL struct {
	allow map[string]bool
	b     strings.Builder
	err   error
}

// NewKQL returns a builder accepting the given table and column names.
func NewKQL(allowedNames ...string) *KQL {
	q := &KQL{allow: make(map[string]bool, len(allowedNames))}
	for _, n := range allowedNames {
		q.allow[n] = true
	}
	return q
}

// Text appends constant query text.
func (q *KQL) Text(s kqlText) *KQL {
	q.b.WriteString(string(s))
	return q
}

// Name appends a table or column name; it must be on the allow-list and a
// plain identifier.
func (q *KQL) Name(name string) *KQL {
	if q.err == nil && (!q.allow[name] || !identRE.MatchString(name)) {
		q.err = fmt.Errorf("%w: name not allowed", ErrUnsafeKQL)
	}
	q.b.WriteString(name)
	return q
}

// Value appends v as a literal (see KQLLiteral).
func (q *KQL) Value(v any) *KQL {
	lit, err := KQLLiteral(v)
	if err != nil && q.err == nil {
		q.err = err
	}
	q.b.WriteString(lit)
	return q
}

// Build returns the query, or the first error.
func (q *KQL) Build() (string, error) {
	if q.err != nil {
		return "", q.err
	}
	return q.b.String(), nil
}
