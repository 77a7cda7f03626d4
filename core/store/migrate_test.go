package store_test

// Black-box tests of the versioned migrations and of the schema they build.
// Every test runs on SQLite and, when DATAPULSE_TEST_POSTGRES_URL is set, on
// PostgreSQL; each one gets its own fresh database (an SQLite file in a temp
// directory, a throw-away PostgreSQL database), so they run in parallel.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/datapulse/datapulse/ent/privacy"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
	entschema "entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/dialect/sql/sqlgraph"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alert"
	entmigrate "github.com/datapulse/datapulse/ent/migrate"
	"github.com/datapulse/datapulse/ent/migrate/migrations"
	"github.com/datapulse/datapulse/ent/schema/types"
	"github.com/datapulse/datapulse/ent/userrole"
	"github.com/datapulse/datapulse/ent/workflow"
)

// dialectOf maps a storetest target to ent's dialect name.
func dialectOf(tg storetest.Target) string {
	if tg.Name == "postgres" {
		return store.Postgres
	}
	return store.SQLite
}

func embeddedFiles(t *testing.T, dialect string) []string {
	t.Helper()
	dir, err := migrations.Dir(dialect)
	if err != nil {
		t.Fatal(err)
	}
	files, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	if len(names) == 0 {
		t.Fatalf("no embedded migration files for %s", dialect)
	}
	return names
}

// copyDir returns a writable copy of a migration directory, atlas.sum included.
func copyDir(t *testing.T, d migrate.Dir) *migrate.MemDir {
	t.Helper()
	out := &migrate.MemDir{}
	files, err := d.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := out.WriteFile(f.Name(), f.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := fs.ReadFile(d, migrate.HashFileName)
	if err != nil {
		t.Fatalf("read %s: %v", migrate.HashFileName, err)
	}
	if err := out.WriteFile(migrate.HashFileName, sum); err != nil {
		t.Fatal(err)
	}
	return out
}

func embeddedCopy(t *testing.T, dialect string) *migrate.MemDir {
	t.Helper()
	d, err := migrations.Dir(dialect)
	if err != nil {
		t.Fatal(err)
	}
	return copyDir(t, d)
}

func TestEmbeddedMigrationDirsValidate(t *testing.T) {
	t.Parallel()
	for _, d := range migrations.Dialects {
		t.Run(d, func(t *testing.T) {
			dir, err := migrations.Dir(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := migrate.Validate(dir); err != nil {
				t.Fatalf("migrations for %s do not match their atlas.sum: %v", d, err)
			}
			embeddedFiles(t, d)
		})
	}
}

// TestMigrateReplay applies the migrations to an empty database, checks that
// they are applied once and only once, and that a reopened database is
// current and keeps its rows.
func TestMigrateReplay(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		ctx := dbContext()
		want := embeddedFiles(t, dialectOf(tg))
		opts := tg.New(t)

		s, err := store.Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()

		if cur, err := s.Current(ctx); err != nil || cur {
			t.Fatalf("empty database: Current = %v, %v; want false, nil", cur, err)
		}
		st, err := s.Status(ctx)
		if err != nil {
			t.Fatalf("Status on an empty database: %v", err)
		}
		if st.Current() || !slices.Equal(st.Pending, want) || len(st.Applied) != 0 {
			t.Fatalf("empty database: Status pending=%v applied=%d; want pending=%v applied=0", st.Pending, len(st.Applied), want)
		}

		applied, err := s.Migrate(ctx)
		if err != nil {
			t.Fatalf("first Migrate: %v", err)
		}
		if !slices.Equal(applied, want) {
			t.Fatalf("first Migrate applied %v; want %v", applied, want)
		}
		again, err := s.Migrate(ctx)
		if err != nil || len(again) != 0 {
			t.Fatalf("second Migrate = %v, %v; want nothing applied", again, err)
		}

		st, err = s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Current() || len(st.Pending) != 0 {
			t.Fatalf("after Migrate: Status pending=%v; want none", st.Pending)
		}
		if len(st.Applied) != len(want) {
			t.Fatalf("after Migrate: %d revisions recorded; want %d", len(st.Applied), len(want))
		}
		for _, r := range st.Applied {
			if r.Applied != r.Total || r.Total == 0 || r.Error != "" {
				t.Errorf("revision %s: applied %d/%d, error %q; want fully applied", r.Version, r.Applied, r.Total, r.Error)
			}
			if r.ExecutedAt.IsZero() {
				t.Errorf("revision %s: no execution time recorded", r.Version)
			}
		}
		if cur, err := s.Current(ctx); err != nil || !cur {
			t.Fatalf("after Migrate: Current = %v, %v; want true, nil", cur, err)
		}

		u, err := s.Client.User.Create().SetEmail("replay@example.com").SetPassword("x").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		// Reopen the same database (same SQLite data dir, same PostgreSQL database).
		s2, err := store.Open(ctx, opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		if cur, err := s2.Current(ctx); err != nil || !cur {
			t.Fatalf("reopened: Current = %v, %v; want true, nil", cur, err)
		}
		if again, err := s2.Migrate(ctx); err != nil || len(again) != 0 {
			t.Fatalf("reopened: Migrate = %v, %v; want nothing applied", again, err)
		}
		got, err := s2.Client.User.Get(ctx, u.ID)
		if err != nil {
			t.Fatalf("reopened: the user written before is gone: %v", err)
		}
		if got.Email != u.Email {
			t.Fatalf("reopened: email %q; want %q", got.Email, u.Email)
		}
	})
}

// TestMigrationsMatchSchema fails when ent/schema changed without a migration:
// it replays the embedded files on a fresh dev database and diffs them
// against the ent schema.
func TestMigrationsMatchSchema(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		ctx := dbContext()
		dialect := dialectOf(tg)
		var dev *sql.DB
		if dialect == store.Postgres {
			u, drop, err := store.CreateTempDatabase(ctx, os.Getenv(storetest.PostgresEnv), "datapulse_dev")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(drop)
			if dev, err = sql.Open("pgx", u); err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
		}
		dir := embeddedCopy(t, dialect)
		before, _ := dir.Files()
		// The replayed files also create River's tables (river_*, from River's
		// own migrations, see core/jobs). They are not in ent/schema and the
		// diff leaves them alone: ent plans only creating or changing its own
		// tables, never dropping others. TestSchemaCatalog lists the tables
		// that may exist outside ent/schema.
		err := store.Diff(ctx, dialect, dir, dev, "drift")
		if errors.Is(err, store.ErrNoChanges) {
			return
		}
		if err != nil {
			t.Fatalf("diff %s: %v", dialect, err)
		}
		after, _ := dir.Files()
		var added []string
		for _, f := range after {
			if !slices.ContainsFunc(before, func(b migrate.File) bool { return b.Name() == f.Name() }) {
				added = append(added, fmt.Sprintf("-- %s\n%s", f.Name(), f.Bytes()))
			}
		}
		t.Fatalf("ent/schema and ent/migrate/migrations/%s have drifted apart; run "+
			"`go run ./cmd/datapulse migrate diff NAME` (with a PostgreSQL server) and commit the new files. "+
			"The missing migration would be:\n%s", migrations.Folder(dialect), strings.Join(added, "\n"))
	})
}

