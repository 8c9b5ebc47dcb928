//go:build !unix

package store

import (
	"fmt"
	"os"
)

// lockFile opens path. Without flock, nothing stops a second process.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return f, nil
}
