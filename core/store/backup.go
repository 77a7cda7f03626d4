package store

// Backup and restore of the metadata database.
//
// A backup is one gzip-compressed tar file (mode 0600) holding, in order:
//
//	manifest.json          format, DataPulse version, dialect, migration
//	                       revision, key fingerprints, and the size and
//	                       SHA-256 of every other entry
//	datapulse.db           SQLite: a consistent snapshot made by VACUUM INTO
//	datapulse.pgdump       PostgreSQL: pg_dump --format=custom
//	token-signing.key      the key files of the data directory, when the
//	encryption.key         keys come from files (not from the environment)
//
// The snapshot is taken while the server runs and writes: VACUUM INTO reads
// the database in one read transaction (WAL: writers are not blocked) and
// writes a compacted copy; pg_dump reads in one REPEATABLE READ snapshot.
// Never a file copy: a copy of a live SQLite file and its WAL is not a
// database.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/datapulse/datapulse/ent/migrate/migrations"
)

// Backup entry names.
const (
	BackupManifestName = "manifest.json"
	BackupSQLiteName   = "datapulse.db"
	BackupPGDumpName   = "datapulse.pgdump"
	backupFormat       = 1
)

// KeyFiles are the key files a data directory holds (see core/config), with
// the environment variable that replaces each.
var KeyFiles = []struct{ File, Env string }{
	{"token-signing.key", "DATAPULSE_TOKEN_SIGNING_KEY"},
	{"encryption.key", "DATAPULSE_ENCRYPTION_KEY"},
}

// BackupManifest describes a backup file.
type BackupManifest struct {
	Format    int       `json:"format"`
	Version   string    `json:"datapulse_version"`
	CreatedAt time.Time `json:"created_at"`
	Dialect   string    `json:"dialect"`
	// MigrationRevision is the newest applied migration of the copy.
	MigrationRevision string `json:"migration_revision"`
	// Keys: file name → fingerprint (SHA-256 of "datapulse-key-fingerprint\x00"
	// and the key: identifies the key without revealing it) and whether the
	// key file is inside the backup.
	Keys  []BackupKey  `json:"keys"`
	Files []BackupFile `json:"files"`
}

// BackupKey is one key the data was written with.
type BackupKey struct {
	File        string `json:"file"`
	Fingerprint string `json:"fingerprint"`
	// Included is false when the key came from the environment: it must be
	// backed up separately and given to the restored server the same way.
	Included bool `json:"included"`
}

// BackupFile is one entry of the archive besides the manifest.
type BackupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// KeyFingerprint identifies a key without revealing it.
func KeyFingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte("datapulse-key-fingerprint\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))
}

// BackupOptions tune Backup.
type BackupOptions struct {
	// DataDir holds the key files.
	DataDir string
	// LookupEnv finds keys given through the environment (os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Version is the DataPulse version recorded in the manifest.
	Version string
	// PGDump is the pg_dump executable ("" : looked up on PATH).
	PGDump string
	// DatabaseURL is the PostgreSQL URL (pg_dump connects on its own).
	DatabaseURL string
}

// BackupResult says what Backup wrote.
type BackupResult struct {
	Manifest BackupManifest
	Path     string
	Size     int64
	// Snapshot is how long taking the database copy took.
	Snapshot time.Duration
	Total    time.Duration
}

