package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/datapulse/datapulse/core/store"
)

// RiverModuleVersion is the River release go.mod pins. River's tables are not
// created by River at run time: ent/migrate/migrations/{sqlite,postgres} hold
// River's own migrations (rivermigrate's SQL for this release) as ordinary
// checksummed files, applied by store.Migrate like every other migration.
//
// Upgrading River therefore needs a new migration file whenever the new
// release brings new River migrations: bump go.mod and this constant, run
//
//	go test ./core/jobs -run TestRiverMigrationFiles -write-river-migration
//	go run ./cmd/datapulse migrate hash
//
// and commit the new files. TestRiverMigrationFiles fails until then, and
// Service.New refuses to start on a database River considers out of date.
const RiverModuleVersion = "v0.51.2"

// templateSchema is the placeholder River's migration SQL carries where a
// schema-qualified name may go. We use the connection's current schema, as
// rivermigrate does when its Config.Schema is empty.
const templateSchema = "/* TEMPLATE: schema */"

// RiverMigrations returns River's own migrations (main line, up direction) of
// this release for a dialect, in version order.
func RiverMigrations(dialect string) ([]rivermigrate.Migration, error) {
	switch dialect {
	case store.SQLite:
		return allVersions(riversqlite.New(nil))
	case store.Postgres:
		// The SQL of riverdatabasesql's migrations is riverpgxv5's.
		return allVersions(riverdatabasesql.New(nil))
	}
	return nil, fmt.Errorf("jobs: no River migrations for dialect %q", dialect)
}

func allVersions[TTx any](d riverdriver.Driver[TTx]) ([]rivermigrate.Migration, error) {
	m, err := rivermigrate.New(d, &rivermigrate.Config{Logger: discardLogger()})
	if err != nil {
		return nil, err
	}
	return m.AllVersions(), nil
}

// RiverLatestVersion is the newest River migration version of this release.
func RiverLatestVersion(dialect string) (int, error) {
	all, err := RiverMigrations(dialect)
	if err != nil {
		return 0, err
	}
	if len(all) == 0 {
		return 0, fmt.Errorf("jobs: River has no migrations for %s", dialect)
	}
	return all[len(all)-1].Version, nil
}

// RiverMigrationFile renders River's migrations from..to (inclusive) as one
// migration file of ours: River's SQL for each version in order, then the
// rows River's own migrator would write into river_migration, so that River
// (its client and rivermigrate) sees an up-to-date schema.
func RiverMigrationFile(dialect string, from, to int) (string, error) {
	all, err := RiverMigrations(dialect)
	if err != nil {
		return "", err
	}
	name := map[string]string{store.SQLite: "SQLite", store.Postgres: "PostgreSQL"}[dialect]
	var b strings.Builder
	fmt.Fprintf(&b, "-- River (github.com/riverqueue/river %s) schema migrations %03d to %03d for %s.\n", RiverModuleVersion, from, to, name)
	b.WriteString("-- Generated from rivermigrate by\n")
	b.WriteString("--   go test ./core/jobs -run TestRiverMigrationFiles -write-river-migration\n")
	b.WriteString("-- Do not edit: TestRiverMigrationFiles compares this file with River's SQL.\n")
	var versions []string
	for _, m := range all {
		if m.Version < from || m.Version > to {
			continue
		}
		fmt.Fprintf(&b, "\n-- River migration %03d (%s)\n", m.Version, m.Name)
		sql := strings.ReplaceAll(m.SQLUp, templateSchema, "")
		if dialect == store.Postgres && m.Version == pendingEnumVersion {
			if sql, err = withPendingState(sql); err != nil {
				return "", err
			}
			b.WriteString(pendingEnumNote)
		}
		b.WriteString(strings.TrimSpace(sql))
		b.WriteString("\n")
		versions = append(versions, fmt.Sprintf("('main', %d)", m.Version))
	}
	if len(versions) != to-from+1 {
		return "", fmt.Errorf("jobs: River %s has no migrations %d..%d for %s", RiverModuleVersion, from, to, dialect)
	}
	b.WriteString("\n-- What River's migrator records after applying the versions above.\n")
	fmt.Fprintf(&b, "INSERT INTO river_migration (line, version) VALUES %s;\n", strings.Join(versions, ", "))
	return b.String(), nil
}

// pendingEnumVersion is River's PostgreSQL migration that creates the
// river_job_state enum. Migration 004 later adds 'pending' to it with ALTER
// TYPE ... ADD VALUE, and 006 uses that value in a function body. River
// applies each migration in its own transaction; store.Migrate applies all
// pending files in one, where PostgreSQL refuses to use an enum value added
// by ALTER TYPE before the transaction commits ("unsafe use of new value").
// So the file creates the enum with 'pending' already in the place 004 puts
// it (after 'discarded'); 004's ADD VALUE IF NOT EXISTS then does nothing and
// the resulting schema is River's (TestRiverSchemaMatchesRivermigrate).
const pendingEnumVersion = 2

const pendingEnumNote = "-- DataPulse: 'pending' is created here rather than added by 004's ALTER TYPE,\n" +
	"-- because all pending files are applied in one transaction (see core/jobs/migrations.go).\n"

func withPendingState(sql string) (string, error) {
	const before, after = "  'discarded',\n  'retryable',", "  'discarded',\n  'pending',\n  'retryable',"
	if strings.Count(sql, before) != 1 {
		return "", fmt.Errorf("jobs: River's migration %03d no longer creates river_job_state as expected; review withPendingState", pendingEnumVersion)
	}
	return strings.Replace(sql, before, after, 1), nil
}

// CheckRiverSchema asks River's migrator whether the database has every
// River migration of this release. It fails when a River upgrade came
// without its migration file (see RiverModuleVersion).
func CheckRiverSchema(ctx context.Context, dialect string, db *sql.DB) error {
	var res *rivermigrate.ValidateResult
	var err error
	switch dialect {
	case store.SQLite:
		res, err = validate(ctx, riversqlite.New(db))
	case store.Postgres:
		res, err = validate(ctx, riverdatabasesql.New(db))
	default:
		return fmt.Errorf("jobs: unsupported dialect %q", dialect)
	}
	if err != nil {
		return fmt.Errorf("jobs: check River's tables: %w", err)
	}
	if !res.OK {
		return fmt.Errorf("jobs: River's tables are not those of River %s (%s): a River migration file is missing from ent/migrate/migrations",
			RiverModuleVersion, strings.Join(res.Messages, "; "))
	}
	return nil
}

func validate[TTx any](ctx context.Context, d riverdriver.Driver[TTx]) (*rivermigrate.ValidateResult, error) {
	m, err := rivermigrate.New(d, &rivermigrate.Config{Logger: discardLogger()})
	if err != nil {
		return nil, err
	}
	return m.Validate(ctx, nil)
}
