package auditlog

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Source is read access to a stored trail: segment n is a JSON Lines file of
// events and a JSON Lines file of signed checkpoints. DirSource reads the file
// sink's folder; other back ends (an archive) implement the same three
// methods, and VerifySource checks them all the same way.
type Source interface {
	// Segments lists the segment numbers present (events or checkpoints), ascending.
	Segments(ctx context.Context) ([]int64, error)
	// OpenEvents opens segment n's events; an error wrapping fs.ErrNotExist if absent.
	OpenEvents(ctx context.Context, n int64) (io.ReadCloser, error)
	// OpenCheckpoints opens segment n's checkpoints; an error wrapping fs.ErrNotExist if absent.
	OpenCheckpoints(ctx context.Context, n int64) (io.ReadCloser, error)
}

var segmentName = regexp.MustCompile(`^audit-([0-9]{8,})\.(jsonl|checkpoints\.jsonl)$`)

func eventsFile(n int64) string      { return fmt.Sprintf("audit-%08d.jsonl", n) }
func checkpointsFile(n int64) string { return fmt.Sprintf("audit-%08d.checkpoints.jsonl", n) }

// DirSource returns the Source of a file sink's folder.
func DirSource(dir string) Source { return dirSource(dir) }

type dirSource string

func (d dirSource) Segments(context.Context) ([]int64, error) {
	ents, err := os.ReadDir(string(d))
	if err != nil {
		return nil, fmt.Errorf("auditlog: read trail folder: %w", err)
	}
	seen := map[int64]bool{}
	for _, e := range ents {
		addSegment(seen, e.Name())
	}
	return sortedSegments(seen), nil
}

// addSegment records the segment number of a trail file name (events or
// checkpoints) in seen; other names are ignored.
func addSegment(seen map[int64]bool, name string) {
	m := segmentName.FindStringSubmatch(name)
	if m == nil {
		return
	}
	if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
		seen[n] = true
	}
}

func sortedSegments(seen map[int64]bool) []int64 {
	segs := make([]int64, 0, len(seen))
	for n := range seen {
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs
}

func (d dirSource) OpenEvents(_ context.Context, n int64) (io.ReadCloser, error) {
	return os.Open(filepath.Join(string(d), eventsFile(n)))
}

func (d dirSource) OpenCheckpoints(_ context.Context, n int64) (io.ReadCloser, error) {
	return os.Open(filepath.Join(string(d), checkpointsFile(n)))
}

// VerifyOptions configure Verify. Nil means: key name DefaultKeyName, any
// origin, an unsealed tail allowed (a crashed writer leaves one), no trusted
// checkpoint.
type VerifyOptions struct {
	// KeyName is the signer name in the checkpoints (DefaultKeyName if empty).
	KeyName string
	// Origin, if set, must be the origin line of every checkpoint.
	Origin string
	// Trusted is the latest signed checkpoint seen outside the trail (shipped
	// to Azure Monitor, kept by the auditor). The trail must contain it and
	// extend it, else Verify reports ErrRollback or ErrTampered.
	Trusted []byte
	// RequireSealed reports events after the last checkpoint as an error.
	// Set it when the trail was closed cleanly (Close seals it).
	RequireSealed bool
	// FindIDs lists event IDs whose leaf index Report.Found should give.
	FindIDs []string
	// MaxLine is the longest accepted line in bytes (4 MiB if zero).
	MaxLine int
	// Visit, if set, is called with each complete event line, in order, and
	// its leaf index, while the trail is read: a reader that needs the
	// events (an auditor's query) gets them in the same pass. The line is
	// valid only during the call. What Visit saw may be trusted only when
	// Verify returns no error. An error from Visit stops the verification
	// and is returned, wrapped.
	Visit func(index int64, line []byte) error
}

// Report is what Verify found. It is non-nil whenever the trail could be
// read, also when Verify returns an error.
type Report struct {
	Segments    int
	Events      int64 // complete event lines read
	Checkpoints int
	// Checkpoint is the latest valid signed checkpoint (nil if none): ship it
	// elsewhere and pass it back as VerifyOptions.Trusted to detect rollback.
	Checkpoint []byte
	Sealed     bool  // the last segment ends with its end checkpoint
	Unsealed   int64 // events after the latest checkpoint (not yet signed)
	TornTail   bool  // the last line was cut short by a crash (not counted)
	Found      map[string]int64
	Problems   []string

	hashes  hashStore
	checkpt *Checkpoint
	verif   note.Verifier

	// writer resume state (file sink reopen)
	lastSeg     int64
	eventsLen   int64 // valid length of the last events file
	ckptLen     int64 // valid length of the last checkpoints file
	lastDigest  [32]byte
	lastSeq     int64
	lastHasCkpt bool
}

const maxProblems = 100

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

type hashStore []tlog.Hash

func (s hashStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(s)) {
			return nil, fmt.Errorf("auditlog: hash index %d out of range", x)
		}
		out[i] = s[x]
	}
	return out, nil
}

