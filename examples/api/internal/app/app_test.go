package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/app"
	"github.com/phiguard/phiguard/examples/api/internal/oidctest"
	"github.com/phiguard/phiguard/internal/testenv"
)

const audience = "api://phiguard-test"

func modelDigest(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "model", "readmission.json.sha256"))
	require.NoError(t, err)
	return string(b)
}

// testApp is the service in development mode with a real OIDC issuer.
type testApp struct {
	*app.App
	srv    *httptest.Server
	issuer *oidctest.Issuer
	out    *testenv.Buffer
	dir    string
}

func newTestApp(t *testing.T) *testApp {
	t.Helper()
	is := oidctest.New(t, audience)
	dir := t.TempDir()
	cfg, err := app.ConfigFromEnv(func(k string) string {
		return map[string]string{
			"DATA_DIR": dir, "OIDC_ISSUER": is.URL(), "OIDC_AUDIENCE": audience,
			"MODEL_PATH": filepath.Join("..", "..", "model", "readmission.json"),
		}[k]
	})
	require.NoError(t, err)
	cfg.ModelSHA256 = modelDigest(t)
	cfg.DotEnvPath = filepath.Join(dir, "no.env")
	out := &testenv.Buffer{}
	a, err := app.New(context.Background(), cfg, &app.Deps{Stdout: out})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, a.Close())
	})
	return &testApp{App: a, srv: srv, issuer: is, out: out, dir: dir}
}

func (ta *testApp) do(t *testing.T, method, path, token, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, ta.srv.URL+path, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ta.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func (ta *testApp) token(t *testing.T, roles ...string) string {
	return ta.issuer.Token(t, oidctest.Claims{Subject: "user-" + strings.Join(roles, "-"), Roles: roles})
}

var patientJSON = `{"name":"Test Person","birth_date":"1970-01-02","mrn":"MRN-0001","ssn":"","phone":"","email":"","address":"","notes":""}`

func (ta *testApp) createPatient(t *testing.T) string {
	t.Helper()
	resp, body := ta.do(t, "POST", "/v1/patients", ta.token(t, "clinician"), "application/json", strings.NewReader(patientJSON))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var out struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &out))
	return out.ID
}

func TestAuthorizationMatrix(t *testing.T) {
	ta := newTestApp(t)
	pid := ta.createPatient(t)
	resp, body := ta.do(t, "POST", "/v1/patients/"+pid+"/documents", ta.token(t, "clinician"), "text/plain", strings.NewReader("note"))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var doc struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &doc))

	type endpoint struct {
		name, method, path, ctype, body string
		ok                              int
		allowed                         []string
	}
	predict := `{"features":{"age":50,"prior_admissions_12m":1,"length_of_stay_days":3,"medication_count":4,"charlson_index":1,"emergency_admission":0,"discharged_home":1}}`
	endpoints := []endpoint{
		{"create patient", "POST", "/v1/patients", "application/json", patientJSON, 201, []string{"clinician"}},
		{"get patient", "GET", "/v1/patients/" + pid, "", "", 200, []string{"clinician"}},
		{"upload document", "POST", "/v1/patients/" + pid + "/documents", "text/plain", "x", 201, []string{"clinician"}},
		{"get document", "GET", "/v1/patients/" + pid + "/documents/" + doc.ID, "", "", 200, []string{"clinician"}},
		{"predict", "POST", "/v1/predict/readmission", "application/json", predict, 200, []string{"clinician", "service"}},
		{"audit events", "GET", "/v1/audit/events?patient=" + pid, "", "", 200, []string{"auditor"}},
	}
	is := ta.issuer
	bad := map[string]string{
		"no token":       "",
		"expired":        is.Token(t, oidctest.Claims{Roles: []string{"clinician", "auditor", "service"}, Expiry: time.Now().Add(-time.Hour)}),
		"wrong audience": is.Token(t, oidctest.Claims{Roles: []string{"clinician", "auditor", "service"}, Audience: "api://other"}),
		"wrong issuer":   is.Token(t, oidctest.Claims{Roles: []string{"clinician", "auditor", "service"}, Issuer: "https://evil.invalid"}),
		"bad signature":  is.BadSignature(t, oidctest.Claims{Roles: []string{"clinician", "auditor", "service"}}),
		"alg none":       is.Unsigned(t, oidctest.Claims{Roles: []string{"clinician", "auditor", "service"}}),
		"no roles":       is.Token(t, oidctest.Claims{}),
	}
	for _, ep := range endpoints {
		for _, role := range []string{"clinician", "auditor", "service"} {
			t.Run(ep.name+"/"+role, func(t *testing.T) {
				want := http.StatusForbidden
				for _, a := range ep.allowed {
					if a == role {
						want = ep.ok
					}
				}
				before := ta.Audit.Stats().Recorded
				resp, _ := ta.do(t, ep.method, ep.path, ta.token(t, role), ep.ctype, strings.NewReader(ep.body))
				assert.Equal(t, want, resp.StatusCode)
				assert.Equal(t, before+1, ta.Audit.Stats().Recorded, "one audit event per request")
			})
		}
		for name, tok := range bad {
			t.Run(ep.name+"/"+name, func(t *testing.T) {
				want := http.StatusUnauthorized
				if name == "no roles" {
					want = http.StatusForbidden
				}
				before := ta.Audit.Stats().Recorded
				resp, _ := ta.do(t, ep.method, ep.path, tok, ep.ctype, strings.NewReader(ep.body))
				assert.Equal(t, want, resp.StatusCode)
				if want == http.StatusUnauthorized {
					assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
				}
				assert.Equal(t, before+1, ta.Audit.Stats().Recorded, "denied requests are audited too")
			})
		}
	}
	require.NoError(t, ta.Audit.Close())
	report, err := auditlog.Verify(ta.TrailDir(), ta.AuditPublicKey, nil)
	require.NoError(t, err)
	assert.Positive(t, report.Events)
}

