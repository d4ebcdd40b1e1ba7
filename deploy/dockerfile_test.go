package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repoRoot is the repository root seen from this package's folder, where
// go test runs.
const repoRoot = ".."

const dockerfilePath = "examples/api/Dockerfile"

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	require.NoError(t, err)
	return b
}

// parsedDockerfile is a Dockerfile after BuildKit's parser and instruction
// decoder: the same code path docker build uses, so the policy sees exactly
// what a build would run.
type parsedDockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	// bases holds each stage's base image with global ARG defaults expanded.
	bases []string
}

func parseDockerfile(src []byte) (*parsedDockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, linter.New(&linter.Config{}))
	if err != nil {
		return nil, fmt.Errorf("instructions: %w", err)
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM")
	}
	env := argEnv{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				env[kv.Key] = *kv.Value
			}
		}
	}
	lex := shell.NewLex(res.EscapeToken)
	p := &parsedDockerfile{stages: stages, metaArgs: metaArgs}
	for _, st := range stages {
		base, _, err := lex.ProcessWord(st.BaseName, env)
		if err != nil {
			return nil, fmt.Errorf("FROM %q: %w", st.BaseName, err)
		}
		p.bases = append(p.bases, base)
	}
	return p, nil
}

// argEnv implements shell.EnvGetter over the global ARG defaults.
type argEnv map[string]string

func (e argEnv) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e argEnv) Keys() []string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (p *parsedDockerfile) final() instructions.Stage { return p.stages[len(p.stages)-1] }

// isStageRef reports whether base names an earlier stage rather than an image.
func (p *parsedDockerfile) isStageRef(i int, base string) bool {
	for _, st := range p.stages[:i] {
		if st.Name != "" && strings.EqualFold(st.Name, base) {
			return true
		}
	}
	return false
}

// dockerfileRule is one policy rule: it returns the violations it finds,
// each a short text naming the instruction, never a value from it.
type dockerfileRule struct {
	name  string
	check func(p *parsedDockerfile) []string
}

var secretNameWords = []string{
	"PASSWORD", "PASSWD", "PWD", "PASS", "SECRET", "TOKEN", "KEY", "KEK", "APIKEY",
	"CREDENTIAL", "CREDENTIALS", "PRIVATE", "SAS", "CONNSTR", "PAT", "CERT", "PFX",
}

// secretLikeName reports whether an ARG or ENV name suggests a secret. Names
// are split into words on '_', '-' and '.', so AZURE_KEYVAULT_URL passes
// while PHI_TOKEN_KEY and AZURE_CLIENT_SECRET do not.
func secretLikeName(name string) bool {
	up := strings.ToUpper(name)
	if strings.Contains(up, "CONNECTION_STRING") || strings.Contains(up, "CONNECTIONSTRING") {
		return true
	}
	words := strings.FieldsFunc(up, func(r rune) bool { return r == '_' || r == '-' || r == '.' })
	for _, w := range words {
		if slices.Contains(secretNameWords, w) {
			return true
		}
	}
	return false
}

// secretLikeValue catches well-known secret formats set under an innocent name.
var secretLikeValue = regexp.MustCompile(`(?i)AccountKey=|SharedAccessSignature=|SharedAccessKey=|[?&]sig=|-----BEGIN [A-Z ]*PRIVATE KEY-----|://[^/\s:@]+:[^/\s@]+@`)

var numericUser = regexp.MustCompile(`^([0-9]+)(?::([0-9]+))?$`)