// Backup writes a backup of s to dst (replaced atomically; mode 0600). It is
// safe while a server uses the database, and is what a scheduled job calls.
func (s *Store) Backup(ctx context.Context, dst string, o BackupOptions) (BackupResult, error) {
	start := time.Now()
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	res := BackupResult{Path: dst}
	m := BackupManifest{Format: backupFormat, Version: o.Version, CreatedAt: time.Now().UTC(), Dialect: s.Dialect}

	// Keys first: a backup that cannot be restored is refused before any work.
	type keyEntry struct {
		name string
		data []byte
	}
	var keys []keyEntry
	for _, k := range KeyFiles {
		if v, ok := o.LookupEnv(k.Env); ok && v != "" {
			m.Keys = append(m.Keys, BackupKey{File: k.File, Fingerprint: KeyFingerprint([]byte(v))})
			continue
		}
		b, err := os.ReadFile(filepath.Join(o.DataDir, k.File))
		if err != nil {
			return res, fmt.Errorf("backup: key file %s: %w (give --data-dir of the server, or set %s)", k.File, err, k.Env)
		}
		m.Keys = append(m.Keys, BackupKey{File: k.File, Fingerprint: KeyFingerprint(b), Included: true})
		keys = append(keys, keyEntry{k.File, b})
	}

	tmpDir, err := os.MkdirTemp(filepath.Dir(dst), ".datapulse-backup-")
	if err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)

	// The snapshot.
	snapStart := time.Now()
	var dbName, dbPath string
	switch s.Dialect {
	case SQLite:
		dbName, dbPath = BackupSQLiteName, filepath.Join(tmpDir, BackupSQLiteName)
		if err := VacuumInto(ctx, s.Path, dbPath); err != nil {
			return res, err
		}
		rev, err := sqliteRevision(ctx, dbPath)
		if err != nil {
			return res, fmt.Errorf("backup: read the copy's migration revision: %w", err)
		}
		m.MigrationRevision = rev
	case Postgres:
		dbName, dbPath = BackupPGDumpName, filepath.Join(tmpDir, BackupPGDumpName)
		rev, err := latestRevision(ctx, s.write, Postgres)
		if err != nil {
			return res, fmt.Errorf("backup: read the migration revision: %w", err)
		}
		m.MigrationRevision = rev
		if err := pgDump(ctx, o.PGDump, o.DatabaseURL, dbPath); err != nil {
			return res, err
		}
	default:
		return res, fmt.Errorf("backup: unsupported dialect %q", s.Dialect)
	}
	res.Snapshot = time.Since(snapStart)

	// The archive: manifest first, so verify and restore read it before
	// the data.
	sum, size, err := fileSHA256(dbPath)
	if err != nil {
		return res, err
	}
	m.Files = append(m.Files, BackupFile{Name: dbName, Size: size, SHA256: sum})
	for _, k := range keys {
		h := sha256.Sum256(k.data)
		m.Files = append(m.Files, BackupFile{Name: k.name, Size: int64(len(k.data)), SHA256: hex.EncodeToString(h[:])})
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return res, err
	}
	tmpOut := filepath.Join(tmpDir, "out")
	f, err := os.OpenFile(tmpOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	addBytes := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: m.CreatedAt, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := addBytes(BackupManifestName, manifest); err != nil {
		return res, fmt.Errorf("backup: write: %w", err)
	}
	df, err := os.Open(dbPath)
	if err != nil {
		return res, err
	}
	err = tw.WriteHeader(&tar.Header{Name: dbName, Mode: 0o600, Size: size, ModTime: m.CreatedAt, Typeflag: tar.TypeReg})
	if err == nil {
		_, err = io.Copy(tw, df)
	}
	df.Close()
	if err != nil {
		return res, fmt.Errorf("backup: write: %w", err)
	}
	for _, k := range keys {
		if err := addBytes(k.name, k.data); err != nil {
			return res, fmt.Errorf("backup: write: %w", err)
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return res, fmt.Errorf("backup: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("backup: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("backup: write: %w", err)
	}
	if err := os.Rename(tmpOut, dst); err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync() //nolint:errcheck // best effort: the rename's durability
		d.Close()
	}
	st, err := os.Stat(dst)
	if err == nil {
		res.Size = st.Size()
	}
	res.Manifest = m
	res.Total = time.Since(start)
	return res, nil
}

// VacuumInto writes a consistent, compacted copy of the SQLite database at
// src to dst (which must not exist) with VACUUM INTO, on a connection of its
// own: it holds a read transaction only, so a server writing to src (WAL
// mode) is not blocked.
func VacuumInto(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("backup: VACUUM INTO: %w", err)
	}
	return os.Chmod(dst, 0o600)
}

func pgDump(ctx context.Context, bin, dbURL, dst string) error {
	if bin == "" {
		p, err := exec.LookPath("pg_dump")
		if err != nil {
			return errors.New("backup: PostgreSQL metadata is backed up with pg_dump, which is not installed (PATH): " +
				"install the PostgreSQL client tools of your server's major version, or back the database up with your own PostgreSQL tooling " +
				"(pg_dump, pg_basebackup, PITR) and the key files separately")
		}
		bin = p
	}
	// --format=custom: compressed, restorable with pg_restore, one consistent
	// snapshot (pg_dump runs in a REPEATABLE READ transaction).
	cmd := exec.CommandContext(ctx, bin, "--format=custom", "--no-owner", "--no-privileges", "--file", dst, "--dbname", dbURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(strings.ToLower(msg), "password") {
			msg = "(details withheld: they may contain credentials)"
		}
		return fmt.Errorf("backup: pg_dump failed: %v: %s", err, msg)
	}
	return os.Chmod(dst, 0o600)
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// sqliteRevision is the newest applied migration of the SQLite file at path.
func sqliteRevision(ctx context.Context, path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return "", err
	}
	defer db.Close()
	return latestRevision(ctx, db, SQLite)
}

