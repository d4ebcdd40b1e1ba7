package storage

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phiguard/phiguard/phimask"
	"github.com/phiguard/phiguard/storage/internal/cse"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrNotFound: no object of that name.
	ErrNotFound = errors.New("storage: object not found")
	// ErrExists: PutOptions.NoOverwrite was set and the name is taken.
	ErrExists = errors.New("storage: object already exists")
	// ErrConflict: the object changed while Rewrap was updating it.
	ErrConflict = errors.New("storage: object changed concurrently")
	// ErrAuthentication: the content, its length or its wrapped key failed
	// authentication (tampering, truncation, wrong key). No unauthenticated
	// plaintext was returned.
	ErrAuthentication = cse.ErrAuth
	// ErrFormat: the object is not a valid client-side encryption v2 object
	// (missing or malformed encryptiondata, content of an impossible size).
	ErrFormat = cse.ErrFormat
	// ErrUnsupported: an encryption protocol, algorithm or mode this package
	// does not read (only protocol 2.0, AES_GCM_256, FullBlob).
	ErrUnsupported = cse.ErrProtocol
	// ErrKeyMismatch: none of the store's keys is the one that wrapped the
	// object's content key.
	ErrKeyMismatch = errors.New("storage: no key for this object")
	// ErrNameRefused: the name is malformed, or phimask found PHI in it.
	ErrNameRefused = errors.New("storage: name refused")
	// ErrTooLarge: the stream needs more than 50,000 blocks at the
	// configured block size; set PutOptions.Size or a larger BlockSize.
	ErrTooLarge = errors.New("storage: object too large for the block size")
	// ErrProductionDir: NewDirStore in production mode without
	// DirStoreOptions.EncryptedVolume.
	ErrProductionDir = errors.New("storage: folder store refused in production")
)

// Defaults and limits.
const (
	// RegionSize is the plaintext size of one encrypted region (4 MiB).
	RegionSize = cse.RegionSize
	// DefaultBlockSize is the default plaintext bytes per uploaded block.
	DefaultBlockSize = RegionSize
	// DefaultConcurrency is the default number of blocks in flight.
	DefaultConcurrency = 4
	// MaxBlocks is Azure's limit of committed blocks per blob.
	MaxBlocks = 50_000
	// maxBlockSize is Azure's largest block (4000 MiB), in whole regions.
	maxRegionsPerBlock = 4000 * (1 << 20) / (RegionSize + cse.Overhead)
	maxNameLen         = 1024
	encryptionLibrary  = "phiguard-go storage/1"
)

// Options configure a Store. A nil *Options, and every zero field, gives the
// safe defaults.
type Options struct {
	// BlockSize is the plaintext bytes per block, rounded up to a whole
	// number of 4 MiB regions (default 4 MiB). Memory used by Put is at most
	// about BlockSize x Concurrency, whatever the object size; a stream of
	// unknown size can be at most 50,000 x BlockSize bytes.
	BlockSize int64
	// Concurrency is the number of blocks encrypted and uploaded at once
	// (default 4).
	Concurrency int
	// DecryptionKeys are tried, after the store's own key, to unwrap objects
	// written under other keys (during key rotation, before Rewrap).
	DecryptionKeys []KeyWrapper
	// AcceptMissingLengthMAC lets Get read objects written by other SDKs,
	// which lack phiguard's length MAC. Such objects, cut at a region
	// boundary, cannot be told from shorter ones. Default: refuse them.
	AcceptMissingLengthMAC bool
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.BlockSize <= 0 {
		r.BlockSize = DefaultBlockSize
	}
	if r.Concurrency <= 0 {
		r.Concurrency = DefaultConcurrency
	}
	r.DecryptionKeys = slices.Clone(r.DecryptionKeys)
	return r
}

// PutOptions configure one Put. Nil means defaults.
type PutOptions struct {
	// Size, when known and positive, is the plaintext length; Put then picks
	// a block size large enough for Azure's 50,000-block limit. Readers with
	// a Len() int method (bytes.Reader, strings.Reader) are sized
	// automatically.
	Size int64
	// NoOverwrite makes Put fail with ErrExists when the name is taken.
	NoOverwrite bool
}