func TestBadInputs(t *testing.T) {
	ta := newTestApp(t)
	clin := ta.token(t, "clinician")
	pid := ta.createPatient(t)
	big := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"oversized JSON", "POST", "/v1/patients", "application/json", big, 413},
		{"malformed JSON", "POST", "/v1/patients", "application/json", `{"name":`, 400},
		{"unknown field", "POST", "/v1/patients", "application/json", `{"name":"A B","birth_date":"1970-01-01","extra":1}`, 400},
		{"two objects", "POST", "/v1/patients", "application/json", patientJSON + patientJSON, 400},
		{"wrong content type", "POST", "/v1/patients", "text/plain", patientJSON, 415},
		{"no content type", "POST", "/v1/patients", "", patientJSON, 415},
		{"bad birth date", "POST", "/v1/patients", "application/json", `{"name":"A B","birth_date":"01/02/1970"}`, 422},
		{"future birth date", "POST", "/v1/patients", "application/json", `{"name":"A B","birth_date":"2999-01-01"}`, 422},
		{"invalid patient id", "GET", "/v1/patients/not-an-id", "", "", 400},
		{"unknown patient", "GET", "/v1/patients/00000000-0000-4000-8000-000000000000", "", "", 404},
		{"document for unknown patient", "POST", "/v1/patients/00000000-0000-4000-8000-000000000000/documents", "text/plain", "x", 404},
		{"document bad type", "POST", "/v1/patients/" + pid + "/documents", "text/html", "<p>", 415},
		{"predict unknown feature", "POST", "/v1/predict/readmission", "application/json", `{"features":{"shoe":1}}`, 422},
		{"predict out of range", "POST", "/v1/predict/readmission", "application/json", `{"features":{"age":500}}`, 422},
		{"unknown route", "GET", "/v1/nothing", "", "", 404},
		{"wrong method", "DELETE", "/v1/patients/" + pid, "", "", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ta.do(t, tc.method, tc.path, clin, tc.ctype, strings.NewReader(tc.body))
			assert.Equal(t, tc.want, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			}
			require.NoError(t, json.Unmarshal(body, &e))
			assert.NotEmpty(t, e.Error)
			assert.Equal(t, resp.Header.Get("X-Request-ID"), e.RequestID)
		})
	}
}

func TestDocumentRoundTripAndLimit(t *testing.T) {
	ta := newTestApp(t)
	clin := ta.token(t, "clinician")
	pid := ta.createPatient(t)
	data := bytes.Repeat([]byte("clinical document line\n"), 300_000) // ~6.6 MB: several regions
	resp, body := ta.do(t, "POST", "/v1/patients/"+pid+"/documents", clin, "text/plain", bytes.NewReader(data))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var doc struct {
		ID   string
		Size int64
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	assert.Equal(t, int64(len(data)), doc.Size)
	resp, got := ta.do(t, "GET", "/v1/patients/"+pid+"/documents/"+doc.ID, clin, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, bytes.Equal(data, got), "document differs after the round trip")
}

func TestFailClosedWhenAuditCannotRecord(t *testing.T) {
	ta := newTestApp(t)
	clin := ta.token(t, "clinician")
	pid := ta.createPatient(t)
	resp, _ := ta.do(t, "GET", "/v1/patients/"+pid, clin, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	objects := func() int {
		n := 0
		require.NoError(t, filepath.WalkDir(filepath.Join(ta.dir, "objects"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return err
		}))
		return n
	}
	stored := objects()

	require.NoError(t, ta.Audit.Close()) // the trail can no longer record
	resp, body := ta.do(t, "GET", "/v1/patients/"+pid, clin, "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.False(t, strings.Contains(string(body), "MRN-0001"), "no PHI without an audit record")
	resp, _ = ta.do(t, "POST", "/v1/patients", clin, "application/json", strings.NewReader(patientJSON))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, _ = ta.do(t, "POST", "/v1/patients/"+pid+"/documents", clin, "text/plain", strings.NewReader("note"))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, stored, objects(), "nothing is stored by a request the trail could not record")
}
