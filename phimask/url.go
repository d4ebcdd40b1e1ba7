package phimask

import (
	"net/url"
	"strings"
)

// RedactURL returns u as a string for request logs with the PHI in it
// replaced, using the default options:
//
//   - user information is replaced by "REDACTED";
//   - each path segment is scanned, and a segment that follows a segment
//     naming PHI ("/patients/12345", "/mrn/A77") is replaced whole;
//   - each query value is replaced whole when its key is a PHI key
//     ("?dob=...", "?patientName=...") and scanned otherwise; keys are
//     scanned too;
//   - the fragment is scanned.
//
// The scheme and host are kept (an IP host is replaced). A nil u gives "".
// The result is for logging: replaced parts are not URL-escaped.
func RedactURL(u *url.URL) string {
	return redactURL(u, defaultURLConfig, nil)
}

// defaultURLConfig is read-only: its key rules do not cache.
var defaultURLConfig = func() *config {
	c := &config{text: textConfig{on: allKinds}, maxDepth: defaultMaxDepth}
	c.keys = newKeyRules(&Options{}, &c.text)
	c.keys.nocache = true
	return c
}()

func redactURL(u *url.URL, c *config, st *stats) string {
	if u == nil {
		return ""
	}
	var cnt counter
	if st != nil {
		cnt = st
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme)
		b.WriteByte(':')
	}
	if u.Opaque != "" {
		s, _ := c.text.redact(u.Opaque, cnt)
		b.WriteString(s)
	} else {
		if u.Scheme != "" || u.Host != "" || u.User != nil {
			b.WriteString("//")
		}
		if u.User != nil {
			b.WriteString("REDACTED@")
		}
		host := u.Host
		if hs, ch := c.text.redact(u.Hostname(), cnt); ch {
			host = hs
			if p := u.Port(); p != "" {
				host += ":" + p
			}
		}
		b.WriteString(host)
		segs := strings.Split(u.EscapedPath(), "/")
		phiNext := false
		var phiKind kid
		for i, seg := range segs {
			if i > 0 {
				b.WriteByte('/')
			}
			raw, err := url.PathUnescape(seg)
			if err != nil {
				raw = seg
			}
			switch {
			case seg == "":
			case phiNext:
				if st != nil {
					st.count(phiKind)
				}
				b.WriteString(replacement(c.text.tok, kindNames[phiKind], raw))
			default:
				if s, ch := c.text.redact(raw, cnt); ch {
					b.WriteString(s)
				} else {
					b.WriteString(seg)
				}
			}
			phiNext = false
			if seg != "" {
				if kc := c.keys.classify(raw); kc.phi {
					phiNext, phiKind = true, kc.k
					if phiKind == kName {
						phiKind = kID // "/patients/{id}" holds an identifier
					}
				}
			}
		}
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		for i, part := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			k, v, hasV := strings.Cut(part, "=")
			key, err := url.QueryUnescape(k)
			if err != nil {
				key = k
			}
			if s, ch := c.text.redact(key, cnt); ch {
				b.WriteString(s)
			} else {
				b.WriteString(k)
			}
			if !hasV {
				continue
			}
			b.WriteByte('=')
			val, err := url.QueryUnescape(v)
			if err != nil {
				val = v
			}
			kc := c.keys.classify(key)
			switch {
			case kc.pass:
				b.WriteString(v)
			case kc.phi:
				if st != nil {
					st.count(kc.k)
					st.key(key)
				}
				b.WriteString(replacement(c.text.tok, kindNames[kc.k], val))
			default:
				if s, ch := c.text.redact(val, cnt); ch {
					b.WriteString(s)
				} else {
					b.WriteString(v)
				}
			}
		}
	}
	if u.Fragment != "" {
		b.WriteByte('#')
		s, _ := c.text.redact(u.Fragment, cnt)
		b.WriteString(s)
	}
	return b.String()
}