func latestRevision(ctx context.Context, db *sql.DB, dialect string) (string, error) {
	revs, err := (&revisions{q: db, dialect: dialect}).ReadRevisions(ctx)
	if err != nil {
		return "", err
	}
	if len(revs) == 0 {
		return "", errors.New("no migration applied")
	}
	latest := ""
	for _, r := range revs {
		if r.Applied != r.Total {
			return "", fmt.Errorf("migration %s is only partly applied (%d/%d)", r.Version, r.Applied, r.Total)
		}
		latest = max(latest, r.Version)
	}
	return latest, nil
}

// VerifyResult is what VerifyBackup found.
type VerifyResult struct {
	Manifest BackupManifest
	// Checks lists what was checked, for the operator.
	Checks []string
}

// VerifyBackup checks a backup file: every entry against the manifest's size
// and SHA-256, no entry missing or extra; for SQLite the copy's PRAGMA
// integrity_check and that its migrations are complete, at the manifest's
// revision, and known to this binary. For a pg_dump archive,
// pg_restore --list when pg_restore is installed.
func VerifyBackup(ctx context.Context, path string) (VerifyResult, error) {
	dir, err := os.MkdirTemp("", "datapulse-verify-")
	if err != nil {
		return VerifyResult{}, err
	}
	defer os.RemoveAll(dir)
	return extractAndCheck(ctx, path, dir)
}

// extractAndCheck extracts the backup into dir (which must exist) and checks it.
func extractAndCheck(ctx context.Context, path, dir string) (VerifyResult, error) {
	var res VerifyResult
	m, err := extractBackup(path, dir)
	if err != nil {
		return res, err
	}
	res.Manifest = m
	res.Checks = append(res.Checks, fmt.Sprintf("%d file(s) match the manifest's sizes and SHA-256 sums", len(m.Files)))
	switch m.Dialect {
	case SQLite:
		db := filepath.Join(dir, BackupSQLiteName)
		if err := integrityCheck(ctx, db); err != nil {
			return res, err
		}
		res.Checks = append(res.Checks, "PRAGMA integrity_check: ok")
		rev, err := sqliteRevision(ctx, db)
		if err != nil {
			return res, fmt.Errorf("verify: migrations: %w", err)
		}
		if rev != m.MigrationRevision {
			return res, fmt.Errorf("verify: the copy is at migration %s but the manifest says %s", rev, m.MigrationRevision)
		}
		if err := knownRevision(SQLite, rev); err != nil {
			return res, err
		}
		res.Checks = append(res.Checks, "migrations complete, at revision "+rev+" (known to this binary)")
	case Postgres:
		if err := knownRevision(Postgres, m.MigrationRevision); err != nil {
			return res, err
		}
		if p, err := exec.LookPath("pg_restore"); err == nil {
			out, err := exec.CommandContext(ctx, p, "--list", filepath.Join(dir, BackupPGDumpName)).CombinedOutput()
			if err != nil {
				return res, fmt.Errorf("verify: pg_restore --list: %v: %s", err, bytes.TrimSpace(out))
			}
			res.Checks = append(res.Checks, "pg_restore --list: readable")
		} else {
			res.Checks = append(res.Checks, "pg_restore not installed: the dump's contents were not listed")
		}
		res.Checks = append(res.Checks, "migration revision "+m.MigrationRevision+" (known to this binary)")
	default:
		return res, fmt.Errorf("verify: unknown dialect %q in the manifest", m.Dialect)
	}
	return res, nil
}

func knownRevision(dialect, rev string) error {
	dir, err := migrations.Dir(dialect)
	if err != nil {
		return err
	}
	files, err := dir.Files()
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.Version() == rev {
			return nil
		}
	}
	return fmt.Errorf("verify: migration revision %s is unknown to this binary (made by a newer DataPulse?)", rev)
}

func integrityCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("verify: integrity_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verify: integrity_check: %w", err)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], "…")
		}
		return fmt.Errorf("verify: integrity_check failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// extractBackup reads the archive into dir, checking every entry against the
// manifest (which must come first).
func extractBackup(path, dir string) (BackupManifest, error) {
	var m BackupManifest
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return m, fmt.Errorf("verify: %s is not a DataPulse backup (gzip): %w", path, err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != BackupManifestName || hdr.Size > 1<<20 {
		return m, fmt.Errorf("verify: %s is not a DataPulse backup (no manifest first): %v", path, err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return m, fmt.Errorf("verify: read manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("verify: manifest: %w", err)
	}
	if m.Format != backupFormat {
		return m, fmt.Errorf("verify: backup format %d is not supported (want %d)", m.Format, backupFormat)
	}
	want := map[string]BackupFile{}
	for _, bf := range m.Files {
		if bf.Name != filepath.Base(bf.Name) || bf.Name == BackupManifestName || bf.Name == "." || bf.Name == ".." {
			return m, fmt.Errorf("verify: manifest names an invalid file %q", bf.Name)
		}
		want[bf.Name] = bf
	}
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("verify: the archive is damaged: %w", err)
		}
		bf, ok := want[hdr.Name]
		if !ok || seen[hdr.Name] || hdr.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("verify: unexpected entry %q in the archive", hdr.Name)
		}
		seen[hdr.Name] = true
		out, err := os.OpenFile(filepath.Join(dir, hdr.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return m, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(out, h), tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return m, fmt.Errorf("verify: %s: the archive is damaged: %w", hdr.Name, err)
		}
		if n != bf.Size || hex.EncodeToString(h.Sum(nil)) != bf.SHA256 {
			return m, fmt.Errorf("verify: %s does not match the manifest (size %d, want %d; or its SHA-256 differs): the backup is corrupt", hdr.Name, n, bf.Size)
		}
	}
	for name := range want {
		if !seen[name] {
			return m, fmt.Errorf("verify: %s is missing from the archive", name)
		}
	}
	return m, nil
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	LookupEnv func(string) (string, bool)
}

// Restore puts the backup at path into dataDir, which must be empty or not
// exist: the SQLite database and the key files, after verifying it. Keys that
// were not in the backup must come from the environment and match the
// fingerprints recorded at backup time. For a PostgreSQL backup, the dump
// (datapulse.pgdump) and keys are placed in dataDir and the pg_restore
// command to run is returned in the result's Checks.
func Restore(ctx context.Context, path, dataDir string, o RestoreOptions) (VerifyResult, error) {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	entries, err := os.ReadDir(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return VerifyResult{}, fmt.Errorf("restore: %w", err)
		}
	case err != nil:
		return VerifyResult{}, fmt.Errorf("restore: %w", err)
	case len(entries) > 0:
		return VerifyResult{}, fmt.Errorf("restore: %s is not empty (%d entries): restore only into an empty or new directory, never over a data directory", dataDir, len(entries))
	}
	ok := false
	defer func() {
		if !ok { // leave the directory empty, as it was
			for _, e := range []string{BackupSQLiteName, BackupPGDumpName, KeyFiles[0].File, KeyFiles[1].File} {
				os.Remove(filepath.Join(dataDir, e))
			}
		}
	}()
	res, err := extractAndCheck(ctx, path, dataDir)
	if err != nil {
		return res, err
	}
	for _, k := range res.Manifest.Keys {
		if k.Included {
			continue
		}
		env := ""
		for _, kf := range KeyFiles {
			if kf.File == k.File {
				env = kf.Env
			}
		}
		v, set := o.LookupEnv(env)
		if !set || v == "" {
			return res, fmt.Errorf("restore: the backup does not contain %s (the server took it from %s); set %s to that key (fingerprint %s) and run restore again", k.File, env, env, k.Fingerprint[:16])
		}
		if KeyFingerprint([]byte(v)) != k.Fingerprint {
			return res, fmt.Errorf("restore: %s does not match the key the data was written with (fingerprint %s…): the restored server could not read its tokens or secrets", env, k.Fingerprint[:16])
		}
		res.Checks = append(res.Checks, env+" matches the backup's key fingerprint")
	}
	for _, e := range []string{BackupSQLiteName, BackupPGDumpName, KeyFiles[0].File, KeyFiles[1].File} {
		p := filepath.Join(dataDir, e)
		if f, err := os.Open(p); err == nil {
			f.Sync() //nolint:errcheck // best effort before reporting success
			f.Close()
		}
	}
	if res.Manifest.Dialect == Postgres {
		res.Checks = append(res.Checks, "PostgreSQL: load the dump into an empty database with: pg_restore --no-owner --dbname 'postgres://…/NEWDB' "+
			filepath.Join(dataDir, BackupPGDumpName)+" ; then start datapulse with --data-dir "+dataDir+" --database-url 'postgres://…/NEWDB'")
	}
	ok = true
	return res, nil
}
