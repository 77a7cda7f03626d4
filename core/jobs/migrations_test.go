package jobs_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent/migrate/migrations"
)

var writeRiverMigration = flag.Bool("write-river-migration", false,
	"write the River migration file ent/migrate/migrations lacks (then run `go run ./cmd/datapulse migrate hash`)")

// riverFile names our files holding River's migrations: <version>_river_v<from>_v<to>.sql.
var riverFile = regexp.MustCompile(`^\d+_river_v(\d{3})_v(\d{3})\.sql$`)

// TestRiverMigrationFiles checks that the River migration files in
// ent/migrate/migrations are exactly River's own SQL for the pinned release,
// and that together they reach River's newest migration: a River upgrade
// with new migrations fails here until its file is added.
func TestRiverMigrationFiles(t *testing.T) {
	for _, dialect := range migrations.Dialects {
		t.Run(dialect, func(t *testing.T) {
			dir, err := migrations.Dir(dialect)
			if err != nil {
				t.Fatal(err)
			}
			files, err := dir.Files()
			if err != nil {
				t.Fatal(err)
			}
			covered := 0
			for _, f := range files {
				m := riverFile.FindStringSubmatch(f.Name())
				if m == nil {
					continue
				}
				from, _ := strconv.Atoi(m[1])
				to, _ := strconv.Atoi(m[2])
				if from != covered+1 || to < from {
					t.Fatalf("%s covers River migrations %d..%d; want the next one to start at %d", f.Name(), from, to, covered+1)
				}
				want, err := jobs.RiverMigrationFile(dialect, from, to)
				if err != nil {
					t.Fatal(err)
				}
				if string(f.Bytes()) != want {
					t.Errorf("%s is not River %s's SQL for migrations %d..%d; a River migration file is never edited (add a new one instead). Want:\n%s",
						f.Name(), jobs.RiverModuleVersion, from, to, want)
				}
				covered = to
			}
			latest, err := jobs.RiverLatestVersion(dialect)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case covered > latest:
				t.Fatalf("migration files cover River migrations up to %d but River %s has only %d", covered, jobs.RiverModuleVersion, latest)
			case covered < latest && *writeRiverMigration:
				body, err := jobs.RiverMigrationFile(dialect, covered+1, latest)
				if err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%s_river_v%03d_v%03d.sql", time.Now().UTC().Format("20060102150405"), covered+1, latest)
				path := filepath.Join("..", "..", "ent", "migrate", "migrations", migrations.Folder(dialect), name)
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s; now run `go run ./cmd/datapulse migrate hash`", path)
			case covered < latest:
				t.Fatalf("River %s has migrations up to %d but ent/migrate/migrations/%s covers only %d: run "+
					"`go test ./core/jobs -run TestRiverMigrationFiles -write-river-migration` then `go run ./cmd/datapulse migrate hash`",
					jobs.RiverModuleVersion, latest, migrations.Folder(dialect), covered)
			}
		})
	}
}

// TestRiverSchemaCurrent applies our migrations to an empty database and asks
// River's own migrator: nothing may be pending, and the versions it finds are
// every version of the pinned release.
func TestRiverSchemaCurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		s := storetest.Migrated(t, tg)
		if err := jobs.CheckRiverSchema(ctx, s.Dialect, s.DB()); err != nil {
			t.Fatal(err)
		}
		var existing []rivermigrate.Migration
		var all []rivermigrate.Migration
		var err error
		if s.Dialect == store.SQLite {
			m, merr := rivermigrate.New(riversqlite.New(s.DB()), nil)
			if merr != nil {
				t.Fatal(merr)
			}
			existing, err = m.ExistingVersions(ctx)
			all = m.AllVersions()
		} else {
			m, merr := rivermigrate.New(riverdatabasesql.New(s.DB()), nil)
			if merr != nil {
				t.Fatal(merr)
			}
			existing, err = m.ExistingVersions(ctx)
			all = m.AllVersions()
		}
		if err != nil {
			t.Fatal(err)
		}
		version := func(m rivermigrate.Migration) int { return m.Version }
		got, want := mapSlice(existing, version), mapSlice(all, version)
		if !slices.Equal(got, want) {
			t.Fatalf("River sees versions %v applied; want %v", got, want)
		}
	})
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// TestRiverSchemaMatchesRivermigrate builds River's tables twice, through our
// migration files and through River's own migrator on an empty database, and
// compares what the database catalog says about them.
func TestRiverSchemaMatchesRivermigrate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		ours := storetest.Migrated(t, tg)
		theirs := storetest.Open(t, tg)
		var err error
		if theirs.Dialect == store.SQLite {
			var m *rivermigrate.Migrator[*sql.Tx]
			if m, err = rivermigrate.New(riversqlite.New(theirs.DB()), nil); err == nil {
				_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
			}
		} else {
			var m *rivermigrate.Migrator[*sql.Tx]
			if m, err = rivermigrate.New(riverdatabasesql.New(theirs.DB()), nil); err == nil {
				_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
			}
		}
		if err != nil {
			t.Fatalf("rivermigrate: %v", err)
		}
		a, b := riverCatalog(t, ours), riverCatalog(t, theirs)
		if len(b) < 5 {
			t.Fatalf("River's migrator built only %v", b)
		}
		if !slices.Equal(a, b) {
			for _, l := range a {
				if !slices.Contains(b, l) {
					t.Errorf("only through our files: %s", l)
				}
			}
			for _, l := range b {
				if !slices.Contains(a, l) {
					t.Errorf("only through rivermigrate: %s", l)
				}
			}
		}
	})
}

// riverCatalog describes River's tables, columns, indexes, constraints, types
// and functions, and the versions River recorded, one sorted line each.
func riverCatalog(t *testing.T, s *store.Store) []string {
	t.Helper()
	queries := []string{
		`SELECT type || ' ' || name || ' ' || tbl_name || ': ' || coalesce(sql, '') FROM sqlite_master WHERE name LIKE 'river%'`,
		`SELECT 'migration ' || line || ' ' || version FROM river_migration`,
	}
	if s.Dialect == store.Postgres {
		queries = []string{
			`SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name || ' ' || is_nullable || ' ' || coalesce(column_default, '')
				FROM information_schema.columns WHERE table_schema = current_schema() AND table_name LIKE 'river%'`,
			`SELECT 'table ' || relname || ' ' || relpersistence::text FROM pg_class WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace AND relname LIKE 'river%'`,
			`SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'river%'`,
			`SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
				FROM pg_constraint WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text LIKE 'river%'`,
			`SELECT 'enum ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e JOIN pg_type ty ON ty.oid = e.enumtypid
				WHERE ty.typname = 'river_job_state' AND ty.typnamespace = current_schema()::regnamespace`,
			`SELECT 'function ' || proname || ' ' || pg_get_function_arguments(oid) || ' ' || prosrc FROM pg_proc
				WHERE pronamespace = current_schema()::regnamespace AND proname LIKE 'river%'`,
			`SELECT 'migration ' || line || ' ' || version FROM river_migration`,
		}
	}
	var out []string
	for _, q := range queries {
		rows, err := s.DB().QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			out = append(out, l)
		}
		rows.Close()
	}
	slices.Sort(out)
	return out
}
