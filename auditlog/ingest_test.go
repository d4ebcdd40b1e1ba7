package auditlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs/fake"
	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/internal/testenv"
)

// ingestServer is an azlogs fake server that records what it accepted and
// answers with the status the test sets.
type ingestServer struct {
	mu         sync.Mutex
	ids        []string // EventIds accepted, in arrival order
	calls      []time.Time
	bodySizes  []int
	encodings  []string
	failNext   int    // answer this many calls with failStatus
	failStatus int    // status for failures
	retryAfter string // Retry-After on failures
	down       bool   // answer every call with 503 while set
}

func (s *ingestServer) upload(_ context.Context, ruleID, stream string, logs []byte, opts *azlogs.UploadOptions) (resp azfake.Responder[azlogs.UploadResponse], errResp azfake.ErrorResponder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, time.Now())
	fail := func(status int) { errResp.SetResponseError(status, http.StatusText(status)) }
	if s.down {
		fail(http.StatusServiceUnavailable)
		return
	}
	if s.failNext > 0 {
		s.failNext--
		fail(s.failStatus)
		return
	}
	if ruleID != "dcr-test" || stream != "Custom-PhiguardAudit" {
		errResp.SetResponseError(http.StatusNotFound, "NotFound")
		return
	}
	enc := ""
	if opts != nil && opts.ContentEncoding != nil {
		enc = *opts.ContentEncoding
	}
	s.encodings = append(s.encodings, enc)
	body := logs
	if enc == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(logs))
		if err != nil {
			errResp.SetResponseError(http.StatusBadRequest, "BadGzip")
			return
		}
		body, err = io.ReadAll(zr)
		if err != nil {
			errResp.SetResponseError(http.StatusBadRequest, "BadGzip")
			return
		}
	}
	s.bodySizes = append(s.bodySizes, len(body))
	if len(body) > MaxUploadBytes {
		errResp.SetResponseError(http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded")
		return
	}
	var rows []ingestRow
	if err := json.Unmarshal(body, &rows); err != nil {
		errResp.SetResponseError(http.StatusBadRequest, "InvalidJson")
		return
	}
	for _, r := range rows {
		s.ids = append(s.ids, r.EventID)
	}
	resp.SetResponse(http.StatusNoContent, azlogs.UploadResponse{}, nil)
	return
}

func (s *ingestServer) accepted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

func newIngestClient(t *testing.T, srv *ingestServer) *azlogs.Client {
	t.Helper()
	c, err := azlogs.NewClient("https://dce.test.ingest.monitor.azure.com", &azfake.TokenCredential{},
		&azlogs.ClientOptions{ClientOptions: azcore.ClientOptions{
			Transport: &httpErrorTransport{inner: fake.NewServerTransport(&fake.Server{Upload: srv.upload}), srv: srv},
			// The sink does its own retries; SDK retries would hide them.
			Retry: policy.RetryOptions{MaxRetries: -1},
		}})
	require.NoError(t, err)
	return c
}

// httpErrorTransport turns the fake server's error responses back into the
// HTTP responses they stand for, as a real transport returns them, adding
// the Retry-After header the fake cannot set.
type httpErrorTransport struct {
	inner policy.Transporter
	srv   *ingestServer
}

func (t *httpErrorTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.Do(req)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		t.srv.mu.Lock()
		if ra := t.srv.retryAfter; ra != "" && re.StatusCode == http.StatusTooManyRequests {
			re.RawResponse.Header.Set("Retry-After", ra)
		}
		t.srv.mu.Unlock()
		return re.RawResponse, nil
	}
	return resp, err
}

func fastIngestOptions(spool string) *IngestionOptions {
	return &IngestionOptions{SpoolDir: spool, FlushInterval: 10 * time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond, CloseTimeout: 10 * time.Second}
}

// recordN records n events and returns their IDs in record order.
func recordN(t *testing.T, l *Logger, f *gofakeit.Faker, n int, prefix string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		e := fakeEvent(f, newSynthetic(f))
		e.ID = prefix + "-" + itoa(int64(i))
		ids[i] = e.ID
		require.NoError(t, l.Record(context.Background(), e))
	}
	return ids
}

