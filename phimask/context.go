package phimask

import (
	"unicode"
	"unicode/utf8"
)

// Context words introduce PHI that has no shape of its own (record numbers,
// names) or make an ambiguous shape certain (a bare nine-digit SSN, a fax
// number, a date of birth written as an RFC 3339 timestamp).

type ctxID uint8

const (
	cxSSN ctxID = iota + 1
	cxSocial
	cxITIN
	cxNPI
	cxMBI
	cxMRN
	cxMedical
	cxAcct
	cxAccount
	cxMember
	cxHealth
	cxPolicy
	cxLicense
	cxVIN
	cxDevice
	cxSerial
	cxDOB
	cxAge
	cxFax
	cxPhone
	cxZip
	cxTitle
	cxPatient
	cxName
	cxNamed
	cxSpoke
	cxRelative
)

const maxCtxWord = 12

type ctxTable struct {
	// pair[a&31][b&31] has bit n set when some context word of length n
	// starts with the letters a, b (any case): one lookup rules out most
	// words. Indexing by c&31 needs no bounds check.
	pair  [32][32]uint16
	words map[string]ctxID
}

// maybe reports whether the word t[i:j] (letters only) may be a context word.
func (c *ctxTable) maybe(t string, i, j int) bool {
	n := j - i
	if n < 2 || n > maxCtxWord {
		return false
	}
	return c.pair[t[i]&31][t[i+1]&31]&(1<<n) != 0
}

// ctxTab is a read-only table built once.
var ctxTab = func() *ctxTable {
	words := map[string]ctxID{
		"ssn": cxSSN, "ssns": cxSSN, "social": cxSocial,
		"itin": cxITIN, "npi": cxNPI, "mbi": cxMBI, "medicare": cxMBI, "hicn": cxMBI,
		"mrn": cxMRN, "medical": cxMedical, "chart": cxAccount,
		"acct": cxAcct, "account": cxAccount,
		"member": cxMember, "subscriber": cxMember, "beneficiary": cxMember, "enrollee": cxMember,
		"health": cxHealth,
		"policy": cxPolicy, "group": cxPolicy,
		"license": cxLicense, "licence": cxLicense, "certificate": cxLicense,
		"vin": cxVIN, "device": cxDevice, "serial": cxSerial, "imei": cxSerial,
		"dob": cxDOB, "born": cxDOB, "birth": cxDOB, "birthdate": cxDOB, "birthday": cxDOB,
		"age": cxAge, "aged": cxAge,
		"fax":   cxFax,
		"phone": cxPhone, "tel": cxPhone, "telephone": cxPhone, "mobile": cxPhone, "cell": cxPhone,
		"zip": cxZip, "zipcode": cxZip, "postal": cxZip,
		"mr": cxTitle, "mrs": cxTitle, "ms": cxTitle, "miss": cxTitle, "mx": cxTitle, "dr": cxTitle,
		"patient": cxPatient, "pt": cxPatient,
		"doctor": cxNamed, "nurse": cxNamed, "physician": cxNamed, "professor": cxNamed, "prof": cxTitle,
		"name": cxName, "named": cxNamed,
		"spoke": cxSpoke, "talked": cxSpoke, "called": cxNamed,
		"wife": cxRelative, "husband": cxRelative, "son": cxRelative, "daughter": cxRelative,
		"mother": cxRelative, "father": cxRelative, "brother": cxRelative, "sister": cxRelative,
		"spouse": cxRelative, "partner": cxRelative, "guardian": cxRelative, "caregiver": cxRelative,
		"grandson": cxRelative, "granddaughter": cxRelative, "grandmother": cxRelative,
		"grandfather": cxRelative, "aunt": cxRelative, "uncle": cxRelative, "niece": cxRelative,
		"nephew": cxRelative, "cousin": cxRelative, "fiance": cxRelative, "fiancee": cxRelative,
	}
	t := &ctxTable{words: words}
	for w := range words {
		t.pair[w[0]&31][w[1]&31] |= 1 << len(w)
	}
	return t
}()

