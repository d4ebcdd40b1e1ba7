package phimask

import (
	"strings"
	"testing"
)

// kindsOf returns the kinds Detect finds in text, in order.
func kindsOf(text string) []Kind {
	var out []Kind
	for _, f := range Detect(text) {
		out = append(out, f.Kind)
	}
	return out
}

// assertNoLeak fails if any of values appears in out. It reports only the
// index and label of the leaked value, never the value itself, so that
// test output carries no PHI (even synthetic PHI is kept out of logs).
func assertNoLeak(t testing.TB, out string, values []string, labels []string) {
	t.Helper()
	for i, v := range values {
		if v != "" && strings.Contains(out, v) {
			label := ""
			if i < len(labels) {
				label = labels[i]
			}
			t.Errorf("leaked value #%d (%s) in output of %d bytes", i, label, len(out))
		}
	}
}

// assertKept fails if a non-PHI fragment did not survive.
func assertKept(t testing.TB, out string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(out, f) {
			t.Errorf("non-PHI fragment %q missing from output", f)
		}
	}
}
