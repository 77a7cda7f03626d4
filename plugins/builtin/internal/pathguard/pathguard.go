// Package pathguard keeps file-based connectors away from files DataPulse
// forbids, such as its own metadata database.
package pathguard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Env lists forbidden files and directories, separated by the OS path-list
// separator (':' on Unix). The host sets it for built-in connectors: its
// data directory (which holds the metadata database) at least.
const Env = "DATAPULSE_FORBIDDEN_PATHS"

// FromEnv returns the forbidden paths of the environment.
func FromEnv() []string {
	var out []string
	for _, p := range filepath.SplitList(os.Getenv(Env)) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ErrForbidden is returned for a forbidden path.
var ErrForbidden = errors.New("refers to a file DataPulse does not allow as a data source")

// Check refuses p (canonical: absolute, symlinks resolved) if it is, or is
// the same file as, a forbidden file or one of its SQLite side files
// (-wal, -shm, -journal), or lies under a forbidden directory. Forbidden
// entries are compared both as given and with their symlinks resolved; the
// same-file test (device and inode) catches hard links and bind mounts.
func Check(p string, forbidden []string) error {
	pi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("cannot be read: %v", errors.Unwrap(err))
	}
	for _, f := range forbidden {
		if f == "" {
			continue
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		bases := []string{abs}
		if r, err := filepath.EvalSymlinks(abs); err == nil && r != abs {
			bases = append(bases, r)
		}
		for _, base := range bases {
			if fi, err := os.Stat(base); err == nil && fi.IsDir() {
				if p == base || strings.HasPrefix(p, base+string(filepath.Separator)) || os.SameFile(pi, fi) {
					return ErrForbidden
				}
				continue
			}
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				cand := base + suffix
				if p == cand {
					return ErrForbidden
				}
				if fi, err := os.Stat(cand); err == nil && os.SameFile(pi, fi) {
					return ErrForbidden
				}
			}
		}
	}
	return nil
}

// Within reports whether p (canonical) is dir (canonical) or lies under it.
func Within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}
