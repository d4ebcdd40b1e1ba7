package auditlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
)

// MaxUploadBytes is the Logs Ingestion API limit for one call (1 MB). The
// Go client does not split batches, so the sink keeps every call's
// uncompressed JSON array at or under IngestionOptions.MaxBatchBytes, which
// cannot exceed this.
const MaxUploadBytes = 1_000_000

// IngestionOptions configure an ingestion sink.
type IngestionOptions struct {
	// SpoolDir holds events not yet accepted by Azure Monitor, one file per
	// upload batch. Required; put it on the same persistent volume as the
	// file sink. A restart resumes it.
	SpoolDir string
	// MaxBatchBytes bounds the uncompressed JSON array of one upload
	// (MaxUploadBytes if 0 or larger).
	MaxBatchBytes int
	// FlushInterval is the longest an event waits for its batch (1s if 0).
	FlushInterval time.Duration
	// MaxSpoolBytes bounds the spool (1 GiB if 0). Past it Write fails with
	// ErrUnavailable and Check reports not ready.
	MaxSpoolBytes int64
	// RetryBase and RetryMax bound the exponential back-off between failed
	// uploads (500ms and 1m if 0). A 429's Retry-After takes precedence.
	RetryBase, RetryMax time.Duration
	// Logger, if set, gets one ERROR record "audit delivery failed" per
	// failed upload, with the HTTP status and whether the batch will be
	// retried (never a payload), for alerting on delivery failures.
	Logger *slog.Logger
	// CloseTimeout is how long Close keeps trying to deliver the spool
	// (10s if 0); what is left stays spooled for the next start.
	CloseTimeout time.Duration
	// UploadTimeout bounds one upload call (30s if 0). Close waits for an
	// upload in flight.
	UploadTimeout time.Duration
}

// IngestionStats describe the delivery state.
type IngestionStats struct {
	Uploaded     uint64 // events accepted by the service
	Calls        uint64 // successful upload calls
	Retries      uint64 // failed attempts that will be retried
	Rejected     uint64 // batches the service refused for good (moved to SpoolDir/rejected)
	SpoolBytes   int64  // bytes waiting in the spool
	LastError    string // status of the last failed attempt (no payload)
	Throttled    uint64 // 429 responses
	ServerErrors uint64 // 5xx responses
}

// ingestRow is the row shape of the stream (see docs/auditlog.md for the
// table and DCR): flat columns for reports, the whole event as Event.
type ingestRow struct {
	TimeGenerated time.Time       `json:"TimeGenerated"`
	EventID       string          `json:"EventId"`
	Action        Action          `json:"Action"`
	Outcome       Outcome         `json:"Outcome"`
	TypeCode      string          `json:"TypeCode"`
	ActorID       string          `json:"ActorId"`
	ActorRoles    []string        `json:"ActorRoles"`
	ClientIP      string          `json:"ClientIp"`
	EntityIDs     []string        `json:"EntityIds"`
	PurposeOfUse  []string        `json:"PurposeOfUse"`
	Service       string          `json:"Service"`
	Instance      string          `json:"Instance"`
	RequestID     string          `json:"RequestId"`
	TraceID       string          `json:"TraceId"`
	Event         json.RawMessage `json:"Event"`
}

func toRow(line []byte) ([]byte, error) {
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return nil, fmt.Errorf("auditlog: ingestion sink: not an event line: %w", err)
	}
	r := ingestRow{
		TimeGenerated: e.Time, EventID: e.ID, Action: e.Action, Outcome: e.Outcome,
		TypeCode: e.Type.Code, ActorID: e.Actor.ID, ActorRoles: e.Actor.Roles, ClientIP: e.Actor.ClientIP,
		PurposeOfUse: e.PurposeOfUse, Service: e.Observer.Service, Instance: e.Observer.Instance,
		RequestID: e.RequestID, TraceID: e.TraceID, Event: line,
	}
	for _, en := range e.Entities {
		r.EntityIDs = append(r.EntityIDs, en.Identifier)
	}
	return json.Marshal(r)
}

