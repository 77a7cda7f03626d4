package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/datapulse/datapulse/core/config"
	"github.com/datapulse/datapulse/core/store"
)

// flagOrEnv is a flag's value, or its DATAPULSE_* variable when the flag was
// not given (as openStoreFromFlags reads them).
func flagOrEnv(fs *pflag.FlagSet, name string) string {
	f := fs.Lookup(name)
	if !f.Changed {
		if v, ok := os.LookupEnv(config.EnvName(name)); ok {
			return v
		}
	}
	return f.Value.String()
}

func backupCmd() *cobra.Command {
	var to, verify string
	cmd := &cobra.Command{
		Use:   "backup --to FILE | --verify FILE",
		Short: "Back up the metadata database and keys while the server runs, or verify a backup",
		Long: `backup --to FILE writes one file (gzip'd tar, mode 0600) with a consistent copy of
the metadata database, the key files of the data directory and a manifest
(version, migration revision, key fingerprints, SHA-256 of every file). It is
safe while the server runs and writes:

  SQLite      VACUUM INTO on a connection of its own (a read transaction:
              writers are not blocked), never a file copy.
  PostgreSQL  pg_dump --format=custom (one consistent snapshot); refused
              with an explanation when pg_dump is not installed.

Keys given through DATAPULSE_TOKEN_SIGNING_KEY / DATAPULSE_ENCRYPTION_KEY are
NOT put in the backup (only their fingerprints): back them up separately;
restore checks that the keys it is given match.

backup --verify FILE checks a backup: sizes and SHA-256 sums against the
manifest, PRAGMA integrity_check of the copy, and that its migrations are
complete and at a revision this binary knows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if (to == "") == (verify == "") {
				return errors.New("give exactly one of --to FILE and --verify FILE")
			}
			if verify != "" {
				res, err := store.VerifyBackup(ctx, verify)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "backup %s: OK (%s, DataPulse %s, made %s)\n", verify, res.Manifest.Dialect, res.Manifest.Version, res.Manifest.CreatedAt.Format("2006-01-02 15:04:05Z"))
				for _, c := range res.Checks {
					fmt.Fprintln(out, "  ", c)
				}
				return nil
			}
			dataDir, dbURL := flagOrEnv(cmd.Flags(), "data-dir"), flagOrEnv(cmd.Flags(), "database-url")
			if dbURL == "" {
				if _, err := os.Stat(filepath.Join(dataDir, store.BackupSQLiteName)); err != nil {
					return fmt.Errorf("no database to back up in %s: %w", dataDir, err)
				}
			}
			if _, err := os.Stat(to); err == nil {
				return fmt.Errorf("%s exists: refusing to overwrite a file (choose a new name)", to)
			}
			// The server comes first: compressing and hashing the copy is
			// CPU work that must not slow its requests down more than needed.
			lowerPriority()
			s, err := openStoreFromFlags(ctx, cmd.Flags())
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Backup(ctx, to, store.BackupOptions{DataDir: dataDir, Version: version, DatabaseURL: dbURL})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "backup written: %s (%d bytes; %s at migration %s; snapshot %v, total %v)\n",
				res.Path, res.Size, res.Manifest.Dialect, res.Manifest.MigrationRevision, res.Snapshot.Round(1e6), res.Total.Round(1e6))
			for _, k := range res.Manifest.Keys {
				if k.Included {
					fmt.Fprintf(out, "  key %s: included\n", k.File)
				} else {
					fmt.Fprintf(out, "  key %s: NOT included (it comes from the environment): back it up separately\n", k.File)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "write the backup to FILE (must not exist)")
	cmd.Flags().StringVar(&verify, "verify", "", "verify the backup FILE instead")
	dbFlags(cmd.Flags())
	return cmd
}

func restoreCmd() *cobra.Command {
	var from, dataDir string
	cmd := &cobra.Command{
		Use:   "restore --from FILE --data-dir DIR",
		Short: "Restore a backup into an empty data directory",
		Long: `restore verifies the backup (as backup --verify does) and puts its database and
key files into DIR, which must be empty or not exist: it never overwrites a
data directory. Keys that were not in the backup (they came from the
environment) must be set in the environment again and must match the
fingerprints recorded at backup time.

For a PostgreSQL backup it places the dump and the keys in DIR and prints the
pg_restore command that loads the dump into an empty database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || dataDir == "" {
				return errors.New("give --from FILE and --data-dir DIR")
			}
			res, err := store.Restore(cmd.Context(), from, dataDir, store.RestoreOptions{})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "restored %s into %s (%s, migration %s, made %s)\n", from, dataDir, res.Manifest.Dialect,
				res.Manifest.MigrationRevision, res.Manifest.CreatedAt.Format("2006-01-02 15:04:05Z"))
			for _, c := range res.Checks {
				fmt.Fprintln(out, "  ", c)
			}
			if res.Manifest.Dialect == store.SQLite {
				fmt.Fprintf(out, "start the server with: datapulse serve --data-dir %s\n", shellQuote(dataDir))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup file")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "an empty (or new) directory to restore into")
	return cmd
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, " \t'\"$\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
