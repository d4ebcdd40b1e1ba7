package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/md5" //nolint:gosec // Content-MD5 is the service's transfer checksum, not a security control
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/appendblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/phiguard/phiguard/internal/reqbody"
)

// Append blob limits of Azure Blob Storage.
const (
	// AppendBlobMaxBlocks is the most blocks an append blob can take.
	AppendBlobMaxBlocks = 50_000
	// MaxAppendBytes is the largest block the sink appends (4 MiB, the limit
	// of every service version and of Azurite). An event line must fit.
	MaxAppendBytes = 4 << 20
	// AppendBlobMaxBytes is the largest append blob (50,000 blocks of 4 MiB,
	// about 195 GiB).
	AppendBlobMaxBytes = AppendBlobMaxBlocks * MaxAppendBytes
)

// ErrConflict: the archive holds something else than this sink appended
// (another writer with the same service and instance, or a blob replaced or
// deleted). The sink stops: retrying cannot fix it and signing on would
// launder it.
var ErrConflict = errors.New("auditlog: archive: the archive differs from what this sink wrote")

// ArchiveOptions configure an archive sink. SigningKey, Service, Instance
// and SpoolDir are required.
type ArchiveOptions struct {
	// SigningKey signs the checkpoints (see FileOptions.SigningKey).
	SigningKey ed25519.PrivateKey
	// KeyName is the signer name in checkpoints (DefaultKeyName if empty).
	KeyName string
	// Service and Instance name the trail in the container: blobs are
	// SERVICE/INSTANCE/audit-NNNNNNNN.jsonl. Each replica needs its own
	// Instance (its pod or replica name); two writers on one trail stop
	// with ErrConflict. Names are 1-128 letters, digits, '.', '_', '-', and
	// must not look like PHI (ErrBadName).
	Service, Instance string
	// Origin is the first line of every checkpoint; "phiguard-audit/SERVICE/INSTANCE" if empty.
	Origin string
	// Mode is Sync (default): Write returns once the event is in the append
	// blob, concurrent writers sharing one Append Block; or Async: Write
	// returns once queued in memory.
	Mode Mode
	// MaxPending bounds the events queued and not yet appended (65536 if 0).
	MaxPending int
	// SegmentBytes rotates to a new segment past this size (64 MiB if 0; at
	// most AppendBlobMaxBytes less 64 MiB).
	SegmentBytes int64
	// SegmentBlocks rotates to a new segment before either blob of a
	// segment would exceed this many blocks (48,000 if 0; at most
	// AppendBlobMaxBlocks).
	SegmentBlocks int
	// CheckpointInterval signs a checkpoint this often when events were
	// added (5s if 0).
	CheckpointInterval time.Duration
	// OnCheckpoint receives a copy of every signed checkpoint (see
	// FileOptions.OnCheckpoint).
	OnCheckpoint func(signed []byte)
	// SpoolDir keeps appends the archive could not take, in order, until it
	// is back (one file per append, fsynced). Put it on a volume that
	// outlives the container (an emptyDir survives container restarts, a
	// persistent volume survives the pod): a restart resumes the spool.
	// Required. One sink at a time may use it (an exclusive lock is held).
	SpoolDir string
	// MaxSpoolBytes bounds the spool (256 MiB if 0): past it Write fails
	// with ErrUnavailable.
	MaxSpoolBytes int64
	// AppendTimeout bounds one call to Blob Storage, the client's own
	// retries included (10s if 0). When it passes, the append is spooled.
	AppendTimeout time.Duration
	// RetryBase and RetryMax bound the back-off between attempts to drain
	// the spool (250ms and 30s if 0).
	RetryBase, RetryMax time.Duration
	// StartTimeout bounds each of NewArchiveSink's start steps: draining a
	// spool left by an earlier run, and reading and verifying the trail
	// already archived (2m if 0).
	StartTimeout time.Duration
	// CloseTimeout is how long Close keeps draining the spool (30s if 0);
	// what is left stays spooled for the next start.
	CloseTimeout time.Duration
}

// ArchiveSink writes the trail to append blobs in an Azure Blob Storage
// container meant to carry a locked time-based retention (WORM) policy
// with protected append writes. Each instance writes its own trail under
// SERVICE/INSTANCE/: segment n is the append blob audit-NNNNNNNN.jsonl (one
// event per line, the same format as the file sink) and its signed
// checkpoints the append blob audit-NNNNNNNN.checkpoints.jsonl. A segment
// is rotated before SegmentBytes or SegmentBlocks is reached.
//
// Every append names the position it expects (If-Append-Position), so a
// retried append can neither be duplicated nor land out of order; an
// append whose response was lost is recognised by reading its range back.
// When Blob Storage cannot be reached, appends go to the spool in
// SpoolDir, Check fails, and Sync writers get ErrUnavailable (their events
// stay spooled and are archived later); a background drainer appends the
// spool in order once the service answers. The sink needs to list, read,
// create append blobs and append blocks; it never deletes or overwrites.
// ArchiveSink is safe for concurrent use.
type ArchiveSink struct {
	trail   *trailWriter
	store   *archiveStore
	maxLine int
}

