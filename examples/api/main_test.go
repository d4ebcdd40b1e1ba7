package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/oidctest"
	"github.com/phiguard/phiguard/internal/testenv"
)

const audience = "api://phiguard-e2e"

// binary is the service built once for the end-to-end tests: they run it
// as a real process, so that every byte it writes can be searched.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phiguard-api-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "api")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// service is one running instance of the binary.
type service struct {
	cmd      *exec.Cmd
	url      string
	dataDir  string
	stdout   *testenv.Buffer
	stderr   *testenv.Buffer
	auditPub ed25519.PublicKey
	exited   chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func key(t *testing.T, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

// startService starts the built binary on port 0 and waits until it is
// ready. The service logs the address it bound, so no port is picked free
// beforehand (another process could take it in between).
func startService(t *testing.T, is *oidctest.Issuer, extraEnv ...string) *service {
	t.Helper()
	dir := t.TempDir()
	seed := key(t, ed25519.SeedSize)
	s := &service{
		dataDir: filepath.Join(dir, "data"),
		stdout:  &testenv.Buffer{}, stderr: &testenv.Buffer{},
		auditPub: ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey),
		exited:   make(chan struct{}),
	}
	s.cmd = exec.Command(binary)
	s.cmd.Dir = dir
	s.cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"ADDR=127.0.0.1:0",
		"DATA_DIR=" + s.dataDir,
		"MODEL_PATH=" + mustAbs(t, filepath.Join("model", "readmission.json")),
		"OIDC_ISSUER=" + is.URL(), "OIDC_AUDIENCE=" + audience,
		"PHI_TOKEN_KEY=" + base64.StdEncoding.EncodeToString(key(t, 32)),
		"AUDIT_SIGNING_KEY=" + base64.StdEncoding.EncodeToString(seed),
		"STORAGE_KEK=" + base64.StdEncoding.EncodeToString(key(t, 32)),
		"SHUTDOWN_DRAIN_DELAY=1s", "SHUTDOWN_GRACE=20s", "HOSTNAME=e2e",
	}, extraEnv...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	require.NoError(t, s.cmd.Start())
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	var exited atomic.Bool // Eventually runs the condition on its own goroutine
	require.Eventually(t, func() bool {
		select {
		case <-s.exited:
			exited.Store(true)
			return true
		default:
		}
		if s.url == "" {
			addr := listenAddr(s.stdout.Bytes())
			if addr == "" {
				return false
			}
			s.url = "http://" + addr
		}
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "service did not become ready")
	if exited.Load() {
		t.Fatalf("the service exited during start (exit code %d)", s.cmd.ProcessState.ExitCode())
	}
	return s
}

// listenAddr returns the address in the service's "listening" log line, or
// "" before it is written.
func listenAddr(stdout []byte) string {
	for _, line := range bytes.Split(stdout, []byte("\n")) {
		var rec struct{ Msg, Listen string }
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
			return rec.Listen
		}
	}
	return ""
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

func (s *service) do(t *testing.T, method, path, token, ctype string, body io.Reader, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.url+path, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// stop sends SIGTERM and waits for a clean exit.
func (s *service) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("service did not exit after SIGTERM")
	}
	assert.Equal(t, 0, s.cmd.ProcessState.ExitCode(), "exit code after SIGTERM")
}

// syntheticPatient is made-up PHI for one patient.
type syntheticPatient struct {
	Name, BirthDate, MRN, SSN, Phone, Email, Address, Notes string
}

func newPatient(f *gofakeit.Faker, i int) syntheticPatient {
	p := f.Person()
	addr := f.Address()
	return syntheticPatient{
		Name:      p.FirstName + " " + p.LastName,
		BirthDate: f.DateRange(time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)).Format(time.DateOnly),
		MRN:       fmt.Sprintf("MRN%07d", f.Number(1000000, 9999999)),
		SSN:       fmt.Sprintf("%03d-%02d-%04d", f.Number(100, 599), f.Number(10, 99), f.Number(1000, 9999)),
		Phone:     fmt.Sprintf("(%03d) %03d-%04d", f.Number(201, 989), f.Number(200, 999), f.Number(1000, 9999)),
		Email:     fmt.Sprintf("%s.%s%d@example.org", strings.ToLower(p.FirstName), strings.ToLower(p.LastName), i),
		Address:   addr.Street + ", " + addr.City + ", " + addr.State + " " + addr.Zip,
		Notes:     "Patient " + p.FirstName + " " + p.LastName + " reports chest pain; call " + p.Contact.Phone,
	}
}

