package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// DefaultMinFreeBytes is VolumeOptions.MinFreeBytes when left zero.
const DefaultMinFreeBytes = 64 << 20

// DefaultMaxPerm is VolumeOptions.MaxPerm when left zero: owner and group
// only. A directory holding PHI must not be open to every user of the host.
const DefaultMaxPerm os.FileMode = 0o770

// VolumeOptions configures Volume. A nil *VolumeOptions means all defaults.
type VolumeOptions struct {
	// ReadOnly checks a mount that must be readable but not written (a CSI
	// secrets mount): the directory is listed instead of written to, and
	// free space is not checked.
	ReadOnly bool
	// MinFreeBytes is the free space (available to unprivileged users)
	// below which the check fails. Zero means DefaultMinFreeBytes; negative
	// disables the check (needed on systems other than Linux, where free
	// space is not measured and the check would fail).
	MinFreeBytes int64
	// MaxPerm is the widest permission the directory may have: a bit set on
	// the directory but not in MaxPerm fails the check. Zero means
	// DefaultMaxPerm (0o770). Note that a Kubernetes emptyDir is 0o777:
	// tighten it (fsGroup, an init container) or set MaxPerm to 0o777.
	MaxPerm os.FileMode
}

// Volume returns a check that dir is a directory, no more permissive than
// MaxPerm, writable (a temporary file is created, written, synced and
// removed) and has at least MinFreeBytes available. Errors name the path and
// the failed condition.
func Volume(dir string, opts *VolumeOptions) func(context.Context) error {
	var o VolumeOptions
	if opts != nil {
		o = *opts
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.MaxPerm == 0 {
		o.MaxPerm = DefaultMaxPerm
	}
	return func(ctx context.Context) error {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("checks: volume: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("checks: volume %s: not a directory", dir)
		}
		if extra := fi.Mode().Perm() &^ o.MaxPerm.Perm(); extra != 0 {
			return fmt.Errorf("checks: volume %s: permissions %04o exceed %04o", dir, fi.Mode().Perm(), o.MaxPerm.Perm())
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("checks: volume %s: %w", dir, err)
		}
		if o.ReadOnly {
			return readable(dir)
		}
		if err := writable(dir); err != nil {
			return err
		}
		if o.MinFreeBytes < 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("checks: volume %s: %w", dir, err)
		}
		free, err := freeBytes(dir)
		if err != nil {
			return fmt.Errorf("checks: volume %s: free space: %w", dir, err)
		}
		if free < uint64(o.MinFreeBytes) {
			return fmt.Errorf("checks: volume %s: %d bytes free, want at least %d", dir, free, o.MinFreeBytes)
		}
		return nil
	}
}

func readable(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checks: volume: %w", err)
	}
	defer f.Close()
	if _, err := f.ReadDir(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("checks: volume %s: not readable: %w", dir, err)
	}
	return nil
}

func writable(dir string) (err error) {
	f, err := os.CreateTemp(dir, ".health-probe-*")
	if err != nil {
		return fmt.Errorf("checks: volume %s: not writable: %w", dir, err)
	}
	name := f.Name()
	defer func() {
		if rerr := os.Remove(name); rerr != nil && err == nil {
			err = fmt.Errorf("checks: volume %s: cannot remove probe file: %w", dir, rerr)
		}
	}()
	if _, err := f.Write([]byte{'1'}); err != nil {
		_ = f.Close()
		return fmt.Errorf("checks: volume %s: write: %w", dir, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("checks: volume %s: sync: %w", dir, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("checks: volume %s: close: %w", dir, err)
	}
	return nil
}
