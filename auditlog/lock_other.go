//go:build !unix

package auditlog

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/.lock; without flock, exclusion is the operator's duty.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auditlog: file sink: %w", err)
	}
	return f, nil
}
