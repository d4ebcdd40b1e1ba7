package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

type opKind string

const (
	opCreate opKind = "create" // create an empty append blob
	opAppend opKind = "append" // append data at Pos
)

// spoolOp is one operation on the archive. Spooled, it is a file: a JSON
// header line, then Len bytes of data.
type spoolOp struct {
	Kind opKind `json:"op"`
	Blob string `json:"blob"`
	Pos  int64  `json:"pos"`
	Len  int    `json:"len"`
	Sum  string `json:"sha256"`

	seq  int64
	size int64  // bytes the file takes in the spool
	data []byte // in memory only while the op is done; read from the file when drained
}

var spoolOpName = regexp.MustCompile(`^op-([0-9]{16})\.(spool|tmp)$`)

func spoolOpFile(seq int64, ext string) string { return fmt.Sprintf("op-%016d.%s", seq, ext) }

// shipper performs the archive's operations in order. The trail's writer
// goroutine calls do: with an empty spool the operation goes straight to
// Blob Storage; if that fails, or while the spool holds anything, the
// operation is appended to the spool, which a drainer goroutine delivers
// oldest first. Only one of the two ever talks to the archive at a time
// (the drainer only while the spool is not empty, the writer only while it
// is), so appends stay in order.
type shipper struct {
	c    *container.Client
	opts *ArchiveOptions
	lock *os.File

	mu      sync.Mutex
	queue   []*spoolOp
	bytes   int64
	nextSeq int64
	fatal   error
	lastErr string
	spooled uint64
	drained uint64
	// healthy is false from a failed call until a spooled operation is
	// delivered; changed is closed (and replaced) when the queue empties
	// or healthy changes.
	healthy bool
	changed chan struct{}

	kick    chan struct{}
	closing chan struct{}
	abort   chan struct{}
	done    chan struct{}
	started bool
	stopped bool
}

func newShipper(c *container.Client, o *ArchiveOptions, lock *os.File) (*shipper, error) {
	sh := &shipper{
		c: c, opts: o, lock: lock, healthy: true, changed: make(chan struct{}),
		kick: make(chan struct{}, 1), closing: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{}),
	}
	ents, err := os.ReadDir(o.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("auditlog: archive spool: %w", err)
	}
	for _, e := range ents {
		m := spoolOpName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		p := filepath.Join(o.SpoolDir, e.Name())
		if m[2] == "tmp" {
			// Never renamed into place: the operation was never acknowledged.
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("auditlog: archive spool: %w", err)
			}
			continue
		}
		seq, _ := strconv.ParseInt(m[1], 10, 64)
		op, err := readSpoolOp(p, false)
		if err != nil {
			return nil, err
		}
		op.seq = seq
		sh.queue = append(sh.queue, op)
		sh.bytes += op.size
		sh.nextSeq = max(sh.nextSeq, seq+1)
	}
	slices.SortFunc(sh.queue, func(a, b *spoolOp) int { return int(a.seq - b.seq) })
	return sh, nil
}

// readSpoolOp reads a spooled operation's header, and its data when asked
// (checking it against the header's SHA-256).
func readSpoolOp(path string, withData bool) (*spoolOp, error) {
	f, err := os.Open(path) //nolint:gosec // G304: a file of the operator's spool folder
	if err != nil {
		return nil, fmt.Errorf("auditlog: archive spool: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auditlog: archive spool: %w", err)
	}
	br := bufio.NewReader(f)
	head, err := br.ReadBytes('\n')
	op := &spoolOp{size: fi.Size()}
	if err != nil || json.Unmarshal(head, op) != nil || op.Blob == "" || op.Len < 0 || op.Len > MaxAppendBytes ||
		int64(len(head))+int64(op.Len) != fi.Size() {
		return nil, fmt.Errorf("auditlog: archive spool: %s is damaged", filepath.Base(path))
	}
	if withData {
		op.data = make([]byte, op.Len)
		if _, err := io.ReadFull(br, op.data); err != nil {
			return nil, fmt.Errorf("auditlog: archive spool: %s: %w", filepath.Base(path), err)
		}
		if sum := sha256.Sum256(op.data); hex.EncodeToString(sum[:]) != op.Sum {
			return nil, fmt.Errorf("auditlog: archive spool: %s is damaged (checksum)", filepath.Base(path))
		}
	}
	return op, nil
}

