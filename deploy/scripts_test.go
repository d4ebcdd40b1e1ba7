package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireToolsEnv turns a missing shellcheck or envsubst into a failure
// (make test installs both: Debian packages shellcheck and gettext-base).
const requireToolsEnv = "PHIGUARD_REQUIRE_SCRIPT_TOOLS"

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(requireToolsEnv) != "" {
			t.Fatalf("%s not installed and %s is set", name, requireToolsEnv)
		}
		t.Skipf("%s not installed (Debian package); set %s=1 to make this a failure", name, requireToolsEnv)
	}
	return p
}

func scriptPaths(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "scripts", "*.sh"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func TestShellcheck(t *testing.T) {
	t.Parallel()
	sc := needTool(t, "shellcheck")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--external-sources", "--severity=style", "--shell=bash"}, scriptPaths(t)...)
	out, err := exec.CommandContext(ctx, sc, args...).CombinedOutput()
	assert.NoError(t, err, "shellcheck:\n%s", out)
}

func TestScriptsAreStrict(t *testing.T) {
	t.Parallel()
	for _, f := range scriptPaths(t) {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(src, []byte("#!/usr/bin/env bash\n")), "%s: bash shebang", f)
		assert.Contains(t, string(src), "\nset -euo pipefail\n", f)
		assert.Contains(t, string(src), "--dry-run", f)
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.NotZero(t, st.Mode()&0o111, "%s is not executable", f)
	}
}

// scriptRun is one run of a script with a PATH whose az, docker, kubectl and
// notation record any call: a dry run must call none of them.
type scriptRun struct {
	stdout, stderr string
	exit           int
	commands       [][]string // the "+ ..." lines, split into words
}

func runScript(t *testing.T, env []string, script string, args ...string) scriptRun {
	t.Helper()
	bin := t.TempDir()
	marker := filepath.Join(t.TempDir(), "called")
	for _, tool := range []string{"az", "docker", "kubectl", "notation"} {
		stub := "#!/bin/sh\necho \"$0 $*\" >> '" + marker + "'\nexit 97\n"
		require.NoError(t, os.WriteFile(filepath.Join(bin, tool), []byte(stub), 0o755))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(repoRoot, "scripts", script)}, args...)...)
	cmd.Env = append([]string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "TMPDIR=" + t.TempDir(), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := scriptRun{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		r.exit = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	if called, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the script ran external commands: %s", called)
	}
	// The printed commands are shell-quoted (printf %q); split them back
	// with BuildKit's shell lexer.
	lex := shell.NewLex('\\')
	for _, line := range strings.Split(r.stdout, "\n") {
		rest, ok := strings.CutPrefix(line, "+ ")
		if !ok {
			continue
		}
		if i := strings.Index(rest, " > "); i >= 0 {
			rest = rest[:i]
		}
		words, err := lex.ProcessWords(rest, argEnv{})
		require.NoError(t, err, line)
		r.commands = append(r.commands, words)
	}
	return r
}

func findCommand(cmds [][]string, prefix ...string) []string {
	for _, c := range cmds {
		if len(c) >= len(prefix) && slices.Equal(c[:len(prefix)], prefix) {
			return c
		}
	}
	return nil
}

