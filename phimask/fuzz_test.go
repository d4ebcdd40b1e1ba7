package phimask

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var marker = regexp.MustCompile(`\[REDACTED:[A-Z_]+\]`)

// checkFindings verifies the contract of Detect and Redact on text.
func checkFindings(t *testing.T, text string) {
	found := Detect(text)
	prev := 0
	var b strings.Builder
	for i, f := range found {
		if f.Start < prev || f.End <= f.Start || f.End > len(text) {
			t.Fatalf("finding %d (%s) has invalid offsets [%d,%d) after %d in %d bytes", i, f.Kind, f.Start, f.End, prev, len(text))
		}
		b.WriteString(text[prev:f.Start])
		b.WriteString("[REDACTED:" + string(f.Kind) + "]")
		prev = f.End
	}
	b.WriteString(text[prev:])
	out := Redact(text)
	if out != b.String() {
		t.Fatalf("Redact differs from the findings of Detect (%d findings)", len(found))
	}
	// No detected value survives anywhere as a standalone token.
	stripped := marker.ReplaceAllString(out, "\x00")
	for i, f := range found {
		v := text[f.Start:f.End]
		for from := 0; ; {
			k := strings.Index(stripped[from:], v)
			if k < 0 {
				break
			}
			a, e := from+k, from+k+len(v)
			from = a + 1
			glued := (a > 0 && isAlnum(stripped[a-1]) && isAlnum(v[0])) ||
				(e < len(stripped) && isAlnum(stripped[e]) && isAlnum(v[len(v)-1]))
			if !glued {
				t.Fatalf("finding %d (%s, %d bytes) survives in the output", i, f.Kind, len(v))
			}
		}
	}
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{
		"admitted patient SSN 123-45-6789 to ward 4",
		"Patient: Jane Doe, DOB 03/05/1980, phone (555) 234-5678, jd@example.org",
		"card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, NPI 1234567893",
		"MBI 1EG4-TE5-MK73 DEA AP5836727 VIN 1HGCM82633A004352",
		"1234 Elm Street, Apt 5B, Springfield, IL 62704-1234",
		"at 2024-03-05T14:07:00Z from 2001:db8::1 and 192.168.1.20 via https://x.example/p",
		"trace 4bf92f3577b34da6a3ce929d0e0e4736 uuid 123e4567-e89b-12d3-a456-426614174000 v1.2.3 250ms",
		"spoke with his wife Mary; Dr. O'Neil; aged 93; 92-year-old",
		"MRN: A1234567, member id XK99812, policy #P-5566, fax: 555.234.5678 x12",
		"", "@", "::", "+", "(", "1", "Dr.", "patient ", "ssn 9",
		// Unicode look-alikes: dashes, no-break spaces, full-width digits,
		// zero-width characters.
		"SSN 123\u201345\u20136789", "ssn 123\u00a045\u00a06789", "ssn \uff11\uff12\uff13-\uff14\uff15-\uff16\uff17\uff18\uff19",
		"ssn 123-45-67\u200b89", "phone \uff08555\uff09 234\u20115678", "\u200b\u00ad\ufeff", "1\u20132\u00a03\u200b", "\xe2\x80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		checkFindings(t, text)
	})
}

type fuzzStruct struct {
	Name  string
	Note  string
	Tag   string `phi:"mrn"`
	Inner *fuzzStruct
	List  []any
	M     map[string]any
	priv  string
}

func FuzzHandler(f *testing.F) {
	f.Add("admitted patient SSN 123-45-6789", "note", "call 555-234-5678", int64(3), uint8(2))
	f.Add("m", "patientName", "Jane Doe", int64(123456789), uint8(0))
	f.Add("", "", "", int64(0), uint8(9))
	f.Add("x", "jd@example.org", "Dr. Jane O'Neil", int64(-1), uint8(5))
	f.Fuzz(func(t *testing.T, msg, key, val string, n int64, depth uint8) {
		var buf bytes.Buffer
		l := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), &Options{MaxDepth: 6}))
		st := &fuzzStruct{Name: val, Note: msg, Tag: val, priv: val, M: map[string]any{key: val, "n": n}}
		cur := st
		for i := 0; i < int(depth%12); i++ {
			cur.Inner = &fuzzStruct{Note: val, List: []any{val, n, errors.New(val), []byte(val)}}
			cur = cur.Inner
		}
		if depth%3 == 0 {
			cur.Inner = st // cycle
		}
		g := slog.String(key, val)
		for i := 0; i < int(depth%10); i++ {
			g = slog.Group(key, g, slog.Int64("n", n))
		}
		l.With(key, val).WithGroup(key).Info(msg, "s", val, key, n, "st", st, g, "err", errors.New(val))
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("output is not valid JSON: %v", err)
		}
		// The JSON handler rewrites invalid UTF-8, so compare valid messages only.
		if got, want := m["msg"], Redact(msg); utf8.ValidString(msg) && got != want {
			t.Fatalf("message not redacted as Redact does")
		}
		if strings.Contains(buf.String(), `"priv":`) {
			t.Fatalf("unexported field printed")
		}
		checkPHIKeysHidden(t, val, n)
	})
}

// checkPHIKeysHidden logs a marked copy of val under PHI keys, in every
// shape, and under keys denied by an allow-list, and fails if the copy
// appears anywhere in the output (keys included). It reports no value.
func checkPHIKeysHidden(t *testing.T, val string, n int64) {
	if !utf8.ValidString(val) {
		return // the JSON handler rewrites invalid UTF-8
	}
	secret := "zq" + val + "qz"
	for _, opts := range []*Options{{MaxDepth: 6}, {MaxDepth: 6, AllowKeys: []string{"request_id"}}} {
		var buf bytes.Buffer
		l := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), opts))
		l.Info("m", "ssn", secret, "patientNames", []any{secret, n, []byte(secret), errors.New(secret)},
			slog.Any("patients", map[string]any{secret: secret}),
			slog.Any("dob", map[any]any{secret: []string{secret}}),
			slog.Any("a", slog.String("lastName", secret)),
			slog.Any("rec", fuzzStruct{Name: secret, Tag: secret, M: map[string]any{"ssn": secret}}),
			slog.Group("patient", slog.String("note", secret), slog.Any("p", &secret)))
		if opts.AllowKeys != nil {
			l.Info("m", "comment", []string{secret}, "data", map[string]any{secret: secret}, "c", &secret,
				"request_id", map[string]any{"comment": secret, "list": []any{&secret}})
		}
		var tree any
		if err := json.Unmarshal(buf.Bytes(), &tree); err != nil {
			// Two records: decode them one by one.
			dec := json.NewDecoder(&buf)
			for dec.More() {
				if err := dec.Decode(&tree); err != nil {
					t.Fatalf("output is not valid JSON: %v", err)
				}
				if leaksIn(tree, secret) {
					t.Fatalf("a value under a PHI or denied key appears in the output (allow-list %v)", opts.AllowKeys != nil)
				}
			}
			continue
		}
		if leaksIn(tree, secret) {
			t.Fatalf("a value under a PHI or denied key appears in the output (allow-list %v)", opts.AllowKeys != nil)
		}
	}
}

// leaksIn reports whether secret occurs in a string or key of a decoded
// JSON tree.
func leaksIn(v any, secret string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, secret)
	case []any:
		for _, e := range x {
			if leaksIn(e, secret) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.Contains(k, secret) || leaksIn(e, secret) {
				return true
			}
		}
	}
	return false
}
