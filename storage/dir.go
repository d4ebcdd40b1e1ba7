package storage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// DirStoreOptions configure NewDirStore. Nil means safe defaults.
type DirStoreOptions struct {
	Options

	// EncryptedVolume states that the folder is an encrypted volume an
	// operator mounted on purpose; without it NewDirStore refuses to start
	// in production (see ProductionEnv).
	EncryptedVolume bool
	// ProductionEnv is the environment variable whose value "production"
	// (any case) means production mode. Default "APP_ENV".
	ProductionEnv string
	// Getenv reads the environment; default os.Getenv. Tests set it.
	Getenv func(string) string
}

// dirMagic is the first line of every file of the folder back end.
const dirMagic = "phiguard-cse-v2\n"

// maxDirHeader bounds the header a reader will parse.
const maxDirHeader = 64 << 10

// NewDirStore returns a Store over a local folder, for development and for
// encrypted volumes an operator mounts on purpose. The folder is created if
// missing; it and its sub-folders are kept at mode 0700 and objects are
// files of mode 0600, written under a temporary name and renamed into
// place, so a reader sees a whole object or none.
//
// Each file holds the line "phiguard-cse-v2", a line with the object's
// metadata as a JSON object (the same "encryptiondata" JSON, and length MAC,
// as a blob's metadata), then exactly the bytes a blob's content would have.
//
// In production mode (APP_ENV=production unless ProductionEnv says
// otherwise) NewDirStore fails with ErrProductionDir unless
// opts.EncryptedVolume is set, so that PHI does not land on a container's
// own file system by accident.
func NewDirStore(dir string, kek KeyWrapper, opts *DirStoreOptions) (*Store, error) {
	var o DirStoreOptions
	if opts != nil {
		o = *opts
	}
	if o.ProductionEnv == "" {
		o.ProductionEnv = "APP_ENV"
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if strings.EqualFold(strings.TrimSpace(o.Getenv(o.ProductionEnv)), "production") && !o.EncryptedVolume {
		return nil, fmt.Errorf("%w: %s=production and DirStoreOptions.EncryptedVolume is not set; use a blob store", ErrProductionDir, o.ProductionEnv)
	}
	if dir == "" {
		return nil, errors.New("storage: empty folder path")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: folder: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, errors.New("storage: folder path is not a folder")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		//nolint:gosec // G302: a folder needs its x bit; 0700 is owner-only.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: folder is open to other users and cannot be restricted to 0700: %w", err)
		}
	}
	return newStore(&dirBackend{dir: dir}, kek, &o.Options)
}

type dirBackend struct {
	dir string
}

func (d *dirBackend) root() (*os.Root, error) {
	r, err := os.OpenRoot(d.dir)
	if err != nil {
		return nil, fmt.Errorf("folder: %w", sanitize(err))
	}
	return r, nil
}

func encodeDirHeader(md map[string]string) ([]byte, error) {
	j, err := json.Marshal(md) // keys sorted: the length depends on values only
	if err != nil {
		return nil, err
	}
	h := make([]byte, 0, len(dirMagic)+len(j)+1)
	h = append(h, dirMagic...)
	h = append(h, j...)
	return append(h, '\n'), nil
}

func (d *dirBackend) newUpload(_ context.Context, name string, md map[string]string) (upload, error) {
	hdr, err := encodeDirHeader(md)
	if err != nil {
		return nil, err
	}
	r, err := d.root()
	if err != nil {
		return nil, err
	}
	if dir := path.Dir(name); dir != "." {
		if err := r.MkdirAll(dir, 0o700); err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("folder: %w", sanitize(err))
		}
	}
	tmp := path.Join(path.Dir(name), ".tmp-"+randomName())
	f, err := r.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("folder: %w", sanitize(err))
	}
	return &dirUpload{root: r, f: f, tmp: tmp, name: name, hdrLen: int64(len(hdr))}, nil
}

type dirUpload struct {
	root   *os.Root
	f      *os.File
	tmp    string
	name   string
	hdrLen int64
}

func (u *dirUpload) stage(ctx context.Context, _ int, offset int64, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := u.f.WriteAt(data, u.hdrLen+offset); err != nil {
		return fmt.Errorf("folder: write: %w", sanitize(err))
	}
	return nil
}

func (u *dirUpload) commit(ctx context.Context, _ int, md map[string]string, noOverwrite bool) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	hdr, err := encodeDirHeader(md)
	if err != nil {
		return time.Time{}, err
	}
	if int64(len(hdr)) != u.hdrLen {
		return time.Time{}, errors.New("folder: header changed size")
	}
	if _, err := u.f.WriteAt(hdr, 0); err != nil {
		return time.Time{}, fmt.Errorf("folder: write: %w", sanitize(err))
	}
	if err := u.f.Sync(); err != nil {
		return time.Time{}, fmt.Errorf("folder: sync: %w", sanitize(err))
	}
	if err := u.f.Close(); err != nil {
		return time.Time{}, fmt.Errorf("folder: close: %w", sanitize(err))
	}
	u.f = nil
	if err := publish(u.root, u.tmp, u.name, noOverwrite); err != nil {
		return time.Time{}, err
	}
	fi, err := u.root.Stat(u.name)
	_ = u.root.Close()
	if err != nil {
		return time.Time{}, fmt.Errorf("folder: %w", sanitize(err))
	}
	return fi.ModTime(), nil
}

