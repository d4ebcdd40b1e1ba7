package phimask

import "net/netip"

// The scanner is hand-written rather than built on regexp for two reasons:
//
//   - Validation: most identifiers are only PHI when a checksum or a range
//     rule holds (Luhn for cards and NPIs, the DEA and VIN check digits, IBAN
//     mod-97, SSN area/group/serial rules, calendar ranges for dates). A
//     regular expression can only match the shape, and would then have to be
//     re-parsed to validate it.
//   - Speed: one Go regexp alternation of all the shapes runs far below the
//     throughput a logging hot path needs, and allocates. This scanner makes a
//     single pass over the bytes, skips ordinary lower-case words with one
//     table lookup per byte, and only looks closer at candidate positions:
//     digits, '@', ':', '+', '(' and words that may introduce PHI ("SSN",
//     "patient", "Dr", month names, ...). It allocates nothing when it finds
//     nothing.

// kid is the scanner's internal kind index; kindNames maps it to a Kind.
type kid uint8

const (
	kName kid = iota
	kSSN
	kITIN
	kNPI
	kDEA
	kMBI
	kCard
	kIBAN
	kPhone
	kFax
	kEmail
	kIP
	kURL
	kDate
	kZIP
	kAddress
	kAge
	kMRN
	kAccount
	kMember
	kPolicy
	kLicense
	kVIN
	kDevice
	kID
	numKinds
)

// kindNames is a read-only table.
var kindNames = [numKinds]Kind{
	KindName, KindSSN, KindITIN, KindNPI, KindDEA, KindMBI, KindCreditCard,
	KindIBAN, KindPhone, KindFax, KindEmail, KindIP, KindURL, KindDate, KindZIP,
	KindAddress, KindAge, KindMRN, KindAccount, KindMemberID, KindPolicy,
	KindLicense, KindVIN, KindDevice, KindID,
}

// kidOf returns the internal index of k.
func kidOf(k Kind) (kid, bool) {
	for i, n := range kindNames {
		if n == k {
			return kid(i), true
		}
	}
	return 0, false
}

// Kinds returns every Kind phimask knows, in a fixed order.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	copy(out, kindNames[:])
	return out
}

// kindSet is a bit set of kids.
type kindSet uint32

const allKinds kindSet = 1<<numKinds - 1

func (s kindSet) has(k kid) bool { return s&(1<<k) != 0 }

// span is one finding inside the scanner.
type span struct {
	s, e int
	k    kid
}

// Byte classes.
const (
	fLower uint8 = 1 << iota
	fUpper
	fDigit
	fHex
	fSpecial // '@', ':', '+', '('
	fLetter  = fLower | fUpper
	fAlnum   = fLetter | fDigit
)

// ctab is a read-only byte class table.
var ctab = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = fLower
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = fUpper
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = fDigit | fHex
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= fHex
		t[c-32] |= fHex
	}
	t['@'], t[':'], t['+'], t['('] = fSpecial, fSpecial, fSpecial, fSpecial
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return ctab[c]&fAlnum != 0 }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isLetter(c byte) bool {
	return ctab[c]&fLetter != 0
}

// scanner finds PHI spans in one text. It is used once and not shared.
//
// Findings go to a fixed array inside the scanner, which lives on the
// caller's stack, and spill to the heap only past len(fixed): scanning text
// without PHI allocates nothing.
type scanner struct {
	t     string
	on    kindSet
	n     int
	fixed [4]span
	grown []span // all findings, once there are more than len(fixed)
}

// spans returns the findings.
func (s *scanner) spans() []span {
	if s.grown != nil {
		return s.grown[:s.n]
	}
	return s.fixed[:s.n]
}

func (s *scanner) last() span {
	if s.grown != nil {
		return s.grown[s.n-1]
	}
	return s.fixed[s.n-1]
}

