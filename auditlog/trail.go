package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Mode is how a trail sink acknowledges a Write.
type Mode int

const (
	// Sync: Write returns once the event is durably stored (written and
	// fsynced for the file sink). Concurrent writers share one fsync (group
	// commit).
	Sync Mode = iota
	// Async: Write returns once the event is queued in memory; a background
	// writer stores batches. The queue is bounded: when full, Write waits
	// (back-pressure) or fails with its ctx. Events acknowledged but not yet
	// stored are lost if the process dies.
	Async
)

// segmentStore is where a trail writer keeps its segments. The file sink's
// folder is one; a blob container can be another, under the same writer.
type segmentStore interface {
	Source
	// create makes segment n, which must not exist.
	create(n int64) (segmentWriter, error)
	// reopen opens existing segment n for appending, first cutting each file
	// to the length of its complete lines (a crash's torn tail).
	reopen(n int64, eventsLen, checkpointsLen int64) (segmentWriter, error)
}

// segmentWriter appends to one segment. Each append is durable when it
// returns (written and fsynced, or committed). An append may instead return
// errSpooled: the bytes are kept durably in a local spool and the store
// delivers them later, in order; the trail goes on (see commit).
type segmentWriter interface {
	appendEvents(b []byte) error
	appendCheckpoint(b []byte) error
	close() error
}

// segmentLimiter is implemented by segment writers whose storage has limits
// other than SegmentBytes (an append blob's block count): full reports that
// appending next bytes of events, then an interval and an end checkpoint,
// would not fit, so the writer rotates first.
type segmentLimiter interface {
	full(next int64) bool
}

// errSpooled is returned by a segment writer whose remote store is
// unreachable and which kept the append in its local spool instead. The
// trail is intact (the spool is delivered in order), so it is not a sticky
// failure; Sync writers of the batch get it, since their events are not
// where the sink promised yet.
var errSpooled = fmt.Errorf("%w: the archive is unreachable; the event is kept in the local spool and will be archived in order when it is back", ErrUnavailable)

// trailConfig is what a trail writer needs from its sink's options.
type trailConfig struct {
	key          ed25519.PrivateKey
	keyName      string
	origin       string
	mode         Mode
	maxPending   int
	segmentBytes int64
	interval     time.Duration
	onCheckpoint func([]byte)
	// resumeTimeout bounds reading the existing trail at start (0: none, for
	// a local folder; a remote archive must not hang a start forever).
	resumeTimeout time.Duration
}

// trailWriter turns Writes into a signed Merkle trail in a segmentStore:
// callers append lines to the pending batch; one writer goroutine takes the
// batch, adds its leaves to the tree, appends it durably, signs checkpoints
// and rotates segments.
type trailWriter struct {
	cfg    trailConfig
	store  segmentStore
	signer *edSigner

	mu      sync.Mutex
	pending *batch
	closed  bool
	failed  error
	slots   chan struct{}
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	appends atomic.Uint64
	latest  atomic.Pointer[[]byte]

	// writer goroutine state
	wbuf     []byte
	cur      segmentWriter
	seg      int64
	segBytes int64
	tree     *frontier
	ckSize   int64 // size of the latest checkpoint
	ckSeq    int64
	ckDigest [32]byte
	ckTime   time.Time
}

