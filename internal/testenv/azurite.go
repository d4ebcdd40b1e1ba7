package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azurite's well-known development account. These are the emulator's
// published development credentials, not a secret.
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// RequireAzuriteEnv names the environment variable that turns a missing
// Azurite from a skip into a test failure.
const RequireAzuriteEnv = "PHIGUARD_REQUIRE_AZURITE"

// AzuriteBinEnv names an environment variable that overrides the path of
// the azurite-blob executable.
const AzuriteBinEnv = "PHIGUARD_AZURITE_BLOB"

const installHint = "Azurite is not installed: run `make test`, or `npm ci --prefix internal/testenv/azurite`"

// Azurite is one running Azurite blob service on loopback. Tests simulate
// its outages with a Gate in front of it (GatedConnectionString), not by
// stopping it: an in-memory emulator loses its data when stopped, and its
// port could be taken before it started again.
type Azurite struct {
	bin    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

var shared struct {
	once sync.Once
	az   *Azurite
	err  error
}

// Main runs the tests of a package that uses Azurite and stops the shared
// instance afterwards. Call it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.az != nil {
		shared.az.kill()
	}
	return code
}

// Shared returns the test binary's shared Azurite, starting it on first use.
// It skips the test when Azurite is not installed (fails under
// PHIGUARD_REQUIRE_AZURITE=1).
func Shared(t testing.TB) *Azurite {
	t.Helper()
	bin := findBinary(t)
	shared.once.Do(func() {
		az := &Azurite{bin: bin}
		shared.err = az.start()
		if shared.err == nil {
			shared.az = az
		}
	})
	if shared.err != nil {
		t.Fatalf("testenv: start Azurite: %v", shared.err)
	}
	return shared.az
}

// ConnectionString returns a connection string for the development account
// on this instance.
func (a *Azurite) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		AccountName, AccountKey, a.BlobURL())
}

// BlobURL returns the blob service URL of the development account.
func (a *Azurite) BlobURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s", a.port, AccountName)
}

// Client returns a service client for the development account.
func (a *Azurite) Client(t testing.TB) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClientFromConnectionString(a.ConnectionString(), nil)
	if err != nil {
		t.Fatalf("testenv: azblob client: %v", err)
	}
	return c
}

// NewContainer creates a uniquely named, empty container on this instance.
func (a *Azurite) NewContainer(t testing.TB) *container.Client {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t" + hex.EncodeToString(b[:])
	c := a.Client(t).ServiceClient().NewContainerClient(name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("testenv: create container: %v", err)
	}
	return c
}

// NewContainer creates a fresh container on the shared Azurite.
func NewContainer(t testing.TB) *container.Client {
	t.Helper()
	return Shared(t).NewContainer(t)
}

// start starts the emulator on a free port and waits until it answers. A
// port found free can be taken before Azurite binds it, so it tries again on
// another port.
func (a *Azurite) start() error {
	var lastErr error
	for range 3 {
		p, err := freePort()
		if err != nil {
			return err
		}
		a.port = p
		if lastErr = a.startOnce(); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

func (a *Azurite) startOnce() error {
	args := []string{
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(a.port),
		"--skipApiVersionCheck", "--loose", "--silent", "--inMemoryPersistence",
	}
	//nolint:gosec,noctx // G204: the path comes from the repository or the test environment; its lifetime is managed by kill (from Main), not a context.
	cmd := exec.Command(a.bin, args...)

	// Azurite can take 10-35 s to exit on SIGTERM, and must never outlive the
	// test binary: it gets SIGKILL when its parent dies.
	cmd.SysProcAttr = procAttr()
	exited := make(chan struct{})
	var startErr error
	// Pdeathsig fires when the starting OS thread exits, so start it from a
	// thread that stays locked for the process's lifetime.
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		startErr = cmd.Start()
		close(ready)
		if startErr != nil {
			return
		}
		_ = cmd.Wait()
		close(exited)
		runtime.UnlockOSThread()
	}()
	<-ready
	if startErr != nil {
		return fmt.Errorf("run %s: %w", a.bin, startErr)
	}
	a.cmd, a.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/", a.port)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			a.kill() // its process group: a wrapper's child may outlive it
			return errors.New("azurite exited before it answered (port taken?)")
		default:
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			// Any answer will do, but only from Azurite: another process may
			// have taken the port in the meantime.
			if strings.HasPrefix(resp.Header.Get("Server"), "Azurite") {
				return nil
			}
			a.kill()
			return errors.New("another server answers on the port")
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.kill()
	return errors.New("azurite did not answer within 60s")
}

// kill stops the emulator at once and waits for it to exit.
func (a *Azurite) kill() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	// Kill the whole process group: npm's shim may have started node as a child.
	signalGroup(a.cmd.Process.Pid, syscall.SIGKILL)
	_ = a.cmd.Process.Kill()
	<-a.exited
	a.cmd = nil
}

func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func findBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(AzuriteBinEnv); p != "" {
		return p
	}
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, "internal", "testenv", "azurite", "node_modules", ".bin", "azurite-blob")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, installHint+" (Node.js is missing too: apt-get install nodejs npm)")
	}
	missing(t, installHint)
	return ""
}

func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireAzuriteEnv) == "1" {
		t.Fatalf("testenv: %s (%s=1)", msg, RequireAzuriteEnv)
	}
	t.Skip("testenv: " + msg)
}

// moduleRoot finds the folder of go.mod above the working directory (a test
// runs in its package's folder).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}