// emit records a finding of kind k over [a, e). Earlier findings that
// overlap it are merged into it so that the output stays sorted and
// non-overlapping. It reports whether the kind is enabled.
func (s *scanner) emit(k kid, a, e int) bool {
	if !s.on.has(k) || e <= a {
		return false
	}
	for s.n > 0 {
		p := s.last()
		if p.e <= a {
			break
		}
		if p.s < a {
			a = p.s
		}
		s.n--
	}
	sp := span{s: a, e: e, k: k}
	switch {
	case s.grown != nil:
		s.grown = append(s.grown[:s.n], sp)
	case s.n < len(s.fixed):
		s.fixed[s.n] = sp
	default:
		s.grown = make([]span, s.n, 2*s.n+1)
		copy(s.grown, s.fixed[:])
		s.grown = append(s.grown, sp)
	}
	s.n++
	return true
}

// run scans the whole text.
func (s *scanner) run() {
	t := s.t
	i := 0
	for i < len(t) {
		f := ctab[t[i]]
		switch {
		case f == 0:
			i++
		case f&fLetter != 0:
			i = s.word(i)
		case f&fDigit != 0:
			i = s.number(i)
		default:
			i = s.special(i)
		}
	}
}

// alnumEnd returns the end of the run of ASCII letters and digits at i.
func (s *scanner) alnumEnd(i int) int {
	for i < len(s.t) && isAlnum(s.t[i]) {
		i++
	}
	return i
}

// digitsEnd returns the end of the run of digits at i.
func (s *scanner) digitsEnd(i int) int {
	for i < len(s.t) && isDigit(s.t[i]) {
		i++
	}
	return i
}

// boundaryAfter reports whether a token may end at e: no letter or digit follows.
func (s *scanner) boundaryAfter(e int) bool { return e >= len(s.t) || !isAlnum(s.t[e]) }

// word handles a run of letters (and maybe digits) starting at a word start.
func (s *scanner) word(i int) int {
	t := s.t
	j := i
	var acc uint8
	for j < len(t) {
		f := ctab[t[j]]
		if f&fAlnum == 0 {
			break
		}
		acc |= f
		j++
	}
	digits := acc&fDigit != 0
	if j < len(t) && (t[j] == '-' || t[j] == ':') {
		if e, skip := s.hexShapes(i, j); skip {
			return e
		}
	}
	if digits {
		return s.mixed(i, j)
	}
	wl := j - i
	// A word glued to a preceding "x." is part of a qualified identifier
	// (main.Patient, example.com): never a context word.
	if i >= 2 && t[i-1] == '.' && isAlnum(t[i-2]) {
		return j
	}
	if ctxTab.maybe(t, i, j) {
		var buf [maxCtxWord]byte
		for k := 0; k < wl; k++ {
			buf[k] = t[i+k] | 0x20
		}
		if id, ok := ctxTab.words[string(buf[:wl])]; ok {
			if e := s.context(id, i, j); e > j {
				return e
			}
		}
	}
	if isUpper(t[i]) && wl >= 3 && wl <= 9 && monthStart(t[i], t[i+1]) {
		if e := s.monthDate(i, j); e > 0 {
			return e
		}
	}
	return j
}

// hexShapes recognises UUIDs and IPv6 addresses at a token start i whose
// first alphanumeric run ends at j. skip reports that [i, e) must be skipped
// (a UUID, or an IPv6 address that was emitted or is not PHI).
func (s *scanner) hexShapes(i, j int) (e int, skip bool) {
	t := s.t
	if t[j] == '-' && j-i == 8 && isUUID(t[i:]) {
		return i + 36, true
	}
	if t[j] == ':' && j-i <= 4 {
		if e, ok := s.ipv6(i); ok {
			return e, true
		}
	}
	return 0, false
}

// isUUID reports whether t starts with a UUID (8-4-4-4-12 hex) not
// followed by more alphanumerics.
func isUUID(t string) bool {
	if len(t) < 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return false
	}
	for k := 0; k < 36; k++ {
		c := t[k]
		switch k {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if ctab[c]&fHex == 0 {
				return false
			}
		}
	}
	return len(t) == 36 || !isAlnum(t[36])
}

