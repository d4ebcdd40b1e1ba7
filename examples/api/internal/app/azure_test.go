package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	logsfake "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	keysfake "github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	secretsfake "github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/app"
	"github.com/phiguard/phiguard/examples/api/internal/oidctest"
	"github.com/phiguard/phiguard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// vault is Key Vault's secrets and keys, served by the SDKs' fake servers.
type vault struct {
	secrets map[string]string
	rsa     *rsa.PrivateKey
	mu      sync.Mutex
	wraps   int
}

func (v *vault) secretsServer() *secretsfake.Server {
	return &secretsfake.Server{
		GetSecret: func(_ context.Context, name, _ string, _ *azsecrets.GetSecretOptions) (resp azfake.Responder[azsecrets.GetSecretResponse], errResp azfake.ErrorResponder) {
			val, ok := v.secrets[name]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "SecretNotFound")
				return
			}
			id := azsecrets.ID("https://test.vault.azure.net/secrets/" + name + "/v1")
			resp.SetResponse(http.StatusOK, azsecrets.GetSecretResponse{Secret: azsecrets.Secret{
				ID: &id, Value: to.Ptr(val),
				Attributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(true), Updated: to.Ptr(time.Unix(1700000000, 0))},
			}}, nil)
			return
		},
		NewListSecretPropertiesPager: func(*azsecrets.ListSecretPropertiesOptions) (resp azfake.PagerResponder[azsecrets.ListSecretPropertiesResponse]) {
			var page azsecrets.ListSecretPropertiesResponse
			for name := range v.secrets {
				id := azsecrets.ID("https://test.vault.azure.net/secrets/" + name)
				page.Value = append(page.Value, &azsecrets.SecretProperties{ID: &id,
					Attributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(true), Updated: to.Ptr(time.Unix(1700000000, 0))}})
			}
			resp.AddPage(http.StatusOK, page, nil)
			return
		},
	}
}

func (v *vault) keysServer() *keysfake.Server {
	kid := azkeys.ID("https://test.vault.azure.net/keys/storage-kek/v1")
	return &keysfake.Server{
		WrapKey: func(_ context.Context, _, _ string, p azkeys.KeyOperationParameters, _ *azkeys.WrapKeyOptions) (resp azfake.Responder[azkeys.WrapKeyResponse], errResp azfake.ErrorResponder) {
			out, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &v.rsa.PublicKey, p.Value, nil)
			if err != nil {
				errResp.SetResponseError(http.StatusBadRequest, "BadParameter")
				return
			}
			v.mu.Lock()
			v.wraps++
			v.mu.Unlock()
			resp.SetResponse(http.StatusOK, azkeys.WrapKeyResponse{KeyOperationResult: azkeys.KeyOperationResult{KID: &kid, Result: out}}, nil)
			return
		},
		UnwrapKey: func(_ context.Context, _, _ string, p azkeys.KeyOperationParameters, _ *azkeys.UnwrapKeyOptions) (resp azfake.Responder[azkeys.UnwrapKeyResponse], errResp azfake.ErrorResponder) {
			out, err := rsa.DecryptOAEP(sha256.New(), nil, v.rsa, p.Value, nil)
			if err != nil {
				errResp.SetResponseError(http.StatusBadRequest, "BadParameter")
				return
			}
			resp.SetResponse(http.StatusOK, azkeys.UnwrapKeyResponse{KeyOperationResult: azkeys.KeyOperationResult{KID: &kid, Result: out}}, nil)
			return
		},
	}
}

// monitor collects what the Logs Ingestion fake receives.
type monitor struct {
	mu      sync.Mutex
	payload []byte
	rows    int
}

func (m *monitor) server() *logsfake.Server {
	return &logsfake.Server{
		Upload: func(_ context.Context, _, _ string, logs []byte, opts *azlogs.UploadOptions) (resp azfake.Responder[azlogs.UploadResponse], errResp azfake.ErrorResponder) {
			if opts != nil && opts.ContentEncoding != nil && *opts.ContentEncoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(logs))
				if err == nil {
					logs, err = io.ReadAll(zr)
				}
				if err != nil {
					errResp.SetResponseError(http.StatusBadRequest, "BadGzip")
					return
				}
			}
			var rows []json.RawMessage
			if err := json.Unmarshal(logs, &rows); err != nil {
				errResp.SetResponseError(http.StatusBadRequest, "InvalidPayload")
				return
			}
			m.mu.Lock()
			m.payload = append(m.payload, logs...)
			m.rows += len(rows)
			m.mu.Unlock()
			resp.SetResponse(http.StatusNoContent, azlogs.UploadResponse{}, nil)
			return
		},
	}
}

func (m *monitor) snapshot() (int, []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rows, append([]byte(nil), m.payload...)
}