// batch is the events accepted since the writer last took the queue. Lines
// are kept as given (Sink.Write hands them over), so writers only append a
// slice header and a hash; the writer copies them once into its buffer.
type batch struct {
	lines  [][]byte
	leaves []tlog.Hash // record hash of each line, computed by the callers
	count  int
	done   chan struct{}
	err    error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// nextBatch sizes the next batch like the last one, so a busy sink does not
// grow its slices on every batch.
func nextBatch(last *batch) *batch {
	return &batch{
		lines:  make([][]byte, 0, cap(last.lines)),
		leaves: make([]tlog.Hash, 0, cap(last.leaves)),
		done:   make(chan struct{}),
	}
}

// startTrail verifies the trail already in store, repairs a crash's torn
// tail, seals the last segment, opens the next one and starts the writer.
func startTrail(store segmentStore, cfg trailConfig) (*trailWriter, error) {
	signer, err := newSigner(cfg.keyName, cfg.key)
	if err != nil {
		return nil, err
	}
	t := &trailWriter{
		cfg: cfg, store: store, signer: signer,
		pending: newBatch(),
		slots:   make(chan struct{}, cfg.maxPending),
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := t.resume(); err != nil {
		if t.cur != nil {
			_ = t.cur.close()
		}
		return nil, err
	}
	go t.run()
	return t, nil
}

func (t *trailWriter) resume() error {
	v, err := newVerifier(t.cfg.keyName, t.signer.key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	ctx := context.Background()
	if t.cfg.resumeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.resumeTimeout)
		defer cancel()
	}
	r, err := scan(ctx, t.store, v, &VerifyOptions{Origin: t.cfg.origin})
	if err != nil {
		return fmt.Errorf("auditlog: trail: reopen: %w", err)
	}
	if err := r.err(); err != nil {
		// Signing over a trail that does not verify would launder the
		// tampering: fail closed and let an operator investigate.
		return fmt.Errorf("auditlog: trail: refusing to extend a trail that does not verify: %w", err)
	}
	if t.tree, err = frontierFrom(r.Events, r.hashes); err != nil {
		return err
	}
	if r.checkpt != nil {
		t.ckSize, t.ckSeq, t.ckDigest = r.checkpt.Size, r.lastSeq, r.lastDigest
	}
	t.seg = r.lastSeg
	if r.lastSeg > 0 {
		// Cut torn lines, and seal the segment a crash left open.
		w, err := t.store.reopen(r.lastSeg, r.eventsLen, r.ckptLen)
		if err != nil {
			return err
		}
		t.cur = w
		if !r.Sealed {
			if err := t.checkpoint(true); err != nil {
				return err
			}
		}
		err = w.close()
		t.cur = nil
		if err != nil {
			return fmt.Errorf("auditlog: trail: %w", err)
		}
	}
	return t.openSegment()
}

func (t *trailWriter) openSegment() error {
	w, err := t.store.create(t.seg + 1)
	if err != nil {
		return err
	}
	t.seg++
	t.cur, t.segBytes = w, 0
	return nil
}

// write adds one event line. In Sync mode it returns once the line is
// durable (or ctx ends: the event may still be stored). In Async mode it
// returns once queued. After a storage error the writer refuses every
// further write: the store's state is unknown, so it fails closed.
func (t *trailWriter) write(ctx context.Context, line []byte) error {
	// One event per line: a newline inside would split a leaf in two.
	if len(line) == 0 || line[0] != '{' || bytes.IndexByte(line, '\n') >= 0 {
		return fmt.Errorf("%w: a trail line must be one JSON object without newline", ErrInvalidEvent)
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("auditlog: trail: queue full: %w", ctx.Err())
	}
	// Hashing here, outside the lock and on the callers' cores, keeps the
	// single writer goroutine's work per event small.
	leaf := tlog.RecordHash(line)
	t.mu.Lock()
	if t.closed || t.failed != nil {
		err := t.failed
		t.mu.Unlock()
		<-t.slots
		if err == nil {
			err = ErrClosed
		}
		return err
	}
	b := t.pending
	b.lines = append(b.lines, line)
	b.leaves = append(b.leaves, leaf)
	b.count++
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	if t.cfg.mode == Async {
		return nil
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("auditlog: trail: %w", ctx.Err())
	}
}

// run is the single writer goroutine.
func (t *trailWriter) run() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.interval)
	defer tick.Stop()
	t.ckTime = time.Now()
	for {
		quitting := false
		select {
		case <-t.wake:
		case <-tick.C:
		case <-t.quit:
			quitting = true
		}
		t.mu.Lock()
		b := t.pending
		taken := b.count > 0 // read under the lock: an untaken batch is still being filled
		if taken {
			t.pending = nextBatch(b)
		}
		failed := t.failed
		t.mu.Unlock()
		if taken {
			if failed != nil {
				b.err = failed
			} else {
				b.err = t.commit(b)
			}
			close(b.done)
			for range b.count {
				<-t.slots
			}
		}
		if !quitting && t.healthy() && t.tree.n > t.ckSize && time.Since(t.ckTime) >= t.cfg.interval && !t.segmentFull(0) {
			t.setFailed(t.checkpoint(false))
		}
		if quitting {
			return
		}
	}
}