// TestMigrateRejectsTamperedDir checks that files that do not match atlas.sum
// are refused before anything touches the database.
func TestMigrateRejectsTamperedDir(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		change       func(t *testing.T, d *migrate.MemDir) migrate.Dir
		wantTampered bool
	}{
		{
			name: "one byte of a file edited",
			change: func(t *testing.T, d *migrate.MemDir) migrate.Dir {
				files, _ := d.Files()
				b := slices.Clone(files[0].Bytes())
				i := strings.Index(string(b), "CREATE TABLE")
				if i < 0 {
					t.Fatalf("%s has no CREATE TABLE", files[0].Name())
				}
				b[i] = 'c' // "cREATE TABLE": still valid SQL, different bytes
				if err := d.WriteFile(files[0].Name(), b); err != nil {
					t.Fatal(err)
				}
				return d
			},
			wantTampered: true,
		},
		{
			name: "file added without updating atlas.sum",
			change: func(t *testing.T, d *migrate.MemDir) migrate.Dir {
				if err := d.WriteFile("29991231000000_extra.sql", []byte("CREATE TABLE extra (id integer);\n")); err != nil {
					t.Fatal(err)
				}
				return d
			},
			wantTampered: true,
		},
		{
			// Refused too, though not reported as tampering.
			name: "atlas.sum missing",
			change: func(t *testing.T, d *migrate.MemDir) migrate.Dir {
				sumless := &migrate.MemDir{}
				files, _ := d.Files()
				for _, f := range files {
					if err := sumless.WriteFile(f.Name(), f.Bytes()); err != nil {
						t.Fatal(err)
					}
				}
				return sumless
			},
		},
	}
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := dbContext()
				s := storetest.Open(t, tg)
				dir := tc.change(t, embeddedCopy(t, s.Dialect))
				applied, err := s.MigrateDir(ctx, dir)
				if err == nil {
					t.Fatalf("MigrateDir accepted a tampered directory and applied %v", applied)
				}
				if tc.wantTampered && !errors.Is(err, store.ErrMigrationsTampered) {
					t.Fatalf("MigrateDir error = %v; want one wrapping store.ErrMigrationsTampered", err)
				}
				if len(applied) != 0 {
					t.Fatalf("MigrateDir applied %v despite the error", applied)
				}
				if tables := catalogTables(t, s); len(tables) != 0 {
					t.Fatalf("tables exist after a refused migration: %v", tables)
				}
			})
		}
	})
}