// nextWord returns the letters-only word after at most two spaces at p.
func (s *scanner) nextWord(p int) (int, int) {
	t := s.t
	for k := 0; k < 2 && p < len(t) && t[p] == ' '; k++ {
		p++
	}
	e := p
	for e < len(t) && isLetter(t[e]) {
		e++
	}
	return p, e
}

// skipFill skips what may sit between a context word and its value:
// spaces, ':', '#', '=', and words such as "number", "no.", "id", "is".
// qualified reports whether an explicit qualifier (punctuation or
// "number"/"id") was seen.
func (s *scanner) skipFill(p int) (q int, qualified bool) {
	t := s.t
	for steps := 0; steps < 6 && p < len(t); steps++ {
		switch c := t[p]; {
		case c == ' ':
			p++
		case c == ':' || c == '#' || c == '=':
			qualified = true
			p++
		case c == '-' && p+1 < len(t) && t[p+1] == ' ':
			p++
		case isLetter(c):
			e := p
			for e < len(t) && isLetter(t[e]) {
				e++
			}
			var lb [16]byte
			switch string(lower(&lb, t[p:e])) {
			case "number", "numbers", "num", "no", "nr", "nbr", "id", "ids", "identifier", "code", "card":
				qualified = true
			case "is", "was", "of", "record", "records":
			default:
				return p, qualified
			}
			p = e
			if p < len(t) && t[p] == '.' {
				p++
			}
		default:
			return p, qualified
		}
	}
	return p, qualified
}

// context handles a context word [i, j). It returns the end of the value
// it emitted, or j.
func (s *scanner) context(id ctxID, i, j int) int {
	t := s.t
	switch id {
	case cxSocial:
		if a, b := s.nextWord(j); equalFold(t[a:b], "security") {
			return s.context(cxSSN, a, b)
		}
	case cxSSN, cxITIN:
		q, _ := s.skipFill(j)
		if e := s.ssnValue(q); e > 0 {
			return e
		}
	case cxNPI:
		q, _ := s.skipFill(j)
		if d := s.digitsEnd(q); d-q == 10 && s.boundaryAfter(d) && validNPI(t[q:d]) {
			s.emit(kNPI, q, d)
			return d
		}
	case cxMBI:
		q, _ := s.skipFill(j)
		if q < len(t) && t[q] >= '1' && t[q] <= '9' {
			if e := s.mbi(q); e > 0 {
				return e
			}
		}
	case cxMRN:
		return s.idAfter(j, kMRN, false)
	case cxMedical:
		if a, b := s.nextWord(j); equalFold(t[a:b], "record") || equalFold(t[a:b], "records") {
			return s.idAfter(b, kMRN, false)
		}
	case cxAcct:
		return s.idAfter(j, kAccount, false)
	case cxAccount:
		return s.idAfter(j, kAccount, true)
	case cxMember:
		return s.idAfter(j, kMember, true)
	case cxHealth:
		if a, b := s.nextWord(j); equalFold(t[a:b], "plan") {
			return s.idAfter(b, kMember, true)
		}
	case cxPolicy:
		return s.idAfter(j, kPolicy, true)
	case cxLicense:
		return s.idAfter(j, kLicense, true)
	case cxVIN:
		q, _ := s.skipFill(j)
		if e := s.alnumEnd(q); e-q == 17 {
			s.emit(kVIN, q, e)
			return e
		}
	case cxDevice:
		return s.idAfter(j, kDevice, true)
	case cxSerial:
		return s.idAfter(j, kDevice, false)
	case cxDOB:
		q, _ := s.skipFill(j)
		if e := s.dateAt(q); e > 0 {
			return e
		}
	case cxAge:
		q, _ := s.skipFill(j)
		d := s.digitsEnd(q)
		if d-q >= 2 && d-q <= 3 && (s.boundaryAfter(d) || s.ageSuffix(d) > 0) {
			if v := atoi(t[q:d]); v >= 90 && v <= 150 {
				s.emit(kAge, q, d)
				return d
			}
		}
	case cxFax, cxPhone:
		k := kPhone
		if id == cxFax {
			k = kFax
		}
		q, _ := s.skipFill(j)
		if q < len(t) && (isDigit(t[q]) || t[q] == '(' || t[q] == '+') {
			if e := s.phoneAt(q, k, true); e > 0 {
				return e
			}
		}
	case cxZip:
		q, _ := s.skipFill(j)
		if a, b := s.nextWord(j); id == cxZip && equalFold(t[a:b], "code") {
			q, _ = s.skipFill(b)
		}
		d := s.digitsEnd(q)
		if d-q == 5 {
			e := d
			if d+5 <= len(t) && t[d] == '-' && allDigits(t[d+1:d+5]) {
				e = d + 5
			}
			if s.boundaryAfter(e) {
				s.emit(kZIP, q, e)
				return e
			}
		}
	case cxTitle:
		if !isUpper(t[i]) {
			return j
		}
		p := j
		if p < len(t) && t[p] == '.' {
			p++
		}
		if p < len(t) && t[p] == ' ' {
			if e := s.nameAt(p+1, true); e > 0 {
				s.emit(kName, p+1, e)
				return e
			}
		}
	case cxPatient, cxNamed, cxRelative:
		p := j
		if id != cxNamed && p < len(t) && (t[p] == ',' || t[p] == ':') {
			p++
		}
		if p < len(t) && t[p] == ' ' {
			if e := s.nameAt(p+1, false); e > 0 {
				s.emit(kName, p+1, e)
				return e
			}
		}
	case cxName:
		if q, ok := s.skipFill(j); ok || (q > j && t[j] == ' ' && equalFold(t[j+1:min(j+3, len(t))], "is")) {
			if e := s.nameAt(q, true); e > 0 {
				s.emit(kName, q, e)
				return e
			}
		}
	case cxSpoke:
		if a, b := s.nextWord(j); equalFold(t[a:b], "with") || equalFold(t[a:b], "to") {
			if b < len(t) && t[b] == ' ' {
				p := b + 1
				if ta, tb := s.nextWord(p); ta == p && tb > ta {
					var lb [16]byte
					if id, ok := ctxTab.words[string(lower(&lb, t[ta:tb]))]; ok && id == cxTitle {
						return s.context(cxTitle, ta, tb)
					}
				}
				if e := s.nameAt(p, false); e > 0 {
					s.emit(kName, p, e)
					return e
				}
			}
		}
	}
	return j
}