// spoolLocked writes op to the spool durably: a temporary file, fsynced,
// renamed into place, folder fsynced. sh.mu is held.
func (sh *shipper) spoolLocked(op *spoolOp) error {
	op.Len = len(op.data)
	sum := sha256.Sum256(op.data)
	op.Sum = hex.EncodeToString(sum[:])
	head, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("auditlog: archive spool: %w", err)
	}
	seq := sh.nextSeq
	tmp := filepath.Join(sh.opts.SpoolDir, spoolOpFile(seq, "tmp"))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the operator's spool folder
	if err != nil {
		return fmt.Errorf("auditlog: archive spool: %w", err)
	}
	buf := make([]byte, 0, len(head)+1+len(op.data))
	buf = append(append(append(buf, head...), '\n'), op.data...)
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(sh.opts.SpoolDir, spoolOpFile(seq, "spool")))
	}
	if err == nil {
		err = syncDir(sh.opts.SpoolDir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("auditlog: archive spool: %w", err)
	}
	sh.nextSeq++
	sh.queue = append(sh.queue, &spoolOp{Kind: op.Kind, Blob: op.Blob, Pos: op.Pos, Len: op.Len, Sum: op.Sum, seq: seq, size: int64(len(buf))})
	sh.bytes += int64(len(buf))
	sh.spooled++
	return nil
}

// do performs op now if the spool is empty and the archive answers, else
// spools it and returns errSpooled. ErrConflict and spool I/O errors are
// final.
func (sh *shipper) do(op *spoolOp) error {
	sh.mu.Lock()
	// While the archive answers but the spool is still draining, wait for
	// it rather than spool more: the writer's callers gather into one
	// batch meanwhile, and Sync writers are not failed needlessly. During
	// an outage, spool at once.
	deadline := time.Now().Add(sh.opts.AppendTimeout)
	for len(sh.queue) > 0 && sh.healthy && sh.fatal == nil && sh.started {
		ch := sh.changed
		sh.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		sh.mu.Lock()
		if !time.Now().Before(deadline) {
			break
		}
	}
	if sh.fatal != nil {
		err := sh.fatal
		sh.mu.Unlock()
		return err
	}
	if len(sh.queue) == 0 {
		sh.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), sh.opts.AppendTimeout)
		err := sh.remote(ctx, op)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrConflict) {
			sh.setFatal(err)
			return err
		}
		sh.mu.Lock()
		sh.lastErr = callError(err)
		sh.setHealthLocked(false)
	}
	defer sh.mu.Unlock()
	if err := sh.spoolLocked(op); err != nil {
		if sh.fatal == nil {
			sh.fatal = err
		}
		return err
	}
	select {
	case sh.kick <- struct{}{}:
	default:
	}
	return errSpooled
}

func (sh *shipper) setFatal(err error) {
	sh.mu.Lock()
	if sh.fatal == nil {
		sh.fatal = err
		sh.notifyLocked()
	}
	sh.mu.Unlock()
}

func (sh *shipper) notifyLocked() {
	close(sh.changed)
	sh.changed = make(chan struct{})
}

func (sh *shipper) setHealthLocked(ok bool) {
	if sh.healthy != ok {
		sh.healthy = ok
		sh.notifyLocked()
	}
}

// shipHead delivers the oldest spooled operation and removes it. Appends
// that continue one another in the same blob are merged into one block (up
// to MaxAppendBytes), so that a spool filled during an outage drains much
// faster than it filled.
func (sh *shipper) shipHead(head *spoolOp) error {
	group := sh.mergeable(head)
	op, err := readSpoolOp(filepath.Join(sh.opts.SpoolDir, spoolOpFile(head.seq, "spool")), true)
	if err != nil {
		sh.setFatal(err)
		return err
	}
	for _, g := range group[1:] {
		next, err := readSpoolOp(filepath.Join(sh.opts.SpoolDir, spoolOpFile(g.seq, "spool")), true)
		if err != nil {
			sh.setFatal(err)
			return err
		}
		op.data = append(op.data, next.data...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.opts.AppendTimeout)
	err = sh.remote(ctx, op)
	cancel()
	if err != nil {
		if errors.Is(err, ErrConflict) {
			sh.setFatal(err)
		}
		sh.mu.Lock()
		sh.lastErr = callError(err)
		sh.setHealthLocked(false)
		sh.mu.Unlock()
		return err
	}
	// A file left behind would be sent again on the next start, which the
	// append position makes harmless.
	var rmErr error
	for _, g := range group {
		if err := os.Remove(filepath.Join(sh.opts.SpoolDir, spoolOpFile(g.seq, "spool"))); err != nil { //nolint:gosec // G703: the operator's spool folder and a generated name
			rmErr = err
		}
	}
	sh.mu.Lock()
	sh.queue = sh.queue[len(group):]
	for _, g := range group {
		sh.bytes -= g.size
	}
	sh.drained += uint64(len(group))
	sh.setHealthLocked(true)
	if len(sh.queue) == 0 {
		sh.notifyLocked()
	}
	if rmErr != nil {
		sh.lastErr = "spool: " + rmErr.Error()
	}
	sh.mu.Unlock()
	return nil
}

// mergeable returns head and the spooled appends right after it that
// continue it in the same blob, within one block.
func (sh *shipper) mergeable(head *spoolOp) []*spoolOp {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	group := []*spoolOp{head}
	if head.Kind != opAppend {
		return group
	}
	end, total := head.Pos+int64(head.Len), head.Len
	for _, op := range sh.queue[1:] {
		if op.Kind != opAppend || op.Blob != head.Blob || op.Pos != end || total+op.Len > MaxAppendBytes {
			break
		}
		group = append(group, op)
		end += int64(op.Len)
		total += op.Len
	}
	return group
}

func (sh *shipper) head() *spoolOp {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.queue) == 0 || sh.fatal != nil {
		return nil
	}
	return sh.queue[0]
}

