package phimask

import (
	"sort"
	"strings"
)

// propagate extends the findings to every other occurrence of a found
// value in the text: "patient Jane Doe ... Jane Doe called back" loses
// both, although the second has no context word. An occurrence counts when
// it stands alone (no letter or digit glued to it, other than one that
// belongs to another finding). It runs only when something was found.
//
// Each distinct value costs one search of the text, so the work is bounded
// by propagateBudget bytes searched: in a huge text with many distinct
// values, the values past the budget are not propagated (each value is
// still replaced where the detectors found it).
func (s *scanner) propagate() {
	if s.n == 0 {
		return
	}
	found := s.spans()
	var seen map[string]bool
	var extra []span
	work := 0
	for idx, f := range found {
		v := s.t[f.s:f.e]
		if seen == nil && idx > 0 {
			seen = make(map[string]bool, len(found))
			for _, p := range found[:idx] {
				seen[s.t[p.s:p.e]] = true
			}
		}
		if seen[v] {
			continue
		}
		if seen != nil {
			seen[v] = true
		}
		if work += len(s.t); work > propagateBudget {
			break
		}
		for from := 0; from < len(s.t); {
			k := strings.Index(s.t[from:], v)
			if k < 0 {
				break
			}
			a, e := from+k, from+k+len(v)
			from = a + 1
			if coveredBy(found, a, e) || !s.standsAlone(found, a, e) {
				continue
			}
			extra = append(extra, span{s: a, e: e, k: f.k})
		}
	}
	if len(extra) == 0 {
		return
	}
	all := make([]span, 0, len(found)+len(extra))
	all = append(all, found...)
	all = append(all, extra...)
	sort.Slice(all, func(i, j int) bool { return all[i].s < all[j].s })
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

// propagateBudget bounds the bytes propagate searches in one text.
const propagateBudget = 1 << 24

// coveredBy reports whether [a, e) lies inside one of the sorted spans.
func coveredBy(spans []span, a, e int) bool {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].e > a })
	return i < len(spans) && spans[i].s <= a && spans[i].e >= e
}

// inSpan reports whether byte p belongs to one of the sorted spans.
func inSpan(spans []span, p int) bool { return coveredBy(spans, p, p+1) }

// standsAlone reports whether the occurrence [a, e) is not glued to a
// letter or digit outside any finding.
func (s *scanner) standsAlone(found []span, a, e int) bool {
	t := s.t
	if a > 0 && isAlnum(t[a-1]) && isAlnum(t[a]) && !inSpan(found, a-1) {
		return false
	}
	if e < len(t) && isAlnum(t[e]) && isAlnum(t[e-1]) && !inSpan(found, e) {
		return false
	}
	return true
}
