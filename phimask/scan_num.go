package phimask

// groups is a run of digit groups joined by single separators
// ("123-45-6789", "4111 1111 1111 1111", "192.168.1.20").
type groups struct {
	n     int
	s, e  [8]int
	sep   [8]byte // sep[k] is the separator before group k (k >= 1)
	glued bool    // the last group is directly followed by a letter
}

func (g *groups) len(k int) int { return g.e[k] - g.s[k] }

// parse reads the groups at i.
func (g *groups) parse(t string, i int) {
	k, p := 0, i
	for {
		e := p
		for e < len(t) && isDigit(t[e]) {
			e++
		}
		g.s[k], g.e[k] = p, e
		k++
		if k < len(g.s) && e+1 < len(t) && isDigit(t[e+1]) {
			if c := t[e]; c == '-' || c == '.' || c == '/' || c == ' ' {
				g.sep[k] = c
				p = e + 1
				continue
			}
		}
		g.n = k
		g.glued = e < len(t) && isLetter(t[e])
		return
	}
}

// endOK reports whether a match may end after the first k groups: the text
// continues with a space, or the groups end at a word boundary.
func (g *groups) endOK(k int) bool {
	if k < g.n {
		return g.sep[k] == ' '
	}
	return !g.glued
}

// sameSep reports whether groups 1..k-1 are joined by one separator from set.
func (g *groups) sameSep(k int, set string) bool {
	if k < 2 {
		return true
	}
	c := g.sep[1]
	for m := 1; m < k; m++ {
		if g.sep[m] != c {
			return false
		}
	}
	for m := 0; m < len(set); m++ {
		if set[m] == c {
			return true
		}
	}
	return false
}

// chainEnd is where scanning resumes when nothing matched: past every
// group joined without a space, so that "1.2.3.4.5" is not re-read as
// the IPv4 "2.3.4.5".
func (g *groups) chainEnd() int {
	k := 1
	for k < g.n && g.sep[k] != ' ' {
		k++
	}
	return g.e[k-1]
}

// number handles a token starting with a digit at i.
func (s *scanner) number(i int) int {
	t := s.t
	j := s.alnumEnd(i)
	if j < len(t) && (t[j] == '-' || t[j] == ':') {
		if e, skip := s.hexShapes(i, j); skip {
			return e
		}
	}
	var g groups
	g.parse(t, i)
	if g.e[0] < j {
		// Digits glued to letters: "250ms", "1EG4TE5MK73", "92yo", "5th".
		if t[g.e[0]] == 'x' {
			// "5551234567x12" is handled below; anything else is a token.
			if e := s.numberGroups(i, &g); e > 0 {
				return e
			}
		}
		return s.mixed(i, j)
	}
	if e := s.numberGroups(i, &g); e > 0 {
		return e
	}
	return g.chainEnd()
}