// drainNow delivers the whole spool before the sink starts (a spool left
// by an earlier run), retrying until ctx ends.
func (sh *shipper) drainNow(ctx context.Context) error {
	attempt := 0
	for {
		h := sh.head()
		if h == nil {
			sh.mu.Lock()
			defer sh.mu.Unlock()
			return sh.fatal
		}
		if err := sh.shipHead(h); err == nil {
			attempt = 0
			continue
		} else if errors.Is(err, ErrConflict) {
			return err
		}
		attempt++
		t := time.NewTimer(backoff(sh.opts.RetryBase, sh.opts.RetryMax, attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			sh.mu.Lock()
			defer sh.mu.Unlock()
			return fmt.Errorf("%w: %d appends of an earlier run are still in the archive spool (%s)", ErrUnavailable, len(sh.queue), sh.lastErr)
		}
	}
}

func (sh *shipper) start() {
	sh.mu.Lock() // the trail writer may already be calling do
	sh.started = true
	sh.mu.Unlock()
	go sh.run()
}

// run drains the spool in the background, with back-off between failures.
func (sh *shipper) run() {
	defer close(sh.done)
	attempt := 0
	for {
		h := sh.head()
		if h == nil {
			select {
			case <-sh.kick:
				continue
			case <-sh.closing:
				return
			}
		}
		err := sh.shipHead(h)
		if err == nil {
			attempt = 0
			continue
		}
		if errors.Is(err, ErrConflict) {
			continue // head() now returns nil: wait for Close
		}
		attempt++
		t := time.NewTimer(backoff(sh.opts.RetryBase, sh.opts.RetryMax, attempt))
		select {
		case <-t.C:
		case <-sh.abort:
			t.Stop()
			return
		}
	}
}

// stop lets the drainer work up to timeout more, then stops it and releases
// the spool folder. It returns ErrUnavailable when operations are left.
func (sh *shipper) stop(timeout time.Duration) error {
	sh.mu.Lock()
	if sh.stopped {
		sh.mu.Unlock()
		return nil
	}
	sh.stopped = true
	started := sh.started
	sh.mu.Unlock()
	if started {
		close(sh.closing)
		t := time.NewTimer(timeout)
		select {
		case <-sh.done:
		case <-t.C:
			close(sh.abort)
			<-sh.done
		}
		t.Stop()
	}
	_ = sh.lock.Close()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.fatal != nil {
		return sh.fatal
	}
	if len(sh.queue) > 0 {
		return fmt.Errorf("%w: %d appends left in the archive spool for the next start (%s)", ErrUnavailable, len(sh.queue), sh.lastErr)
	}
	return nil
}

func (sh *shipper) room() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.fatal != nil {
		return sh.fatal
	}
	if sh.bytes > sh.opts.MaxSpoolBytes {
		return fmt.Errorf("%w: the archive spool is full (%s)", ErrUnavailable, sh.lastErr)
	}
	return nil
}

func (sh *shipper) check() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.fatal != nil {
		return sh.fatal
	}
	if len(sh.queue) > 0 {
		return fmt.Errorf("%w: %d appends waiting in the archive spool (%s)", ErrUnavailable, len(sh.queue), sh.lastErr)
	}
	return nil
}

func (sh *shipper) stats() ArchiveStats {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return ArchiveStats{Spooled: sh.spooled, Drained: sh.drained, SpoolBytes: sh.bytes, SpoolOps: len(sh.queue), LastError: sh.lastErr}
}

// callError describes a failed call for Check and Stats without the
// request URL (which may carry a SAS token) or response body.
func callError(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("blob storage answered %d %s", re.StatusCode, re.ErrorCode)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "blob storage: " + ue.Op + ": " + ue.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "blob storage: no answer within the append timeout"
	}
	s := err.Error()
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// cleanErr keeps err for errors.Is and errors.As but prints it as
// callError does: the SDK's messages hold the request URL.
func cleanErr(err error) error { return &callErr{msg: callError(err), err: err} }

type callErr struct {
	msg string
	err error
}

func (e *callErr) Error() string { return e.msg }
func (e *callErr) Unwrap() error { return e.err }