// IngestionSink delivers events to the Azure Monitor Logs Ingestion API
// through the caller's *azlogs.Client. Write converts the event to a row and
// appends it to a spool file holding at most one upload; a file is sealed
// when full or FlushInterval old, and a sender uploads sealed files in order
// (gzip), deleting each once accepted. Throttling (429, honouring Retry-After), server errors (5xx),
// network and auth errors are retried with back-off while the spool grows;
// nothing is dropped and order is kept. Delivery is at-least-once: a batch
// sent but not confirmed is sent again, so de-duplicate on EventId in KQL.
// Rows are in the OS page cache once Write returns and fsynced when their
// file is sealed: a process crash loses none, a machine crash at most the
// open file; the file sink stays the trail of record. Safe for concurrent use.
type IngestionSink struct {
	client         *azlogs.Client
	ruleID, stream string
	opts           IngestionOptions

	quit       chan struct{}
	intakeDone chan struct{} // closed once the last spool file is sealed
	senderDone chan struct{}
	sealed     chan struct{}

	// The open spool file, appended to by Write under spoolMu.
	spoolMu   sync.Mutex
	open      *os.File
	openSeq   int64
	openSize  int
	openSince time.Time
	spoolErr  error

	closed   bool // under spoolMu
	mu       sync.Mutex
	stats    IngestionStats
	nextSeq  int64
	spoolLen atomic.Int64
}

var spoolName = regexp.MustCompile(`^spool-([0-9]{16})\.(jsonl|open)$`)

// NewIngestionSink returns a sink uploading to stream of the data collection
// rule ruleID (its immutable ID). It resumes a non-empty spool.
func NewIngestionSink(client *azlogs.Client, ruleID, stream string, opts *IngestionOptions) (*IngestionSink, error) {
	if client == nil || ruleID == "" || stream == "" {
		return nil, errors.New("auditlog: ingestion sink: client, rule ID and stream are required")
	}
	if opts == nil || opts.SpoolDir == "" {
		return nil, errors.New("auditlog: ingestion sink: a spool folder is required")
	}
	o := *opts
	if o.MaxBatchBytes <= 0 || o.MaxBatchBytes > MaxUploadBytes {
		o.MaxBatchBytes = MaxUploadBytes
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.MaxSpoolBytes <= 0 {
		o.MaxSpoolBytes = 1 << 30
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 500 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Minute
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
	if o.UploadTimeout <= 0 {
		o.UploadTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("auditlog: ingestion sink: %w", err)
	}
	s := &IngestionSink{
		client: client, ruleID: ruleID, stream: stream, opts: o,
		quit:       make(chan struct{}),
		intakeDone: make(chan struct{}),
		senderDone: make(chan struct{}),
		sealed:     make(chan struct{}, 1),
	}
	if err := s.recoverSpool(); err != nil {
		return nil, err
	}
	go s.intake()
	go s.sender()
	return s, nil
}

// recoverSpool seals files a crash left open (cutting a torn last row) and
// measures the backlog.
func (s *IngestionSink) recoverSpool() error {
	files, err := s.spoolFiles(true)
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(s.opts.SpoolDir, f.name)
		if f.open {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("auditlog: ingestion sink: %w", err)
			}
			if i := bytes.LastIndexByte(b, '\n'); i+1 != len(b) {
				if err := os.WriteFile(p, b[:i+1], 0o600); err != nil { //nolint:gosec // G703: the folder is operator configuration, not request input
					return fmt.Errorf("auditlog: ingestion sink: %w", err)
				}
			}
			if err := os.Rename(p, filepath.Join(s.opts.SpoolDir, sealedSpool(f.seq))); err != nil {
				return fmt.Errorf("auditlog: ingestion sink: %w", err)
			}
		}
		if fi, err := os.Stat(filepath.Join(s.opts.SpoolDir, sealedSpool(f.seq))); err == nil {
			s.spoolLen.Add(fi.Size())
		}
		s.nextSeq = max(s.nextSeq, f.seq+1)
	}
	return nil
}

type spoolFile struct {
	name string
	seq  int64
	open bool
}

func sealedSpool(seq int64) string { return fmt.Sprintf("spool-%016d.jsonl", seq) }
func openSpool(seq int64) string   { return fmt.Sprintf("spool-%016d.open", seq) }

func (s *IngestionSink) spoolFiles(withOpen bool) ([]spoolFile, error) {
	ents, err := os.ReadDir(s.opts.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("auditlog: ingestion sink: %w", err)
	}
	var out []spoolFile
	for _, e := range ents {
		m := spoolName.FindStringSubmatch(e.Name())
		if m == nil || (m[2] == "open" && !withOpen) {
			continue
		}
		seq, _ := strconv.ParseInt(m[1], 10, 64)
		out = append(out, spoolFile{name: e.Name(), seq: seq, open: m[2] == "open"})
	}
	slices.SortFunc(out, func(a, b spoolFile) int { return int(a.seq - b.seq) })
	return out, nil
}

