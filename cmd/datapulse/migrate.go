package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"ariga.io/atlas/sql/migrate"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/datapulse/datapulse/core/config"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent/migrate/migrations"
)

func migrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Inspect, apply and generate the versioned migrations"}
	cmd.AddCommand(migrateStatusCmd(), migrateUpCmd(), migrateDiffCmd(), migrateHashCmd())
	return cmd
}

// dbFlags registers only the options that choose the database.
func dbFlags(fs *pflag.FlagSet) {
	fs.String("data-dir", config.DefaultDataDir, "directory of the embedded SQLite database")
	fs.String("database-url", "", "postgres://… to use PostgreSQL")
}

func openStoreFromFlags(ctx context.Context, fs *pflag.FlagSet) (*store.Store, error) {
	val := func(name string) string {
		f := fs.Lookup(name)
		if !f.Changed {
			if v, ok := os.LookupEnv(config.EnvName(name)); ok {
				return v
			}
		}
		return f.Value.String()
	}
	return store.Open(ctx, store.Options{DatabaseURL: val("database-url"), DataDir: val("data-dir")})
}

func migrateStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List applied and pending migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStoreFromFlags(cmd.Context(), cmd.Flags())
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.Status(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tDESCRIPTION\tSTATE\tEXECUTED AT")
			for _, r := range st.Applied {
				state := "applied"
				if r.Applied != r.Total {
					state = fmt.Sprintf("partial %d/%d", r.Applied, r.Total)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Version, r.Description, state, r.ExecutedAt.Format("2006-01-02 15:04:05Z"))
			}
			for _, p := range st.Pending {
				fmt.Fprintf(w, "%s\t\tpending\t\n", p)
			}
			w.Flush()
			if st.Current() {
				fmt.Fprintln(cmd.OutOrStdout(), "database is up to date")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%d migration(s) pending\n", len(st.Pending))
			}
			return nil
		},
	}
	dbFlags(cmd.Flags())
	return cmd
}

func migrateUpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up [N]",
		Short: "Apply pending migrations (all, or the next N)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			if len(args) == 1 {
				v, err := strconv.Atoi(args[0])
				if err != nil || v < 1 {
					return fmt.Errorf("N must be a positive number, got %q", args[0])
				}
				n = v
			}
			s, err := openStoreFromFlags(cmd.Context(), cmd.Flags())
			if err != nil {
				return err
			}
			defer s.Close()
			applied, err := s.MigrateN(cmd.Context(), n)
			if err != nil {
				return err
			}
			for _, f := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", f)
			}
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to apply: database is up to date")
			}
			return nil
		},
	}
	dbFlags(cmd.Flags())
	return cmd
}

func migrateDiffCmd() *cobra.Command {
	var dir, devURL string
	cmd := &cobra.Command{
		Use:   "diff NAME",
		Short: "Generate migration files for both dialects from the ent schema (developers)",
		Long: `Compares the ent schema with what the committed migration files produce and
writes one new file per dialect under DIR/{sqlite,postgres}, updating atlas.sum.
SQLite is replayed in memory; PostgreSQL needs a server (--dev-url, default
$DATAPULSE_TEST_POSTGRES_URL) on which a throw-away database is created.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if devURL == "" {
				devURL = os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
			}
			if devURL == "" {
				return errors.New("a PostgreSQL server is needed for the postgres diff: pass --dev-url")
			}
			for _, d := range migrations.Dialects {
				ld, err := migrate.NewLocalDir(filepath.Join(dir, migrations.Folder(d)))
				if err != nil {
					return err
				}
				var dev *sql.DB
				if d == store.Postgres {
					u, drop, err := store.CreateTempDatabase(ctx, devURL, "datapulse_dev")
					if err != nil {
						return err
					}
					defer drop()
					if dev, err = sql.Open("pgx", u); err != nil {
						return err
					}
					defer dev.Close()
				}
				switch err := store.Diff(ctx, d, ld, dev, args[0]); {
				case errors.Is(err, store.ErrNoChanges):
					fmt.Fprintf(cmd.OutOrStdout(), "%s: no changes\n", d)
				case err != nil:
					return err
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: new migration written\n", d)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "ent/migrate/migrations", "migration directory root")
	cmd.Flags().StringVar(&devURL, "dev-url", "", "PostgreSQL server URL for the postgres dev database")
	return cmd
}

func migrateHashCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "hash",
		Short: "Recompute atlas.sum after adding a hand-written (data) migration (developers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, d := range migrations.Dialects {
				ld, err := migrate.NewLocalDir(filepath.Join(dir, migrations.Folder(d)))
				if err != nil {
					return err
				}
				sum, err := ld.Checksum()
				if err != nil {
					return err
				}
				if err := migrate.WriteSumFile(ld, sum); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: atlas.sum written\n", migrations.Folder(d))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "ent/migrate/migrations", "migration directory root")
	return cmd
}
