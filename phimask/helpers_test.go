package phimask

import (
	"fmt"
	"reflect"
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

// assertRedacted compares a redacted result with the expected one. On a
// mismatch it prints the expected (already redacted) form, the offset of
// the first difference and the length of what was got, never its content,
// which may hold the unredacted value.
func assertRedacted(t testing.TB, want, got any, msgAndArgs ...any) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return
	}
	ws, gs := fmt.Sprint(want), fmt.Sprint(got)
	i := 0
	for i < len(ws) && i < len(gs) && ws[i] == gs[i] {
		i++
	}
	t.Errorf("output differs from %q at byte %d (got %d bytes, content withheld) %s", ws, i, len(gs), fmt.Sprint(msgAndArgs...))
}
