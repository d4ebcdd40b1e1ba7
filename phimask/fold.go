package phimask

import "unicode/utf8"

// Unicode look-alikes: a value written with an en dash ("123–45–6789"), a
// no-break space, full-width digits or a zero-width space inside it is
// still PHI. The scanner reads ASCII; fold maps the text to an ASCII
// reading first, and findings are mapped back to byte offsets of the
// original text, which is otherwise kept byte for byte.

// foldMap maps the bytes of a folded text back to the original one: byte
// i of the folded text comes from original bytes [start[i], end[i]).
type foldMap struct {
	start, end []int
}

// origin returns the original byte span of the folded span [a, e).
func (m *foldMap) origin(a, e int) (int, int) {
	if m == nil {
		return a, e
	}
	return m.start[a], m.end[e-1]
}

// fold returns text with Unicode dashes folded to '-', Unicode spaces to
// ' ', full-width digits and parentheses to ASCII ones and zero-width characters (and
// the soft hyphen) removed, with the map back to text. When text holds
// none of them it returns text and a nil map, without allocating.
func fold(text string) (string, *foldMap) {
	first := -1
	for i := 0; i < len(text); i++ {
		// Lead bytes of every rune folded below.
		if c := text[i]; c == 0xC2 || c == 0xE2 || c == 0xE3 || c == 0xEF {
			if r, _ := utf8.DecodeRuneInString(text[i:]); foldAct(r) != foldKeep {
				first = i
				break
			}
		}
	}
	if first < 0 {
		return text, nil
	}
	b := make([]byte, 0, len(text))
	m := &foldMap{start: make([]int, 0, len(text)), end: make([]int, 0, len(text))}
	for i := 0; i < first; i++ {
		b = append(b, text[i])
		m.start = append(m.start, i)
		m.end = append(m.end, i+1)
	}
	for i := first; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			b = append(b, c)
			m.start = append(m.start, i)
			m.end = append(m.end, i+1)
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(text[i:])
		switch c, act := foldRune(r); act {
		case foldKeep:
			for k := i; k < i+w; k++ {
				b = append(b, text[k])
				m.start = append(m.start, k)
				m.end = append(m.end, k+1)
			}
		case foldDrop:
		default:
			b = append(b, c)
			m.start = append(m.start, i)
			m.end = append(m.end, i+w)
		}
		i += w
	}
	return string(b), m
}

// What foldRune does with a rune.
const (
	foldKeep = iota // not folded
	foldSub         // read as an ASCII byte
	foldDrop        // removed
)

func foldAct(r rune) int {
	_, act := foldRune(r)
	return act
}

// foldRune returns what r reads as: an ASCII byte c (act foldSub), nothing
// (foldDrop) or itself (foldKeep).
func foldRune(r rune) (c byte, act int) {
	switch {
	case r >= 0xFF10 && r <= 0xFF19: // full-width digits
		return "0123456789"[r-0xFF10], foldSub
	case r == 0xFF08:
		return '(', foldSub
	case r == 0xFF09:
		return ')', foldSub
	case r >= 0x2010 && r <= 0x2015, r == 0x2212, r == 0xFE58, r == 0xFE63, r == 0xFF0D: // dashes, minus
		return '-', foldSub
	case r == 0x00A0, r >= 0x2000 && r <= 0x200A, r == 0x202F, r == 0x205F, r == 0x3000: // spaces
		return ' ', foldSub
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF, r == 0x00AD: // zero-width, soft hyphen
		return 0, foldDrop
	}
	return 0, foldKeep
}