// NewArchiveSink opens (or creates) the trail of opts.Service/opts.Instance
// in the container c (which must exist: the sink has no right to create
// containers). It first drains a spool left by an earlier run (up to
// StartTimeout), then reads and verifies the trail already archived
// (ErrTampered if it does not verify), seals its last segment and starts a
// new one. The caller must Close the sink (the Logger does).
func NewArchiveSink(c *container.Client, opts *ArchiveOptions) (*ArchiveSink, error) {
	if c == nil {
		return nil, errors.New("auditlog: archive sink: a container client is required")
	}
	if opts == nil || opts.SigningKey == nil {
		return nil, errors.New("auditlog: archive sink: a signing key is required")
	}
	if len(opts.SigningKey) != ed25519.PrivateKeySize {
		return nil, errors.New("auditlog: archive sink: signing key is not an ed25519 private key")
	}
	if err := checkNamePart("service", opts.Service); err != nil {
		return nil, err
	}
	if err := checkNamePart("instance", opts.Instance); err != nil {
		return nil, err
	}
	if opts.SpoolDir == "" {
		return nil, errors.New("auditlog: archive sink: a spool folder is required")
	}
	o := *opts
	if o.KeyName == "" {
		o.KeyName = DefaultKeyName
	}
	if o.Origin == "" {
		o.Origin = DefaultOrigin + "/" + o.Service + "/" + o.Instance
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 65536
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 64 << 20
	}
	// The last batch may overshoot SegmentBytes: keep room for one.
	o.SegmentBytes = min(o.SegmentBytes, AppendBlobMaxBytes-(64<<20))
	if o.SegmentBlocks <= 0 {
		o.SegmentBlocks = 48_000
	}
	o.SegmentBlocks = min(o.SegmentBlocks, AppendBlobMaxBlocks)
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 5 * time.Second
	}
	if o.MaxSpoolBytes <= 0 {
		o.MaxSpoolBytes = 256 << 20
	}
	if o.AppendTimeout <= 0 {
		o.AppendTimeout = 10 * time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 250 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil { //nolint:gosec // G703: the folder is operator configuration, not request input
		return nil, fmt.Errorf("auditlog: archive sink: %w", err)
	}
	lock, err := lockDir(o.SpoolDir)
	if err != nil {
		return nil, err
	}
	sh, err := newShipper(c, &o, lock)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	err = sh.drainNow(ctx)
	cancel()
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	src := &archiveSource{c: c, prefix: archivePrefix(o.Service, o.Instance), ckLen: map[int64]int64{}}
	store := &archiveStore{archiveSource: src, sh: sh, blocks: o.SegmentBlocks}
	cfg := trailConfig{
		key: o.SigningKey, keyName: o.KeyName, origin: o.Origin, mode: o.Mode,
		maxPending: o.MaxPending, segmentBytes: o.SegmentBytes, interval: o.CheckpointInterval,
		onCheckpoint: o.OnCheckpoint, resumeTimeout: o.StartTimeout,
	}
	t, err := startTrail(store, cfg)
	if err != nil {
		_ = sh.stop(0) // the start error says more
		return nil, fmt.Errorf("auditlog: archive sink %s: %w", src.prefix, err)
	}
	sh.start()
	return &ArchiveSink{trail: t, store: store, maxLine: MaxAppendBytes - 1}, nil
}

// Write appends one event line (a JSON object without newline, at most
// MaxAppendBytes-1 bytes). In Sync mode it returns nil once the line is in
// the append blob; if ctx ends first it returns ctx's error, and the event
// may still be archived. While
// the archive is unreachable it returns an error wrapping ErrUnavailable
// at once: the event is kept in the spool and archived later, so it may
// appear in the archive although Write failed; an event whose Write
// returned nil is always there. In Async mode Write returns once the event
// is queued. It fails with ErrUnavailable when the spool is full, and for
// good after a local I/O error or ErrConflict.
func (s *ArchiveSink) Write(ctx context.Context, line []byte) error {
	if len(line) > s.maxLine {
		return fmt.Errorf("%w: event line of %d bytes exceeds the %d-byte append limit", ErrInvalidEvent, len(line), s.maxLine)
	}
	if err := s.store.sh.room(); err != nil {
		return err
	}
	return s.trail.write(ctx, line)
}

// Checkpoint returns the latest signed checkpoint, nil before the first.
func (s *ArchiveSink) Checkpoint() []byte { return s.trail.checkpointBytes() }