// values lists the PHI strings that must never appear in clear.
func (p syntheticPatient) values() map[string]string {
	digits := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
	}
	return map[string]string{
		"name": p.Name, "birth date": p.BirthDate, "mrn": p.MRN, "ssn": p.SSN,
		"ssn digits": digits(p.SSN), "phone": p.Phone, "phone digits": digits(p.Phone),
		"email": p.Email, "address": p.Address,
	}
}

func TestEndToEndNoPHILeaks(t *testing.T) {
	is := oidctest.New(t, audience)
	s := startService(t, is)
	clin := is.Token(t, oidctest.Claims{Subject: "clinician-1", Roles: []string{"clinician"}})
	auditor := is.Token(t, oidctest.Claims{Subject: "auditor-1", Roles: []string{"auditor"}})
	f := gofakeit.New(42)
	requests := 0
	call := func(method, path, token, ctype string, body io.Reader, hdr ...string) (int, []byte) {
		requests++
		return s.do(t, method, path, token, ctype, body, hdr...)
	}

	var patients []syntheticPatient
	var ids []string
	for i := range 20 {
		p := newPatient(f, i)
		patients = append(patients, p)
		body, err := json.Marshal(map[string]string{
			"name": p.Name, "birth_date": p.BirthDate, "mrn": p.MRN, "ssn": p.SSN,
			"phone": p.Phone, "email": p.Email, "address": p.Address, "notes": p.Notes,
		})
		require.NoError(t, err)
		code, out := call("POST", "/v1/patients", clin, "application/json", bytes.NewReader(body))
		require.Equal(t, http.StatusCreated, code)
		var created struct{ ID string }
		require.NoError(t, json.Unmarshal(out, &created))
		ids = append(ids, created.ID)

		code, out = call("GET", "/v1/patients/"+created.ID, clin, "", nil)
		require.Equal(t, http.StatusOK, code)
		assert.True(t, bytes.Contains(out, []byte(p.MRN)), "the clinician gets the record back")

		doc := "Discharge summary for " + p.Name + ", SSN " + p.SSN + ", DOB " + p.BirthDate + "\n"
		code, _ = call("POST", "/v1/patients/"+created.ID+"/documents", clin, "text/plain", strings.NewReader(doc))
		require.Equal(t, http.StatusCreated, code)

		pred := fmt.Sprintf(`{"patient_id":%q,"features":{"age":60,"prior_admissions_12m":2,"length_of_stay_days":4,"medication_count":6,"charlson_index":2,"emergency_admission":1,"discharged_home":1}}`, created.ID)
		code, _ = call("POST", "/v1/predict/readmission", clin, "application/json", strings.NewReader(pred))
		require.Equal(t, http.StatusOK, code)

		// Errors that carry PHI.
		code, _ = call("POST", "/v1/patients", clin, "application/json", strings.NewReader(`{"name":"`+p.Name+`","ssn":"`+p.SSN+`",`))
		assert.Equal(t, http.StatusBadRequest, code)
		code, _ = call("POST", "/v1/patients", clin, "application/json", strings.NewReader(`{"`+p.Email+`":"`+p.SSN+`"}`))
		assert.Equal(t, http.StatusBadRequest, code)
		code, _ = call("GET", "/v1/patients/"+p.SSN+"?name="+strings.ReplaceAll(p.Name, " ", "+")+"&email="+p.Email, clin, "", nil)
		assert.Equal(t, http.StatusBadRequest, code)
		code, _ = call("GET", "/v1/lookup/"+strings.ReplaceAll(p.Name, " ", "%20")+"/"+p.Phone[1:4], clin, "", nil)
		assert.Equal(t, http.StatusNotFound, code)
		code, _ = call("GET", "/v1/patients/"+created.ID, p.SSN, "", nil, "X-Request-ID", "req-"+digitsOnly(p.SSN))
		assert.Equal(t, http.StatusUnauthorized, code)
	}
	code, out := call("GET", "/v1/audit/events?patient="+ids[0], auditor, "", nil)
	require.Equal(t, http.StatusOK, code)
	var evs struct{ Count int }
	require.NoError(t, json.Unmarshal(out, &evs))
	assert.GreaterOrEqual(t, evs.Count, 4, "create, read, upload and predict of the first patient")

	s.stop(t)

	// Every byte the service wrote: stdout, stderr and every file under its data folder.
	outputs := map[string][]byte{"stdout": s.stdout.Bytes(), "stderr": s.stderr.Bytes()}
	require.NoError(t, filepath.WalkDir(s.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		outputs[path] = b
		return err
	}))
	require.NotEmpty(t, outputs["stdout"])
	leaks := 0
	for i, p := range patients {
		for field, v := range p.values() {
			for where, b := range outputs {
				if len(v) >= 4 && bytes.Contains(b, []byte(v)) {
					leaks++
					// Name the patient index and field, never the value.
					t.Errorf("patient %d's %s appears in clear in %s", i, field, where)
				}
			}
		}
	}
	assert.Zero(t, leaks)

	report, err := auditlog.Verify(filepath.Join(s.dataDir, "audit"), s.auditPub, nil)
	require.NoError(t, err, "the trail verifies")
	assert.Equal(t, int64(requests), report.Events, "one audit event per API request")

	// The access log has one line per request, with route and status.
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(outputs["stdout"]))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "request" && strings.HasPrefix(fmt.Sprint(rec["url"]), "/v1/") {
			lines++
		}
	}
	assert.Equal(t, requests, lines, "one access log line per API request")
}