// rebuildUsers is the migration atlas writes for SQLite when a change to users
// cannot be done with ALTER TABLE: copy into a new table, drop, rename. Here
// it adds a column. The PRAGMA lines are what atlas writes; inside a
// transaction SQLite ignores them, which is the data-loss trap in NOTES.md.
const rebuildUsers = "-- Disable the enforcement of foreign-keys constraints\n" +
	"PRAGMA foreign_keys = off;\n" +
	"-- Create \"new_users\" table\n" +
	"CREATE TABLE `new_users` (`id` uuid NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `updated_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `email` text NOT NULL, `password` text NOT NULL, `name` text NULL, `role` text NOT NULL DEFAULT ('user'), `email_verified_at` datetime NULL, `department_id` uuid NULL, `nickname` text NULL, PRIMARY KEY (`id`), CONSTRAINT `users_departments_users` FOREIGN KEY (`department_id`) REFERENCES `departments` (`id`) ON DELETE SET NULL, CONSTRAINT `users_role_check` CHECK (role IN ('user', 'admin')));\n" +
	"-- Copy rows from old table \"users\" to new temporary table \"new_users\"\n" +
	"INSERT INTO `new_users` (`id`, `created_at`, `updated_at`, `email`, `password`, `name`, `role`, `email_verified_at`, `department_id`) SELECT `id`, `created_at`, `updated_at`, `email`, `password`, `name`, `role`, `email_verified_at`, `department_id` FROM `users`;\n" +
	"-- Drop \"users\" table after copying rows\n" +
	"DROP TABLE `users`;\n" +
	"-- Rename temporary table \"new_users\" to \"users\"\n" +
	"ALTER TABLE `new_users` RENAME TO `users`;\n" +
	"-- Create index \"users_email_idx\" to table: \"users\"\n" +
	"CREATE UNIQUE INDEX `users_email_idx` ON `users` (`email`);\n" +
	"-- Create index \"users_role_idx\" to table: \"users\"\n" +
	"CREATE INDEX `users_role_idx` ON `users` (`role`);\n" +
	"-- Create index \"users_department_id_idx\" to table: \"users\"\n" +
	"CREATE INDEX `users_department_id_idx` ON `users` (`department_id`);\n" +
	"-- Enable back the enforcement of foreign-keys constraints\n" +
	"PRAGMA foreign_keys = on;\n"

// TestSQLiteRebuildMigrationKeepsChildRows applies an atlas-style table
// rebuild of users to a database that has rows referencing users.
func TestSQLiteRebuildMigrationKeepsChildRows(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		if dialectOf(tg) != store.SQLite {
			t.Skip("table rebuilds are how atlas alters SQLite tables; PostgreSQL uses ALTER TABLE")
		}
		t.Parallel()
		ctx := dbContext()
		s := storetest.Migrated(t, tg)
		c := s.Client
		u := c.User.Create().SetEmail("rebuild@example.com").SetPassword("x").SaveX(ctx)
		d := c.Dashboard.Create().SetOwnerID(u.ID).SetName("d").SaveX(ctx)
		c.Widget.Create().SetDashboardID(d.ID).SetType("chart").SetPosition(types.Position{W: 4, H: 3}).SaveX(ctx)
		c.Profile.Create().SetUserID(u.ID).SetBio("bio").SaveX(ctx)

		dir := embeddedCopy(t, s.Dialect)
		const name = "29991231000000_rebuild_users.sql"
		if err := dir.WriteFile(name, []byte(rebuildUsers)); err != nil {
			t.Fatal(err)
		}
		sum, err := dir.Checksum()
		if err != nil {
			t.Fatal(err)
		}
		if err := migrate.WriteSumFile(dir, sum); err != nil {
			t.Fatal(err)
		}

		applied, err := s.MigrateDir(ctx, dir)
		if err != nil {
			t.Fatalf("rebuild migration: %v", err)
		}
		if !slices.Equal(applied, []string{name}) {
			t.Fatalf("applied %v; want only %s", applied, name)
		}

		counts := map[string]int{
			"users":      c.User.Query().CountX(ctx),
			"dashboards": c.Dashboard.Query().CountX(ctx),
			"widgets":    c.Widget.Query().CountX(ctx),
			"profiles":   c.Profile.Query().CountX(ctx),
		}
		for table, n := range counts {
			if n != 1 {
				t.Errorf("after rebuilding users: %d rows in %s; want 1 (the rebuild cascaded into child rows)", n, table)
			}
		}
		if _, err := s.DB().ExecContext(ctx, "UPDATE users SET nickname = 'nick'"); err != nil {
			t.Errorf("the rebuilt users table lacks the new column: %v", err)
		}
		var fk int
		if err := s.DB().QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			t.Errorf("PRAGMA foreign_keys = %d, %v after the migration; want 1", fk, err)
		}
		rows, err := s.DB().QueryContext(ctx, "PRAGMA foreign_key_check")
		if err != nil {
			t.Fatal(err)
		}
		broken := rows.Next()
		rows.Close()
		if broken {
			t.Error("PRAGMA foreign_key_check reports broken references after the rebuild")
		}
		// The children's foreign keys now point at the rebuilt table.
		c.User.DeleteOneID(u.ID).ExecX(ctx)
		if n := c.Dashboard.Query().CountX(ctx) + c.Widget.Query().CountX(ctx) + c.Profile.Query().CountX(ctx); n != 0 {
			t.Errorf("deleting the user after the rebuild left %d child rows; want 0", n)
		}
	})
}