// Appends returns the number of appends (event batches and checkpoints)
// made so far, for metrics.
func (s *ArchiveSink) Appends() uint64 { return s.trail.appends.Load() }

// Stats returns the delivery state.
func (s *ArchiveSink) Stats() ArchiveStats { return s.store.sh.stats() }

// ArchiveStats describe an archive sink's delivery to Blob Storage.
type ArchiveStats struct {
	Spooled    uint64 // appends that went to the spool
	Drained    uint64 // spooled appends since delivered
	SpoolBytes int64  // bytes waiting in the spool
	SpoolOps   int    // appends waiting in the spool
	LastError  string // the last failed call (no event content)
}

// Check returns nil when every event so far is in the archive and the sink
// can take more. It fails (ErrUnavailable) while the spool is not empty:
// the archive is unreachable or still catching up; with ErrConflict or a
// local I/O error for good; ErrClosed after Close.
func (s *ArchiveSink) Check(context.Context) error {
	if err := s.trail.check(); err != nil {
		return err
	}
	return s.store.sh.check()
}

// Close appends every queued event, seals the segment with an end
// checkpoint and keeps draining the spool for up to CloseTimeout. It
// returns an error wrapping ErrUnavailable when appends are left in the
// spool (the next start drains them). It is idempotent.
func (s *ArchiveSink) Close() error {
	err := s.trail.close()
	left := s.store.sh.stop(s.store.sh.opts.CloseTimeout)
	if err == nil && left != nil {
		err = left
	}
	if err != nil {
		return fmt.Errorf("auditlog: archive sink: close: %w", err)
	}
	return nil
}

// archiveStore keeps segments as append blobs; it reads them through the
// same archiveSource a verifier uses.
type archiveStore struct {
	*archiveSource
	sh     *shipper
	blocks int
}

func (a *archiveStore) create(n int64) (segmentWriter, error) {
	w := &archiveSegment{st: a, ev: a.eventsBlob(n), ck: a.checkpointsBlob(n)}
	for _, name := range []string{w.ev, w.ck} {
		if err := a.sh.do(&spoolOp{Kind: opCreate, Blob: name}); err != nil && !errors.Is(err, errSpooled) {
			return nil, err
		}
	}
	return w, nil
}

// reopen cannot cut a blob: an append is all or nothing, so a torn tail can
// only be tampering and is refused.
func (a *archiveStore) reopen(n int64, eventsLen, checkpointsLen int64) (segmentWriter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.sh.opts.AppendTimeout)
	defer cancel()
	w := &archiveSegment{st: a, ev: a.eventsBlob(n), ck: a.checkpointsBlob(n)}
	for _, b := range []struct {
		name   string
		want   int64
		len    *int64
		blocks *int
	}{{w.ev, eventsLen, &w.evLen, &w.evBlocks}, {w.ck, checkpointsLen, &w.ckLen, &w.ckBlocks}} {
		props, err := a.c.NewBlobClient(b.name).GetProperties(ctx, nil)
		if bloberror.HasCode(err, bloberror.BlobNotFound) && b.want == 0 {
			if err := a.sh.do(&spoolOp{Kind: opCreate, Blob: b.name}); err != nil && !errors.Is(err, errSpooled) {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("auditlog: archive: reopen segment %d: %w", n, cleanErr(err))
		}
		if props.BlobType == nil || *props.BlobType != blob.BlobTypeAppendBlob || props.ContentLength == nil || *props.ContentLength != b.want {
			return nil, fmt.Errorf("%w: segment %d: %s is not an append blob of %d complete lines", ErrTampered, n, b.name, b.want)
		}
		*b.len = b.want
		if props.BlobCommittedBlockCount != nil {
			*b.blocks = int(*props.BlobCommittedBlockCount)
		}
	}
	return w, nil
}

// archiveSegment appends to one segment's two append blobs. Only the
// trail's writer goroutine uses it.
type archiveSegment struct {
	st                 *archiveStore
	ev, ck             string
	evLen, ckLen       int64
	evBlocks, ckBlocks int
}

func (w *archiveSegment) appendEvents(b []byte) error {
	var spooled error
	for len(b) > 0 {
		chunk := b
		if len(chunk) > MaxAppendBytes {
			// Split at a line end so that every block holds whole lines:
			// a crash between two blocks leaves no torn line.
			cut := bytes.LastIndexByte(chunk[:MaxAppendBytes], '\n')
			if cut < 0 {
				return fmt.Errorf("%w: a line exceeds the append limit", ErrInvalidEvent)
			}
			chunk = chunk[:cut+1]
		}
		err := w.st.sh.do(&spoolOp{Kind: opAppend, Blob: w.ev, Pos: w.evLen, data: chunk})
		if err != nil && !errors.Is(err, errSpooled) {
			return err
		}
		if err != nil {
			spooled = err
		}
		w.evLen += int64(len(chunk))
		w.evBlocks++
		b = b[len(chunk):]
	}
	return spooled
}