// ipv6 tries to read an IPv6 address at i.
func (s *scanner) ipv6(i int) (int, bool) {
	t := s.t
	e := i
	colons := 0
	for e < len(t) && e-i < 50 {
		c := t[e]
		if c == ':' {
			colons++
		} else if ctab[c]&fHex == 0 && c != '.' {
			break
		}
		e++
	}
	// Trailing '.' or ':' belongs to the sentence, not the address.
	for e > i && (t[e-1] == '.' || (t[e-1] == ':' && (e-i < 2 || t[e-2] != ':'))) {
		if t[e-1] == ':' {
			colons--
		}
		e--
	}
	if colons < 2 || (e < len(t) && isAlnum(t[e])) {
		return 0, false
	}
	a, err := netip.ParseAddr(t[i:e])
	if err != nil || !a.Is6() {
		return 0, false
	}
	if a.IsLoopback() || a.IsUnspecified() {
		return e, true
	}
	s.emit(kIP, i, e)
	return e, true
}

// mixed handles a token of letters and digits [i, j).
func (s *scanner) mixed(i, j int) int {
	t := s.t
	n := j - i
	// A context word glued to its value: "MRN12345", "SSN123456789".
	if isLetter(t[i]) {
		d := i
		for d < j && isLetter(t[d]) {
			d++
		}
		if ctxTab.maybe(t, i, d) {
			var lb [16]byte
			if id, ok := ctxTab.words[string(lower(&lb, t[i:d]))]; ok && id != cxTitle {
				if e := s.context(id, i, d); e > d {
					return e
				}
			}
		}
	}
	if t[i] >= '1' && t[i] <= '9' {
		if e := s.mbi(i); e > 0 {
			return e
		}
	}
	switch {
	case n == 9 && isUpper(t[i]) && (isUpper(t[i+1]) || t[i+1] == '9') && validDEA(t[i:j]):
		s.emit(kDEA, i, j)
		return j
	case n == 17 && validVIN(t[i:j]):
		s.emit(kVIN, i, j)
		return j
	case n >= 4 && isUpper(t[i]) && isUpper(t[i+1]) && isDigit(t[i+2]) && isDigit(t[i+3]):
		if e := s.iban(i); e > 0 {
			return e
		}
	}
	// Ages written "92yo".
	if isDigit(t[i]) {
		d := s.digitsEnd(i)
		if d-i <= 3 && (t[d:j] == "yo" || t[d:j] == "y") && s.ageSuffix(d) > 0 {
			if v := atoi(t[i:d]); v >= 90 && v <= 150 {
				s.emit(kAge, i, d)
			}
		}
	}
	return j
}

// mbi reads a Medicare Beneficiary Identifier at i (dashes optional).
func (s *scanner) mbi(i int) int {
	var b [11]byte
	n := 0
	e := i
	t := s.t
	for e < len(t) && n < 11 {
		c := t[e]
		if c == '-' && (n == 4 || n == 7) && e+1 < len(t) && isAlnum(t[e+1]) {
			e++
			continue
		}
		if !isAlnum(c) {
			break
		}
		b[n] = c &^ 0x20 // upper-case letters; digits keep their value below
		if isDigit(c) {
			b[n] = c
		}
		n++
		e++
	}
	if n != 11 || !s.boundaryAfter(e) || !validMBI(b[:]) {
		return 0
	}
	// Dashes, if any, must be both present.
	if e-i != 11 && e-i != 13 {
		return 0
	}
	s.emit(kMBI, i, e)
	return e
}

// iban reads an IBAN at i, compact or grouped by spaces in blocks of four.
func (s *scanner) iban(i int) int {
	t := s.t
	var buf [34]byte
	var ends [12]int
	var lens [12]int
	n, g := 0, 0
	e := i
	for g < len(ends) {
		st := e
		for e < len(t) && isAlnum(t[e]) && !isLower(t[e]) && n < len(buf) {
			buf[n] = t[e]
			n++
			e++
		}
		if e < len(t) && isAlnum(t[e]) {
			break // lower case or too long: not an IBAN
		}
		if e == st {
			break
		}
		ends[g], lens[g] = e, n
		g++
		// A following group must be 1-4 characters after one space, and the
		// current one exactly 4 (only the first and last may differ).
		if e+1 < len(t) && t[e] == ' ' && isAlnum(t[e+1]) && !isLower(t[e+1]) && (g == 1 || e-st == 4) {
			e++
			continue
		}
		break
	}
	for ; g > 0; g-- {
		if l := lens[g-1]; l >= 15 && l <= 34 && validIBAN(buf[:l]) {
			s.emit(kIBAN, i, ends[g-1])
			return ends[g-1]
		}
	}
	return 0
}