// ---------------------------------------------------------------------------
// Catalog: what the migrations really built, read from the database itself.

type indexInfo struct {
	Table   string
	Unique  bool
	Columns []string
}

type fkInfo struct {
	Table, Column string
}

func catalogTables(t *testing.T, s *store.Store) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.Dialect == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	return queryStrings(t, s.DB(), q)
}

func queryStrings(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// catalogIndexes returns every index by name, with its columns in order.
func catalogIndexes(t *testing.T, s *store.Store) map[string]indexInfo {
	t.Helper()
	ctx := dbContext()
	out := map[string]indexInfo{}
	if s.Dialect == store.Postgres {
		rows, err := s.DB().QueryContext(ctx, `
			SELECT i.relname, t.relname, ix.indisunique,
				(SELECT string_agg(a.attname, ',' ORDER BY k.ord)
				 FROM unnest(ix.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
				 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum)
			FROM pg_index ix
			JOIN pg_class i ON i.oid = ix.indexrelid
			JOIN pg_class t ON t.oid = ix.indrelid
			JOIN pg_namespace n ON n.oid = t.relnamespace
			WHERE n.nspname = current_schema()`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, table, cols string
			var unique bool
			if err := rows.Scan(&name, &table, &unique, &cols); err != nil {
				t.Fatal(err)
			}
			out[name] = indexInfo{Table: table, Unique: unique, Columns: strings.Split(cols, ",")}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, table := range catalogTables(t, s) {
		rows, err := s.DB().QueryContext(ctx, `SELECT name, "unique" FROM pragma_index_list(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		type idx struct {
			name   string
			unique bool
		}
		var list []idx
		for rows.Next() {
			var x idx
			if err := rows.Scan(&x.name, &x.unique); err != nil {
				t.Fatal(err)
			}
			list = append(list, x)
		}
		rows.Close()
		for _, x := range list {
			cols := queryStrings(t, s.DB(), `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, x.name)
			out[x.name] = indexInfo{Table: table, Unique: x.unique, Columns: cols}
		}
	}
	return out
}

func catalogPrimaryKey(t *testing.T, s *store.Store, table string) []string {
	t.Helper()
	if s.Dialect == store.Postgres {
		return queryStrings(t, s.DB(), `
			SELECT k.column_name FROM information_schema.table_constraints c
			JOIN information_schema.key_column_usage k
				ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema AND k.table_name = c.table_name
			WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() AND c.table_name = $1
			ORDER BY k.ordinal_position`, table)
	}
	return queryStrings(t, s.DB(), `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, table)
}

// catalogForeignKeys lists the single-column foreign keys of every table.
func catalogForeignKeys(t *testing.T, s *store.Store) []fkInfo {
	t.Helper()
	var out []fkInfo
	if s.Dialect == store.Postgres {
		rows, err := s.DB().QueryContext(context.Background(), `
			SELECT t.relname, a.attname FROM pg_constraint c
			JOIN pg_class t ON t.oid = c.conrelid
			JOIN pg_namespace n ON n.oid = t.relnamespace
			JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = c.conkey[1]
			WHERE c.contype = 'f' AND n.nspname = current_schema() AND cardinality(c.conkey) = 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var fk fkInfo
			if err := rows.Scan(&fk.Table, &fk.Column); err != nil {
				t.Fatal(err)
			}
			out = append(out, fk)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, table := range catalogTables(t, s) {
		for _, col := range queryStrings(t, s.DB(), `SELECT "from" FROM pragma_foreign_key_list(?)`, table) {
			out = append(out, fkInfo{Table: table, Column: col})
		}
	}
	return out
}

// unindexedForeignKeys are the foreign-key columns known to have no index of
// their own. Remove an entry once a migration adds the index.
var unindexedForeignKeys = map[string]string{}

// riverTables are the tables River's migrations (ent/migrate/migrations/*/
// *_river_v*.sql) create for the job queue of core/jobs.
var riverTables = []string{"river_job", "river_leader", "river_migration", "river_notification", "river_queue"}

// builtinRoles are the roles the builtin_roles migration seeds.
const builtinRoles = 3

// seedTables are the 19 tables of the original design (docs/schema.md, "Relationships").
var seedTables = []string{
	"users", "departments", "profiles", "roles", "user_roles", "dashboards", "widgets",
	"dashboard_shares", "alerts", "alert_notifications", "reports", "data_sources",
	"queries", "data_models", "workflows", "posts", "comments", "tags", "post_tags",
}

func TestSchemaCatalog(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		s := storetest.Migrated(t, tg)

		t.Run("tables", func(t *testing.T) {
			have := catalogTables(t, s)
			for _, want := range append(slices.Clone(seedTables), "sessions", "api_tokens", store.RevisionsTable) {
				if !slices.Contains(have, want) {
					t.Errorf("table %s is missing (have %v)", want, have)
				}
			}
			// Every other table belongs to the ent schema, except atlas's
			// revisions and River's job tables: River's tables come from
			// River's own migrations (core/jobs, RiverModuleVersion), are not
			// described by ent/schema, and TestMigrationsMatchSchema's ent diff
			// ignores them (it only plans creating or changing ent's tables).
			// Their shape is checked against River's migrator in core/jobs.
			for _, table := range have {
				if !slices.ContainsFunc(entmigrate.Tables, func(et *entschema.Table) bool { return et.Name == table }) &&
					table != store.RevisionsTable && !slices.Contains(riverTables, table) {
					t.Errorf("table %s is neither in ent/schema nor one of River's %v", table, riverTables)
				}
			}
			for _, want := range riverTables {
				if !slices.Contains(have, want) {
					t.Errorf("River's table %s is missing (have %v)", want, have)
				}
			}
		})

		indexes := catalogIndexes(t, s)
		t.Run("seed indexes", func(t *testing.T) {
			for _, want := range []struct {
				name, table string
				unique      bool
				columns     []string
			}{
				{"users_email_idx", "users", true, []string{"email"}},
				{"users_role_idx", "users", false, []string{"role"}},
				{"profiles_user_id_idx", "profiles", true, []string{"user_id"}},
				{"posts_user_id_idx", "posts", false, []string{"user_id"}},
				{"posts_status_idx", "posts", false, []string{"status"}},
				{"posts_published_at_idx", "posts", false, []string{"published_at"}},
				{"comments_post_id_idx", "comments", false, []string{"post_id"}},
				{"comments_user_id_idx", "comments", false, []string{"user_id"}},
				{"comments_post_user_idx", "comments", false, []string{"post_id", "user_id"}},
				{"roles_name_idx", "roles", true, []string{"name"}},
				{"tags_name_idx", "tags", true, []string{"name"}},
				{"tags_slug_idx", "tags", true, []string{"slug"}},
				{"user_roles_role_id_idx", "user_roles", false, []string{"role_id"}},
				{"post_tags_tag_id_idx", "post_tags", false, []string{"tag_id"}},
				// Ours, not the seed's: duplicate department names answer 409.
				{"departments_name_idx", "departments", true, []string{"name"}},
			} {
				got, ok := indexes[want.name]
				switch {
				case !ok:
					t.Errorf("index %s is missing", want.name)
				case got.Table != want.table || got.Unique != want.unique || !slices.Equal(got.Columns, want.columns):
					t.Errorf("index %s = %+v; want table %s unique=%v columns %v", want.name, got, want.table, want.unique, want.columns)
				}
			}
		})

		t.Run("composite primary keys", func(t *testing.T) {
			for table, want := range map[string][]string{
				"user_roles":       {"user_id", "role_id"},
				"post_tags":        {"post_id", "tag_id"},
				"dashboard_shares": {"dashboard_id", "user_id"},
			} {
				if got := catalogPrimaryKey(t, s, table); !slices.Equal(got, want) {
					t.Errorf("primary key of %s = %v; want %v", table, got, want)
				}
			}
			for _, table := range seedTables {
				if pk := catalogPrimaryKey(t, s, table); len(pk) == 0 {
					t.Errorf("table %s has no primary key", table)
				}
			}
		})

		// Every foreign-key column leads an index (a primary key counts), so
		// ON DELETE actions and joins never scan the child table.
		t.Run("foreign keys indexed", func(t *testing.T) {
			fks := catalogForeignKeys(t, s)
			if len(fks) < 20 {
				t.Fatalf("only %d foreign keys found: %v", len(fks), fks)
			}
			for _, fk := range fks {
				if reason, ok := unindexedForeignKeys[fk.Table+"."+fk.Column]; ok {
					t.Logf("known unindexed foreign key %s.%s: %s", fk.Table, fk.Column, reason)
					continue
				}
				pk := catalogPrimaryKey(t, s, fk.Table)
				covered := len(pk) > 0 && pk[0] == fk.Column
				for _, ix := range indexes {
					if ix.Table == fk.Table && ix.Columns[0] == fk.Column {
						covered = true
					}
				}
				if !covered {
					t.Errorf("foreign key %s.%s has no index starting with it", fk.Table, fk.Column)
				}
			}
		})
	})
}

// ---------------------------------------------------------------------------
// Behaviour of the constraints, through the ent client.

func newUser(t *testing.T, c *ent.Client, email string) *ent.User {
	t.Helper()
	u, err := c.User.Create().SetEmail(email).SetPassword("$argon2id$x").Save(context.Background())
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// owned creates one row of every kind a user owns and returns the ids the
// cascade test checks.
type owned struct {
	dashboard, post, alert uuid.UUID
}

func createOwned(t *testing.T, c *ent.Client, u *ent.User) owned {
	t.Helper()
	ctx := dbContext()
	d := c.Dashboard.Create().SetOwnerID(u.ID).SetName("board of " + u.Email).SaveX(ctx)
	c.Widget.Create().SetDashboardID(d.ID).SetType("table").SetPosition(types.Position{W: 6, H: 4}).SaveX(ctx)
	c.Report.Create().SetDashboardID(d.ID).SetSchedule("0 8 * * 1").SetFormat("pdf").SetRecipients([]string{u.Email}).SaveX(ctx)
	c.Profile.Create().SetUserID(u.ID).SetBio("hello").SaveX(ctx)
	a := c.Alert.Create().SetUserID(u.ID).SetMetric("cpu").SetThresholdType(alert.ThresholdTypeAbove).SetThresholdValue(0.9).SaveX(ctx)
	c.AlertNotification.Create().SetAlertID(a.ID).SetUserID(u.ID).SaveX(ctx)
	c.SavedQuery.Create().SetUserID(u.ID).SetName("q").SetSQL("SELECT 1").SaveX(ctx)
	c.DataModel.Create().SetUserID(u.ID).SetName("m").SaveX(ctx)
	p := c.Post.Create().SetUserID(u.ID).SetTitle("t").SetContent("c").SaveX(ctx)
	c.Comment.Create().SetPostID(p.ID).SetUserID(u.ID).SetContent("own comment").SaveX(ctx)
	c.Session.Create().SetUserID(u.ID).SetRefreshHash(strings.Repeat("a", 64)).SetExpiresAt(time.Now().Add(time.Hour)).SaveX(ctx)
	c.APIToken.Create().SetUserID(u.ID).SetName("ci").SetTokenHash(fmt.Sprintf("%x%x", u.ID[:], u.ID[:])).SetPrefix("dp_x").SaveX(ctx)
	c.Workflow.Create().SetRequesterID(u.ID).SetType("publish").SaveX(ctx)
	return owned{dashboard: d.ID, post: p.ID, alert: a.ID}
}

func TestDeleteUserCascades(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		ctx := dbContext()
		c := storetest.Migrated(t, tg).Client

		victim := newUser(t, c, "victim@example.com")
		other := newUser(t, c, "other@example.com")
		v := createOwned(t, c, victim)
		o := createOwned(t, c, other)

		// Rows that tie the two users together.
		c.DashboardShare.Create().SetDashboardID(v.dashboard).SetUserID(other.ID).SaveX(ctx)
		c.DashboardShare.Create().SetDashboardID(o.dashboard).SetUserID(victim.ID).SaveX(ctx)
		c.Comment.Create().SetPostID(v.post).SetUserID(other.ID).SetContent("on the victim's post").SaveX(ctx)
		c.Comment.Create().SetPostID(o.post).SetUserID(victim.ID).SetContent("by the victim").SaveX(ctx)
		c.AlertNotification.Create().SetAlertID(o.alert).SetUserID(victim.ID).SaveX(ctx)
		tag := c.Tag.Create().SetName("news").SetSlug("news").SaveX(ctx)
		c.PostTag.Create().SetPostID(v.post).SetTagID(tag.ID).SaveX(ctx)
		c.PostTag.Create().SetPostID(o.post).SetTagID(tag.ID).SaveX(ctx)
		role := c.Role.Create().SetName("test-editor").SaveX(ctx)
		c.UserRole.Create().SetUserID(victim.ID).SetRoleID(role.ID).SaveX(ctx)
		c.UserRole.Create().SetUserID(other.ID).SetRoleID(role.ID).SetAssignedBy(victim.ID).SaveX(ctx)
		approved := c.Workflow.Create().SetRequesterID(other.ID).SetApproverID(victim.ID).SetType("publish").
			SetStatus(workflow.StatusApproved).SaveX(ctx)

		counts := []struct {
			table         string
			count         func() int
			before, after int
		}{
			{"users", func() int { return c.User.Query().CountX(ctx) }, 2, 1},
			{"profiles", func() int { return c.Profile.Query().CountX(ctx) }, 2, 1},
			{"dashboards", func() int { return c.Dashboard.Query().CountX(ctx) }, 2, 1},
			{"widgets", func() int { return c.Widget.Query().CountX(ctx) }, 2, 1},
			{"reports", func() int { return c.Report.Query().CountX(ctx) }, 2, 1},
			{"dashboard_shares", func() int { return c.DashboardShare.Query().CountX(ctx) }, 2, 0},
			{"alerts", func() int { return c.Alert.Query().CountX(ctx) }, 2, 1},
			{"alert_notifications", func() int { return c.AlertNotification.Query().CountX(ctx) }, 3, 1},
			{"queries", func() int { return c.SavedQuery.Query().CountX(ctx) }, 2, 1},
			{"data_models", func() int { return c.DataModel.Query().CountX(ctx) }, 2, 1},
			{"posts", func() int { return c.Post.Query().CountX(ctx) }, 2, 1},
			{"comments", func() int { return c.Comment.Query().CountX(ctx) }, 4, 1},
			{"post_tags", func() int { return c.PostTag.Query().CountX(ctx) }, 2, 1},
			{"tags", func() int { return c.Tag.Query().CountX(ctx) }, 1, 1},
			{"roles", func() int { return c.Role.Query().CountX(ctx) }, 1 + builtinRoles, 1 + builtinRoles},
			{"user_roles", func() int { return c.UserRole.Query().CountX(ctx) }, 2, 1},
			{"sessions", func() int { return c.Session.Query().CountX(ctx) }, 2, 1},
			{"api_tokens", func() int { return c.APIToken.Query().CountX(ctx) }, 2, 1},
			{"workflows", func() int { return c.Workflow.Query().CountX(ctx) }, 3, 2},
		}
		for _, tc := range counts {
			if n := tc.count(); n != tc.before {
				t.Fatalf("fixture: %d rows in %s; want %d", n, tc.table, tc.before)
			}
		}

		if err := c.User.DeleteOneID(victim.ID).Exec(ctx); err != nil {
			t.Fatalf("delete user: %v", err)
		}

		for _, tc := range counts {
			if n := tc.count(); n != tc.after {
				t.Errorf("after deleting a user: %d rows in %s; want %d", n, tc.table, tc.after)
			}
		}
		// SET NULL, not CASCADE, where the deleted user only acted on another's row.
		if w, err := c.Workflow.Get(ctx, approved.ID); err != nil {
			t.Errorf("workflow approved by the deleted user is gone: %v", err)
		} else if w.ApproverID != nil {
			t.Errorf("workflow approver_id = %v; want NULL", *w.ApproverID)
		}
		if ur, err := c.UserRole.Query().Where(userrole.UserID(other.ID)).Only(ctx); err != nil {
			t.Errorf("role assigned by the deleted user is gone: %v", err)
		} else if ur.AssignedBy != nil {
			t.Errorf("user_roles.assigned_by = %v; want NULL", *ur.AssignedBy)
		}
	})
}