func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func TestDrainOnSIGTERM(t *testing.T) {
	is := oidctest.New(t, audience)
	// The drain delay must outlast the readiness and liveness checks below on
	// a loaded machine; nothing here waits for it to pass by sleeping.
	s := startService(t, is, "SHUTDOWN_DRAIN_DELAY=5s")
	clin := is.Token(t, oidctest.Claims{Subject: "clinician-1", Roles: []string{"clinician"}})
	code, out := s.do(t, "POST", "/v1/patients", clin, "application/json",
		strings.NewReader(`{"name":"Test Person","birth_date":"1970-01-02"}`))
	require.Equal(t, http.StatusCreated, code)
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(out, &created))

	// Uploads in flight when SIGTERM arrives, held open until the service
	// has closed its listener: each must still complete.
	const inflight = 4
	var wg sync.WaitGroup
	results := make(chan int, inflight)
	started := make(chan struct{}, inflight)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseUploads := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseUploads) // a failed check below must not leave them blocked
	client := &http.Client{Timeout: 2 * time.Minute}
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				chunk := bytes.Repeat([]byte("x"), 1024)
				if _, err := pw.Write(chunk); err != nil {
					return // the request failed; Do reports it
				}
				started <- struct{}{} // the request is on the wire
				<-release
				for range 9 {
					_, _ = pw.Write(chunk)
				}
				_ = pw.Close()
			}()
			req, _ := http.NewRequestWithContext(context.Background(), "POST",
				s.url+"/v1/patients/"+created.ID+"/documents", pr)
			req.Header.Set("Authorization", "Bearer "+clin)
			req.Header.Set("Content-Type", "text/plain")
			resp, err := client.Do(req)
			if err != nil {
				_ = pr.CloseWithError(err)
				results <- -1
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	for range inflight {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("uploads did not start")
		}
	}
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))

	// During the drain delay readiness fails and liveness holds.
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 5*time.Second, 20*time.Millisecond, "readiness answers 503 while draining")
	resp, err := http.Get(s.url + "/livez")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "liveness holds while draining")

	// After the delay the listener closes; the uploads are still open.
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	}, 30*time.Second, 50*time.Millisecond, "the listener never closed")
	releaseUploads()

	uploaded := make(chan struct{})
	go func() { wg.Wait(); close(uploaded) }()
	select {
	case <-uploaded:
	case <-time.After(3 * time.Minute):
		t.Fatal("in-flight uploads did not finish")
	}
	close(results)
	for code := range results {
		assert.Equal(t, http.StatusCreated, code, "an in-flight upload was cut")
	}
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("no exit after drain")
	}
	assert.Equal(t, 0, s.cmd.ProcessState.ExitCode())
}

func TestSubcommands(t *testing.T) {
	is := oidctest.New(t, audience)
	s := startService(t, is)

	hc := exec.Command(binary, "healthcheck", "-url", s.url+"/livez")
	require.NoError(t, hc.Run(), "healthcheck of a live service exits 0")
	hc = exec.Command(binary, "healthcheck", "-url", "http://"+testenv.RefusedAddr(t)+"/livez")
	err := hc.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode(), "healthcheck of nothing exits 1")

	dir := t.TempDir()
	tok := exec.Command(binary, "token", "-role", "auditor")
	tok.Env = []string{"DATA_DIR=" + dir}
	var stdout, stderr bytes.Buffer
	tok.Stdout, tok.Stderr = &stdout, &stderr
	require.NoError(t, tok.Run())
	assert.Equal(t, 2, strings.Count(stdout.String(), "."), "stdout holds only the JWT")
	assert.Empty(t, stderr.String())

	prod := exec.Command(binary, "token")
	prod.Env = []string{"DATA_DIR=" + dir, "APP_ENV=production"}
	err = prod.Run()
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode(), "no development tokens in production")
}

func verifyTrail(t *testing.T, dir string, pub ed25519.PublicKey) int64 {
	t.Helper()
	r, err := auditlog.Verify(dir, pub, nil)
	require.NoError(t, err)
	return r.Events
}