// numberGroups tries every numeric detector on the groups at i. It returns
// the end of what it consumed, or 0.
func (s *scanner) numberGroups(i int, g *groups) int {
	t := s.t
	// Dates and RFC 3339 timestamps.
	if g.n >= 3 {
		if e, ok := s.numDate(g, false); ok {
			return e
		}
	}
	// SSN and ITIN: 3-2-4 with one separator.
	if g.n >= 3 && g.len(0) == 3 && g.len(1) == 2 && g.len(2) == 4 && g.sameSep(3, "- ") && g.endOK(3) {
		if k, ok := ssnKind(t[g.s[0]:g.e[0]], t[g.s[1]:g.e[1]], t[g.s[2]:g.e[2]]); ok {
			s.emit(k, i, g.e[2])
			return g.e[2]
		}
		return g.chainEnd()
	}
	// NANP phones: 555-123-4567, 1-555-123-4567, 555.123.4567, 555 123 4567.
	if g.n >= 3 && g.len(0) == 3 && g.len(1) == 3 && g.len(2) == 4 && g.sameSep(3, "-. ") {
		if e := s.phoneEnd(g, 3); e > 0 {
			s.emit(kPhone, i, e)
			return e
		}
	}
	if g.n >= 4 && g.len(0) == 1 && t[i] == '1' && g.len(1) == 3 && g.len(2) == 3 && g.len(3) == 4 && g.sameSep(4, "-. ") {
		if e := s.phoneEnd(g, 4); e > 0 {
			s.emit(kPhone, i, e)
			return e
		}
	}
	// Payment cards: 13-19 digits, grouped or not, Luhn, issuer digit 2-6.
	if e := s.card(g); e > 0 {
		return e
	}
	// IPv4.
	if g.n >= 4 && g.sameSep(4, ".") && g.endOK(4) {
		if e, ok := s.ipv4(g); ok {
			return e
		}
	}
	// Bare numbers.
	if g.n >= 1 && g.endOK(1) || (g.n == 1 && g.glued && t[g.e[0]] == 'x') {
		d := t[g.s[0]:g.e[0]]
		switch len(d) {
		case 10:
			if validNPI(d) {
				s.emit(kNPI, i, g.e[0])
				return g.e[0]
			}
			if validNANP(d) {
				if e := s.phoneEnd(g, 1); e > 0 {
					s.emit(kPhone, i, e)
					return e
				}
			}
		case 11:
			if d[0] == '1' && validNANP(d[1:]) {
				if e := s.phoneEnd(g, 1); e > 0 {
					s.emit(kPhone, i, e)
					return e
				}
			}
		}
	}
	if g.n >= 1 && g.endOK(1) && g.len(0) <= 2 {
		if e := s.dayMonth(i, g.e[0]); e > 0 {
			return e
		}
	}
	// ZIP and ZIP+4 after a state code.
	if g.len(0) == 5 && s.stateBefore(i) {
		e := 0
		if g.n >= 2 && g.len(1) == 4 && g.sep[1] == '-' && g.endOK(2) {
			e = g.e[1]
		} else if g.endOK(1) {
			e = g.e[0]
		}
		if e > 0 {
			s.cityBefore(i - 3)
			s.emit(kZIP, i, e)
			return e
		}
	}
	// Ages over 89: "92-year-old", "92 years old", "92 y/o".
	if g.len(0) >= 2 && g.len(0) <= 3 && (g.n == 1 || g.sep[1] == ' ') {
		if v := atoi(t[g.s[0]:g.e[0]]); v >= 90 && v <= 150 && s.ageSuffix(g.e[0]) > 0 {
			s.emit(kAge, i, g.e[0])
			return g.e[0]
		}
	}
	// Street addresses: "1234 Elm Street, Apt 5".
	if g.len(0) <= 6 && (g.n == 1 || g.sep[1] == ' ') {
		if e := s.street(i, g.e[0]); e > 0 {
			return e
		}
	}
	return 0
}

// phoneEnd returns the end of a phone number made of the first k groups,
// with any extension, or 0 if it does not end at a boundary.
func (s *scanner) phoneEnd(g *groups, k int) int {
	e := g.e[k-1]
	if k == g.n && g.glued {
		if x := s.extension(e); x > e {
			return x
		}
		return 0
	}
	if !g.endOK(k) {
		return 0
	}
	return s.extension(e)
}

// card detects payment card numbers in the first groups.
func (s *scanner) card(g *groups) int {
	t := s.t
	if c := t[g.s[0]]; c < '2' || c > '6' || (g.n == 1 && (g.len(0) < 13 || g.len(0) > 19)) {
		return 0
	}
	max := g.n
	if max > 5 {
		max = 5
	}
	for k := max; k >= 1; k-- {
		total := 0
		ok := true
		for m := 0; m < k; m++ {
			l := g.len(m)
			if k > 1 && (l < 3 || l > 6) {
				ok = false
				break
			}
			total += l
		}
		if !ok || total < 13 || total > 19 || !g.sameSep(k, " -") || !g.endOK(k) {
			continue
		}
		var buf [19]byte
		n := 0
		for m := 0; m < k; m++ {
			n += copy(buf[n:], t[g.s[m]:g.e[m]])
		}
		if luhn(buf[:n], 0) {
			s.emit(kCard, g.s[0], g.e[k-1])
			return g.e[k-1]
		}
	}
	return 0
}

// ipv4 detects a dotted quad in the first four groups. Loopback and the
// unspecified address identify nobody and are kept.
func (s *scanner) ipv4(g *groups) (int, bool) {
	t := s.t
	var o [4]int
	for m := 0; m < 4; m++ {
		if g.len(m) > 3 {
			return 0, false
		}
		o[m] = atoi(t[g.s[m]:g.e[m]])
		if o[m] > 255 || (g.len(m) > 1 && t[g.s[m]] == '0') {
			return 0, false
		}
	}
	e := g.e[3]
	if o[0] == 127 || (o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] == 0) {
		return e, true
	}
	s.emit(kIP, g.s[0], e)
	return e, true
}