func TestDeleteDepartmentSetsNull(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		ctx := dbContext()
		c := storetest.Migrated(t, tg).Client
		dep := c.Department.Create().SetName("Sales").SaveX(ctx)
		u := c.User.Create().SetEmail("member@example.com").SetPassword("x").SetDepartmentID(dep.ID).SaveX(ctx)

		if err := c.Department.DeleteOneID(dep.ID).Exec(ctx); err != nil {
			t.Fatalf("delete department: %v", err)
		}
		got, err := c.User.Get(ctx, u.ID)
		if err != nil {
			t.Fatalf("the department's user is gone: %v", err)
		}
		if got.DepartmentID != nil {
			t.Fatalf("users.department_id = %v after deleting the department; want NULL", *got.DepartmentID)
		}
	})
}

func TestDeleteAssignerKeepsUserRole(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		ctx := dbContext()
		c := storetest.Migrated(t, tg).Client
		admin := newUser(t, c, "admin@example.com")
		bob := newUser(t, c, "bob@example.com")
		role := c.Role.Create().SetName("test-viewer").SetPermissions([]string{"dashboards:read"}).SaveX(ctx)
		c.UserRole.Create().SetUserID(bob.ID).SetRoleID(role.ID).SetAssignedBy(admin.ID).SaveX(ctx)

		c.User.DeleteOneID(admin.ID).ExecX(ctx)

		ur, err := c.UserRole.Query().Where(userrole.UserID(bob.ID), userrole.RoleID(role.ID)).Only(ctx)
		if err != nil {
			t.Fatalf("bob's role went with the admin who assigned it: %v", err)
		}
		if ur.AssignedBy != nil {
			t.Fatalf("user_roles.assigned_by = %v; want NULL", *ur.AssignedBy)
		}
	})
}

