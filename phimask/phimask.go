package phimask

import (
	"strings"
)

// Finding is one span of PHI in a text: the byte offsets [Start, End) and the
// kind of PHI found there.
type Finding struct {
	Kind       Kind
	Start, End int
}

// Detect returns the PHI findings in text with the default detectors (every
// Kind), sorted by Start and non-overlapping. Once a value is found, its
// other standalone occurrences in text are findings too ("patient Jane Doe
// ... Jane Doe called"). It returns nil when text holds no PHI. Detect is
// safe for concurrent use.
func Detect(text string) []Finding {
	return detect(text, allKinds)
}

func detect(text string, on kindSet) []Finding {
	var s scanner
	folded, fm := fold(text)
	s.t, s.on = folded, on
	s.run()
	s.propagate()
	if s.n == 0 {
		return nil
	}
	out := make([]Finding, s.n)
	for k, f := range s.spans() {
		a, e := fm.origin(f.s, f.e)
		out[k] = Finding{Kind: kindNames[f.k], Start: a, End: e}
	}
	return out
}

// Redact returns text with every finding of Detect replaced by
// "[REDACTED:KIND]"; the rest of the text is kept byte for byte. When text
// holds no PHI, Redact returns it unchanged without allocating. Redact is
// safe for concurrent use.
func Redact(text string) string {
	out, _ := defaultText.redact(text, nil)
	return out
}

// textConfig holds what free-text redaction depends on. It is immutable
// once built.
type textConfig struct {
	on         kindSet
	tok        *Tokenizer // nil: "[REDACTED:KIND]" replacements
	safeHarbor bool
	// yearFloor: under Safe Harbor, a year before it would reveal an age over
	// 89 and is not kept (0: keep every year).
	yearFloor int
}

var defaultText = &textConfig{on: allKinds}

// counter receives one call per replaced span.
type counter interface{ count(k kid) }

// redact replaces every finding in text. It reports whether anything was
// replaced; when nothing was, text is returned as is.
func (c *textConfig) redact(text string, cnt counter) (string, bool) {
	if len(text) == 0 {
		return text, false
	}
	var s scanner
	folded, fm := fold(text)
	s.t, s.on = folded, c.on
	s.run()
	s.propagate()
	if s.n == 0 {
		return text, false
	}
	var b strings.Builder
	b.Grow(len(text) + 16*s.n)
	last := 0
	for _, f := range s.spans() {
		a, e := fm.origin(f.s, f.e)
		b.WriteString(text[last:a])
		// The folded value: tokens and Safe Harbor read ASCII digits.
		c.replace(&b, f.k, folded[f.s:f.e])
		if cnt != nil {
			cnt.count(f.k)
		}
		last = e
	}
	b.WriteString(text[last:])
	return b.String(), true
}

// replace writes the replacement of value, of kind k.
func (c *textConfig) replace(b *strings.Builder, k kid, value string) {
	if c.safeHarbor {
		switch k {
		case kDate:
			if y := yearOf(value); y != "" && (c.yearFloor == 0 || atoi(y) >= c.yearFloor) {
				b.WriteString(y)
				return
			}
		case kZIP:
			b.WriteString(safeHarborZIP(value))
			return
		case kAge:
			b.WriteString("90+")
			return
		}
	}
	writeReplacement(b, c.tok, kindNames[k], value)
}

// writeReplacement writes "[REDACTED:KIND]", or the keyed token when key is set.
func writeReplacement(b *strings.Builder, tok *Tokenizer, k Kind, value string) {
	if tok != nil {
		b.WriteString(tok.Token(k, value))
		return
	}
	b.WriteString("[REDACTED:")
	b.WriteString(string(k))
	b.WriteByte(']')
}

// replacement returns the whole-value replacement of value.
func replacement(tok *Tokenizer, k Kind, value string) string {
	if tok != nil {
		return tok.Token(k, value)
	}
	return "[REDACTED:" + string(k) + "]"
}

// yearOf returns the four-digit year inside a date, or "".
func yearOf(v string) string {
	for i := 0; i+4 <= len(v); i++ {
		if (i == 0 || !isDigit(v[i-1])) && allDigits(v[i:i+4]) && (i+4 == len(v) || !isDigit(v[i+4])) {
			if validYear(atoi(v[i : i+4])) {
				return v[i : i+4]
			}
		}
	}
	// Compact YYYYMMDD / MMDDYYYY.
	if len(v) == 8 && allDigits(v) {
		if y := atoi(v[:4]); validYear(y) && atoi(v[4:6]) <= 12 {
			return v[:4]
		}
		if y := atoi(v[4:]); validYear(y) {
			return v[4:]
		}
	}
	return ""
}

// restrictedZIP3 lists the three-digit ZIP prefixes with 20,000 or fewer
// people, which Safe Harbor replaces by "000" (45 CFR 164.514(b)(2)(i)(B)).
const restrictedZIP3 = " 036 059 063 102 203 556 692 790 821 823 830 831 878 879 884 890 893 "

// safeHarborZIP keeps the first three digits of a ZIP code, or "000" for a
// restricted prefix.
func safeHarborZIP(v string) string {
	d := keepDigits(v)
	if len(d) < 5 {
		return "000"
	}
	p := d[:3]
	if strings.Contains(restrictedZIP3, " "+p+" ") {
		return "000"
	}
	return p
}