var dockerfileRules = []dockerfileRule{
	{"pinned base images", func(p *parsedDockerfile) []string {
		var out []string
		for i, base := range p.bases {
			if base == "scratch" || p.isStageRef(i, base) {
				continue
			}
			ref, err := reference.ParseNormalizedNamed(base)
			if err != nil {
				out = append(out, fmt.Sprintf("stage %d: base image is not a valid reference", i))
				continue
			}
			_, digested := ref.(reference.Digested)
			tagged, hasTag := ref.(reference.Tagged)
			switch {
			case digested:
			case !hasTag:
				out = append(out, fmt.Sprintf("stage %d: base image %s has no tag or digest", i, reference.FamiliarName(ref)))
			case tagged.Tag() == "latest":
				out = append(out, fmt.Sprintf("stage %d: base image %s uses the latest tag", i, reference.FamiliarName(ref)))
			}
		}
		return out
	}},
	{"final stage is distroless nonroot", func(p *parsedDockerfile) []string {
		base := p.bases[len(p.bases)-1]
		ref, err := reference.ParseNormalizedNamed(base)
		if err != nil {
			return []string{"final stage: base image is not a valid reference"}
		}
		tag := ""
		if t, ok := ref.(reference.Tagged); ok {
			tag = t.Tag()
		}
		if !strings.HasPrefix(ref.Name(), "gcr.io/distroless/") {
			return []string{"final stage: base image is not distroless"}
		}
		if (tag != "nonroot" && !strings.HasSuffix(tag, "-nonroot")) || strings.Contains(tag, "debug") {
			return []string{"final stage: distroless tag is not a nonroot, shell-free variant"}
		}
		return nil
	}},
	{"numeric non-root USER in final stage", func(p *parsedDockerfile) []string {
		var user *instructions.UserCommand
		for _, c := range p.final().Commands {
			if u, ok := c.(*instructions.UserCommand); ok {
				user = u
			}
		}
		if user == nil {
			return []string{"final stage: no USER"}
		}
		m := numericUser.FindStringSubmatch(user.User)
		if m == nil {
			return []string{"final stage: USER is not numeric uid:gid"}
		}
		var out []string
		if uid, _ := strconv.Atoi(m[1]); uid == 0 {
			out = append(out, "final stage: USER is root")
		}
		if m[2] == "" {
			out = append(out, "final stage: USER has no numeric group")
		} else if gid, _ := strconv.Atoi(m[2]); gid == 0 {
			out = append(out, "final stage: USER group is root")
		}
		return out
	}},
	{"exec-form HEALTHCHECK", func(p *parsedDockerfile) []string {
		var hc *instructions.HealthCheckCommand
		for _, c := range p.final().Commands {
			if h, ok := c.(*instructions.HealthCheckCommand); ok {
				hc = h
			}
		}
		switch {
		case hc == nil || hc.Health == nil || len(hc.Health.Test) == 0:
			return []string{"final stage: no HEALTHCHECK"}
		case hc.Health.Test[0] == "NONE":
			return []string{"final stage: HEALTHCHECK NONE"}
		case hc.Health.Test[0] != "CMD" || len(hc.Health.Test) < 2:
			return []string{"final stage: HEALTHCHECK is not in exec form (the image has no shell)"}
		}
		return nil
	}},
	{"exec-form ENTRYPOINT and CMD", func(p *parsedDockerfile) []string {
		var out []string
		entry := false
		for _, c := range p.final().Commands {
			switch c := c.(type) {
			case *instructions.EntrypointCommand:
				entry = true
				if c.PrependShell {
					out = append(out, "final stage: ENTRYPOINT in shell form")
				}
			case *instructions.CmdCommand:
				if c.PrependShell {
					out = append(out, "final stage: CMD in shell form")
				}
			}
		}
		if !entry {
			out = append(out, "final stage: no ENTRYPOINT")
		}
		return out
	}},
	{"no ADD of remote sources", func(p *parsedDockerfile) []string {
		var out []string
		for i, st := range p.stages {
			for _, c := range st.Commands {
				add, ok := c.(*instructions.AddCommand)
				if !ok {
					continue
				}
				for _, src := range add.SourcePaths {
					if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
						out = append(out, fmt.Sprintf("stage %d: ADD of a remote source", i))
					}
				}
			}
		}
		return out
	}},
	{"no secret-like ARG or ENV", func(p *parsedDockerfile) []string {
		var out []string
		checkArgs := func(where string, args []instructions.KeyValuePairOptional) {
			for _, a := range args {
				if secretLikeName(a.Key) {
					out = append(out, fmt.Sprintf("%s: ARG %s looks like a secret", where, a.Key))
				}
				if a.Value != nil && secretLikeValue.MatchString(*a.Value) {
					out = append(out, fmt.Sprintf("%s: ARG %s has a secret-like default", where, a.Key))
				}
			}
		}
		for _, a := range p.metaArgs {
			checkArgs("global", a.Args)
		}
		for i, st := range p.stages {
			where := fmt.Sprintf("stage %d", i)
			for _, c := range st.Commands {
				switch c := c.(type) {
				case *instructions.ArgCommand:
					checkArgs(where, c.Args)
				case *instructions.EnvCommand:
					for _, kv := range c.Env {
						if secretLikeName(kv.Key) {
							out = append(out, fmt.Sprintf("%s: ENV %s looks like a secret", where, kv.Key))
						}
						if secretLikeValue.MatchString(kv.Value) {
							out = append(out, fmt.Sprintf("%s: ENV %s has a secret-like value", where, kv.Key))
						}
					}
				}
			}
		}
		return out
	}},
	{"final stage copies only from the builder", func(p *parsedDockerfile) []string {
		var out []string
		for _, c := range p.final().Commands {
			switch c := c.(type) {
			case *instructions.AddCommand:
				out = append(out, "final stage: ADD (copy built files from the builder instead)")
			case *instructions.CopyCommand:
				if c.From == "" {
					out = append(out, "final stage: COPY from the build context")
				}
			case *instructions.RunCommand:
				out = append(out, "final stage: RUN (the runtime image has no shell)")
			}
		}
		return out
	}},
}