func TestUniqueConstraints(t *testing.T) {
	t.Parallel()
	// Each case inserts the same thing twice; the second insert must fail.
	cases := []struct {
		name   string
		insert func(ctx context.Context, c *ent.Client, f uniqFixture) error
	}{
		{"user_roles (user_id, role_id)", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.UserRole.Create().SetUserID(f.user).SetRoleID(f.role).Exec(ctx)
		}},
		{"post_tags (post_id, tag_id)", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.PostTag.Create().SetPostID(f.post).SetTagID(f.tag).Exec(ctx)
		}},
		{"dashboard_shares (dashboard_id, user_id)", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.DashboardShare.Create().SetDashboardID(f.dashboard).SetUserID(f.user).Exec(ctx)
		}},
		{"users.email", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.User.Create().SetEmail("same@example.com").SetPassword("x").Exec(ctx)
		}},
		{"profiles.user_id (1:1)", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.Profile.Create().SetUserID(f.user).Exec(ctx)
		}},
		{"roles.name", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.Role.Create().SetName("auditor").Exec(ctx)
		}},
		{"tags.name", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.Tag.Create().SetName("same-name").SetSlug("slug-" + uuid.NewString()[:8]).Exec(ctx)
		}},
		{"tags.slug", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.Tag.Create().SetName("name-" + uuid.NewString()[:8]).SetSlug("same-slug").Exec(ctx)
		}},
		{"departments.name", func(ctx context.Context, c *ent.Client, f uniqFixture) error {
			return c.Department.Create().SetName("Finance").Exec(ctx)
		}},
	}
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		ctx := dbContext()
		c := storetest.Migrated(t, tg).Client
		u := newUser(t, c, "owner@example.com")
		f := uniqFixture{
			user:      u.ID,
			role:      c.Role.Create().SetName("test-editor").SaveX(ctx).ID,
			tag:       c.Tag.Create().SetName("go").SetSlug("go").SaveX(ctx).ID,
			post:      c.Post.Create().SetUserID(u.ID).SetTitle("t").SetContent("c").SaveX(ctx).ID,
			dashboard: c.Dashboard.Create().SetOwnerID(u.ID).SetName("d").SaveX(ctx).ID,
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.insert(ctx, c, f); err != nil {
					t.Fatalf("first insert: %v", err)
				}
				err := tc.insert(ctx, c, f)
				if err == nil {
					t.Fatal("duplicate accepted")
				}
				if !ent.IsConstraintError(err) {
					t.Fatalf("duplicate rejected with %v; want an ent constraint error", err)
				}
			})
		}
	})
}