// numDate detects numeric dates in the first three groups. Full RFC 3339
// timestamps (date, time and zone) are event times and are skipped, unless
// dob is set (a date-of-birth context word came first). It returns the
// end and whether it consumed anything.
func (s *scanner) numDate(g *groups, dob bool) (int, bool) {
	t := s.t
	l0, l1, l2 := g.len(0), g.len(1), g.len(2)
	sep := g.sep[1]
	if !g.sameSep(3, "-/.") {
		return 0, false
	}
	a, b, c := atoi(t[g.s[0]:g.e[0]]), atoi(t[g.s[1]:g.e[1]]), atoi(t[g.s[2]:g.e[2]])
	i, e := g.s[0], g.e[2]
	switch {
	case l0 == 4 && l1 <= 2 && l2 <= 2:
		// "2024.1.5" is a calendar version; dotted dates need two-digit parts.
		if sep == '.' && (l1 != 2 || l2 != 2) {
			return 0, false
		}
		if !validYear(a) || b < 1 || b > 12 || c < 1 || c > 31 {
			return 0, false
		}
		if sep == '-' && l1 == 2 && l2 == 2 {
			if te, zone := s.rfc3339Time(e); te > e {
				if zone && !dob {
					return te, true
				}
				if zone {
					e = te
				}
				s.emit(kDate, i, e)
				return e, true
			}
		}
	case l0 <= 2 && l1 <= 2 && (l2 == 4 || (l2 == 2 && sep != '.')):
		if l2 == 4 && !validYear(c) {
			return 0, false
		}
		monthDay := a <= 12 && b <= 31
		dayMonth := b <= 12 && a <= 31
		if a < 1 || b < 1 || (!monthDay && !dayMonth) {
			return 0, false
		}
	default:
		return 0, false
	}
	if !g.endOK(3) {
		return 0, false
	}
	s.emit(kDate, i, e)
	return e, true
}

func validYear(y int) bool { return y >= 1850 && y <= 2150 }

// rfc3339Time reads "Thh:mm[:ss[.frac]][Z|±hh:mm]" after a date ending at
// e. It returns the end (or e when there is no time) and whether a zone
// was present.
func (s *scanner) rfc3339Time(e int) (int, bool) {
	t := s.t
	p := e
	if p >= len(t) || (t[p] != 'T' && t[p] != 't' && t[p] != ' ') {
		return e, false
	}
	p++
	two := func(p int) bool { return p+2 <= len(t) && isDigit(t[p]) && isDigit(t[p+1]) }
	if !two(p) || p+2 >= len(t) || t[p+2] != ':' || !two(p+3) {
		return e, false
	}
	p += 5
	if p+2 < len(t) && t[p] == ':' && two(p+1) {
		p += 3
		if p+1 < len(t) && (t[p] == '.' || t[p] == ',') && isDigit(t[p+1]) {
			p++
			for p < len(t) && isDigit(t[p]) {
				p++
			}
		}
	}
	if p < len(t) && (t[p] == 'Z' || t[p] == 'z') && s.boundaryAfter(p+1) {
		return p + 1, true
	}
	if p+5 < len(t)+0 && (t[p] == '+' || t[p] == '-') && two(p+1) && t[p+3] == ':' && two(p+4) && s.boundaryAfter(p+6) {
		return p + 6, true
	}
	if p+6 == len(t) && (t[p] == '+' || t[p] == '-') && two(p+1) && t[p+3] == ':' && two(p+4) {
		return p + 6, true
	}
	if !s.boundaryAfter(p) {
		return e, false
	}
	return p, false
}

// months maps lower-case month names and abbreviations; read-only.
var months = map[string]bool{
	"jan": true, "feb": true, "mar": true, "apr": true, "may": true, "jun": true,
	"jul": true, "aug": true, "sep": true, "sept": true, "oct": true, "nov": true, "dec": true,
	"january": true, "february": true, "march": true, "april": true, "june": true,
	"july": true, "august": true, "september": true, "october": true, "november": true, "december": true,
}