// ssnValue reads a nine-digit SSN or ITIN at q, with or without separators.
func (s *scanner) ssnValue(q int) int {
	t := s.t
	if q >= len(t) || !isDigit(t[q]) {
		return 0
	}
	var g groups
	g.parse(t, q)
	var a, b, c string
	var e int
	switch {
	case g.n >= 3 && g.len(0) == 3 && g.len(1) == 2 && g.len(2) == 4 && g.sameSep(3, "- .") && g.endOK(3):
		a, b, c, e = t[g.s[0]:g.e[0]], t[g.s[1]:g.e[1]], t[g.s[2]:g.e[2]], g.e[2]
	case g.len(0) == 9 && g.endOK(1):
		d := t[g.s[0]:g.e[0]]
		a, b, c, e = d[:3], d[3:5], d[5:], g.e[0]
	default:
		return 0
	}
	k, ok := ssnKind(a, b, c)
	if !ok {
		return 0
	}
	s.emit(k, q, e)
	return e
}

// idAfter reads the identifier after a context word ending at j. When
// needQualifier is set ("account", "member", "policy"), the word must be
// followed by "number", "id", "#", ':' or similar first, so that "account
// locked" or "member since 2019" are left alone.
func (s *scanner) idAfter(j int, k kid, needQualifier bool) int {
	q, ok := s.skipFill(j)
	if needQualifier && !ok {
		return j
	}
	if e := s.idValue(q); e > 0 {
		s.emit(k, q, e)
		return e
	}
	return j
}

// idValue reads an opaque identifier at q: letters, digits and inner
// '-', '.', '/', at least one digit, 3 to 40 characters.
func (s *scanner) idValue(q int) int {
	t := s.t
	e := q
	digits := 0
	for e < len(t) && e-q <= 40 {
		c := t[e]
		if isAlnum(c) {
			if isDigit(c) {
				digits++
			}
			e++
			continue
		}
		if (c == '-' || c == '.' || c == '/') && e > q && e+1 < len(t) && isAlnum(t[e+1]) {
			e++
			continue
		}
		break
	}
	if digits == 0 || e-q < 3 || e-q > 40 {
		return 0
	}
	return e
}

