package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const guidePath = "docs/operator-guide.md"

// guideCommands returns the shell lines of the guide's code blocks, with
// backslash continuations joined.
func guideCommands(t *testing.T) []string {
	t.Helper()
	var out []string
	in, cont := false, ""
	for _, l := range strings.Split(string(readRepoFile(t, guidePath)), "\n") {
		if strings.HasPrefix(l, "```") {
			in = !in
			continue
		}
		if !in {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cont += s
			continue
		}
		out = append(out, strings.TrimSpace(cont+l))
		cont = ""
	}
	return out
}

var scriptOption = regexp.MustCompile(`(?m)^\s+(-[-\w]+(?: \| -[-\w]+)*)\)`)

// TestOperatorGuideScripts checks that every script invocation in the guide
// names an existing script and only options that script accepts.
func TestOperatorGuideScripts(t *testing.T) {
	t.Parallel()
	seen := 0
	for _, cmd := range guideCommands(t) {
		if i := strings.Index(cmd, "#"); i >= 0 && !strings.Contains(cmd[:i], "'") {
			cmd = strings.TrimSpace(cmd[:i])
		}
		fields := strings.Fields(cmd)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "scripts/") {
			continue
		}
		seen++
		src, err := os.ReadFile(filepath.Join(repoRoot, fields[0]))
		require.NoError(t, err, "the guide runs a missing script: %s", fields[0])
		var accepted []string
		for _, m := range scriptOption.FindAllStringSubmatch(string(src), -1) {
			accepted = append(accepted, strings.Split(m[1], " | ")...)
		}
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, "-") {
				assert.Contains(t, accepted, f, "%s has no option %s", fields[0], f)
			}
		}
	}
	assert.GreaterOrEqual(t, seen, 4, "the guide shows the scripts")
}

// TestOperatorGuideReferences checks that the repository paths the guide
// names exist, and that it exports every variable deploy-aks.sh needs.
func TestOperatorGuideReferences(t *testing.T) {
	t.Parallel()
	guide := string(readRepoFile(t, guidePath))
	for _, m := range regexp.MustCompile("`((?:deploy|scripts|examples|docs)/[^`\\s]*)`").FindAllStringSubmatch(guide, -1) {
		if strings.HasSuffix(m[1], "/.env") {
			continue // the operator's own, git-ignored file
		}
		_, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(m[1])))
		assert.NoError(t, err, "the guide names a missing path")
	}
	var exported []string
	for _, cmd := range guideCommands(t) {
		if rest, ok := strings.CutPrefix(cmd, "export "); ok {
			for _, kv := range strings.Fields(rest) {
				if k, _, ok := strings.Cut(kv, "="); ok {
					exported = append(exported, k)
				}
			}
		}
	}
	for name := range manifestVars {
		assert.True(t, slices.Contains(exported, name), "the guide does not export %s for deploy-aks.sh", name)
	}
	for _, marker := range []string{"2192", "allowProtectedAppendWrites", "lock-audit-archive.sh", "Azurite"} {
		assert.Contains(t, guide, marker)
	}
}
