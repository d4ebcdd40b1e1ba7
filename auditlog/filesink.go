package auditlog

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// FileOptions configure a file sink.
type FileOptions struct {
	// SigningKey signs the checkpoints. Required: an unsigned trail proves
	// nothing. Keep it in Key Vault or a secret file, not beside the trail.
	SigningKey ed25519.PrivateKey
	// KeyName is the signer name in checkpoints (DefaultKeyName if empty).
	KeyName string
	// Origin is the first line of every checkpoint (DefaultOrigin if empty);
	// name the service and instance, e.g. "phiguard-audit/api/pod-7".
	Origin string
	// Mode is Sync (default) or Async.
	Mode Mode
	// MaxPending bounds the events queued and not yet on disk (65536 if 0).
	MaxPending int
	// SegmentBytes rotates to a new segment past this size (64 MiB if 0).
	SegmentBytes int64
	// CheckpointInterval signs a checkpoint this often when events were
	// added (5s if 0). A shorter interval narrows the unsigned tail.
	CheckpointInterval time.Duration
	// OnCheckpoint, if set, receives every signed checkpoint (a copy), e.g.
	// to ship it out of reach of whoever can write the trail folder: pass the
	// latest one to VerifyOptions.Trusted to detect a rollback. It runs on
	// the writer goroutine and must not block for long.
	OnCheckpoint func(signed []byte)
}

// FileSink writes the trail to a folder: segment files of JSON Lines
// (audit-00000001.jsonl, one event per line) and beside each its signed
// checkpoints (audit-00000001.checkpoints.jsonl). Every event line is a leaf
// of one Merkle tree over the whole trail (RFC 6962 hashing); a checkpoint
// signs the tree size and root, at each segment end, on an interval and on
// Close. One process at a time may write a folder (an exclusive lock is
// held). FileSink is safe for concurrent use.
type FileSink struct {
	trail *trailWriter
	lock  *os.File
}

// NewFileSink opens (or creates) the trail in dir. On an existing trail it
// first verifies it with the signing key's public half and refuses to go on
// (ErrTampered) if it does not verify; a torn last line left by a crash is
// cut, the last segment is sealed, and writing continues in a new segment.
// The caller must Close the sink (the Logger does) to seal the trail.
func NewFileSink(dir string, opts *FileOptions) (*FileSink, error) {
	if opts == nil || opts.SigningKey == nil {
		return nil, errors.New("auditlog: file sink: a signing key is required")
	}
	cfg := trailConfig{
		key: opts.SigningKey, keyName: opts.KeyName, origin: opts.Origin, mode: opts.Mode,
		maxPending: opts.MaxPending, segmentBytes: opts.SegmentBytes, interval: opts.CheckpointInterval,
		onCheckpoint: opts.OnCheckpoint,
	}
	if cfg.keyName == "" {
		cfg.keyName = DefaultKeyName
	}
	if cfg.origin == "" {
		cfg.origin = DefaultOrigin
	}
	if cfg.maxPending <= 0 {
		cfg.maxPending = 65536
	}
	if cfg.segmentBytes <= 0 {
		cfg.segmentBytes = 64 << 20
	}
	if cfg.interval <= 0 {
		cfg.interval = 5 * time.Second
	}
	if len(cfg.key) != ed25519.PrivateKeySize {
		return nil, errors.New("auditlog: file sink: signing key is not an ed25519 private key")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil { //nolint:gosec // G703: the folder is operator configuration, not request input
		return nil, fmt.Errorf("auditlog: file sink: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	t, err := startTrail(dirStore{dirSource(dir)}, cfg)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("auditlog: file sink %s: %w", dir, err)
	}
	return &FileSink{trail: t, lock: lock}, nil
}

// Write appends one event line (a JSON object without newline). In Sync
// mode it returns once the line is written and fsynced (or ctx ends: the
// event may still be written). In Async mode it returns once queued. After a
// write or fsync error the sink refuses every further Write: the file's
// state is unknown, so it fails closed.
func (s *FileSink) Write(ctx context.Context, line []byte) error { return s.trail.write(ctx, line) }

// Checkpoint returns the latest signed checkpoint, nil before the first.
func (s *FileSink) Checkpoint() []byte { return s.trail.checkpointBytes() }

// Fsyncs returns the number of fsyncs done so far (for metrics).
func (s *FileSink) Fsyncs() uint64 { return s.trail.appends.Load() }

// Check returns the sticky write error, or ErrClosed.
func (s *FileSink) Check(context.Context) error { return s.trail.check() }

// Close writes every queued event, seals the segment with an end
// checkpoint, and releases the folder. It is idempotent.
func (s *FileSink) Close() error {
	err := s.trail.close()
	if s.lock != nil {
		_ = s.lock.Close()
		s.lock = nil
	}
	if err != nil {
		return fmt.Errorf("auditlog: file sink: close: %w", err)
	}
	return nil
}

// dirStore keeps segments as files in a folder.
type dirStore struct{ dirSource }

func (d dirStore) path(name string) string { return filepath.Join(string(d.dirSource), name) }

func (d dirStore) create(n int64) (segmentWriter, error) {
	ev, err := os.OpenFile(d.path(eventsFile(n)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auditlog: file sink: %w", err)
	}
	ck, err := os.OpenFile(d.path(checkpointsFile(n)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		_ = ev.Close()
		return nil, fmt.Errorf("auditlog: file sink: %w", err)
	}
	// The new names must survive a crash too.
	if err := syncDir(string(d.dirSource)); err != nil {
		_ = ev.Close()
		_ = ck.Close()
		return nil, err
	}
	return &fileSegment{ev: ev, ck: ck}, nil
}

func (d dirStore) reopen(n int64, eventsLen, checkpointsLen int64) (segmentWriter, error) {
	ev, err := openCut(d.path(eventsFile(n)), eventsLen)
	if err != nil {
		return nil, err
	}
	ck, err := openCut(d.path(checkpointsFile(n)), checkpointsLen)
	if err != nil {
		_ = ev.Close()
		return nil, err
	}
	return &fileSegment{ev: ev, ck: ck}, nil
}

// openCut opens path for appending (creating it if missing) after cutting
// it to n bytes.
func openCut(path string, n int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auditlog: file sink: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil && size != n {
		if err = f.Truncate(n); err == nil {
			err = f.Sync()
		}
	}
	if err == nil {
		_, err = f.Seek(n, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("auditlog: file sink: cut torn line: %w", err)
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("auditlog: file sink: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("auditlog: file sink: sync folder: %w", err)
	}
	return nil
}

// fileSegment appends to a segment's two files; each append is written and
// fsynced before it returns.
type fileSegment struct{ ev, ck *os.File }

func (s *fileSegment) appendEvents(b []byte) error     { return writeSync(s.ev, b) }
func (s *fileSegment) appendCheckpoint(b []byte) error { return writeSync(s.ck, b) }

func writeSync(f *os.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

func (s *fileSegment) close() error {
	err := s.ev.Close()
	if cerr := s.ck.Close(); err == nil {
		err = cerr
	}
	return err
}
