package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"ariga.io/atlas/sql/migrate"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"

	entmigrate "github.com/datapulse/datapulse/ent/migrate"
)

// ErrNoChanges is returned by Diff when the migration directory already
// matches the ent schema.
var ErrNoChanges = errors.New("no schema changes: migrations match the ent schema")

// Diff writes a new migration file NAME into dir with the statements that take
// the schema the existing files produce to the current ent schema. It replays
// the directory on dev, an empty database of the dialect (in-memory SQLite
// when dev is nil and the dialect is SQLite).
func Diff(ctx context.Context, dialectName string, dir migrate.Dir, dev *sql.DB, name string) error {
	if dev == nil {
		if dialectName != SQLite {
			return errors.New("store: a PostgreSQL diff needs an empty dev database")
		}
		db, err := sql.Open("sqlite", "file:datapulse-dev?mode=memory&_pragma=foreign_keys(1)")
		if err != nil {
			return err
		}
		db.SetMaxOpenConns(1) // one in-memory database, not one per connection
		defer db.Close()
		dev = db
	}
	m, err := schema.NewMigrate(entsql.OpenDB(dialectName, dev),
		schema.WithDir(dir),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(dialectName),
		schema.WithFormatter(migrate.DefaultFormatter),
		schema.WithDropColumn(true),
		schema.WithDropIndex(true),
		schema.WithErrNoPlan(true),
	)
	if err != nil {
		return fmt.Errorf("store: diff: %w", err)
	}
	if err := m.NamedDiff(ctx, name, entmigrate.Tables...); err != nil {
		if errors.Is(err, migrate.ErrNoPlan) {
			return ErrNoChanges
		}
		return fmt.Errorf("store: diff %s: %w", dialectName, err)
	}
	return nil
}
