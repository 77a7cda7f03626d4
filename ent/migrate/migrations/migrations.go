// Package migrations embeds the versioned migration files of both dialects.
// The files are generated from the ent schema by `datapulse migrate diff NAME`
// and are never edited by hand: atlas.sum pins their checksums. The
// *_river_v*.sql files are River's own migrations for the job queue, written
// by core/jobs's TestRiverMigrationFiles (see docs/jobs.md).
package migrations

import (
	"embed"
	"fmt"
	"io/fs"

	"ariga.io/atlas/sql/migrate"
)

//go:embed sqlite postgres
var files embed.FS

// Dialects lists the supported databases by their ent dialect names.
var Dialects = []string{"sqlite3", "postgres"}

// Folder is the directory holding a dialect's files.
func Folder(dialect string) string {
	if dialect == "sqlite3" {
		return "sqlite"
	}
	return dialect
}

// Dir returns the embedded migration directory of a dialect (ent's name:
// "sqlite3" or "postgres") as an in-memory atlas directory.
func Dir(dialect string) (*migrate.MemDir, error) {
	folder := Folder(dialect)
	entries, err := fs.ReadDir(files, folder)
	if err != nil {
		return nil, fmt.Errorf("migrations: no directory for dialect %q: %w", dialect, err)
	}
	dir := &migrate.MemDir{}
	for _, e := range entries {
		b, err := files.ReadFile(folder + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		if err := dir.WriteFile(e.Name(), b); err != nil {
			return nil, err
		}
	}
	return dir, nil
}