// Verify checks the trail in dir (a file sink's folder) against the
// checkpoint signing key pub. See VerifySource.
func Verify(dir string, pub ed25519.PublicKey, opts *VerifyOptions) (*Report, error) {
	return VerifySource(context.Background(), DirSource(dir), pub, opts)
}

// VerifySource recomputes the Merkle tree of every event line of src and
// checks each signed checkpoint: signature, chain (sequence and hash of the
// previous checkpoint), tree size and root. Every segment but the last must
// end with its end checkpoint. It detects a modified, deleted, inserted,
// reordered or forged event, a truncated or missing segment, and a deleted or
// altered checkpoint; with Trusted, a rollback. Errors wrap ErrTampered (and
// ErrRollback for a rollback); Report.Problems lists what was found. Events
// after the latest checkpoint are counted in Report.Unsealed: only a later
// checkpoint, or RequireSealed, can vouch for them.
func VerifySource(ctx context.Context, src Source, pub ed25519.PublicKey, opts *VerifyOptions) (*Report, error) {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	name := opts.KeyName
	if name == "" {
		name = DefaultKeyName
	}
	v, err := newVerifier(name, pub)
	if err != nil {
		return nil, err
	}
	r, err := scan(ctx, src, v, opts)
	if err != nil {
		return r, err
	}
	if opts.Trusted != nil {
		checkTrusted(r, opts.Trusted)
	}
	if opts.RequireSealed && r.Unsealed > 0 {
		r.problem("%d events after the latest checkpoint are not signed", r.Unsealed)
	}
	return r, r.err()
}

func (r *Report) err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	first := r.Problems[0]
	for _, p := range r.Problems {
		if p == rollbackProblem {
			return fmt.Errorf("%w: %w: %s (%d problems)", ErrTampered, ErrRollback, first, len(r.Problems))
		}
	}
	return fmt.Errorf("%w: %s (%d problems)", ErrTampered, first, len(r.Problems))
}

const rollbackProblem = "the trail is behind the trusted checkpoint (rollback)"

func checkTrusted(r *Report, signed []byte) {
	tc, err := openCheckpoint(signed, r.verif)
	if err != nil {
		r.problem("trusted checkpoint: %v", err)
		return
	}
	if tc.Size > r.Events || (r.checkpt != nil && tc.Seq > r.checkpt.Seq) || (r.checkpt == nil && tc.Seq > 0) {
		r.problem("%s", rollbackProblem)
		return
	}
	th, err := tlog.TreeHash(tc.Size, r.hashes)
	if err != nil || th != tc.Root {
		r.problem("the trail does not extend the trusted checkpoint of size %d (fork)", tc.Size)
	}
}

