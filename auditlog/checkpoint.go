package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultKeyName is the signer name in checkpoints when none is configured.
const DefaultKeyName = "phiguard-audit"

// DefaultOrigin is the first line of every checkpoint when none is configured.
const DefaultOrigin = "phiguard-audit"

// edSigner is a note.Signer over an ed25519 private key. note.NewSigner only
// takes its own text key format; this builds the same signer from the raw key
// a caller keeps in Key Vault or a secret file.
type edSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (s *edSigner) Name() string                    { return s.name }
func (s *edSigner) KeyHash() uint32                 { return s.hash }
func (s *edSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

func newSigner(name string, key ed25519.PrivateKey) (*edSigner, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("auditlog: signing key is not an ed25519 private key")
	}
	v, err := newVerifier(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &edSigner{name: name, hash: v.KeyHash(), key: key}, nil
}

func newVerifier(name string, pub ed25519.PublicKey) (note.Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("auditlog: public key is not an ed25519 key")
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, fmt.Errorf("auditlog: verifier key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: verifier: %w", err)
	}
	return v, nil
}

// Checkpoint is the signed statement "the trail of Origin had Size events with
// Merkle root Root", in the C2SP checkpoint text layout (origin, size, base64
// root hash) followed by extension lines that chain checkpoints together.
type Checkpoint struct {
	Origin  string
	Size    int64
	Root    tlog.Hash
	Segment int64     // segment being written when signed
	End     bool      // the segment ends at Size (sealed)
	Seq     int64     // 1, 2, 3, ... over the whole trail
	Prev    [32]byte  // SHA-256 of the previous signed checkpoint; zero for Seq 1
	Time    time.Time // signing time, UTC, second precision
}

func (c *Checkpoint) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	end := ""
	if c.End {
		end = " end"
	}
	fmt.Fprintf(&b, "segment %d%s\nseq %d\nprev %s\ntime %s\n", c.Segment, end, c.Seq,
		base64.StdEncoding.EncodeToString(c.Prev[:]), c.Time.UTC().Format(time.RFC3339))
	return b.String()
}

func parseCheckpoint(text string) (*Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 8 || lines[7] != "" {
		return nil, errors.New("checkpoint: wrong line count")
	}
	c := &Checkpoint{Origin: lines[0]}
	var err error
	if c.Size, err = strconv.ParseInt(lines[1], 10, 64); err != nil || c.Size < 0 {
		return nil, errors.New("checkpoint: bad size")
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return nil, errors.New("checkpoint: bad root")
	}
	copy(c.Root[:], root)
	seg, ok := strings.CutPrefix(lines[3], "segment ")
	if !ok {
		return nil, errors.New("checkpoint: bad segment line")
	}
	if s, ok := strings.CutSuffix(seg, " end"); ok {
		seg, c.End = s, true
	}
	if c.Segment, err = strconv.ParseInt(seg, 10, 64); err != nil || c.Segment < 1 {
		return nil, errors.New("checkpoint: bad segment")
	}
	seq, ok := strings.CutPrefix(lines[4], "seq ")
	if c.Seq, err = strconv.ParseInt(seq, 10, 64); !ok || err != nil || c.Seq < 1 {
		return nil, errors.New("checkpoint: bad seq")
	}
	prev, ok := strings.CutPrefix(lines[5], "prev ")
	p, err := base64.StdEncoding.DecodeString(prev)
	if !ok || err != nil || len(p) != 32 {
		return nil, errors.New("checkpoint: bad prev")
	}
	copy(c.Prev[:], p)
	ts, ok := strings.CutPrefix(lines[6], "time ")
	if c.Time, err = time.Parse(time.RFC3339, ts); !ok || err != nil {
		return nil, errors.New("checkpoint: bad time")
	}
	return c, nil
}

// signCheckpoint returns the signed note of c.
func signCheckpoint(c *Checkpoint, s note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: c.text()}, s)
	if err != nil {
		return nil, fmt.Errorf("auditlog: sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint checks the signature of a signed checkpoint note against pub
// (under keyName, DefaultKeyName when empty) and parses it.
func OpenCheckpoint(signed []byte, pub ed25519.PublicKey, keyName string) (*Checkpoint, error) {
	if keyName == "" {
		keyName = DefaultKeyName
	}
	v, err := newVerifier(keyName, pub)
	if err != nil {
		return nil, err
	}
	c, err := openCheckpoint(signed, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	return c, nil
}

// openCheckpoint returns unwrapped errors: callers add context.
func openCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	return parseCheckpoint(n.Text)
}

// checkpointLine is how a checkpoint is stored in a .checkpoints.jsonl file:
// one JSON object per line, so the file stays a JSON Lines file.
type checkpointLine struct {
	Note string `json:"checkpoint"`
}

func encodeCheckpointLine(signed []byte) []byte {
	b, _ := json.Marshal(checkpointLine{Note: string(signed)}) // a string field cannot fail
	return append(b, '\n')
}

func decodeCheckpointLine(line []byte) ([]byte, error) {
	var cl checkpointLine
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&cl); err != nil || cl.Note == "" {
		return nil, errors.New("unreadable checkpoint line")
	}
	return []byte(cl.Note), nil
}

func noteDigest(signed []byte) [32]byte { return sha256.Sum256(signed) }

// frontier holds the stored hashes of the complete subtrees of a tree of n
// leaves: the only hashes needed to append a leaf or compute the tree hash,
// so the writer's memory stays O(log n).
type frontier struct {
	n      int64
	hashes map[int64]tlog.Hash
}

func (f *frontier) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := f.hashes[x]
		if !ok {
			return nil, fmt.Errorf("auditlog: internal: hash %d not in frontier", x)
		}
		out[i] = h
	}
	return out, nil
}

// frontierIndexes lists the stored-hash indexes of the complete subtrees of
// a tree of n leaves, largest first.
func frontierIndexes(n int64) []int64 {
	var idx []int64
	var start int64
	for l := 62; l >= 0; l-- {
		if n&(1<<l) != 0 {
			idx = append(idx, tlog.StoredHashIndex(l, start>>l))
			start += 1 << l
		}
	}
	return idx
}

// appendHash adds a leaf whose record hash the caller computed.
func (f *frontier) appendHash(h tlog.Hash) error {
	hs, err := tlog.StoredHashesForRecordHash(f.n, h, f)
	if err != nil {
		return err
	}
	base := tlog.StoredHashIndex(0, f.n)
	for i, h := range hs {
		f.hashes[base+int64(i)] = h
	}
	f.n++
	// Drop hashes no longer on the frontier now and then: extra entries are
	// harmless, and pruning on every leaf would cost a map walk each time.
	if len(f.hashes) > 256 {
		keep := frontierIndexes(f.n)
		for k := range f.hashes {
			if !slices.Contains(keep, k) {
				delete(f.hashes, k)
			}
		}
	}
	return nil
}

func (f *frontier) root() (tlog.Hash, error) {
	return tlog.TreeHash(f.n, f)
}

// frontierFrom takes the frontier of a tree of n leaves from a full hash store.
func frontierFrom(n int64, r tlog.HashReader) (*frontier, error) {
	idx := frontierIndexes(n)
	hs, err := r.ReadHashes(idx)
	if err != nil {
		return nil, err
	}
	f := &frontier{n: n, hashes: make(map[int64]tlog.Hash, len(idx))}
	for i, x := range idx {
		f.hashes[x] = hs[i]
	}
	return f, nil
}