// monthStart reports whether a word starting with a, b may be a month name.
func monthStart(a, b byte) bool {
	switch a | 0x20 {
	case 'j':
		b |= 0x20
		return b == 'a' || b == 'u'
	case 'f', 'm', 'a', 's', 'o', 'n', 'd':
		return true
	}
	return false
}

// isMonth reports whether t[i:j] is a month name or abbreviation, written
// "March", "Mar" or "MARCH".
func (s *scanner) isMonth(i, j int) bool {
	if j-i < 3 || j-i > 9 || !isUpper(s.t[i]) {
		return false
	}
	var b [9]byte
	for k := i; k < j; k++ {
		if !isLetter(s.t[k]) {
			return false
		}
		b[k-i] = s.t[k] | 0x20
	}
	return months[string(b[:j-i])]
}

// monthDate detects "March 5, 2024", "Mar. 5 2024", "March 5th" and
// "March 2024" at a capitalised word [i, j).
func (s *scanner) monthDate(i, j int) int {
	t := s.t
	if !s.isMonth(i, j) {
		return 0
	}
	p := j
	if p < len(t) && t[p] == '.' {
		p++
	}
	if p >= len(t) || t[p] != ' ' {
		return 0
	}
	p++
	d := s.digitsEnd(p)
	switch {
	case d-p == 4 && s.boundaryAfter(d) && validYear(atoi(t[p:d])):
		s.emit(kDate, i, d)
		return d
	case d-p >= 1 && d-p <= 2:
		if v := atoi(t[p:d]); v < 1 || v > 31 {
			return 0
		}
		e := d
		if e+2 <= len(t) {
			switch t[e : e+2] {
			case "st", "nd", "rd", "th":
				e += 2
			}
		}
		if !s.boundaryAfter(e) {
			return 0
		}
		q := e
		if q < len(t) && t[q] == ',' {
			q++
		}
		if q < len(t) && t[q] == ' ' {
			y := s.digitsEnd(q + 1)
			if y-q-1 == 4 && s.boundaryAfter(y) && validYear(atoi(t[q+1:y])) {
				e = y
			}
		}
		s.emit(kDate, i, e)
		return e
	}
	return 0
}

// dayMonth detects "5 Mar 2024" and "5 March" after a day number [i, d).
func (s *scanner) dayMonth(i, d int) int {
	t := s.t
	if d >= len(t) || t[d] != ' ' {
		return 0
	}
	if v := atoi(t[i:d]); v < 1 || v > 31 {
		return 0
	}
	w := d + 1
	we := w
	for we < len(t) && isLetter(t[we]) {
		we++
	}
	if !s.isMonth(w, we) {
		return 0
	}
	e := we
	q := e
	if q < len(t) && t[q] == '.' {
		q++
	}
	if q < len(t) && t[q] == ',' {
		q++
	}
	if q < len(t) && t[q] == ' ' {
		y := s.digitsEnd(q + 1)
		if y-q-1 == 4 && s.boundaryAfter(y) && validYear(atoi(t[q+1:y])) {
			e = y
		}
	}
	s.emit(kDate, i, e)
	return e
}

// ageSuffix matches the words after an age at e ("-year-old", " years
// old", " yo", " y/o") and returns their end, or 0.
func (s *scanner) ageSuffix(e int) int {
	t := s.t
	for _, suf := range [...]string{"-year-old", "-years-old", " years old", " year old", " years of age", " yrs old", " yr old", " y/o", " y.o.", " yo", "yo", "y/o", "-yo", " yrs"} {
		if len(t)-e >= len(suf) && equalFold(t[e:e+len(suf)], suf) {
			end := e + len(suf)
			if suf[len(suf)-1] == '.' || s.boundaryAfter(end) {
				return end
			}
		}
	}
	return 0
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := 0; k < len(a); k++ {
		x, y := a[k], b[k]
		if isUpper(x) {
			x |= 0x20
		}
		if isUpper(y) {
			y |= 0x20
		}
		if x != y {
			return false
		}
	}
	return true
}

// states holds US state and territory codes; read-only.
var states = func() map[string]bool {
	m := map[string]bool{}
	for k := 0; k+1 < len(stateList); k += 3 {
		m[stateList[k:k+2]] = true
	}
	return m
}()

const stateList = "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP "

// stateBefore reports whether a ZIP at i follows "XX " with XX a state code.
func (s *scanner) stateBefore(i int) bool {
	t := s.t
	if i < 3 || t[i-1] != ' ' || !isUpper(t[i-3]) || !isUpper(t[i-2]) {
		return false
	}
	if i >= 4 && isAlnum(t[i-4]) {
		return false
	}
	return states[t[i-3:i-1]]
}

// cityBefore emits the city of a "City, ST 12345" line whose state code
// starts at p: up to three capitalised words before ", ".
func (s *scanner) cityBefore(p int) {
	t := s.t
	if p < 3 || t[p-1] != ' ' || t[p-2] != ',' {
		return
	}
	e := p - 2
	start, a := -1, e
	for words := 0; words < 3; words++ {
		w := a
		for w > 0 && (isLetter(t[w-1]) || t[w-1] == '.' || t[w-1] == '\'') {
			w--
		}
		if w == a || !isUpper(t[w]) {
			break
		}
		start = w
		if w >= 2 && t[w-1] == ' ' {
			a = w - 1
			continue
		}
		break
	}
	if start >= 0 {
		s.emit(kAddress, start, e)
	}
}

// street detects "1234 North Elm Street Apt 5" after a house number [i, d).
func (s *scanner) street(i, d int) int {
	t := s.t
	// Quick rejection: a street name starts with a capital or an ordinal.
	if d+1 >= len(t) || (t[d] == ' ' && !isUpper(t[d+1]) && !isDigit(t[d+1])) {
		return 0
	}
	p := d
	if p < len(t) && isUpper(t[p]) && p+1 < len(t) && t[p+1] == ' ' {
		p++ // "221B Baker Street"
	}
	if p >= len(t) || t[p] != ' ' {
		return 0
	}
	p++
	words := 0
	for words < 6 && p < len(t) {
		w := p
		for w < len(t) && isAlnum(t[w]) {
			w++
		}
		if w == p {
			return 0
		}
		word := t[p:w]
		if words > 0 && isUpper(word[0]) && streetSuffix(word) {
			e := w
			if e < len(t) && t[e] == '.' {
				e++
			}
			e = s.unit(e)
			s.emit(kAddress, i, e)
			return e
		}
		if !isUpper(word[0]) && !isOrdinal(word) {
			return 0
		}
		words++
		if w >= len(t) || t[w] != ' ' {
			return 0
		}
		p = w + 1
	}
	return 0
}

func isOrdinal(w string) bool {
	d := 0
	for d < len(w) && isDigit(w[d]) {
		d++
	}
	if d == 0 || d > 3 || len(w)-d != 2 {
		return false
	}
	var lb [16]byte
	switch string(lower(&lb, w[d:])) {
	case "st", "nd", "rd", "th":
		return true
	}
	return false
}

func streetSuffix(w string) bool {
	var lb [16]byte
	switch string(lower(&lb, w)) {
	case "street", "st", "avenue", "ave", "av", "road", "rd", "boulevard", "blvd", "drive", "dr",
		"lane", "ln", "way", "court", "ct", "place", "pl", "terrace", "ter", "parkway", "pkwy",
		"highway", "hwy", "circle", "cir", "square", "sq", "trail", "trl", "plaza", "plz", "alley",
		"crescent", "route", "rte", "pike", "close", "row", "walk", "heights", "hts", "expressway", "freeway":
		return true
	}
	return false
}

// unit extends an address ending at e with ", Apt 5B", " Suite 200", " #12".
func (s *scanner) unit(e int) int {
	t := s.t
	p := e
	if p < len(t) && t[p] == ',' {
		p++
	}
	if p >= len(t) || t[p] != ' ' {
		return e
	}
	p++
	if p < len(t) && t[p] == '#' {
		v := s.alnumEnd(p + 1)
		if v > p+1 && v-p <= 8 {
			return v
		}
		return e
	}
	w := p
	for w < len(t) && isLetter(t[w]) {
		w++
	}
	var lb [16]byte
	switch string(lower(&lb, t[p:w])) {
	case "apt", "apartment", "suite", "ste", "unit", "rm", "room", "fl", "floor", "bldg", "building":
	default:
		return e
	}
	if w < len(t) && t[w] == '.' {
		w++
	}
	if w < len(t) && t[w] == ' ' {
		w++
	}
	if w < len(t) && t[w] == '#' {
		w++
	}
	v := s.alnumEnd(w)
	if v == w || v-w > 6 {
		return e
	}
	return v
}