// Write converts line to a row and appends it to the open spool file (one
// write system call: once Write returns, the row survives a crash of the
// process, though not of the machine, until its batch is sealed and
// fsynced). It fails when the row alone would exceed a batch, or when the
// spool is full or cannot be written (ErrUnavailable).
func (s *IngestionSink) Write(_ context.Context, line []byte) error {
	row, err := toRow(line)
	if err != nil {
		return err
	}
	if len(row)+2 > s.opts.MaxBatchBytes {
		return fmt.Errorf("auditlog: ingestion sink: event of %d bytes exceeds the %d-byte batch limit", len(row), s.opts.MaxBatchBytes)
	}
	if s.spoolLen.Load() > s.opts.MaxSpoolBytes {
		return fmt.Errorf("%w: ingestion spool is full", ErrUnavailable)
	}
	row = append(row, '\n')
	s.spoolMu.Lock()
	defer s.spoolMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.spoolErr != nil {
		return fmt.Errorf("%w: ingestion spool: %w", ErrUnavailable, s.spoolErr)
	}
	if s.open != nil && s.openSize+len(row) > s.opts.MaxBatchBytes {
		s.sealLocked()
	}
	if s.open == nil {
		s.mu.Lock()
		seq := s.nextSeq
		s.nextSeq++
		s.mu.Unlock()
		f, err := os.OpenFile(filepath.Join(s.opts.SpoolDir, openSpool(seq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			s.spoolErr = err
			return fmt.Errorf("%w: ingestion spool: %w", ErrUnavailable, err)
		}
		s.open, s.openSeq, s.openSize, s.openSince = f, seq, 2, time.Now() // 2: the array's brackets
	}
	if _, err := s.open.Write(row); err != nil {
		s.spoolErr = err
		return fmt.Errorf("%w: ingestion spool: %w", ErrUnavailable, err)
	}
	s.openSize += len(row)
	s.spoolLen.Add(int64(len(row)))
	return nil
}

// sealLocked fsyncs and closes the open spool file and renames it to its
// sealed name, handing it to the sender. spoolMu must be held.
func (s *IngestionSink) sealLocked() {
	if s.open == nil {
		return
	}
	err := s.open.Sync()
	if cerr := s.open.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(filepath.Join(s.opts.SpoolDir, openSpool(s.openSeq)), filepath.Join(s.opts.SpoolDir, sealedSpool(s.openSeq)))
	}
	if err != nil {
		s.spoolErr = err
		s.noteError("spool: " + err.Error())
	}
	s.open = nil
	select {
	case s.sealed <- struct{}{}:
	default:
	}
}

// intake seals the open spool file once it is FlushInterval old, and for
// good on Close.
func (s *IngestionSink) intake() {
	defer close(s.intakeDone)
	tick := time.NewTicker(s.opts.FlushInterval / 2)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.spoolMu.Lock()
			if s.open != nil && time.Since(s.openSince) >= s.opts.FlushInterval {
				s.sealLocked()
			}
			s.spoolMu.Unlock()
		case <-s.quit:
			s.spoolMu.Lock()
			s.sealLocked()
			s.spoolMu.Unlock()
			return
		}
	}
}

func (s *IngestionSink) noteError(msg string) {
	s.mu.Lock()
	s.stats.LastError = msg
	s.mu.Unlock()
}