func (t *trailWriter) healthy() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed == nil
}

func (t *trailWriter) setFailed(err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	if t.failed == nil {
		t.failed = err
	}
	t.mu.Unlock()
}

func (t *trailWriter) commit(b *batch) error {
	err := t.commitBatch(b)
	if errors.Is(err, errSpooled) {
		return errSpooled
	}
	t.setFailed(err)
	return err
}

// segmentFull asks the segment writer, when it has limits of its own,
// whether next bytes of events still fit.
func (t *trailWriter) segmentFull(next int64) bool {
	l, ok := t.cur.(segmentLimiter)
	return ok && l.full(next)
}

func (t *trailWriter) commitBatch(b *batch) error {
	// Rotate before hashing and writing, not after, so that no segment is
	// left empty.
	var size int64
	for _, l := range b.lines {
		size += int64(len(l)) + 1
	}
	if t.segBytes >= t.cfg.segmentBytes || (t.segBytes > 0 && t.segmentFull(size)) {
		if err := t.rotate(); err != nil {
			return err
		}
	}
	for _, h := range b.leaves {
		if err := t.tree.appendHash(h); err != nil {
			return err
		}
	}
	buf := t.wbuf[:0]
	for _, l := range b.lines {
		buf = append(append(buf, l...), '\n')
	}
	t.wbuf = buf
	err := t.cur.appendEvents(buf)
	if err != nil && !errors.Is(err, errSpooled) {
		return fmt.Errorf("auditlog: trail: append: %w", err)
	}
	t.appends.Add(1)
	t.segBytes += int64(len(buf))
	if cap(t.wbuf) > 4*int(min(t.cfg.segmentBytes, 1<<30)) {
		t.wbuf = nil // do not keep a burst's buffer for ever
	}
	return err
}

func (t *trailWriter) rotate() error {
	if err := t.checkpoint(true); err != nil {
		return err
	}
	if err := t.cur.close(); err != nil {
		return fmt.Errorf("auditlog: trail: %w", err)
	}
	t.cur = nil
	return t.openSegment()
}

// checkpoint signs the current tree and appends it to the segment's
// checkpoints. Events are always durable first, so a checkpoint never
// covers an event that is not stored.
func (t *trailWriter) checkpoint(end bool) error {
	root, err := t.tree.root()
	if err != nil {
		return err
	}
	c := &Checkpoint{
		Origin: t.cfg.origin, Size: t.tree.n, Root: root, Segment: t.seg, End: end,
		Seq: t.ckSeq + 1, Prev: t.ckDigest, Time: time.Now().UTC().Truncate(time.Second),
	}
	signed, err := signCheckpoint(c, t.signer)
	if err != nil {
		return err
	}
	if err := t.cur.appendCheckpoint(encodeCheckpointLine(signed)); err != nil && !errors.Is(err, errSpooled) {
		return fmt.Errorf("auditlog: trail: append checkpoint: %w", err)
	}
	t.appends.Add(1)
	t.ckSize, t.ckSeq, t.ckDigest, t.ckTime = c.Size, c.Seq, noteDigest(signed), time.Now()
	t.latest.Store(&signed)
	if t.cfg.onCheckpoint != nil {
		t.cfg.onCheckpoint(append([]byte(nil), signed...))
	}
	return nil
}

func (t *trailWriter) checkpointBytes() []byte {
	p := t.latest.Load()
	if p == nil {
		return nil
	}
	return append([]byte(nil), (*p)...)
}

func (t *trailWriter) check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed != nil {
		return t.failed
	}
	if t.closed {
		return ErrClosed
	}
	return nil
}

// close stores every queued event, seals the segment with an end
// checkpoint and closes it. It is idempotent.
func (t *trailWriter) close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.done
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	close(t.quit)
	<-t.done
	t.mu.Lock()
	err := t.failed
	t.mu.Unlock()
	if err == nil {
		err = t.checkpoint(true)
	}
	if cerr := t.cur.close(); err == nil && cerr != nil {
		err = fmt.Errorf("auditlog: trail: %w", cerr)
	}
	return err
}
