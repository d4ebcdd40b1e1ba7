package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RequirePodmanEnv turns a missing podman into a failure instead of a skip
// (make test installs podman and sets it).
const RequirePodmanEnv = "PHIGUARD_REQUIRE_PODMAN"

// The Dockerfile's two base images. No registry can be reached from the
// test machines, so the test builds local stand-ins under these names.
const (
	builderImage = "docker.io/library/golang:1.26.8-bookworm"
	runtimeImage = "gcr.io/distroless/static-debian12:nonroot"
)

// podman runs podman with a configuration that works on machines without
// systemd or CAP_SYS_RESOURCE (cgroupfs, runc, file events, fixed ulimits).
type podman struct {
	t    *testing.T
	conf string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv(RequirePodmanEnv) == "1" {
			t.Fatalf("podman is not installed (%s=1): run `make test`, or apt-get install podman buildah runc", RequirePodmanEnv)
		}
		t.Skip("podman is not installed: run `make test`, or apt-get install podman buildah runc")
	}
	conf := filepath.Join(t.TempDir(), "containers.conf")
	require.NoError(t, os.WriteFile(conf, []byte(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`), 0o600))
	return &podman{t: t, conf: conf}
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	c := exec.Command("podman", args...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return c
}

// run runs podman and returns its stdout; it fails the test on error.
func (p *podman) run(args ...string) string {
	p.t.Helper()
	var stdout, stderr bytes.Buffer
	c := p.cmd(args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		p.t.Fatalf("podman %s: %v\n%s", args[0], err, lastLines(stderr.String(), 30))
	}
	return stdout.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildStandIns makes the two base images from this machine: a builder
// with busybox whose Go toolchain is this machine's, bind-mounted at
// /usr/local/go by the build (see TestContainerImage), and a runtime from
// scratch with a nonroot passwd entry and CA certificates, as distroless has.
func (p *podman) buildStandIns() {
	p.t.Helper()
	busybox, err := exec.LookPath("busybox")
	require.NoError(p.t, err, "busybox-static is needed for the builder stand-in (make test installs it)")
	dir := p.t.TempDir()
	require.NoError(p.t, copyFile(busybox, filepath.Join(dir, "busybox"), 0o755))
	require.NoError(p.t, os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(`FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp /root /usr/local/go && chmod 1777 /tmp
ENV PATH=/usr/local/go/bin:/bin HOME=/root GOTOOLCHAIN=local GOPATH=/go
`), 0o644))
	p.run("build", "--pull=never", "--network=none", "--format", "docker", "-t", builderImage, dir)

	rt := p.t.TempDir()
	require.NoError(p.t, os.MkdirAll(filepath.Join(rt, "etc", "ssl", "certs"), 0o755))
	require.NoError(p.t, os.WriteFile(filepath.Join(rt, "etc", "passwd"),
		[]byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644))
	require.NoError(p.t, os.WriteFile(filepath.Join(rt, "etc", "group"), []byte("root:x:0:\nnonroot:x:65532:\n"), 0o644))
	if err := copyFile("/etc/ssl/certs/ca-certificates.crt", filepath.Join(rt, "etc", "ssl", "certs", "ca-certificates.crt"), 0o644); err != nil {
		require.NoError(p.t, os.WriteFile(filepath.Join(rt, "etc", "ssl", "certs", "ca-certificates.crt"), nil, 0o644))
	}
	require.NoError(p.t, os.MkdirAll(filepath.Join(rt, "tmp"), 0o777))
	require.NoError(p.t, os.WriteFile(filepath.Join(rt, "Containerfile"), []byte("FROM scratch\nCOPY etc /etc\nCOPY tmp /tmp\nUSER 65532:65532\n"), 0o644))
	p.run("build", "--pull=never", "--network=none", "--format", "docker", "-t", runtimeImage, rt)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// buildContext copies the repository's tracked files into a folder and adds
// decoys that .dockerignore must keep out of the image.
func buildContext(t *testing.T, marker string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	require.NoError(t, err)
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f == "" {
			continue
		}
		src := filepath.Join(root, f)
		fi, err := os.Stat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree
		}
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755))
		require.NoError(t, copyFile(src, filepath.Join(dst, f), fi.Mode().Perm()))
	}
	for _, decoy := range []string{".env", "examples/api/.env", "var/dev-signing-key.pem", "examples/api/var/objects/x"} {
		p := filepath.Join(dst, decoy)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("PHI_TOKEN_KEY="+marker+"\n"), 0o600))
	}
	return dst
}

// TestContainerImage builds examples/api/Dockerfile with podman and runs the
// image as production would: read-only root, non-root, probes, PHI-safe
// logs, clean exit on SIGTERM, nothing secret in any layer.
func TestContainerImage(t *testing.T) {
	pm := newPodman(t)
	pm.buildStandIns()

	marker := "decoy-" + base64.RawURLEncoding.EncodeToString(key(t, 12))
	ctxDir := buildContext(t, marker)
	// The host's module cache is served to the build as a file proxy. A test
	// run downloads only what its packages need (lazy module loading), but the
	// builder's `go mod download` also reads the go.mod of every module in the
	// graph, so fill the cache with the same command first (the host has the
	// module proxy; the build has no network).
	dl := exec.Command("go", "mod", "download")
	dl.Dir = filepath.Join("..", "..")
	out, err := dl.CombinedOutput()
	require.NoError(t, err, "go mod download: %s", out)
	modcache := strings.TrimSpace(string(must(exec.Command("go", "env", "GOMODCACHE").Output())))
	goroot := strings.TrimSpace(string(must(exec.Command("go", "env", "GOROOT").Output())))
	image := "localhost/phiguard-api:test"
	// Modules come from this machine's module cache served as a file proxy,
	// so the build runs with no network at all; go.sum still checks every
	// module.
	pm.run("build", "--pull=never", "--network=none", "--format", "docker", "-t", image,
		"--volume", goroot+":/usr/local/go:ro",
		"--volume", filepath.Join(modcache, "cache", "download")+":/goproxy:ro",
		"--build-arg", "GOPROXY=file:///goproxy", "--build-arg", "VERSION=test",
		"-f", filepath.Join(ctxDir, "examples", "api", "Dockerfile"), ctxDir)
	t.Cleanup(func() { _ = pm.cmd("rmi", "-f", image).Run() })

	var cfg []struct {
		Config      struct{ User string }
		Healthcheck struct{ Test []string }
	}
	require.NoError(t, json.Unmarshal([]byte(pm.run("image", "inspect", image)), &cfg))
	require.Len(t, cfg, 1)
	assert.Equal(t, "65532:65532", cfg[0].Config.User)
	assert.Equal(t, []string{"CMD", "/app/api", "healthcheck"}, cfg[0].Healthcheck.Test, "exec-form HEALTHCHECK kept (--format docker)")

	t.Run("no secret in any layer", func(t *testing.T) { checkLayers(t, pm, image, marker) })

	// Run it: read-only root, data on a mounted folder owned by the image's user.
	data := t.TempDir()
	require.NoError(t, os.Chown(data, 65532, 65532))
	require.NoError(t, os.Chmod(data, 0o700))
	addr := freeAddr(t)
	seed := key(t, ed25519.SeedSize)
	name := "phiguard-api-test-" + strings.ToLower(base64.RawURLEncoding.EncodeToString(key(t, 6)))
	name = strings.NewReplacer("_", "x", "-", "x").Replace(name)
	pm.run("run", "-d", "--name", name, "--network=host", "--read-only",
		"-v", data+":/var/lib/phiguard:Z",
		"-e", "APP_ENV=development", "-e", "ADDR="+addr,
		"-e", "PHI_TOKEN_KEY="+base64.StdEncoding.EncodeToString(key(t, 32)),
		"-e", "AUDIT_SIGNING_KEY="+base64.StdEncoding.EncodeToString(seed),
		"-e", "STORAGE_KEK="+base64.StdEncoding.EncodeToString(key(t, 32)),
		"-e", "SHUTDOWN_DRAIN_DELAY=1s",
		image)
	t.Cleanup(func() { _ = pm.cmd("rm", "-f", name).Run() })

	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 90*time.Second, 200*time.Millisecond, "container did not become ready:\n%s", func() string {
		out, _ := pm.cmd("logs", name).CombinedOutput()
		return lastLines(string(out), 20)
	}())

	pm.run("healthcheck", "run", name)
	// The image has no ps for `podman top`: read the process's ids from /proc.
	pid := strings.TrimSpace(pm.run("inspect", "--format", "{{.State.Pid}}", name))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^Uid:\s+65532\s+65532\s+65532\s+65532$`, string(status), "process runs as the image's non-root user")
	assert.Regexp(t, `(?m)^Gid:\s+65532\s+65532\s+65532\s+65532$`, string(status))

	// One PHI request end to end, with a development token minted inside
	// the container (its signing key lives in the data folder).
	token := strings.TrimSpace(pm.run("exec", name, "/app/api", "token", "-role", "clinician"))
	const phiName, phiSSN = "Casey Synthetic", "219-09-9999"
	req, err := http.NewRequestWithContext(context.Background(), "POST", base+"/v1/patients",
		strings.NewReader(`{"name":"`+phiName+`","birth_date":"1961-07-04","ssn":"`+phiSSN+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)

	pm.run("stop", "-t", "30", name) // SIGTERM, then the drain
	var state []struct{ State struct{ ExitCode int } }
	require.NoError(t, json.Unmarshal([]byte(pm.run("inspect", name)), &state))
	require.Len(t, state, 1)
	assert.Equal(t, 0, state[0].State.ExitCode, "clean exit on SIGTERM")

	logs := pm.run("logs", name)
	assert.NotEmpty(t, logs)
	for i, v := range []string{phiName, phiSSN, "219099999", "1961-07-04"} {
		if strings.Contains(logs, v) {
			t.Errorf("PHI value %d appears in podman logs", i)
		}
	}
	report := verifyTrail(t, filepath.Join(data, "audit"), ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	assert.Positive(t, report)
}

// checkLayers saves the image and searches every layer for files that must
// not be there and for the decoy marker.
func checkLayers(t *testing.T, pm *podman, image, marker string) {
	archive := filepath.Join(t.TempDir(), "image.tar")
	pm.run("save", "--format", "docker-archive", "-o", archive, image)
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	outer := tar.NewReader(f)
	layers := 0
	for {
		h, err := outer.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if !strings.HasSuffix(h.Name, ".tar") {
			continue
		}
		layers++
		inner := tar.NewReader(outer)
		for {
			lh, err := inner.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			base := filepath.Base(lh.Name)
			assert.False(t, base == ".env" || strings.HasSuffix(base, ".pem") || strings.HasSuffix(base, ".key"),
				"layer %s holds %s", h.Name, lh.Name)
			assert.False(t, strings.HasSuffix(lh.Name, "_test.go"), "layer holds test file %s", lh.Name)
			if lh.Typeflag == tar.TypeReg && lh.Size < 64<<20 {
				b, err := io.ReadAll(inner)
				require.NoError(t, err)
				assert.False(t, bytes.Contains(b, []byte(marker)), "layer file %s holds the decoy secret", lh.Name)
			}
		}
	}
	assert.Positive(t, layers)
}
