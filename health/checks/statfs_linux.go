package checks

import (
	"errors"
	"syscall"
)

// freeBytes is the space available to unprivileged users (f_bavail).
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	if st.Bsize <= 0 {
		return 0, errors.New("invalid block size")
	}
	return st.Bavail * uint64(st.Bsize), nil
}