// TestAzureMode runs the service against Azurite for blobs and the SDKs'
// fake servers for Key Vault (secrets and keys) and Logs Ingestion.
func TestAzureMode(t *testing.T) {
	ctx := context.Background()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	b64 := func(n int) string {
		k := make([]byte, n)
		_, _ = rand.Read(k)
		return base64.StdEncoding.EncodeToString(k)
	}
	kv := &vault{rsa: rsaKey, secrets: map[string]string{
		"PHI-TOKEN-KEY": b64(32), "AUDIT-SIGNING-KEY": b64(32), "HEALTH-TOKEN": b64(24),
	}}
	mon := &monitor{}
	az := testenv.Shared(t)
	containerName := az.NewContainer(t).URL()
	containerName = containerName[strings.LastIndex(containerName, "/")+1:]
	archive := az.NewContainer(t)
	archiveName := archive.URL()[strings.LastIndex(archive.URL(), "/")+1:]

	is := oidctest.New(t, audience)
	dir := t.TempDir()
	cfg, err := app.ConfigFromEnv(func(k string) string {
		return map[string]string{
			"APP_ENV": "production", "DATA_DIR": dir, "OIDC_ISSUER": is.URL(), "OIDC_AUDIENCE": audience,
			"MODEL_PATH":                    filepath.Join("..", "..", "model", "readmission.json"),
			"AZURE_KEYVAULT_URL":            "https://test.vault.azure.net",
			"AZURE_KEYVAULT_KEY_NAME":       "storage-kek",
			"AZURE_STORAGE_ACCOUNT_URL":     az.BlobURL(),
			"AZURE_STORAGE_CONTAINER":       containerName,
			"AZURE_AUDIT_ARCHIVE_CONTAINER": archiveName,
			"HOSTNAME":                      "replica-1",
			"AZURE_LOGS_ENDPOINT":           "https://test.ingest.monitor.azure.com",
			"AZURE_LOGS_RULE_ID":            "dcr-00000000000000000000000000000000",
		}[k]
	})
	require.NoError(t, err)
	cfg.ModelSHA256 = modelDigest(t)
	out := &testenv.Buffer{}
	a, err := app.New(ctx, cfg, &app.Deps{
		Credential:           &azfake.TokenCredential{},
		KeyVaultTransport:    secretsfake.NewServerTransport(kv.secretsServer()),
		KeysTransport:        keysfake.NewServerTransport(kv.keysServer()),
		LogsTransport:        logsfake.NewServerTransport(mon.server()),
		BlobConnectionString: az.ConnectionString(),
		Stdout:               out,
	})
	require.NoError(t, err)
	a.Health.Start(ctx)
	defer a.Health.Stop()
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	ta := &testApp{App: a, srv: srv, issuer: is, out: out, dir: dir}

	const name, ssn = "Quinn Synthetic", "123-45-6789"
	clin := ta.token(t, "clinician")
	resp, body := ta.do(t, "POST", "/v1/patients", clin, "application/json",
		strings.NewReader(`{"name":"`+name+`","birth_date":"1970-01-02","ssn":"`+ssn+`"}`))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &created))
	resp, body = ta.do(t, "GET", "/v1/patients/"+created.ID, clin, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.Contains(string(body), ssn), "the clinician reads the record back")

	// The blob in Azurite is ciphertext, with the CSE v2 metadata.
	blob := az.Client(t).ServiceClient().NewContainerClient(containerName).NewBlobClient("patients/" + created.ID + "/record.json")
	props, err := blob.GetProperties(ctx, nil)
	require.NoError(t, err)
	assert.Contains(t, strings.ToLower(strings.Join(keys(props.Metadata), ",")), "encryptiondata")
	dl, err := blob.DownloadStream(ctx, nil)
	require.NoError(t, err)
	raw, err := io.ReadAll(dl.Body)
	require.NoError(t, dl.Body.Close())
	require.NoError(t, err)
	assertAbsent(t, "raw blob", raw, name, ssn)
	kv.mu.Lock()
	assert.Positive(t, kv.wraps, "content keys are wrapped by Key Vault")
	kv.mu.Unlock()

	require.Eventually(t, func() bool {
		resp, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "ready with Key Vault, Blob Storage and Logs Ingestion")

	require.NoError(t, a.Close()) // flushes the ingestion sink
	// The archive holds this replica's trail, and it verifies.
	seed, err := base64.StdEncoding.DecodeString(kv.secrets["AUDIT-SIGNING-KEY"])
	require.NoError(t, err)
	reports, err := auditlog.VerifyArchive(ctx, archive, "phiguard-api", ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil)
	require.NoError(t, err)
	require.Len(t, reports, 1)
	assert.GreaterOrEqual(t, reports[0].Report.Events, int64(2), "the archive holds the requests' events")

	rows, payload := mon.snapshot()
	assert.GreaterOrEqual(t, rows, 2, "the audit events reached Logs Ingestion")
	assertAbsent(t, "ingestion payload", payload, name, ssn, "123456789")
	assertAbsent(t, "stdout", []byte(out.String()), name, ssn, "123456789")
}

func keys(m map[string]*string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertAbsent fails when any needle is in haystack, naming the place and
// the needle's index only: a failure message must not print PHI.
func assertAbsent(t *testing.T, where string, haystack []byte, needles ...string) {
	t.Helper()
	for i, n := range needles {
		if bytes.Contains(haystack, []byte(n)) {
			t.Errorf("synthetic PHI value %d appears in clear in %s", i, where)
		}
	}
}
