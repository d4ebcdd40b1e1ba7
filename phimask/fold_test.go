package phimask

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
)

func TestDetectUnicodeLookalikes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text, want string
		kind             Kind
		value            string // the finding, in the original bytes
	}{
		{"en dash SSN", "SSN 123–45–6789 on file", "SSN [REDACTED:SSN] on file", KindSSN, "123–45–6789"},
		{"em dash SSN", "ssn 123—45—6789", "ssn [REDACTED:SSN]", KindSSN, "123—45—6789"},
		{"minus sign SSN", "ssn 123−45−6789.", "ssn [REDACTED:SSN].", KindSSN, "123−45−6789"},
		{"no-break space SSN", "ssn 123\u00a045\u00a06789", "ssn [REDACTED:SSN]", KindSSN, "123\u00a045\u00a06789"},
		{"narrow no-break space phone", "call 555\u202f234\u202f5678 now", "call [REDACTED:PHONE] now", KindPhone, "555\u202f234\u202f5678"},
		{"full-width digits SSN", "ssn １２３-４５-６７８９", "ssn [REDACTED:SSN]", KindSSN, "１２３-４５-６７８９"},
		{"zero-width space inside", "ssn 123-45-67\u200b89 ok", "ssn [REDACTED:SSN] ok", KindSSN, "123-45-67\u200b89"},
		{"soft hyphen inside", "ssn 123-45\u00ad-6789", "ssn [REDACTED:SSN]", KindSSN, "123-45\u00ad-6789"},
		{"ideographic space before", "ssn\u3000123-45-6789", "ssn\u3000[REDACTED:SSN]", KindSSN, "123-45-6789"},
		{"full-width phone", "phone （５５５） ２３４-５６７８.", "phone [REDACTED:PHONE].", KindPhone, "（５５５） ２３４-５６７８"},
		{"en dash card", "card 4111–1111–1111–1111", "card [REDACTED:CREDIT_CARD]", KindCreditCard, "4111–1111–1111–1111"},
		{"en dash date", "DOB 1980–03–05", "DOB [REDACTED:DATE]", KindDate, "1980–03–05"},
		{"accents kept", "café ssn 123–45–6789 née", "café ssn [REDACTED:SSN] née", KindSSN, "123–45–6789"},
		{"no PHI, Unicode kept", "naïve – ok 12–3", "naïve – ok 12–3", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkFindings(t, tt.text)
			got := Redact(tt.text)
			assertRedacted(t, tt.want, got)
			if tt.kind == "" {
				assert.Empty(t, Detect(tt.text))
				return
			}
			var hit bool
			for _, f := range Detect(tt.text) {
				if f.Kind == tt.kind && tt.text[f.Start:f.End] == tt.value {
					hit = true
				}
			}
			assert.True(t, hit, "finding of kind %s with byte offsets over the original value", tt.kind)
		})
	}
}

func TestHandlerUnicodeLookalikeTokens(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	l, _, buf := newJSON(&Options{Key: key})
	l.Info("ssn １２３–４５–６７８９", slog.String("note", "ssn 123\u200b-45-6789"))
	m := decode(t, buf)
	tok := Tokenize(key, KindSSN, "123-45-6789")
	assertRedacted(t, "ssn "+tok, m["msg"], "a look-alike gives the token of the ASCII value")
	assertRedacted(t, "ssn "+tok, m["note"])
}

// lookalike rewrites v with Unicode look-alikes: full-width digits, Unicode
// dashes and spaces, and a zero-width space after the first digit.
func lookalike(v string, variant int) string {
	var b strings.Builder
	dashes := []string{"\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\uff0d"}
	spaces := []string{"\u00a0", "\u2007", "\u2009", "\u202f", "\u3000"}
	zw := false
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			if variant%2 == 0 {
				b.WriteRune(0xFF10 + r - '0')
			} else {
				b.WriteRune(r)
			}
			if !zw && variant%3 == 0 {
				b.WriteString("\u200b")
				zw = true
			}
		case r == '-':
			b.WriteString(dashes[variant%len(dashes)])
		case r == ' ':
			b.WriteString(spaces[variant%len(spaces)])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestGeneratorLookalikesDetected(t *testing.T) {
	t.Parallel()
	g := phiGen{gofakeit.New(11)}
	for i := 0; i < 300; i++ {
		for label, v := range map[string]string{
			"ssn": "ssn " + g.ssn(), "phone": g.phone(), "npi": g.npi(), "card": g.card(), "date": g.date(),
		} {
			lv := lookalike(v, i)
			checkFindings(t, lv)
			out := Redact(lv)
			digits := 0
			for _, r := range out {
				if r >= 0xFF10 && r <= 0xFF19 || r >= '0' && r <= '9' {
					digits++
				}
			}
			if digits > 0 {
				t.Fatalf("look-alike %s #%d (variant %d) keeps %d digits after Redact", label, i, i, digits)
			}
		}
	}
}