// sender uploads sealed spool files oldest first. After Close it keeps
// going until the spool is empty or CloseTimeout has passed.
func (s *IngestionSink) sender() {
	defer close(s.senderDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.intakeDone:
		case <-ctx.Done():
			return
		}
		t := time.NewTimer(s.opts.CloseTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	attempt := 0
	for {
		// Read intakeDone before listing: once intake is done, the listing
		// holds everything that will ever be spooled by this process.
		done := isClosed(s.intakeDone)
		files, err := s.spoolFiles(false)
		if err != nil {
			s.noteError(err.Error())
		}
		if len(files) == 0 {
			if done {
				return
			}
			select {
			case <-s.sealed:
			case <-s.intakeDone:
			case <-ctx.Done():
				return
			}
			continue
		}
		// An upload in flight is not cut short by Close's deadline: cutting
		// it could leave a batch accepted but unconfirmed, sent twice.
		uctx, ucancel := context.WithTimeout(context.Background(), s.opts.UploadTimeout)
		wait, err := s.upload(uctx, files[0])
		ucancel()
		if err == nil {
			attempt = 0
			continue
		}
		if ctx.Err() != nil {
			return // Close gave up: the rest stays spooled for the next start
		}
		attempt++
		if wait <= 0 {
			wait = backoff(s.opts.RetryBase, s.opts.RetryMax, attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 20)
	if d > limit || d <= 0 {
		d = limit
	}
	// Full jitter on half the delay spreads replicas recovering together.
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter, not security
}

// upload sends one spool file. On failure it returns the wait the service
// asked for (Retry-After), if any.
func (s *IngestionSink) upload(ctx context.Context, f spoolFile) (time.Duration, error) {
	p := filepath.Join(s.opts.SpoolDir, f.name)
	b, err := os.ReadFile(p)
	if err != nil {
		s.noteError(err.Error())
		return 0, err
	}
	rows := bytes.Count(b, []byte{'\n'})
	body := make([]byte, 0, len(b)+2)
	body = append(body, '[')
	body = append(body, bytes.ReplaceAll(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}, []byte{','})...)
	body = append(body, ']')
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(body) // writes to a bytes.Buffer cannot fail
	_ = zw.Close()
	enc := "gzip"
	_, err = s.client.Upload(ctx, s.ruleID, s.stream, gz.Bytes(), &azlogs.UploadOptions{ContentEncoding: &enc})
	if err == nil {
		if rerr := os.Remove(p); rerr != nil {
			s.noteError(rerr.Error())
		}
		s.spoolLen.Add(-int64(len(b)))
		s.mu.Lock()
		s.stats.Uploaded += uint64(rows) //nolint:gosec // a count
		s.stats.Calls++
		s.mu.Unlock()
		return 0, nil
	}
	var re *azcore.ResponseError
	status := 0
	var wait time.Duration
	if errors.As(err, &re) {
		status = re.StatusCode
		if re.RawResponse != nil {
			wait = retryAfter(re.RawResponse.Header.Get("Retry-After"))
		}
	}
	if s.opts.Logger != nil {
		retried := status < 400 || status >= 500 || status == http.StatusTooManyRequests ||
			status == http.StatusRequestTimeout || status == http.StatusUnauthorized || status == http.StatusForbidden
		s.opts.Logger.LogAttrs(ctx, slog.LevelError, "audit delivery failed",
			slog.Int("status", status), slog.Bool("retried", retried))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case status == http.StatusTooManyRequests:
		s.stats.Throttled++
	case status >= 500:
		s.stats.ServerErrors++
	}
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout &&
		status != http.StatusUnauthorized && status != http.StatusForbidden {
		// The service refuses this batch for good (bad rows, unknown
		// stream): keep it aside for the operator rather than block the
		// queue or drop it.
		dir := filepath.Join(s.opts.SpoolDir, "rejected")
		if mkErr := os.MkdirAll(dir, 0o700); mkErr == nil {
			if mvErr := os.Rename(p, filepath.Join(dir, f.name)); mvErr == nil {
				s.spoolLen.Add(-int64(len(b)))
			}
		}
		s.stats.Rejected++
		s.stats.LastError = fmt.Sprintf("upload rejected with status %d", status)
		return 0, nil
	}
	s.stats.Retries++
	if status != 0 {
		s.stats.LastError = fmt.Sprintf("upload failed with status %d", status)
	} else {
		s.stats.LastError = "upload failed: " + err.Error()
	}
	return wait, err
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// Stats returns the delivery counters and backlog.
func (s *IngestionSink) Stats() IngestionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.SpoolBytes = s.spoolLen.Load()
	return st
}

// Check fails (ErrUnavailable) when the spool is full or a batch was
// rejected: an outage alone does not make the sink unready, since events
// then wait in the spool.
func (s *IngestionSink) Check(context.Context) error {
	st := s.Stats()
	switch {
	case st.SpoolBytes > s.opts.MaxSpoolBytes:
		return fmt.Errorf("%w: ingestion spool is full (%s)", ErrUnavailable, st.LastError)
	case st.Rejected > 0:
		return fmt.Errorf("%w: %d ingestion batches rejected, see %s", ErrUnavailable, st.Rejected, filepath.Join(s.opts.SpoolDir, "rejected"))
	}
	return nil
}

// Close spools what is queued and keeps uploading for up to CloseTimeout.
// It returns an error wrapping ErrUnavailable if a backlog is left in the
// spool (it is sent on the next start).
func (s *IngestionSink) Close() error {
	s.spoolMu.Lock()
	if s.closed {
		s.spoolMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.spoolMu.Unlock()
	<-s.intakeDone
	<-s.senderDone
	if n := s.spoolLen.Load(); n > 0 {
		return fmt.Errorf("%w: %d bytes left in the ingestion spool", ErrUnavailable, n)
	}
	return nil
}