// scan reads every segment; I/O errors are returned, integrity findings go
// to the report.
func scan(ctx context.Context, src Source, v note.Verifier, opts *VerifyOptions) (*Report, error) {
	r := &Report{verif: v}
	maxLine := opts.MaxLine
	if maxLine <= 0 {
		maxLine = 4 << 20
	}
	want := map[string]bool{}
	for _, id := range opts.FindIDs {
		want[id] = true
	}
	if len(want) > 0 {
		r.Found = map[string]int64{}
	}
	segs, err := src.Segments(ctx)
	if err != nil {
		return nil, err
	}
	r.Segments = len(segs)
	var (
		prev   *Checkpoint
		digest [32]byte
		origin = opts.Origin
	)
	for i, seg := range segs {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		last := i == len(segs)-1
		if seg != int64(i+1) {
			r.problem("segment %d is missing", i+1)
			return r, nil // numbering is broken: nothing further lines up
		}
		r.lastSeg = seg
		start := r.Events
		// Events.
		rc, err := src.OpenEvents(ctx, seg)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.problem("segment %d: events file is missing", seg)
		case err != nil:
			return r, fmt.Errorf("auditlog: open segment %d: %w", seg, err)
		default:
			n, err := readLines(rc, maxLine, func(line []byte, complete bool) error {
				if !complete {
					if last {
						r.TornTail = true
					} else {
						r.problem("segment %d: last line is cut short", seg)
					}
					return nil
				}
				idx := r.Events
				var head struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(line, &head); err != nil || head.ID == "" {
					r.problem("segment %d line %d: not an event", seg, idx-start+1)
				} else if want[head.ID] {
					r.Found[head.ID] = idx
				}
				hs, err := tlog.StoredHashes(idx, line, r.hashes)
				if err != nil {
					return err
				}
				r.hashes = append(r.hashes, hs...)
				r.Events++
				if opts.Visit != nil {
					return opts.Visit(idx, line)
				}
				return nil
			})
			_ = rc.Close()
			if err != nil {
				return r, fmt.Errorf("auditlog: read segment %d: %w", seg, err)
			}
			if last {
				r.eventsLen = n
			}
		}
		end := r.Events
		// Checkpoints.
		sealed := false
		rc, err = src.OpenCheckpoints(ctx, seg)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			rc = nil
		case err != nil:
			return r, fmt.Errorf("auditlog: open checkpoints %d: %w", seg, err)
		}
		if rc != nil {
			lineNo := 0
			n, err := readLines(rc, maxLine, func(line []byte, complete bool) error {
				lineNo++
				if !complete {
					if !last {
						r.problem("segment %d: last checkpoint line is cut short", seg)
					}
					return nil
				}
				if sealed {
					r.problem("segment %d checkpoint %d: after the end checkpoint", seg, lineNo)
					return nil
				}
				signed, err := decodeCheckpointLine(line)
				if err != nil {
					r.problem("segment %d checkpoint %d: %v", seg, lineNo, err)
					return nil
				}
				c, err := openCheckpoint(signed, v)
				if err != nil {
					r.problem("segment %d checkpoint %d: %v", seg, lineNo, err)
					return nil
				}
				where := fmt.Sprintf("segment %d checkpoint %d (seq %d)", seg, lineNo, c.Seq)
				if origin == "" {
					origin = c.Origin
				}
				switch {
				case c.Origin != origin:
					r.problem("%s: origin differs", where)
				case prev == nil && (c.Seq != 1 || c.Prev != [32]byte{}):
					r.problem("%s: the first checkpoint does not start the chain", where)
				case prev != nil && c.Seq != prev.Seq+1:
					r.problem("%s: sequence gap after %d (checkpoint deleted or inserted)", where, prev.Seq)
				case prev != nil && c.Prev != digest:
					r.problem("%s: does not chain to the previous checkpoint", where)
				case c.Segment != seg:
					r.problem("%s: names segment %d", where, c.Segment)
				case c.Size < start || c.Size > end || (prev != nil && c.Size < prev.Size):
					r.problem("%s: size %d outside the segment's events %d..%d (events deleted, inserted or truncated)", where, c.Size, start, end)
				case c.End && c.Size != end:
					r.problem("%s: end checkpoint size %d but the segment ends at %d", where, c.Size, end)
				default:
					th, err := tlog.TreeHash(c.Size, r.hashes)
					if err != nil || th != c.Root {
						r.problem("%s: Merkle root mismatch (events modified, deleted, inserted or reordered)", where)
					}
				}
				prev, digest = c, noteDigest(signed)
				r.Checkpoints++
				r.Checkpoint, r.checkpt = signed, c
				r.lastSeq, r.lastDigest, r.lastHasCkpt = c.Seq, digest, true
				if c.End {
					sealed = true
				}
				return nil
			})
			_ = rc.Close()
			if err != nil {
				return r, fmt.Errorf("auditlog: read checkpoints %d: %w", seg, err)
			}
			if last {
				r.ckptLen = n
			}
		}
		if !sealed && !last {
			r.problem("segment %d has no end checkpoint (truncated, or checkpoints deleted)", seg)
		}
		if last {
			r.Sealed = sealed
		}
	}
	r.Unsealed = r.Events
	if r.checkpt != nil {
		r.Unsealed = r.Events - r.checkpt.Size
	}
	return r, nil
}