type uniqFixture struct {
	user, role, tag, post, dashboard uuid.UUID
}

// TestEnumCheckConstraints writes enum values with raw SQL, bypassing ent's
// validators: the database itself must refuse values outside the enum.
func TestEnumCheckConstraints(t *testing.T) {
	t.Parallel()
	cases := []struct{ table, column, valid string }{
		{"users", "role", "admin"},
		{"alerts", "threshold_type", "not_equal"},
		{"alerts", "status", "paused"},
		{"data_sources", "status", "disabled"},
		{"workflows", "status", "cancelled"},
		{"dashboard_shares", "permission_level", "edit"},
		{"posts", "status", "archived"},
		{"comments", "status", "deleted"},
	}
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		t.Parallel()
		ctx := dbContext()
		s := storetest.Migrated(t, tg)
		c := s.Client
		u := newUser(t, c, "enum@example.com")
		viewer := newUser(t, c, "viewer@example.com")
		o := createOwned(t, c, u)
		c.DashboardShare.Create().SetDashboardID(o.dashboard).SetUserID(viewer.ID).SaveX(ctx)
		c.DataSource.Create().SetName("warehouse").SetType("postgres").SaveX(ctx)

		for _, tc := range cases {
			t.Run(tc.table+"."+tc.column, func(t *testing.T) {
				// The statements touch every row; each table has at least one.
				set := func(v string) (int64, error) {
					res, err := s.DB().ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s = '%s'", tc.table, tc.column, v))
					if err != nil {
						return 0, err
					}
					return res.RowsAffected()
				}
				n, err := set(tc.valid)
				if err != nil {
					t.Fatalf("valid value %q rejected: %v", tc.valid, err)
				}
				if n == 0 {
					t.Fatalf("fixture has no row in %s", tc.table)
				}
				_, err = set("bogus")
				if err == nil {
					t.Fatalf("%s.%s accepted 'bogus'", tc.table, tc.column)
				}
				if !sqlgraph.IsCheckConstraintError(err) {
					t.Fatalf("%s.%s = 'bogus' failed with %v; want a CHECK constraint error", tc.table, tc.column, err)
				}
			})
		}
	})
}

// dbContext lets these schema-level tests read and write every table: the
// privacy backstop (ent/schema/privacy.go) denies callers without identity.
func dbContext() context.Context {
	return privacy.DecisionContext(context.Background(), privacy.Allow)
}