func (w *archiveSegment) appendCheckpoint(b []byte) error {
	err := w.st.sh.do(&spoolOp{Kind: opAppend, Blob: w.ck, Pos: w.ckLen, data: b})
	if err != nil && !errors.Is(err, errSpooled) {
		return err
	}
	w.ckLen += int64(len(b))
	w.ckBlocks++
	return err
}

// full keeps room in the checkpoints blob for an interval and an end
// checkpoint, and in the events blob for the next batch's blocks.
func (w *archiveSegment) full(next int64) bool {
	blocks := int((next + MaxAppendBytes - 1) / MaxAppendBytes)
	return w.evBlocks+blocks > w.st.blocks || w.ckBlocks+2 > w.st.blocks
}

func (w *archiveSegment) close() error { return nil }

// remote performs one operation on Blob Storage, idempotently: a create
// of a blob that exists as an append blob succeeds, an append whose
// position was already passed succeeds if the archive holds these very
// bytes there. Errors wrapping ErrConflict are final; others are worth a
// retry.
func (sh *shipper) remote(ctx context.Context, op *spoolOp) error {
	ab := sh.c.NewAppendBlobClient(op.Blob)
	switch op.Kind {
	case opCreate:
		anyTag := azcore.ETagAny
		_, err := ab.Create(ctx, &appendblob.CreateOptions{
			AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &anyTag}},
		})
		if err == nil {
			return nil
		}
		if !bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
			return err
		}
		props, perr := ab.GetProperties(ctx, nil)
		if perr != nil {
			return perr
		}
		if props.BlobType == nil || *props.BlobType != blob.BlobTypeAppendBlob {
			return fmt.Errorf("%w: %s exists and is not an append blob", ErrConflict, op.Blob)
		}
		return nil
	case opAppend:
		sum := md5.Sum(op.data) //nolint:gosec // transfer checksum
		pos := op.Pos
		// op.data can be the trail writer's reused buffer: take it back from
		// the transport before returning (see package reqbody).
		body := reqbody.New(op.data)
		_, err := ab.AppendBlock(ctx, body, &appendblob.AppendBlockOptions{
			AppendPositionAccessConditions: &appendblob.AppendPositionAccessConditions{AppendPosition: &pos},
			TransactionalValidation:        blob.TransferValidationTypeMD5(sum[:]),
		})
		body.Detach()
		if err == nil {
			return nil
		}
		switch {
		case bloberror.HasCode(err, bloberror.AppendPositionConditionNotMet):
			// An earlier attempt whose answer was lost may have landed.
			return sh.sameBytes(ctx, ab, op)
		case bloberror.HasCode(err, bloberror.BlobNotFound):
			return fmt.Errorf("%w: %s is missing", ErrConflict, op.Blob)
		case bloberror.HasCode(err, bloberror.BlockCountExceedsLimit, bloberror.MaxBlobSizeConditionNotMet, bloberror.InvalidBlobType):
			return fmt.Errorf("%w: %s: %s", ErrConflict, op.Blob, callError(err))
		}
		return err
	}
	return fmt.Errorf("auditlog: archive: unknown spool operation %q", op.Kind)
}

// sameBytes reconciles after a position mismatch: an earlier attempt
// whose answer was lost may have appended all of op's data, or (for
// appends merged from the spool) a first part of it. The blob must hold
// exactly those bytes from op.Pos; the rest, if any, is appended after
// them.
func (sh *shipper) sameBytes(ctx context.Context, ab *appendblob.Client, op *spoolOp) error {
	props, err := ab.GetProperties(ctx, nil)
	if err != nil {
		return err
	}
	if props.ContentLength == nil {
		return errors.New("auditlog: archive: no blob length in the answer")
	}
	size := *props.ContentLength
	end := op.Pos + int64(len(op.data))
	switch {
	case size == op.Pos:
		return fmt.Errorf("auditlog: archive: %s: append position changed under a retry", op.Blob) // try again
	case size < op.Pos:
		return fmt.Errorf("%w: %s is shorter than this sink wrote", ErrConflict, op.Blob)
	}
	n := min(size, end) - op.Pos
	resp, err := ab.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: op.Pos, Count: n}})
	if err != nil {
		return err
	}
	var got bytes.Buffer
	_, err = got.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if !bytes.Equal(got.Bytes(), op.data[:n]) {
		return fmt.Errorf("%w: %s holds other bytes at offset %d (another writer on this trail?)", ErrConflict, op.Blob, op.Pos)
	}
	if size >= end {
		return nil
	}
	return sh.remote(ctx, &spoolOp{Kind: opAppend, Blob: op.Blob, Pos: size, data: op.data[n:]})
}