// special handles '@', ':', '+' and '('.
func (s *scanner) special(i int) int {
	t := s.t
	switch t[i] {
	case '@':
		return s.email(i)
	case ':':
		if e := s.url(i); e > 0 {
			return e
		}
		if i+1 < len(t) && t[i+1] == ':' && (i == 0 || !isAlnum(t[i-1])) {
			if e, ok := s.ipv6(i); ok {
				return e
			}
		}
	case '+':
		if i+1 < len(t) && isDigit(t[i+1]) && (i == 0 || !isAlnum(t[i-1])) {
			if e := s.e164(i, kPhone); e > 0 {
				return e
			}
		}
	case '(':
		if e := s.phoneAt(i, kPhone, false); e > 0 {
			return e
		}
	}
	return i + 1
}

// email handles an '@' at i.
func (s *scanner) email(i int) int {
	t := s.t
	a := i
	for a > 0 {
		c := t[a-1]
		if isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' {
			a--
			continue
		}
		break
	}
	for a < i && (t[a] == '.' || t[a] == '-') {
		a++
	}
	if a == i {
		return i + 1
	}
	e := i + 1
	labels := 0
	lastStart := e
	for {
		st := e
		for e < len(t) && (isAlnum(t[e]) || t[e] == '-') {
			e++
		}
		if e == st {
			e = st
			if labels > 0 {
				e-- // drop the trailing '.'
			}
			break
		}
		labels++
		lastStart = st
		if e+1 < len(t) && t[e] == '.' && isAlnum(t[e+1]) {
			e++
			continue
		}
		break
	}
	if labels < 2 {
		return i + 1
	}
	// The top-level label is letters only, two or more.
	for k := lastStart; k < e; k++ {
		if !isLetter(t[k]) {
			return i + 1
		}
	}
	if e-lastStart < 2 {
		return i + 1
	}
	s.emit(kEmail, a, e)
	return e
}

// url handles a ':' at i that may follow a URL scheme.
func (s *scanner) url(i int) int {
	t := s.t
	if i+2 >= len(t) || t[i+1] != '/' || t[i+2] != '/' {
		return 0
	}
	a := i
	for a > 0 && isLetter(t[a-1]) {
		a--
	}
	var lb [16]byte
	switch string(lower(&lb, t[a:i])) {
	case "http", "https", "ftp", "ftps", "ws", "wss", "sftp":
	default:
		return 0
	}
	e := i + 3
	for e < len(t) {
		c := t[e]
		if c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' || c >= 0x7f {
			break
		}
		e++
	}
	for e > i+3 {
		switch t[e-1] {
		case '.', ',', ';', ':', '!', '?', ')', ']', '}':
			e--
			continue
		}
		break
	}
	if e == i+3 {
		return 0
	}
	if !s.emit(kURL, a, e) {
		return 0 // URL detection off: scan inside it instead
	}
	return e
}

// lower writes the lower-case form of a short ASCII word into b and
// returns it; nil when the word is longer than b. Callers convert the
// result with string(...) only in switch statements and map indexes, where
// the compiler does not allocate.
func lower(b *[16]byte, w string) []byte {
	if len(w) > len(b) {
		return nil
	}
	for k := 0; k < len(w); k++ {
		c := w[k]
		if isUpper(c) {
			c |= 0x20
		}
		b[k] = c
	}
	return b[:len(w)]
}

