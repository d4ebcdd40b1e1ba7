//go:build !linux

package checks

import "errors"

// freeBytes is only implemented on Linux, the platform of the containers
// this package targets; elsewhere set MinFreeBytes negative.
func freeBytes(string) (uint64, error) {
	return 0, errors.New("not measured on this platform")
}