func TestIngestionRetriesThrottlingWithRetryAfter(t *testing.T) {
	t.Parallel()
	srv := &ingestServer{failNext: 1, failStatus: http.StatusTooManyRequests, retryAfter: "1"}
	sink, err := NewIngestionSink(newIngestClient(t, srv), "dcr-test", "Custom-PhiguardAudit", fastIngestOptions(t.TempDir()))
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, sink)
	require.NoError(t, err)
	ids := recordN(t, l, gofakeit.New(11), 20, "t")
	require.NoError(t, l.Close())
	assert.Equal(t, ids, srv.accepted())
	st := sink.Stats()
	assert.EqualValues(t, 1, st.Throttled)
	assert.EqualValues(t, 20, st.Uploaded)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.GreaterOrEqual(t, len(srv.calls), 2)
	// The back-off is 5-40ms; only Retry-After explains a second's wait.
	assert.GreaterOrEqual(t, srv.calls[1].Sub(srv.calls[0]), time.Second, "Retry-After must be honoured")
	for _, enc := range srv.encodings {
		assert.Equal(t, "gzip", enc)
	}
}

func TestIngestionOutageSpoolsAndRecoversInOrder(t *testing.T) {
	t.Parallel()
	srv := &ingestServer{}
	spool := t.TempDir()
	opts := fastIngestOptions(spool)
	var logs testenv.Buffer
	opts.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	sink, err := NewIngestionSink(newIngestClient(t, srv), "dcr-test", "Custom-PhiguardAudit", opts)
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, sink)
	require.NoError(t, err)
	f := gofakeit.New(12)
	ids := recordN(t, l, f, 100, "before")
	require.Eventually(t, func() bool { return len(srv.accepted()) == 100 }, 20*time.Second, 5*time.Millisecond)

	srv.mu.Lock()
	srv.down = true
	srv.mu.Unlock()
	ids = append(ids, recordN(t, l, f, 300, "during")...)
	// The outage is seen and the events wait on disk.
	require.Eventually(t, func() bool { return sink.Stats().ServerErrors >= 3 }, 20*time.Second, 5*time.Millisecond)
	assert.Positive(t, sink.Stats().SpoolBytes)
	spooled, err := filepath.Glob(filepath.Join(spool, "spool-*.jsonl"))
	require.NoError(t, err)
	assert.NotEmpty(t, spooled, "events must be spooled on disk during the outage")
	assert.NoError(t, l.Check(context.Background()), "an outage with room in the spool keeps the sink ready")
	assert.Contains(t, logs.String(), `"msg":"audit delivery failed","status":503,"retried":true`, "failures are logged for alerting")

	srv.mu.Lock()
	srv.down = false
	srv.mu.Unlock()
	ids = append(ids, recordN(t, l, f, 100, "after")...)
	require.NoError(t, l.Close())
	assert.Equal(t, ids, srv.accepted(), "every event arrives, once, in order")
	assert.Zero(t, sink.Stats().SpoolBytes)
}

func TestIngestionSpoolSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := &ingestServer{down: true}
	spool := t.TempDir()
	opts := fastIngestOptions(spool)
	opts.CloseTimeout = 50 * time.Millisecond
	sink, err := NewIngestionSink(newIngestClient(t, srv), "dcr-test", "Custom-PhiguardAudit", opts)
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, sink)
	require.NoError(t, err)
	ids := recordN(t, l, gofakeit.New(13), 50, "r")
	err = l.Close()
	assert.ErrorIs(t, err, ErrUnavailable, "Close must say a backlog is left")
	assert.Empty(t, srv.accepted())

	srv.mu.Lock()
	srv.down = false
	srv.mu.Unlock()
	sink2, err := NewIngestionSink(newIngestClient(t, srv), "dcr-test", "Custom-PhiguardAudit", fastIngestOptions(spool))
	require.NoError(t, err)
	require.NoError(t, sink2.Close())
	assert.Equal(t, ids, srv.accepted())
}

func TestIngestionBatchesStayUnderTheLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		maxBatch int
		events   int
	}{
		{"service limit", 0, 3000},
		{"small batches", 8 << 10, 300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &ingestServer{}
			opts := fastIngestOptions(t.TempDir())
			opts.MaxBatchBytes = tc.maxBatch
			opts.FlushInterval = time.Hour // only size and Close seal a batch
			sink, err := NewIngestionSink(newIngestClient(t, srv), "dcr-test", "Custom-PhiguardAudit", opts)
			require.NoError(t, err)
			l, err := New(&Options{PseudonymKey: testPseudonymKey()}, sink)
			require.NoError(t, err)
			f := gofakeit.New(14)
			var ids []string
			for i := range tc.events {
				e := fakeEvent(f, newSynthetic(f))
				e.ID = "b-" + itoa(int64(i))
				e.OutcomeDesc = f.Sentence(60) // ~ 1 KB events
				ids = append(ids, e.ID)
				require.NoError(t, l.Record(context.Background(), e))
			}
			require.NoError(t, l.Close())
			assert.Equal(t, ids, srv.accepted())
			limit := MaxUploadBytes
			if tc.maxBatch > 0 {
				limit = tc.maxBatch
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			require.Greater(t, len(srv.bodySizes), 1, "the events must need several calls")
			total := 0
			for i, n := range srv.bodySizes {
				assert.LessOrEqual(t, n, limit, "call %d", i)
				total += n
			}
			// Batches are filled, not one event per call.
			assert.Less(t, len(srv.bodySizes), 2*total/limit+2)
		})
	}

	// One event bigger than a batch is refused at Record, not dropped later.
	srv := &ingestServer{}
	opts := fastIngestOptions(t.TempDir())
	opts.MaxBatchBytes = 512
	sink, err := NewIngestionSink(newIngestClient(t, srv), "dcr-test", "Custom-PhiguardAudit", opts)
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, sink)
	require.NoError(t, err)
	f := gofakeit.New(15)
	e := fakeEvent(f, newSynthetic(f))
	e.OutcomeDesc = f.Sentence(200)
	assert.Error(t, l.Record(context.Background(), e))
	require.NoError(t, l.Close())
}

func TestIngestionRejectedBatchIsKeptAside(t *testing.T) {
	t.Parallel()
	srv := &ingestServer{}
	spool := t.TempDir()
	sink, err := NewIngestionSink(newIngestClient(t, srv), "dcr-test", "Custom-Wrong", fastIngestOptions(spool))
	require.NoError(t, err)
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, sink)
	require.NoError(t, err)
	recordN(t, l, gofakeit.New(16), 5, "x")
	require.Eventually(t, func() bool { return sink.Stats().Rejected > 0 }, 20*time.Second, 5*time.Millisecond)
	assert.ErrorIs(t, l.Check(context.Background()), ErrUnavailable)
	kept, err := os.ReadDir(filepath.Join(spool, "rejected"))
	require.NoError(t, err)
	assert.NotEmpty(t, kept)
	require.NoError(t, l.Close())
}

func TestIngestionOptionsRequired(t *testing.T) {
	t.Parallel()
	c := newIngestClient(t, &ingestServer{})
	_, err := NewIngestionSink(c, "dcr-test", "s", nil)
	assert.Error(t, err, "a spool folder is required")
	_, err = NewIngestionSink(nil, "dcr-test", "s", &IngestionOptions{SpoolDir: t.TempDir()})
	assert.Error(t, err)
	_, err = NewIngestionSink(c, "", "s", &IngestionOptions{SpoolDir: t.TempDir()})
	assert.Error(t, err)
	assert.Equal(t, time.Duration(0), retryAfter("soon"))
	assert.Equal(t, 3*time.Second, retryAfter("3"))
	assert.False(t, errors.Is(nil, ErrUnavailable))
}