// readLines calls fn for each line without its newline; complete is false
// for a last line without newline. It returns the length of the complete
// lines read.
func readLines(rd io.Reader, maxLine int, fn func(line []byte, complete bool) error) (int64, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	var n int64
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			if len(long) > maxLine {
				return n, fmt.Errorf("line longer than %d bytes", maxLine)
			}
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if err == io.EOF {
			if len(line) > 0 {
				return n, fn(line, false)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if ferr := fn(line[:len(line)-1], true); ferr != nil {
			return n, ferr
		}
		n += int64(len(line))
	}
}

// InclusionProof proves that the event line at Index is in the tree of
// TreeSize events whose root a signed checkpoint states.
type InclusionProof struct {
	Index    int64       `json:"index"`
	TreeSize int64       `json:"treeSize"`
	Hashes   []tlog.Hash `json:"hashes"`
}

// ProveInclusion returns the proof that event index is in the tree of the
// latest checkpoint (Report.Checkpoint).
func (r *Report) ProveInclusion(index int64) (*InclusionProof, error) {
	if r.checkpt == nil || index < 0 || index >= r.checkpt.Size {
		return nil, fmt.Errorf("auditlog: event %d is not covered by a checkpoint", index)
	}
	p, err := tlog.ProveRecord(r.checkpt.Size, index, r.hashes)
	if err != nil {
		return nil, fmt.Errorf("auditlog: prove inclusion: %w", err)
	}
	return &InclusionProof{Index: index, TreeSize: r.checkpt.Size, Hashes: p}, nil
}

// CheckInclusion verifies that line (one event line, without newline) is
// event p.Index of the trail whose signed checkpoint is given, needing
// nothing but the public key.
func CheckInclusion(pub ed25519.PublicKey, keyName string, checkpoint, line []byte, p *InclusionProof) error {
	c, err := OpenCheckpoint(checkpoint, pub, keyName)
	if err != nil {
		return err
	}
	if p == nil || c.Size != p.TreeSize {
		return fmt.Errorf("%w: proof is for another tree size", ErrTampered)
	}
	if err := tlog.CheckRecord(p.Hashes, c.Size, c.Root, p.Index, tlog.RecordHash(line)); err != nil {
		return fmt.Errorf("%w: inclusion: %w", ErrTampered, err)
	}
	return nil
}

// ProveConsistency returns the proof that the latest checkpoint of the trail
// extends the older signed checkpoint (same events, more appended).
func (r *Report) ProveConsistency(older []byte) (tlog.TreeProof, error) {
	if r.checkpt == nil {
		return nil, errors.New("auditlog: the trail has no checkpoint")
	}
	oc, err := openCheckpoint(older, r.verif)
	if err != nil {
		return nil, fmt.Errorf("%w: older %w", ErrTampered, err)
	}
	if oc.Size > r.checkpt.Size {
		return nil, fmt.Errorf("%w: %w", ErrTampered, ErrRollback)
	}
	p, err := tlog.ProveTree(r.checkpt.Size, oc.Size, r.hashes)
	if err != nil {
		return nil, fmt.Errorf("auditlog: prove consistency: %w", err)
	}
	return p, nil
}

// CheckConsistency verifies that newer extends older: the events of older
// are the first events of newer, unchanged.
func CheckConsistency(pub ed25519.PublicKey, keyName string, older, newer []byte, p tlog.TreeProof) error {
	oc, err := OpenCheckpoint(older, pub, keyName)
	if err != nil {
		return err
	}
	nc, err := OpenCheckpoint(newer, pub, keyName)
	if err != nil {
		return err
	}
	if oc.Size > nc.Size {
		return fmt.Errorf("%w: %w", ErrTampered, ErrRollback)
	}
	if err := tlog.CheckTree(p, nc.Size, nc.Root, oc.Size, oc.Root); err != nil {
		return fmt.Errorf("%w: consistency: %w", ErrTampered, err)
	}
	return nil
}