// flagValues returns every value of a --flag VALUE or --flag=VALUE option.
func flagValues(cmd []string, flag string) []string {
	var out []string
	for i, a := range cmd {
		if a == flag && i+1 < len(cmd) {
			out = append(out, cmd[i+1])
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

const (
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testCreated = "2026-12-01T10:00:00Z"
)

func TestACRBuildDryRunBuildx(t *testing.T) {
	t.Parallel()
	builder := "sha256:" + strings.Repeat("a", 64)
	runtime := "sha256:" + strings.Repeat("b", 64)
	r := runScript(t, nil, "acr-build.sh", "--registry", "phiguardacr", "--version", "1.2.3",
		"--commit", testCommit, "--created", testCreated, "--builder-digest", builder, "--runtime-digest", runtime,
		"--sign", "phiguard-release", "--lock", "--dry-run")
	require.Equal(t, 0, r.exit, r.stderr)

	sed := findCommand(r.commands, "sed")
	require.NotNil(t, sed, r.stdout)
	assert.Contains(t, strings.Join(sed, " "), "FROM golang:1.26.8-bookworm@"+builder+" ")
	assert.Contains(t, strings.Join(sed, " "), "FROM gcr.io/distroless/static-debian12:nonroot@"+runtime)

	require.NotNil(t, findCommand(r.commands, "az", "acr", "login", "--name", "phiguardacr"), r.stdout)
	build := findCommand(r.commands, "docker", "buildx", "build")
	require.NotNil(t, build, r.stdout)
	assert.ElementsMatch(t, []string{"phiguardacr.azurecr.io/phiguard-api:1.2.3", "phiguardacr.azurecr.io/phiguard-api:git-0123456789ab"}, flagValues(build, "--tag"))
	assert.ElementsMatch(t, []string{"VERSION=1.2.3", "REVISION=" + testCommit, "CREATED=" + testCreated}, flagValues(build, "--build-arg"))
	assert.Equal(t, []string{"true"}, flagValues(build, "--sbom"))
	assert.Equal(t, []string{"mode=max"}, flagValues(build, "--provenance"))
	assert.Contains(t, build, "--push")
	assert.Equal(t, []string{"linux/amd64"}, flagValues(build, "--platform"))
	file := flagValues(build, "--file")
	require.Len(t, file, 1)
	assert.Contains(t, filepath.Base(file[0]), "Dockerfile.pinned.", "the digest-pinned copy is built")
	assert.Equal(t, ".", build[len(build)-1], "the build context is the repository root")

	require.NotNil(t, findCommand(r.commands, "az", "acr", "repository", "show"), r.stdout)
	sign := findCommand(r.commands, "notation", "sign")
	require.NotNil(t, sign, r.stdout)
	assert.Equal(t, []string{"cose"}, flagValues(sign, "--signature-format"))
	assert.True(t, strings.HasPrefix(sign[len(sign)-1], "phiguardacr.azurecr.io/phiguard-api@sha256:"), "signs by digest")
	lock := findCommand(r.commands, "az", "acr", "repository", "update")
	require.NotNil(t, lock, r.stdout)
	assert.Equal(t, []string{"false"}, flagValues(lock, "--write-enabled"))
	assert.Contains(t, r.stdout, "image: phiguardacr.azurecr.io/phiguard-api:1.2.3@sha256:")
}

func TestACRBuildDryRunACRTasks(t *testing.T) {
	t.Parallel()
	r := runScript(t, nil, "acr-build.sh", "--registry", "phiguardacr.azurecr.io", "--version", "2.0.0-rc.1",
		"--commit", testCommit, "--created", testCreated, "--mode", "acr", "--dry-run")
	require.Equal(t, 0, r.exit, r.stderr)
	build := findCommand(r.commands, "az", "acr", "build")
	require.NotNil(t, build, r.stdout)
	assert.Equal(t, []string{"phiguardacr"}, flagValues(build, "--registry"))
	assert.ElementsMatch(t, []string{"phiguard-api:2.0.0-rc.1", "phiguard-api:git-0123456789ab"}, flagValues(build, "--image"))
	assert.Equal(t, []string{"examples/api/Dockerfile"}, flagValues(build, "--file"))
	assert.Nil(t, findCommand(r.commands, "docker"))
	assert.Nil(t, findCommand(r.commands, "notation"))
}

func TestACRBuildRejectsBadInput(t *testing.T) {
	t.Parallel()
	base := []string{"--commit", testCommit, "--created", testCreated, "--dry-run"}
	cases := map[string]struct {
		args []string
		want string
	}{
		"no registry":     {[]string{"--version", "1.2.3"}, "--registry is required"},
		"no version":      {[]string{"--registry", "phiguardacr"}, "--version is required"},
		"v-prefixed":      {[]string{"--registry", "phiguardacr", "--version", "v1.2.3"}, "semver"},
		"latest":          {[]string{"--registry", "phiguardacr", "--version", "latest"}, "semver"},
		"bad mode":        {[]string{"--registry", "phiguardacr", "--version", "1.2.3", "--mode", "kaniko"}, "--mode"},
		"short digest":    {[]string{"--registry", "phiguardacr", "--version", "1.2.3", "--runtime-digest", "sha256:abc"}, "digests"},
		"bad registry":    {[]string{"--registry", "a_b", "--version", "1.2.3"}, "ACR name"},
		"unknown option":  {[]string{"--registry", "phiguardacr", "--version", "1.2.3", "--no-verify"}, "unknown option"},
		"missing value":   {[]string{"--registry"}, "needs a value"},
		"uppercase image": {[]string{"--registry", "phiguardacr", "--version", "1.2.3", "--image", "API"}, "--image"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runScript(t, nil, "acr-build.sh", append(tc.args, base...)...)
			assert.Equal(t, 2, r.exit)
			assert.Contains(t, r.stderr, tc.want)
			assert.Empty(t, r.commands)
		})
	}
}

func deployEnv() []string {
	var env []string
	for k, v := range manifestVars {
		env = append(env, k+"="+v)
	}
	return env
}

func TestDeployAKSVariables(t *testing.T) {
	t.Parallel()
	r := runScript(t, nil, "deploy-aks.sh", "--print-variables")
	require.Equal(t, 0, r.exit, r.stderr)
	printed := strings.Fields(r.stdout)
	var want []string
	for k := range manifestVars {
		want = append(want, k)
	}
	assert.ElementsMatch(t, want, printed)

	// Every placeholder in the manifests is one the script substitutes.
	used := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(repoRoot, k8sDir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range placeholder.FindAllSubmatch(stripComments(src), -1) {
			used[string(m[1])] = true
		}
	}
	for name := range used {
		assert.Contains(t, printed, name)
	}
	for _, name := range printed {
		assert.True(t, used[name], "variable %s is never used", name)
	}
}

func TestDeployAKSDryRun(t *testing.T) {
	t.Parallel()
	needTool(t, "envsubst")
	out := t.TempDir()
	r := runScript(t, deployEnv(), "deploy-aks.sh", "--out", out, "--context", "aks-prod", "--dry-run")
	require.Equal(t, 0, r.exit, r.stderr)

	// The script's rendering equals the one the policy tests decode.
	files, err := filepath.Glob(filepath.Join(repoRoot, k8sDir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		want, err := renderManifest(src)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(out, filepath.Base(f)))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), filepath.Base(f))
	}

	require.Len(t, r.commands, 4, r.stdout)
	for _, c := range r.commands {
		assert.Equal(t, []string{"kubectl", "--context", "aks-prod"}, c[:3])
		if slices.Contains(c, "apply") {
			assert.Contains(t, c, "--server-side")
		}
	}
	assert.Equal(t, []string{filepath.Join(out, "namespace.yaml")}, flagValues(r.commands[0], "-f"), "the namespace and its PSS labels first")
	assert.Contains(t, r.commands[1], "--dry-run=server")
	assert.Equal(t, []string{out}, flagValues(r.commands[2], "-f"))
	assert.Contains(t, r.commands[3], "rollout")
}

