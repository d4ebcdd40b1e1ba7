package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets/fake"
	"github.com/stretchr/testify/require"
)

const vaultURL = "https://phiguard-test.vault.azure.net"

// fakeVault is the state behind an azsecrets/fake.Server: a small Key Vault
// with per-secret attributes, scripted failures and request accounting.
type fakeVault struct {
	delay time.Duration // every GET answers after this long

	mu          sync.Mutex
	secrets     map[string]*fakeSecret // by lower-case name
	gets        map[string]int         // GETs by lower-case name
	lists       int
	fail        map[string][]failure // lower-case name -> errors to answer before success
	down        bool                 // every call answers 503
	listDenied  bool                 // listing answers 403
	inflight    int
	maxInflight int
}

type failure struct {
	status int
	code   string
}

type fakeSecret struct {
	name      string
	value     string
	version   int
	enabled   bool
	expires   *time.Time
	notBefore *time.Time
	updated   time.Time
}

func newFakeVault() *fakeVault {
	return &fakeVault{secrets: map[string]*fakeSecret{}, gets: map[string]int{}, fail: map[string][]failure{}}
}

// set creates or rotates a secret: a new version with a later Updated.
func (f *fakeVault) set(name, value string) *fakeSecret {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[strings.ToLower(name)]
	if s == nil {
		s = &fakeSecret{name: name, enabled: true, updated: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		f.secrets[strings.ToLower(name)] = s
	}
	s.value = value
	s.version++
	s.updated = s.updated.Add(time.Minute)
	return s
}

func (f *fakeVault) update(name string, fn func(*fakeSecret)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[strings.ToLower(name)]
	fn(s)
	s.updated = s.updated.Add(time.Minute)
}

func (f *fakeVault) failNext(name string, statuses ...int) {
	for _, s := range statuses {
		f.failNextCode(name, s, strings.ReplaceAll(http.StatusText(s), " ", ""))
	}
}

func (f *fakeVault) failNextCode(name string, status int, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[strings.ToLower(name)] = append(f.fail[strings.ToLower(name)], failure{status, code})
}

func (f *fakeVault) setListDenied(denied bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listDenied = denied
}

func (f *fakeVault) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeVault) getCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[strings.ToLower(name)]
}

func (f *fakeVault) totalGets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.gets {
		n += c
	}
	return n
}

func (f *fakeVault) peakInflight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInflight
}

func attrs(s *fakeSecret) *azsecrets.SecretAttributes {
	return &azsecrets.SecretAttributes{
		Enabled:   to.Ptr(s.enabled),
		Expires:   s.expires,
		NotBefore: s.notBefore,
		Updated:   to.Ptr(s.updated),
	}
}

func (f *fakeVault) server() *fake.Server {
	return &fake.Server{
		GetSecret: func(ctx context.Context, name, _ string, _ *azsecrets.GetSecretOptions) (resp azfake.Responder[azsecrets.GetSecretResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			f.gets[strings.ToLower(name)]++
			f.inflight++
			f.maxInflight = max(f.maxInflight, f.inflight)
			f.mu.Unlock()
			defer func() {
				f.mu.Lock()
				f.inflight--
				f.mu.Unlock()
			}()
			if f.delay > 0 {
				select {
				case <-time.After(f.delay):
				case <-ctx.Done():
					errResp.SetError(ctx.Err())
					return
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.down {
				errResp.SetResponseError(http.StatusServiceUnavailable, "ServiceUnavailable")
				return
			}
			if q := f.fail[strings.ToLower(name)]; len(q) > 0 {
				f.fail[strings.ToLower(name)] = q[1:]
				errResp.SetResponseError(q[0].status, q[0].code)
				return
			}
			s := f.secrets[strings.ToLower(name)]
			if s == nil {
				errResp.SetResponseError(http.StatusNotFound, "SecretNotFound")
				return
			}
			resp.SetResponse(http.StatusOK, azsecrets.GetSecretResponse{Secret: azsecrets.Secret{
				ID:         to.Ptr(azsecrets.ID(fmt.Sprintf("%s/secrets/%s/v%d", vaultURL, s.name, s.version))),
				Value:      to.Ptr(s.value),
				Attributes: attrs(s),
			}}, nil)
			return
		},
		NewListSecretPropertiesPager: func(*azsecrets.ListSecretPropertiesOptions) (resp azfake.PagerResponder[azsecrets.ListSecretPropertiesResponse]) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.lists++
			// Two pages, so the pager is exercised.
			var pages [2][]*azsecrets.SecretProperties
			i := 0
			for _, s := range f.secrets {
				pages[i%2] = append(pages[i%2], &azsecrets.SecretProperties{
					ID:         to.Ptr(azsecrets.ID(fmt.Sprintf("%s/secrets/%s", vaultURL, s.name))),
					Attributes: attrs(s),
				})
				i++
			}
			for _, p := range pages {
				resp.AddPage(http.StatusOK, azsecrets.ListSecretPropertiesResponse{
					SecretPropertiesListResult: azsecrets.SecretPropertiesListResult{Value: p},
				}, nil)
			}
			return
		},
	}
}

// httpTransport makes the fake server answer errors the way a real vault
// does, as HTTP responses: the fake returns them as non-retriable Go errors,
// which would bypass azcore's retry policy that the loader relies on.
//
// It also answers failed listings itself: the fake keeps a pager's state
// after an error page, so a scripted list failure would stick.
type httpTransport struct {
	next policy.Transporter
	fv   *fakeVault
}

func (t httpTransport) Do(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.TrimSuffix(req.URL.Path, "/") == "/secrets" {
		t.fv.mu.Lock()
		down, denied := t.fv.down, t.fv.listDenied
		if down || denied {
			t.fv.lists++
		}
		t.fv.mu.Unlock()
		switch {
		case down:
			return errorResponse(req, http.StatusServiceUnavailable, "ServiceUnavailable"), nil
		case denied:
			return errorResponse(req, http.StatusForbidden, "Forbidden"), nil
		}
	}
	resp, err := t.next.Do(req)
	var re *azcore.ResponseError
	if err != nil && errors.As(err, &re) && re.RawResponse != nil {
		return re.RawResponse, nil
	}
	return resp, err
}

func errorResponse(req *http.Request, status int, code string) *http.Response {
	h := http.Header{}
	h.Set("x-ms-error-code", code)
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Body: http.NoBody, Request: req}
}

// fastRetry keeps azcore's retry policy but with millisecond back-off, so
// retry tests stay quick.
var fastRetry = policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}

func (f *fakeVault) client(tb testing.TB) *azsecrets.Client {
	tb.Helper()
	c, err := azsecrets.NewClient(vaultURL, &azfake.TokenCredential{}, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: httpTransport{next: fake.NewServerTransport(f.server()), fv: f},
			Retry:     fastRetry,
		},
	})
	require.NoError(tb, err)
	return c
}
