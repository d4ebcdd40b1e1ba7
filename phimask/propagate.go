package phimask

import (
	"slices"
	"sort"
	"strings"
)

// propagate extends the findings to every other occurrence of a found
// value in the text: "patient Jane Doe ... Jane Doe called back" loses
// both, although the second has no context word. An occurrence counts when
// it stands alone (no letter or digit glued to it, other than one that
// belongs to another finding). It runs only when something was found.
//
// It makes one pass over the text and compares only at bytes that start a
// found value. The work is bounded (maxPropagated distinct values,
// propagateBudget comparisons): in a huge text with very many distinct
// values, some other occurrences may be missed, while each value is still
// replaced where the detectors found it.
func (s *scanner) propagate() {
	if s.n == 0 {
		return
	}
	t := s.t
	found := s.spans()

	// Distinct values (at most maxPropagated), grouped by first byte,
	// longest first.
	var vbuf [8]span
	vals := vbuf[:0]
	if len(found) <= len(vbuf) {
	outer:
		for _, f := range found {
			for _, v := range vals {
				if t[v.s:v.e] == t[f.s:f.e] {
					continue outer
				}
			}
			vals = append(vals, f)
		}
	} else {
		seen := make(map[string]bool, len(found))
		for _, f := range found {
			if v := t[f.s:f.e]; !seen[v] && len(vals) < maxPropagated {
				seen[v] = true
				vals = append(vals, f)
			}
		}
	}
	slices.SortFunc(vals, func(a, b span) int {
		if t[a.s] != t[b.s] {
			return int(t[a.s]) - int(t[b.s])
		}
		return (b.e - b.s) - (a.e - a.s)
	})
	var start, end [256]uint8
	for k := len(vals) - 1; k >= 0; k-- {
		if k >= maxPropagated {
			continue // not reached: vals is capped
		}
		c := t[vals[k].s]
		start[c] = uint8(k)
		if end[c] == 0 {
			end[c] = uint8(k + 1)
		}
	}

	var extra []span
	budget := propagateBudget
	fi := 0 // first finding that ends after p
	for p := 0; p < len(t); p++ {
		c := t[p]
		lo, hi := start[c], end[c]
		if lo == hi {
			continue
		}
		for fi < len(found) && found[fi].e <= p {
			fi++
		}
		if fi < len(found) && found[fi].s <= p {
			p = found[fi].e - 1 // inside a finding
			continue
		}
		// Glued on the left to a letter or digit that no finding covers.
		if p > 0 && isAlnum(t[p-1]) && isAlnum(c) && (fi == 0 || found[fi-1].e != p) {
			continue
		}
		for k := lo; k < hi; k++ {
			if budget--; budget < 0 {
				break
			}
			v := vals[k]
			n := v.e - v.s
			if !strings.HasPrefix(t[p:], t[v.s:v.e]) {
				continue
			}
			e := p + n
			if e < len(t) && isAlnum(t[e]) && isAlnum(t[e-1]) && !inSpan(found, e) {
				continue
			}
			extra = append(extra, span{s: p, e: e, k: v.k})
			p = e - 1
			break
		}
	}
	if len(extra) == 0 {
		return
	}
	all := make([]span, 0, len(found)+len(extra))
	all = append(all, found...)
	all = append(all, extra...)
	slices.SortFunc(all, func(a, b span) int { return a.s - b.s })
	merged := all[:1]
	for _, sp := range all[1:] {
		last := &merged[len(merged)-1]
		if sp.s < last.e {
			if sp.e > last.e {
				last.e = sp.e
			}
			continue
		}
		merged = append(merged, sp)
	}
	s.grown, s.n = merged, len(merged)
}

const (
	// propagateBudget bounds the value comparisons propagate makes in one text.
	propagateBudget = 1 << 22
	// maxPropagated bounds the distinct values propagated in one text.
	maxPropagated = 255
)

// inSpan reports whether byte p belongs to one of the sorted spans.
func inSpan(spans []span, p int) bool {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].e > p })
	return i < len(spans) && spans[i].s <= p
}