// publish renames tmp to name (or links it, when it must not replace an
// existing file) and syncs the folder so the rename survives a crash.
func publish(r *os.Root, tmp, name string, noOverwrite bool) error {
	if noOverwrite {
		err := r.Link(tmp, name)
		_ = r.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		if err != nil {
			return fmt.Errorf("folder: link: %w", sanitize(err))
		}
	} else if err := r.Rename(tmp, name); err != nil {
		_ = r.Remove(tmp)
		return fmt.Errorf("folder: rename: %w", sanitize(err))
	}
	if dir, err := r.Open(path.Dir(name)); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return nil
}

func (u *dirUpload) abort() {
	if u.f != nil {
		_ = u.f.Close()
	}
	_ = u.root.Remove(u.tmp)
	_ = u.root.Close()
}

type fileBody struct {
	io.Reader
	f *os.File
}

func (b *fileBody) Close() error { return b.f.Close() }

// openFile opens name and parses its header; it returns the open file, the
// metadata, the header length and the file's info.
func (d *dirBackend) openFile(name string) (*os.File, map[string]string, int64, fs.FileInfo, error) {
	r, err := d.root()
	if err != nil {
		return nil, nil, 0, nil, err
	}
	defer r.Close()
	f, err := r.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, 0, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("folder: %w", sanitize(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, 0, nil, err
	}
	md, hdrLen, err := readDirHeader(io.NewSectionReader(f, 0, min(fi.Size(), maxDirHeader)))
	if err != nil {
		_ = f.Close()
		return nil, nil, 0, nil, err
	}
	return f, md, hdrLen, fi, nil
}

func readDirHeader(r io.Reader) (map[string]string, int64, error) {
	br := bufio.NewReaderSize(r, 4096)
	magic, err := br.ReadString('\n')
	if err != nil || magic != dirMagic {
		return nil, 0, fmt.Errorf("%w: not a phiguard folder-store file", ErrFormat)
	}
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, 0, fmt.Errorf("%w: folder-store header incomplete", ErrFormat)
	}
	var md map[string]string
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&md); err != nil {
		return nil, 0, fmt.Errorf("%w: folder-store header: %w", ErrFormat, err)
	}
	lower := make(map[string]string, len(md))
	for k, v := range md {
		lower[strings.ToLower(k)] = v
	}
	return lower, int64(len(magic) + len(line)), nil
}

func (d *dirBackend) open(ctx context.Context, name string) (*rawObject, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, md, hdrLen, fi, err := d.openFile(name)
	if err != nil {
		return nil, err
	}
	size := fi.Size() - hdrLen
	return &rawObject{
		body:         &fileBody{Reader: &ctxReader{ctx: ctx, r: io.NewSectionReader(f, hdrLen, size)}, f: f},
		size:         size,
		md:           md,
		lastModified: fi.ModTime(),
	}, nil
}

// ctxReader stops a long read when its context ends, as the blob back end
// does.
type ctxReader struct {
	ctx context.Context //nolint:containedctx // the read belongs to the Get call's context.
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func fileTag(fi fs.FileInfo) string {
	return fmt.Sprintf("%d-%d", fi.ModTime().UnixNano(), fi.Size())
}

func (d *dirBackend) properties(ctx context.Context, name string) (map[string]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	f, md, _, fi, err := d.openFile(name)
	if err != nil {
		return nil, "", err
	}
	_ = f.Close()
	return md, fileTag(fi), nil
}

// setMetadata writes a new file with the new header and the same content
// bytes, then renames it over the old one if that one is unchanged.
func (d *dirBackend) setMetadata(ctx context.Context, name string, md map[string]string, etag string) error {
	f, _, hdrLen, fi, err := d.openFile(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if fileTag(fi) != etag {
		return ErrConflict
	}
	hdr, err := encodeDirHeader(md)
	if err != nil {
		return err
	}
	r, err := d.root()
	if err != nil {
		return err
	}
	defer r.Close()
	tmp := path.Join(path.Dir(name), ".tmp-"+randomName())
	out, err := r.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("folder: %w", sanitize(err))
	}
	fail := func(err error) error {
		_ = out.Close()
		_ = r.Remove(tmp)
		return err
	}
	if _, err := out.Write(hdr); err != nil {
		return fail(fmt.Errorf("folder: write: %w", sanitize(err)))
	}
	if _, err := io.Copy(out, &ctxReader{ctx: ctx, r: io.NewSectionReader(f, hdrLen, fi.Size()-hdrLen)}); err != nil {
		return fail(fmt.Errorf("folder: copy: %w", sanitize(err)))
	}
	if err := out.Sync(); err != nil {
		return fail(fmt.Errorf("folder: sync: %w", sanitize(err)))
	}
	if err := out.Close(); err != nil {
		_ = r.Remove(tmp)
		return fmt.Errorf("folder: close: %w", sanitize(err))
	}
	// Narrow, not close, the window for a concurrent Put: the folder back
	// end is for development; the blob back end uses an ETag condition.
	if cur, err := r.Stat(name); err != nil || fileTag(cur) != etag {
		_ = r.Remove(tmp)
		return ErrConflict
	}
	return publish(r, tmp, name, false)
}

func (d *dirBackend) remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := d.root()
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("folder: %w", sanitize(err))
	}
	if err := r.Remove(name); err != nil {
		return fmt.Errorf("folder: remove: %w", sanitize(err))
	}
	return nil
}

func (d *dirBackend) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := d.root()
	if err != nil {
		return err
	}
	defer r.Close()
	probe := ".tmp-check-" + randomName()
	f, err := r.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("folder not writable: %w", sanitize(err))
	}
	_ = f.Close()
	return r.Remove(probe)
}
