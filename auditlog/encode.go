package auditlog

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends e as JSON, byte for byte what encoding/json.Marshal
// gives for Event (a test and a fuzz target hold it to that). It exists
// because reflection-based encoding was half of Record's CPU time; the
// trail's format is still defined by the struct tags of Event.
func appendEvent(b []byte, e *Event) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = appendCoding(b, &e.Type)
	if len(e.Subtype) > 0 {
		b = append(b, `,"subtype":[`...)
		for i := range e.Subtype {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCoding(b, &e.Subtype[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"action":`...)
	b = appendString(b, string(e.Action))
	b = append(b, `,"outcome":`...)
	b = strconv.AppendInt(b, int64(e.Outcome), 10)
	if e.OutcomeDesc != "" {
		b = append(b, `,"outcomeDesc":`...)
		b = appendString(b, e.OutcomeDesc)
	}
	b = append(b, `,"actor":{"id":`...)
	b = appendString(b, e.Actor.ID)
	if len(e.Actor.Roles) > 0 {
		b = append(b, `,"roles":`...)
		b = appendStrings(b, e.Actor.Roles)
	}
	if e.Actor.ClientIP != "" {
		b = append(b, `,"clientIp":`...)
		b = appendString(b, e.Actor.ClientIP)
	}
	if e.Actor.UserAgent != "" {
		b = append(b, `,"userAgent":`...)
		b = appendString(b, e.Actor.UserAgent)
	}
	b = append(b, `,"requestor":`...)
	b = strconv.AppendBool(b, e.Actor.Requestor)
	b = append(b, `},"observer":{"service":`...)
	b = appendString(b, e.Observer.Service)
	if e.Observer.Instance != "" {
		b = append(b, `,"instance":`...)
		b = appendString(b, e.Observer.Instance)
	}
	if e.Observer.Site != "" {
		b = append(b, `,"site":`...)
		b = appendString(b, e.Observer.Site)
	}
	b = append(b, '}')
	if len(e.Entities) > 0 {
		b = append(b, `,"entities":[`...)
		for i := range e.Entities {
			en := &e.Entities[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = appendString(b, en.Type)
			b = append(b, `,"identifier":`...)
			b = appendString(b, en.Identifier)
			if en.Role != "" {
				b = append(b, `,"role":`...)
				b = appendString(b, en.Role)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(e.PurposeOfUse) > 0 {
		b = append(b, `,"purposeOfUse":`...)
		b = appendStrings(b, e.PurposeOfUse)
	}
	if e.RequestID != "" {
		b = append(b, `,"requestId":`...)
		b = appendString(b, e.RequestID)
	}
	if e.TraceID != "" {
		b = append(b, `,"traceId":`...)
		b = appendString(b, e.TraceID)
	}
	return append(b, '}')
}

func appendCoding(b []byte, c *Coding) []byte {
	b = append(b, '{')
	if c.System != "" {
		b = append(b, `"system":`...)
		b = appendString(b, c.System)
		b = append(b, ',')
	}
	b = append(b, `"code":`...)
	b = appendString(b, c.Code)
	if c.Display != "" {
		b = append(b, `,"display":`...)
		b = appendString(b, c.Display)
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on:
// control characters, <, > and & as \u00XX, U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