// Object describes a stored object. Names and key IDs are not secret; Size
// is the plaintext length.
type Object struct {
	Name         string
	Size         int64
	KeyID        string
	LastModified time.Time
}

// Store is an encrypted object store over a blob container or a folder.
// Every object is encrypted on the client with a fresh 256-bit content key,
// wrapped by the store's KeyWrapper, in the Azure Storage client-side
// encryption v2 format. A Store is safe for concurrent use. It never logs,
// and its errors never contain plaintext, keys or object names.
type Store struct {
	b    backend
	kek  KeyWrapper
	opts Options
	// bufs recycles block buffers of the configured size between Puts:
	// fresh multi-MiB buffers cost more in page faults than AES-GCM does.
	// Idle buffers are dropped by the garbage collector.
	bufs sync.Pool
	// regions recycles Get's read-ahead buffers of one encrypted region.
	regions sync.Pool
	// maxBlocks is MaxBlocks; tests lower it.
	maxBlocks int
}

func newStore(b backend, kek KeyWrapper, o *Options) (*Store, error) {
	if kek == nil {
		return nil, errors.New("storage: nil key wrapper")
	}
	return &Store{b: b, kek: kek, opts: o.withDefaults(), maxBlocks: MaxBlocks}, nil
}

// backend is what a Store needs from a place to keep bytes and metadata,
// kept apart from the user's API as gocloud.dev/blob does with its drivers.
type backend interface {
	// newUpload starts an upload whose final metadata will have exactly the
	// keys, and values of the same lengths, of md.
	newUpload(ctx context.Context, name string, md map[string]string) (upload, error)
	// open returns the content (exactly size bytes) and metadata.
	open(ctx context.Context, name string) (*rawObject, error)
	// properties returns the metadata and a version tag for setMetadata.
	properties(ctx context.Context, name string) (md map[string]string, etag string, err error)
	// setMetadata replaces the metadata if the object still has etag.
	setMetadata(ctx context.Context, name string, md map[string]string, etag string) error
	remove(ctx context.Context, name string) error
	check(ctx context.Context) error
}

// upload receives encrypted blocks, possibly concurrently, then commits
// them all at once with the metadata; nothing is visible before commit.
type upload interface {
	stage(ctx context.Context, index int, offset int64, data []byte) error
	commit(ctx context.Context, blocks int, md map[string]string, noOverwrite bool) (time.Time, error)
	abort()
}

type rawObject struct {
	body         io.ReadCloser
	size         int64
	md           map[string]string
	lastModified time.Time
}

// Put encrypts r and stores it under name, streaming: memory stays within
// about BlockSize x Concurrency whatever the length of r. With an empty
// name, Put generates an opaque random one (returned in Object.Name). A
// name in which phimask finds PHI is refused with ErrNameRefused, since
// names are visible to anyone who can list the container.
//
// The object appears, with its metadata, only when the whole stream has
// been encrypted and stored; if Put fails or ctx is cancelled, no object is
// visible under name (an older one with that name is left as it was). Put
// reads r until io.EOF and does not close it.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, opts *PutOptions) (*Object, error) {
	var po PutOptions
	if opts != nil {
		po = *opts
	}
	if r == nil {
		return nil, errors.New("storage: put: nil reader")
	}
	if name == "" {
		name = randomName()
	} else if err := CheckName(name); err != nil {
		return nil, err
	}

	cek := make([]byte, cse.KeySize)
	if _, err := rand.Read(cek); err != nil {
		return nil, fmt.Errorf("storage: put: content key: %w", err)
	}
	defer clear(cek)
	aead, err := cse.NewAEAD(cek)
	if err != nil {
		return nil, fmt.Errorf("storage: put: %w", err)
	}
	payload := cse.WrapPayload(cek)
	wk, err := s.kek.WrapKey(ctx, payload)
	clear(payload)
	if err != nil {
		return nil, fmt.Errorf("storage: put: wrap content key: %w", err)
	}
	ed, err := cse.NewEncryptionData(wk.KeyID, wk.Algorithm, wk.EncryptedKey, encryptionLibrary).Marshal()
	if err != nil {
		return nil, fmt.Errorf("storage: put: %w", err)
	}
	md := map[string]string{
		cse.MetadataKey:          ed,
		cse.LengthMACMetadataKey: strings.Repeat("A", cse.EncodedLengthMACSize), // placeholder, same length
	}

	if po.Size <= 0 {
		if l, ok := r.(interface{ Len() int }); ok {
			po.Size = int64(l.Len())
		}
	}
	regionsPerBlock := int((s.opts.BlockSize + RegionSize - 1) / RegionSize)
	if po.Size > 0 {
		regions := (po.Size + RegionSize - 1) / RegionSize
		limit := int64(s.maxBlocks)
		regionsPerBlock = max(regionsPerBlock, int((regions+limit-1)/limit))
	}
	if regionsPerBlock > maxRegionsPerBlock {
		return nil, fmt.Errorf("%w: block size over Azure's 4000 MiB", ErrTooLarge)
	}

	up, err := s.b.newUpload(ctx, name, md)
	if err != nil {
		return nil, fmt.Errorf("storage: put: %w", err)
	}
	length, blocks, err := s.pipeline(ctx, up, r, aead, regionsPerBlock)
	if err == nil {
		md[cse.LengthMACMetadataKey], err = cse.EncodeLengthMAC(cek, length)
	}
	var modified time.Time
	if err == nil {
		modified, err = up.commit(ctx, blocks, md, po.NoOverwrite)
	}
	if err != nil {
		up.abort()
		return nil, fmt.Errorf("storage: put: %w", err)
	}
	return &Object{Name: name, Size: length, KeyID: wk.KeyID, LastModified: modified}, nil
}