func TestDeployAKSRejectsBadInput(t *testing.T) {
	t.Parallel()
	needTool(t, "envsubst")
	with := func(k, v string) []string {
		env := []string{}
		for _, e := range deployEnv() {
			if !strings.HasPrefix(e, k+"=") {
				env = append(env, e)
			}
		}
		if v != "" {
			env = append(env, k+"="+v)
		}
		return env
	}
	cases := map[string]struct {
		env  []string
		want string
	}{
		"missing client id": {with("AZURE_CLIENT_ID", ""), "AZURE_CLIENT_ID"},
		"image by tag":      {with("IMAGE", "phiguardacr.azurecr.io/phiguard-api:1.2.3"), "by digest"},
		"latest image":      {with("IMAGE", "phiguardacr.azurecr.io/phiguard-api:latest"), "by digest"},
		"tenant not a GUID": {with("AZURE_TENANT_ID", "contoso.onmicrosoft.com"), "GUID"},
		"http storage":      {with("AZURE_STORAGE_ACCOUNT_URL", "http://stphiguard.blob.core.windows.net"), "https://"},
		"bad CIDR":          {with("PRIVATE_ENDPOINT_CIDR", "10.0.0.0"), "CIDR"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runScript(t, tc.env, "deploy-aks.sh", "--out", t.TempDir(), "--dry-run")
			assert.Equal(t, 2, r.exit)
			assert.Contains(t, r.stderr, tc.want)
			assert.Empty(t, r.commands)
		})
	}
}

func TestLockAuditArchiveDryRun(t *testing.T) {
	t.Parallel()
	r := runScript(t, nil, "lock-audit-archive.sh", "--resource-group", "rg-phiguard", "--account", "stphiguard", "--dry-run")
	require.Equal(t, 0, r.exit, r.stderr)
	show := findCommand(r.commands, "az", "storage", "container", "immutability-policy", "show")
	require.NotNil(t, show, r.stdout)
	assert.Equal(t, []string{"audit-archive"}, flagValues(show, "--container-name"))
	lock := findCommand(r.commands, "az", "storage", "container", "immutability-policy", "lock")
	require.NotNil(t, lock, r.stdout)
	assert.Equal(t, []string{"stphiguard"}, flagValues(lock, "--account-name"))
	assert.Len(t, flagValues(lock, "--if-match"), 1, "locks the policy it checked, by ETag")

	for name, args := range map[string][]string{
		"short retention": {"--resource-group", "rg", "--account", "stphiguard", "--min-days", "365"},
		"no group":        {"--account", "stphiguard"},
		"bad account":     {"--resource-group", "rg", "--account", "St-Phi"},
	} {
		r := runScript(t, nil, "lock-audit-archive.sh", append(args, "--dry-run")...)
		assert.Equal(t, 2, r.exit, name)
		assert.Empty(t, r.commands, name)
	}
}