func checkDockerfile(src []byte) ([]string, error) {
	p, err := parseDockerfile(src)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range dockerfileRules {
		for _, v := range r.check(p) {
			out = append(out, r.name+": "+v)
		}
	}
	return out, nil
}

func TestDockerfilePolicy(t *testing.T) {
	t.Parallel()
	violations, err := checkDockerfile(readRepoFile(t, dockerfilePath))
	require.NoError(t, err)
	assert.Empty(t, violations)
}

// goodDockerfile passes every rule; each bad case below breaks exactly one.
const goodDockerfile = `ARG GO_IMAGE=golang:1.26.8-bookworm
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod go build -o /out/api ./examples/api
FROM gcr.io/distroless/static-debian12:nonroot
ENV APP_ENV=production
COPY --from=build /out/api /app/api
USER 65532:65532
HEALTHCHECK CMD ["/app/api","healthcheck"]
ENTRYPOINT ["/app/api"]
`

func TestDockerfilePolicyRejects(t *testing.T) {
	t.Parallel()
	mutate := func(old, replacement string) string {
		if !strings.Contains(goodDockerfile, old) {
			panic("test case does not apply: " + old)
		}
		return strings.Replace(goodDockerfile, old, replacement, 1)
	}
	cases := []struct {
		name, src, rule string
	}{
		{"untagged builder", mutate("golang:1.26.8-bookworm", "golang"), "pinned base images"},
		{"latest builder", mutate("golang:1.26.8-bookworm", "golang:latest"), "pinned base images"},
		{"untagged runtime", mutate("static-debian12:nonroot", "static-debian12"), "final stage is distroless nonroot"},
		{"latest runtime", mutate("static-debian12:nonroot", "static-debian12:latest"), "pinned base images"},
		{"runtime with a shell", mutate("gcr.io/distroless/static-debian12:nonroot", "debian:12.12-slim"), "final stage is distroless nonroot"},
		{"distroless root variant", mutate("static-debian12:nonroot", "static-debian12:latest-amd64"), "final stage is distroless nonroot"},
		{"distroless debug variant", mutate("static-debian12:nonroot", "static-debian12:debug-nonroot"), "final stage is distroless nonroot"},
		{"no USER", mutate("USER 65532:65532\n", ""), "numeric non-root USER in final stage"},
		{"named USER", mutate("USER 65532:65532", "USER nonroot"), "numeric non-root USER in final stage"},
		{"root USER", mutate("USER 65532:65532", "USER 0:0"), "numeric non-root USER in final stage"},
		{"root group", mutate("USER 65532:65532", "USER 65532:0"), "numeric non-root USER in final stage"},
		{"uid without gid", mutate("USER 65532:65532", "USER 65532"), "numeric non-root USER in final stage"},
		{"USER only in builder", strings.Replace(mutate("USER 65532:65532\n", ""), "WORKDIR /src", "USER 65532:65532\nWORKDIR /src", 1), "numeric non-root USER in final stage"},
		{"shell-form HEALTHCHECK", mutate(`HEALTHCHECK CMD ["/app/api","healthcheck"]`, "HEALTHCHECK CMD /app/api healthcheck"), "exec-form HEALTHCHECK"},
		{"no HEALTHCHECK", mutate("HEALTHCHECK CMD [\"/app/api\",\"healthcheck\"]\n", ""), "exec-form HEALTHCHECK"},
		{"HEALTHCHECK NONE", mutate(`HEALTHCHECK CMD ["/app/api","healthcheck"]`, "HEALTHCHECK NONE"), "exec-form HEALTHCHECK"},
		{"shell-form ENTRYPOINT", mutate(`ENTRYPOINT ["/app/api"]`, "ENTRYPOINT /app/api"), "exec-form ENTRYPOINT and CMD"},
		{"ADD of an https URL", mutate("COPY . .", "ADD https://example.invalid/tool.tar.gz /tmp/"), "no ADD of remote sources"},
		{"ADD of a git repository", mutate("COPY . .", "ADD git@example.invalid:org/repo.git /src"), "no ADD of remote sources"},
		{"secret ARG", mutate("WORKDIR /src", "ARG NPM_TOKEN\nWORKDIR /src"), "no secret-like ARG or ENV"},
		{"secret global ARG", "ARG DB_PASSWORD=changeme\n" + goodDockerfile, "no secret-like ARG or ENV"},
		{"key ENV", mutate("ENV APP_ENV=production", "ENV PHI_TOKEN_KEY=abc"), "no secret-like ARG or ENV"},
		{"client secret ENV", mutate("ENV APP_ENV=production", "ENV AZURE_CLIENT_SECRET=abc"), "no secret-like ARG or ENV"},
		{"connection string ENV", mutate("ENV APP_ENV=production", "ENV AZURE_STORAGE_CONNECTION_STRING=x"), "no secret-like ARG or ENV"},
		{"account key under an innocent name", mutate("ENV APP_ENV=production", "ENV STORE=DefaultEndpointsProtocol=https;AccountName=a;AccountKey=b"), "no secret-like ARG or ENV"},
		{"credentials in a proxy URL", mutate("WORKDIR /src", "ARG GOPROXY=https://user:pw@proxy.example.invalid\nWORKDIR /src"), "no secret-like ARG or ENV"},
		{"COPY from context into runtime", mutate("COPY --from=build /out/api /app/api", "COPY --from=build /out/api /app/api\nCOPY examples/api/.env /app/.env"), "final stage copies only from the builder"},
		{"RUN in runtime", mutate("USER 65532:65532", "RUN [\"/app/api\",\"setup\"]\nUSER 65532:65532"), "final stage copies only from the builder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			violations, err := checkDockerfile([]byte(tc.src))
			require.NoError(t, err)
			fired := false
			for _, v := range violations {
				fired = fired || strings.HasPrefix(v, tc.rule+": ")
			}
			assert.True(t, fired, "rule %q accepted a bad Dockerfile; violations: %q", tc.rule, violations)
		})
	}

	t.Run("good baseline", func(t *testing.T) {
		t.Parallel()
		violations, err := checkDockerfile([]byte(goodDockerfile))
		require.NoError(t, err)
		assert.Empty(t, violations)
	})
}