// pipeline reads r into block buffers (at most Concurrency of them), and
// encrypts and stages each block on its own goroutine. The reading goroutine
// only copies; AES-GCM runs in parallel with reading and uploading.
func (s *Store) pipeline(ctx context.Context, up upload, r io.Reader, aead cipher.AEAD, regionsPerBlock int) (length int64, blocks int, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	blockLen := int64(regionsPerBlock) * cse.EncryptedRegionSize
	pool := make(chan []byte, s.opts.Concurrency)
	for range s.opts.Concurrency {
		pool <- nil // allocated on first use, so small objects stay small
	}
	recycle := blockLen == s.defaultBlockLen()
	defer func() {
		close(pool)
		for buf := range pool {
			if recycle && buf != nil {
				s.bufs.Put(&buf)
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for eof := false; !eof; {
		var buf []byte
		select {
		case buf = <-pool:
		case <-ctx.Done():
			return 0, 0, context.Cause(ctx)
		}
		// Fill the block region by region, leaving room for nonces and tags.
		regions, last := 0, 0
		for regions < regionsPerBlock {
			off := regions * cse.EncryptedRegionSize
			if buf == nil {
				if p, ok := s.getBuf(recycle); ok {
					buf = *p
				} else {
					buf = make([]byte, blockLen)
				}
			}
			n, rerr := io.ReadFull(r, buf[off+cse.NonceSize:off+cse.NonceSize+RegionSize])
			if n > 0 {
				regions++
				last = n
				length += int64(n)
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				eof = true
				break
			}
			if rerr != nil {
				cancel(rerr)
				return 0, 0, fmt.Errorf("read: %w", rerr)
			}
		}
		if regions == 0 {
			pool <- buf
			break
		}
		if blocks >= s.maxBlocks {
			cancel(ErrTooLarge)
			pool <- buf
			return 0, 0, fmt.Errorf("%w (%d blocks of %d MiB)", ErrTooLarge, s.maxBlocks, regionsPerBlock*RegionSize>>20)
		}
		index := blocks
		blocks++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { pool <- buf }()
			first := uint64(index) * uint64(regionsPerBlock) //nolint:gosec // G115: both are small and positive.
			for j := range regions {
				n := RegionSize
				if j == regions-1 {
					n = last
				}
				off := j * cse.EncryptedRegionSize
				cse.SealRegion(aead, buf[off:], n, first+uint64(j)) //nolint:gosec // G115: j >= 0.
			}
			end := (regions-1)*cse.EncryptedRegionSize + cse.Overhead + last
			if err := up.stage(ctx, index, int64(index)*blockLen, buf[:end]); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, 0, err
	}
	return length, blocks, nil
}

func (s *Store) getBuf(recycle bool) (*[]byte, bool) {
	if !recycle {
		return nil, false
	}
	p, ok := s.bufs.Get().(*[]byte)
	return p, ok
}

func (s *Store) defaultBlockLen() int64 {
	return (s.opts.BlockSize + RegionSize - 1) / RegionSize * cse.EncryptedRegionSize
}

// Get returns a stream of the plaintext of name and its description. Each
// 4 MiB region is authenticated before any of its bytes is returned, and
// the object's length is checked against its MAC before the first byte, so
// a Read error (wrapping ErrAuthentication or ErrFormat) means tampering or
// damage and no unauthenticated byte has been returned. The caller must
// Close the stream; cancelling ctx aborts it. Regions are downloaded ahead
// and decrypted in parallel: memory use is about Concurrency+1 regions
// (20 MiB by default) whatever the object size.
func (s *Store) Get(ctx context.Context, name string) (io.ReadCloser, *Object, error) {
	if err := checkSyntax(name); err != nil {
		return nil, nil, err
	}
	raw, err := s.b.open(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: get: %w", err)
	}
	rc, obj, err := s.decrypt(ctx, raw)
	if err != nil {
		_ = raw.body.Close()
		return nil, nil, fmt.Errorf("storage: get: %w", err)
	}
	obj.Name = name
	return rc, obj, nil
}

func (s *Store) decrypt(ctx context.Context, raw *rawObject) (io.ReadCloser, *Object, error) {
	ed, err := parseMetadata(raw.md)
	if err != nil {
		return nil, nil, err
	}
	size, err := cse.PlaintextSize(raw.size)
	if err != nil {
		return nil, nil, err
	}
	cek, err := s.unwrap(ctx, ed)
	if err != nil {
		return nil, nil, err
	}
	defer clear(cek)
	if mac, ok := cse.Lookup(raw.md, cse.LengthMACMetadataKey); ok {
		if err := cse.VerifyLengthMAC(cek, size, mac); err != nil {
			return nil, nil, err
		}
	} else if !s.opts.AcceptMissingLengthMAC {
		return nil, nil, fmt.Errorf("%w: length MAC missing (set Options.AcceptMissingLengthMAC to read objects from other SDKs)", ErrAuthentication)
	}
	aead, err := cse.NewAEAD(cek)
	if err != nil {
		return nil, nil, err
	}
	d, err := cse.NewDecrypter(raw.body, aead, raw.size)
	if err != nil {
		return nil, nil, err
	}
	obj := &Object{Size: size, KeyID: ed.WrappedContentKey.KeyID, LastModified: raw.lastModified}
	return newPlainReader(d, raw.body, &s.regions, s.opts.Concurrency+1), obj, nil
}

// plainReader reads encrypted regions ahead on its own goroutine and
// authenticates and decrypts them in parallel, one goroutine per region,
// while the caller consumes them in order; network reads and AES-GCM
// overlap. It holds at most `ahead` regions.
type plainReader struct {
	d     *cse.Decrypter
	pool  *sync.Pool // for full-size region buffers
	order chan chan chunk
	free  chan []byte
	done  chan struct{}
	wg    sync.WaitGroup
	body  io.Closer
	once  sync.Once

	cur, curBuf []byte
	err         error
}

type chunk struct {
	buf []byte // the whole buffer, to recycle
	pt  []byte // authenticated plaintext, within buf
	err error
}

func newPlainReader(d *cse.Decrypter, body io.Closer, pool *sync.Pool, ahead int) *plainReader {
	p := &plainReader{
		d:     d,
		pool:  pool,
		order: make(chan chan chunk, ahead),
		free:  make(chan []byte, ahead),
		done:  make(chan struct{}),
		body:  body,
	}
	for range ahead {
		p.free <- nil
	}
	size := d.BufferSize()
	p.wg.Go(func() {
		for {
			var buf []byte
			select {
			case buf = <-p.free:
			case <-p.done:
				return
			}
			if buf == nil && size == cse.EncryptedRegionSize {
				if b, ok := pool.Get().(*[]byte); ok {
					buf = *b
				}
			}
			if buf == nil {
				buf = make([]byte, size)
			}
			res := make(chan chunk, 1)
			region, i, err := d.ReadRegion(buf)
			if err != nil {
				res <- chunk{buf: buf, err: err}
			} else {
				p.wg.Go(func() {
					pt, err := d.Open(region, i)
					res <- chunk{buf: buf, pt: pt, err: err}
				})
			}
			select {
			case p.order <- res:
			case <-p.done:
				return
			}
			if err != nil {
				return
			}
		}
	})
	return p
}

// fill makes p.cur the next authenticated plaintext, or sets p.err.
func (p *plainReader) fill() {
	if p.curBuf != nil {
		p.free <- p.curBuf // never blocks: the buffer came from free
		p.curBuf = nil
	}
	if p.err != nil {
		return
	}
	var res chan chunk
	select {
	case res = <-p.order:
	case <-p.done:
		p.err = errors.New("storage: get: read after close")
		return
	}
	c := <-res
	switch {
	case errors.Is(c.err, io.EOF):
		p.err = io.EOF
	case c.err != nil:
		p.err = fmt.Errorf("storage: get: %w", sanitize(c.err))
	default:
		p.cur, p.curBuf = c.pt, c.buf
		return
	}
	p.free <- c.buf
}

// Read returns authenticated plaintext only. Errors other than io.EOF wrap
// ErrAuthentication, ErrFormat or the back end's error.
func (p *plainReader) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		p.fill()
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// WriteTo writes whole authenticated regions to w (io.Copy uses it).
func (p *plainReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(p.cur) == 0 {
			if p.err != nil {
				if errors.Is(p.err, io.EOF) {
					return total, nil
				}
				return total, p.err
			}
			p.fill()
		}
		n, err := w.Write(p.cur)
		total += int64(n)
		p.cur = p.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

// Close stops the read-ahead and closes the underlying stream.
func (p *plainReader) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = p.body.Close() // unblocks a read in progress
		p.wg.Wait()
		// Recycle the buffers; none is in use once the goroutine has ended.
		bufs := []([]byte){p.curBuf}
		p.cur, p.curBuf = nil, nil
		for len(p.free) > 0 {
			bufs = append(bufs, <-p.free)
		}
		for len(p.order) > 0 {
			bufs = append(bufs, (<-<-p.order).buf) // each holds its result by now
		}
		for _, b := range bufs {
			if len(b) == cse.EncryptedRegionSize {
				p.pool.Put(&b)
			}
		}
		p.err = errors.New("storage: get: read after close")
	})
	return err
}

func parseMetadata(md map[string]string) (*cse.EncryptionData, error) {
	v, ok := cse.Lookup(md, cse.MetadataKey)
	if !ok {
		return nil, fmt.Errorf("%w: no encryptiondata metadata (not encrypted on the client)", ErrFormat)
	}
	return cse.ParseEncryptionData(v)
}

// unwrap returns the content key of ed, trying the store's key, then
// Options.DecryptionKeys.
func (s *Store) unwrap(ctx context.Context, ed *cse.EncryptionData) ([]byte, error) {
	wk := WrappedKey{
		KeyID:        ed.WrappedContentKey.KeyID,
		Algorithm:    ed.WrappedContentKey.Algorithm,
		EncryptedKey: ed.WrappedContentKey.EncryptedKey,
	}
	keys := append([]KeyWrapper{s.kek}, s.opts.DecryptionKeys...)
	var firstErr error
	for _, k := range keys {
		payload, err := k.UnwrapKey(ctx, wk)
		if err == nil {
			cek, err := cse.ContentKey(payload)
			clear(payload)
			return cek, err
		}
		if !errors.Is(err, ErrKeyMismatch) {
			// The key matched by ID but refused the value: tampering or the
			// wrong key material under a reused ID.
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// Delete removes name. A missing object is ErrNotFound.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := checkSyntax(name); err != nil {
		return err
	}
	if err := s.b.remove(ctx, name); err != nil {
		return fmt.Errorf("storage: delete: %w", err)
	}
	return nil
}

// Rewrap re-wraps the content key of name with to, for key rotation: the
// content is not read, decrypted or rewritten (in the folder back end the
// encrypted bytes are copied unchanged behind a new header). The current key
// must be the store's key or one of Options.DecryptionKeys. If the object
// changes during Rewrap, it fails with ErrConflict and the object is left as
// the other writer made it.
func (s *Store) Rewrap(ctx context.Context, name string, to KeyWrapper) error {
	if to == nil {
		return errors.New("storage: rewrap: nil key wrapper")
	}
	if err := checkSyntax(name); err != nil {
		return err
	}
	md, etag, err := s.b.properties(ctx, name)
	if err != nil {
		return fmt.Errorf("storage: rewrap: %w", err)
	}
	ed, err := parseMetadata(md)
	if err != nil {
		return fmt.Errorf("storage: rewrap: %w", err)
	}
	cek, err := s.unwrap(ctx, ed)
	if err != nil {
		return fmt.Errorf("storage: rewrap: %w", err)
	}
	defer clear(cek)
	payload := cse.WrapPayload(cek)
	wk, err := to.WrapKey(ctx, payload)
	clear(payload)
	if err != nil {
		return fmt.Errorf("storage: rewrap: wrap content key: %w", err)
	}
	ed.WrappedContentKey = cse.WrappedContentKey{KeyID: wk.KeyID, EncryptedKey: wk.EncryptedKey, Algorithm: wk.Algorithm}
	if ed.KeyWrappingMetadata == nil {
		ed.KeyWrappingMetadata = map[string]string{}
	}
	ed.KeyWrappingMetadata["EncryptionLibrary"] = encryptionLibrary
	v, err := ed.Marshal()
	if err != nil {
		return fmt.Errorf("storage: rewrap: %w", err)
	}
	out := make(map[string]string, len(md))
	for k, val := range md {
		if !strings.EqualFold(k, cse.MetadataKey) {
			out[k] = val
		}
	}
	out[cse.MetadataKey] = v
	if err := s.b.setMetadata(ctx, name, out, etag); err != nil {
		return fmt.Errorf("storage: rewrap: %w", err)
	}
	return nil
}

// Check reports whether the store can serve: the container or folder is
// reachable and writable as far as can be seen without writing an object,
// and the key wrapper can wrap and unwrap a random key. It suits a readiness
// probe (health.Checker); with Key Vault it costs two key operations.
func (s *Store) Check(ctx context.Context) error {
	if err := s.b.check(ctx); err != nil {
		return fmt.Errorf("storage: check: %w", err)
	}
	probe := make([]byte, cse.WrappedPayloadSize)
	if _, err := rand.Read(probe); err != nil {
		return fmt.Errorf("storage: check: %w", err)
	}
	wk, err := s.kek.WrapKey(ctx, probe)
	if err != nil {
		return fmt.Errorf("storage: check: wrap: %w", err)
	}
	got, err := s.kek.UnwrapKey(ctx, wk)
	if err != nil {
		return fmt.Errorf("storage: check: unwrap: %w", err)
	}
	if string(got) != string(probe) {
		return errors.New("storage: check: key wrapper did not round-trip a key")
	}
	return nil
}

// CheckName reports whether Put accepts name: 1 to 1024 bytes of ASCII
// letters, digits, '.', '-', '_' and '/', made of '/'-separated segments
// that are neither empty nor start with '.', and in which phimask.Detect
// finds no PHI. The error never contains the name.
func CheckName(name string) error {
	if err := checkSyntax(name); err != nil {
		return err
	}
	// Also look at the name with separators as spaces, so that
	// "jane-doe_1980-01-02" reads like the text detectors expect.
	spaced := strings.Map(func(r rune) rune {
		if r == '/' || r == '_' || r == '-' || r == '.' {
			return ' '
		}
		return r
	}, name)
	kinds := map[phimask.Kind]bool{}
	for _, text := range []string{name, spaced} {
		for _, f := range phimask.Detect(text) {
			kinds[f.Kind] = true
		}
	}
	if len(kinds) > 0 {
		names := make([]string, 0, len(kinds))
		for k := range kinds {
			names = append(names, string(k))
		}
		slices.Sort(names)
		return fmt.Errorf("%w: phimask found %s in it (leave the name empty for a random one)", ErrNameRefused, strings.Join(names, ", "))
	}
	return nil
}

func checkSyntax(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: length must be 1 to %d bytes", ErrNameRefused, maxNameLen)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("%w: empty segment or segment starting with '.'", ErrNameRefused)
		}
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("%w: character at byte %d not allowed", ErrNameRefused, i)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c == '.' || c == '-' || c == '_' || c == '/'
}

// randomName returns 128 random bits in hex: opaque and collision-free.
func randomName() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
