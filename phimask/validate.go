package phimask

// Checksum and range validators. Each takes the value's characters without
// separators and reports whether it is a well-formed identifier.

// luhn reports whether digits pass the Luhn check; extra is added to the
// sum first (24 for the NPI's implicit "80840" prefix).
func luhn(digits []byte, extra int) bool {
	sum := extra
	dbl := false
	for k := len(digits) - 1; k >= 0; k-- {
		d := int(digits[k] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if dbl {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		dbl = !dbl
	}
	return sum%10 == 0
}

// validNPI checks a National Provider Identifier: ten digits, first 1 or 2,
// Luhn over "80840" followed by the number (the prefix contributes 24).
func validNPI(d string) bool {
	if len(d) != 10 || (d[0] != '1' && d[0] != '2') || !allDigits(d) {
		return false
	}
	var b [10]byte
	copy(b[:], d)
	return luhn(b[:], 24)
}

// validNANP checks a ten-digit North American number: area code and
// exchange both start with 2-9.
func validNANP(d string) bool {
	return len(d) == 10 && allDigits(d) && d[0] >= '2' && d[3] >= '2'
}

// ssnKind classifies area-group-serial: an SSN (area not 000, 666 or 9xx,
// group not 00, serial not 0000) or an ITIN (area 9xx, group 50-65, 70-88,
// 90-92 or 94-99).
func ssnKind(area, group, serial string) (kid, bool) {
	a, g, s := atoi(area), atoi(group), atoi(serial)
	if a < 0 || g < 0 || s < 0 || len(area) != 3 || len(group) != 2 || len(serial) != 4 {
		return 0, false
	}
	if a >= 900 {
		if (g >= 50 && g <= 65) || (g >= 70 && g <= 88) || (g >= 90 && g <= 92) || g >= 94 {
			return kITIN, true
		}
		return 0, false
	}
	if a == 0 || a == 666 || g == 0 || s == 0 {
		return 0, false
	}
	return kSSN, true
}

// validDEA checks a DEA registration number: two letters and seven digits,
// (d1+d3+d5) + 2*(d2+d4+d6) ends in d7.
func validDEA(w string) bool {
	if len(w) != 9 || !isUpper(w[0]) || (!isUpper(w[1]) && w[1] != '9') || !allDigits(w[2:]) {
		return false
	}
	switch w[0] {
	case 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L', 'M', 'P', 'R', 'S', 'T', 'U', 'X':
	default:
		return false
	}
	d := func(k int) int { return int(w[1+k] - '0') }
	sum := d(1) + d(3) + d(5) + 2*(d(2)+d(4)+d(6))
	return sum%10 == d(7)
}

// mbiLetter reports whether c is a letter allowed in an MBI (not S L O I B Z).
func mbiLetter(c byte) bool {
	if !isUpper(c) {
		return false
	}
	switch c {
	case 'S', 'L', 'O', 'I', 'B', 'Z':
		return false
	}
	return true
}

// validMBI checks the CMS Medicare Beneficiary Identifier format (upper case,
// no dashes): C A AN N A AN N A A N N, where C is 1-9, A a letter other
// than S L O I B Z, N a digit and AN either.
func validMBI(b []byte) bool {
	if len(b) != 11 || b[0] < '1' || b[0] > '9' {
		return false
	}
	for k, c := range b[1:] {
		switch k + 1 {
		case 1, 4, 7, 8:
			if !mbiLetter(c) {
				return false
			}
		case 2, 5:
			if !mbiLetter(c) && !isDigit(c) {
				return false
			}
		default:
			if !isDigit(c) {
				return false
			}
		}
	}
	return true
}

// validVIN checks a 17-character vehicle identification number by its
// check digit (position 9). It also requires letters and digits both, so
// that long hex or decimal runs are not taken for VINs.
func validVIN(w string) bool {
	if len(w) != 17 {
		return false
	}
	const weights = "\x08\x07\x06\x05\x04\x03\x02\x0a\x00\x09\x08\x07\x06\x05\x04\x03\x02"
	sum, letters, digits := 0, 0, 0
	for k := 0; k < 17; k++ {
		c := w[k]
		var v int
		switch {
		case isDigit(c):
			v = int(c - '0')
			digits++
		case isUpper(c):
			letters++
			switch c {
			case 'I', 'O', 'Q':
				return false
			}
			v = int(vinLetter[c-'A'] - '0')
		default:
			return false
		}
		sum += v * int(weights[k])
	}
	if letters == 0 || digits < 4 {
		return false
	}
	check := byte('0' + sum%11)
	if sum%11 == 10 {
		check = 'X'
	}
	return w[8] == check
}

// vinLetter is the VIN transliteration of A-Z ('0' for I, O, Q).
const vinLetter = "12345678012345070923456789"

// validIBAN checks an upper-case compact IBAN with mod-97.
func validIBAN(b []byte) bool {
	if len(b) < 15 || len(b) > 34 || !isUpper(b[0]) || !isUpper(b[1]) || !isDigit(b[2]) || !isDigit(b[3]) {
		return false
	}
	rem := 0
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case isUpper(c):
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
		return true
	}
	for _, c := range b[4:] {
		if !add(c) {
			return false
		}
	}
	for _, c := range b[:4] {
		add(c)
	}
	return rem == 1
}