func TestSecretLikeName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"PHI_TOKEN_KEY": true, "AUDIT_SIGNING_KEY": true, "STORAGE_KEK": true, "HEALTH_TOKEN": true,
		"AZURE_CLIENT_SECRET": true, "db_password": true, "AZURE_STORAGE_CONNECTION_STRING": true,
		"GITHUB_PAT": true, "api-key": true,
		"AZURE_KEYVAULT_URL": false, "AZURE_KEYVAULT_KEY_NAME": true, "SECRETS_DIR": false,
		"APP_ENV": false, "GOPROXY": false, "MODEL_PATH": false, "VERSION": false, "AZURE_CLIENT_ID": false,
	} {
		assert.Equal(t, want, secretLikeName(name), name)
	}
}

// TestDockerfileBuild checks the build recipe the issue asks for, on the
// parsed instructions of the real Dockerfile.
func TestDockerfileBuild(t *testing.T) {
	t.Parallel()
	p, err := parseDockerfile(readRepoFile(t, dockerfilePath))
	require.NoError(t, err)
	require.Len(t, p.stages, 2, "builder and runtime")

	assert.Equal(t, "golang:1.26.8-bookworm", p.bases[0])
	assert.Equal(t, "gcr.io/distroless/static-debian12:nonroot", p.bases[1])

	// Builder: static, trimmed, stripped, with module and build caches.
	env := map[string]string{}
	var runs []*instructions.RunCommand
	for _, c := range p.stages[0].Commands {
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = kv.Value
			}
		case *instructions.RunCommand:
			runs = append(runs, c)
		}
	}
	assert.Equal(t, "0", env["CGO_ENABLED"])
	var build *instructions.RunCommand
	for _, r := range runs {
		if strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
			build = r
		}
	}
	require.NotNil(t, build, "no go build step")
	line := strings.Join(build.CmdLine, " ")
	for _, want := range []string{"-trimpath", `-ldflags "-s -w"`, "./examples/api"} {
		assert.Contains(t, line, want)
	}
	require.NoError(t, build.Expand(func(w string) (string, error) { return w, nil }))
	var cacheTargets []string
	for _, m := range instructions.GetMounts(build) {
		if m.Type == instructions.MountTypeCache {
			cacheTargets = append(cacheTargets, m.Target)
		}
	}
	assert.ElementsMatch(t, []string{"/go/pkg/mod", "/root/.cache/go-build"}, cacheTargets)

	// Runtime: defaults from the configuration table, labels, port, and only
	// the binary and model copied.
	final := p.final()
	env = map[string]string{}
	labels := map[string]string{}
	var copies []*instructions.CopyCommand
	var ports []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = kv.Value
			}
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				labels[kv.Key] = kv.Value
			}
		case *instructions.CopyCommand:
			copies = append(copies, c)
		case *instructions.ExposeCommand:
			ports = append(ports, c.Ports...)
		}
	}
	assert.Equal(t, map[string]string{
		"APP_ENV":    "production",
		"ADDR":       "0.0.0.0:8080",
		"DATA_DIR":   "/var/lib/phiguard",
		"MODEL_PATH": "/app/model/readmission.json",
	}, env)
	assert.Equal(t, []string{"8080"}, ports)
	for _, k := range []string{"title", "description", "source", "version", "revision", "created"} {
		assert.NotEmpty(t, labels["org.opencontainers.image."+k], "OCI label %s", k)
	}
	var dests []string
	for _, c := range copies {
		assert.Equal(t, "build", c.From)
		dests = append(dests, c.DestPath)
	}
	assert.ElementsMatch(t, []string{"/app/", "/var/lib/phiguard/"}, dests)
}