// e164 reads an international number "+<country> ..." at i.
func (s *scanner) e164(i int, k kid) int {
	t := s.t
	e := i + 1
	digits := 0
	last := e
	for e < len(t) && digits <= 15 {
		c := t[e]
		switch {
		case isDigit(c):
			digits++
			e++
			last = e
		case (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') && e+1 < len(t) && (isDigit(t[e+1]) || t[e+1] == '(' || (c == ')' && t[e+1] == ' ')):
			e++
		default:
			goto done
		}
	}
done:
	if digits < 8 || digits > 15 || !s.boundaryAfter(last) {
		return 0
	}
	last = s.extension(last)
	s.emit(k, i, last)
	return last
}

// phoneAt reads a NANP phone number at i: "(555) 123-4567", "555-123-4567",
// "1-555-123-4567", "555.123.4567", "555 123 4567", with an optional
// extension. local accepts a seven-digit "123-4567" (only after a context
// word). It returns the end or 0.
func (s *scanner) phoneAt(i int, k kid, local bool) int {
	t := s.t
	e := i
	if t[e] == '+' {
		return s.e164(i, k)
	}
	if t[e] == '1' && e+1 < len(t) && (t[e+1] == '-' || t[e+1] == ' ' || t[e+1] == '.') && e+2 < len(t) && (isDigit(t[e+2]) || t[e+2] == '(') {
		e += 2
	}
	var area int
	if t[e] == '(' {
		if e+5 > len(t) || !allDigits(t[e+1:e+4]) || t[e+4] != ')' {
			return 0
		}
		area = e + 1
		e += 5
		if e < len(t) && (t[e] == ' ' || t[e] == '-') {
			e++
		}
	} else {
		if e+3 > len(t) || !allDigits(t[e:e+3]) {
			return 0
		}
		area = e
		e += 3
		if e < len(t) && (t[e] == '-' || t[e] == '.' || t[e] == ' ') {
			e++
		}
	}
	_ = area
	if e+3 <= len(t) && allDigits(t[e:e+3]) {
		x := e + 3
		if x < len(t) && (t[x] == '-' || t[x] == '.' || t[x] == ' ') {
			x++
		}
		if x+4 <= len(t) && allDigits(t[x:x+4]) && (x+4 == len(t) || !isDigit(t[x+4])) {
			end := x + 4
			if end < len(t) && isLetter(t[end]) && t[end] != 'x' {
				return 0
			}
			end = s.extension(end)
			s.emit(k, i, end)
			return end
		}
	}
	if local && t[i] != '(' && i+8 <= len(t) && allDigits(t[i:i+3]) && (t[i+3] == '-' || t[i+3] == '.') && allDigits(t[i+4:i+8]) && s.boundaryAfter(i+8) {
		s.emit(k, i, i+8)
		return i + 8
	}
	return 0
}

// extension extends a phone number ending at e with " x123", " ext. 123",
// "ext 123" or "extension 123".
func (s *scanner) extension(e int) int {
	t := s.t
	p := e
	if p < len(t) && (t[p] == ' ' || t[p] == ',') {
		p++
		if p < len(t) && t[p] == ' ' {
			p++
		}
	}
	w := p
	for w < len(t) && isLetter(t[w]) {
		w++
	}
	var lb [16]byte
	switch string(lower(&lb, t[p:w])) {
	case "x", "ext", "extension":
	default:
		return e
	}
	if w < len(t) && t[w] == '.' {
		w++
	}
	if w < len(t) && t[w] == ' ' {
		w++
	}
	d := s.digitsEnd(w)
	if d == w || d-w > 6 || !s.boundaryAfter(d) {
		return e
	}
	return d
}

func allDigits(w string) bool {
	for k := 0; k < len(w); k++ {
		if !isDigit(w[k]) {
			return false
		}
	}
	return len(w) > 0
}

// atoi parses a short run of digits; it returns -1 on anything else.
func atoi(w string) int {
	if len(w) == 0 || len(w) > 9 {
		return -1
	}
	v := 0
	for k := 0; k < len(w); k++ {
		c := w[k]
		if !isDigit(c) {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	return v
}