// dateAt reads a date of birth at q in any supported form, including a
// full RFC 3339 timestamp and a compact YYYYMMDD or MMDDYYYY.
func (s *scanner) dateAt(q int) int {
	t := s.t
	if q >= len(t) {
		return 0
	}
	if isDigit(t[q]) {
		var g groups
		g.parse(t, q)
		if g.n >= 3 {
			if e, ok := s.numDate(&g, true); ok {
				return e
			}
		}
		if g.len(0) == 8 && g.endOK(1) {
			d := t[g.s[0]:g.e[0]]
			y1, m1, d1 := atoi(d[:4]), atoi(d[4:6]), atoi(d[6:])
			m2, d2, y2 := atoi(d[:2]), atoi(d[2:4]), atoi(d[4:])
			if (validYear(y1) && m1 >= 1 && m1 <= 12 && d1 >= 1 && d1 <= 31) || (validYear(y2) && m2 >= 1 && m2 <= 12 && d2 >= 1 && d2 <= 31) {
				s.emit(kDate, q, g.e[0])
				return g.e[0]
			}
		}
		if g.len(0) <= 2 && g.endOK(1) {
			return s.dayMonth(q, g.e[0])
		}
		return 0
	}
	if isUpper(t[q]) {
		e := q
		for e < len(t) && isLetter(t[e]) {
			e++
		}
		return s.monthDate(q, e)
	}
	return 0
}

// nameStop holds capitalised words that follow context words but are not
// names; read-only.
var nameStop = map[string]bool{
	"the": true, "a": true, "an": true, "he": true, "she": true, "his": true, "her": true,
	"they": true, "their": true, "it": true, "in": true, "on": true, "at": true, "and": true,
	"or": true, "was": true, "is": true, "has": true, "had": true, "with": true, "for": true,
	"from": true, "to": true, "of": true, "by": true, "who": true, "this": true, "that": true,
	"id": true, "portal": true, "record": true, "records": true, "chart": true, "notes": true,
	"not": true, "no": true, "none": true, "unknown": true, "null": true, "nil": true,
}

// nameAt reads one to four name words at p: "John", "Mary-Jane O'Neil",
// "J. Smith", "McDonald", "José Müller", "Zoë O’Brien". allCaps also
// accepts "JOHN SMITH". It returns the end, or 0.
func (s *scanner) nameAt(p int, allCaps bool) int {
	t := s.t
	end := 0
	for words := 0; words < 4 && p < len(t); words++ {
		r, size := runeAt(t, p)
		if !unicode.IsUpper(r) {
			break
		}
		e := p + size
		letters, hasLower := 1, false
		for e < len(t) {
			r, size := runeAt(t, e)
			if unicode.IsLetter(r) {
				hasLower = hasLower || unicode.IsLower(r)
				letters++
				e += size
				continue
			}
			if r == '\'' || r == '-' || r == '’' {
				if n, _ := runeAt(t, e+size); unicode.IsLetter(n) {
					e += size
					continue
				}
			}
			break
		}
		switch {
		case letters == 1 && e < len(t) && t[e] == '.':
			e++ // initial "J."
		case letters == 1:
			return end
		case !hasLower && !allCaps:
			return end
		}
		if e < len(t) && isDigit(t[e]) {
			return end
		}
		var lb [16]byte
		if words == 0 && nameStop[string(lower(&lb, t[p:e]))] {
			return 0
		}
		// "main.Patient" style qualified identifiers are not names.
		if e+1 < len(t) && t[e] == '.' && isLetter(t[e+1]) {
			return end
		}
		end = e
		if e+1 < len(t) && t[e] == ' ' {
			if n, _ := runeAt(t, e+1); unicode.IsUpper(n) {
				p = e + 1
				continue
			}
		}
		break
	}
	return end
}

// runeAt decodes the rune at i (utf8.RuneError, 1 on invalid input; 0, 0
// past the end).
func runeAt(t string, i int) (rune, int) {
	if i >= len(t) {
		return 0, 0
	}
	if c := t[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(t[i:])
}