// TestDockerignore checks .dockerignore with the pattern matcher Docker and
// BuildKit use, so what is asserted is what a build sends.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	m := loadDockerignore(t)
	excluded := []string{
		".env", ".env.production", "examples/api/.env", "examples/api/.env.local",
		"var/audit/segment-000001", "examples/api/var/dev-signing.key",
		".git/config", ".git/objects/pack/x.pack",
		"phimask/phimask_test.go", "auditlog/testdata/fuzz/FuzzX/seed",
		"bin/golangci-lint", "internal/testenv/azurite/node_modules/azurite/package.json",
		"tls/server.key", "client.pem", "docs/operator-guide.md", "deploy/kubernetes/deployment.yaml",
	}
	included := []string{
		"go.mod", "go.sum", "examples/api/main.go", "examples/api/internal/model/model.go",
		"examples/api/model/readmission.json", "examples/api/model/readmission.json.sha256",
		"phimask/phimask.go", "storage/internal/cse/cse.go",
	}
	for _, p := range excluded {
		ok, err := m.MatchesOrParentMatches(p)
		require.NoError(t, err)
		assert.True(t, ok, "sent to the build context: %s", p)
	}
	for _, p := range included {
		ok, err := m.MatchesOrParentMatches(p)
		require.NoError(t, err)
		assert.False(t, ok, "kept out of the build context: %s", p)
	}
}

func loadDockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	patterns, err := ignorefile.ReadAll(bytes.NewReader(readRepoFile(t, ".dockerignore")))
	require.NoError(t, err)
	m, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	return m
}
