package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/joho/godotenv"
)

// Source is one place secrets can come from, in the spirit of
// go-envconfig's Lookuper. A Loader asks its sources in order; the first
// that holds a key wins.
//
// Implementations must be safe for concurrent use. Lookup reports
// found=false when the source does not hold the key (the loader then asks the
// next source) and an error only when the source could not answer; the error
// must never contain a secret value.
type Source interface {
	// Name identifies the source in provenance, errors and logs
	// ("env", "dotenv:.env", "dir:/mnt/secrets-store", "keyvault:name.vault.azure.net").
	Name() string
	// Lookup returns the value of a canonical key.
	Lookup(ctx context.Context, key string) (v Value, found bool, err error)
}

// Refresher is implemented by sources that cache: the loader calls Refresh at
// the start of each refresh so the source can find out what changed (Key
// Vault lists secret properties and marks changed secrets for a new GET).
type Refresher interface {
	Refresh(ctx context.Context) error
}

// Checker is implemented by sources that can tell whether they are
// reachable; [Loader.Check] calls it.
type Checker interface {
	Check(ctx context.Context) error
}

// setup is called once by NewLoader on the built-in sources: it validates
// configuration (so mistakes surface at start-up) and hands over the logger.
type setup interface {
	setup(log *slog.Logger) error
}

// devOnly marks sources a production loader refuses.
type devOnly interface {
	developmentOnly()
}

// FromEnv returns a Source reading the process environment (os.LookupEnv).
// It reads on every lookup, so a refresh sees changes made with os.Setenv.
func FromEnv() Source { return envSource{} }

type envSource struct{}

func (envSource) Name() string { return "env" }

func (envSource) Lookup(_ context.Context, key string) (Value, bool, error) {
	s, ok := os.LookupEnv(key)
	if !ok {
		return Value{}, false, nil
	}
	return NewValue(s), true, nil
}

// maxDotEnvSize bounds a .env file; a developer's file is a few kilobytes.
const maxDotEnvSize = 1 << 20

// FromDotEnv returns a Source reading a .env file, for a developer's laptop.
// The file is parsed with github.com/joho/godotenv when the Loader is built
// (NewLoader reports a missing file, wrapping fs.ErrNotExist, or a malformed
// one, naming the line but never its content). A loader in production mode
// refuses this source. Keys that are not canonical (see [ValidKey]) are
// ignored: they can never be asked for. godotenv expands $VAR in unquoted
// and double-quoted values: single-quote a value that contains '$'.
func FromDotEnv(path string) Source { return &dotEnvSource{path: path} }

type dotEnvSource struct {
	path string
	vals map[string]string // written once in setup, read-only afterwards
}

func (*dotEnvSource) developmentOnly() {}

func (s *dotEnvSource) Name() string { return "dotenv:" + s.path }

func (s *dotEnvSource) setup(*slog.Logger) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("secrets: %s: %w", s.Name(), err)
	}
	defer func() { _ = f.Close() }()
	src, err := io.ReadAll(io.LimitReader(f, maxDotEnvSize+1))
	if err != nil {
		return fmt.Errorf("secrets: %s: %w", s.Name(), err)
	}
	if len(src) > maxDotEnvSize {
		return fmt.Errorf("secrets: %s: %w: larger than %d bytes", s.Name(), ErrMalformed, maxDotEnvSize)
	}
	vals, err := parseDotEnv(src)
	if err != nil {
		// godotenv's own messages quote the offending text, which may be a
		// value: report only where the problem is.
		return fmt.Errorf("secrets: %s: line %d: %w: entry is not KEY=VALUE or has an unterminated quote (content withheld)",
			s.Name(), badDotEnvLine(src), ErrMalformed)
	}
	s.vals = vals
	return nil
}

func (s *dotEnvSource) Lookup(_ context.Context, key string) (Value, bool, error) {
	v, ok := s.vals[key]
	if !ok {
		return Value{}, false, nil
	}
	return NewValue(v), true, nil
}

// parseDotEnv parses with godotenv and also rejects what godotenv lets
// through but is certainly a mistake: a line without '=' (godotenv files it
// under an empty name).
func parseDotEnv(src []byte) (map[string]string, error) {
	vals, err := godotenv.UnmarshalBytes(src)
	if err != nil {
		return nil, err
	}
	if _, ok := vals[""]; ok {
		return nil, errors.New("entry without a name")
	}
	return vals, nil
}

// badDotEnvLine finds the 1-based line on which the first bad entry starts,
// without a parser of its own: the longest prefix of whole lines that
// godotenv accepts ends just before the bad entry (an entry may span lines
// inside quotes, so prefixes that cut one in two fail and are passed over).
// It runs only on files already known to be malformed.
func badDotEnvLine(src []byte) int {
	lines := bytes.SplitAfter(src, []byte("\n"))
	for k := len(lines) - 1; k >= 0; k-- {
		if _, err := parseDotEnv(bytes.Join(lines[:k], nil)); err != nil {
			continue
		}
		// lines[:k] parse; the bad entry starts at the first line after
		// them that is neither blank nor a comment.
		for i := k; i < len(lines); i++ {
			t := bytes.TrimSpace(lines[i])
			if len(t) > 0 && t[0] != '#' {
				return i + 1
			}
		}
		return k + 1
	}
	return 1
}

// maxSecretFileSize bounds one mounted secret; Key Vault's own limit is 25 KiB.
const maxSecretFileSize = 1 << 20

// FromDir returns a Source reading one file per secret from dir, the layout
// the Secrets Store CSI driver (and Kubernetes secret volumes) mount. For key
// DB_PASSWORD it looks for the files DB_PASSWORD, DB-PASSWORD, db_password
// and db-password, in that order. One trailing newline ("\n" or "\r\n") is
// dropped, as tools that write these files often add one.
//
// Files are read on every lookup and so on every refresh: the CSI driver
// rotates them in place. A missing file is "not found"; a file that cannot
// be read or is larger than 1 MiB is an error.
func FromDir(dir string) Source { return dirSource{dir: dir} }

type dirSource struct{ dir string }

func (s dirSource) Name() string { return "dir:" + s.dir }

func (s dirSource) Lookup(_ context.Context, key string) (Value, bool, error) {
	if !ValidKey(key) { // keeps the key from naming a path outside dir
		return Value{}, false, checkKey(key)
	}
	vn := VaultName(key)
	for _, name := range []string{key, vn, strings.ToLower(key), strings.ToLower(vn)} {
		b, err := readSecretFile(filepath.Join(s.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Value{}, false, &KeyError{Key: key, Source: s.Name(), Err: err}
		}
		v := NewValueBytes(trimNewline(b))
		clear(b)
		return v, true, nil
	}
	return Value{}, false, nil
}

// Check reports whether the directory is there (the CSI volume is mounted).
func (s dirSource) Check(context.Context) error {
	fi, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("secrets: %s: %w", s.Name(), err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("secrets: %s: %w: not a directory", s.Name(), ErrMalformed)
	}
	return nil
}

func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrMalformed, filepath.Base(path))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretFileSize {
		clear(b)
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformed, filepath.Base(path), maxSecretFileSize)
	}
	return b, nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
