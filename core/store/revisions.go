package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
)

// RevisionsTable records which migration files were applied. atlas's library
// ships only a no-op store; this one keeps the same fields as the atlas CLI.
const RevisionsTable = "atlas_schema_revisions"

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// revisions implements migrate.RevisionReadWriter over RevisionsTable.
type revisions struct {
	q       querier
	dialect string
}

var _ migrate.RevisionReadWriter = (*revisions)(nil)

func (r *revisions) Ident() *migrate.TableIdent {
	if r.dialect == Postgres {
		return &migrate.TableIdent{Name: RevisionsTable, Schema: "public"}
	}
	return &migrate.TableIdent{Name: RevisionsTable, Schema: "main"}
}

// rebind turns ? placeholders into $n on PostgreSQL.
func (r *revisions) rebind(q string) string {
	if r.dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *revisions) ensure(ctx context.Context) error {
	_, err := r.q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+RevisionsTable+` (
	version VARCHAR(255) NOT NULL PRIMARY KEY,
	description TEXT NOT NULL,
	type INTEGER NOT NULL,
	applied INTEGER NOT NULL,
	total INTEGER NOT NULL,
	executed_at VARCHAR(40) NOT NULL,
	execution_time BIGINT NOT NULL,
	error TEXT NOT NULL,
	error_stmt TEXT NOT NULL,
	hash TEXT NOT NULL,
	partial_hashes TEXT NOT NULL,
	operator_version TEXT NOT NULL
)`)
	if err != nil {
		return fmt.Errorf("create %s: %w", RevisionsTable, err)
	}
	return nil
}

const revisionColumns = `version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version`

func (r *revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	return r.read(ctx, `SELECT `+revisionColumns+` FROM `+RevisionsTable+` ORDER BY version`)
}

func (r *revisions) ReadRevision(ctx context.Context, version string) (*migrate.Revision, error) {
	revs, err := r.read(ctx, r.rebind(`SELECT `+revisionColumns+` FROM `+RevisionsTable+` WHERE version = ?`), version)
	if err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		return nil, migrate.ErrRevisionNotExist
	}
	return revs[0], nil
}

func (r *revisions) read(ctx context.Context, query string, args ...any) ([]*migrate.Revision, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		if isMissingTable(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", RevisionsTable, err)
	}
	defer rows.Close()
	var out []*migrate.Revision
	for rows.Next() {
		var (
			rev              migrate.Revision
			typ              int64
			executedAt, hash string
			partial          string
			execNanos        int64
		)
		if err := rows.Scan(&rev.Version, &rev.Description, &typ, &rev.Applied, &rev.Total,
			&executedAt, &execNanos, &rev.Error, &rev.ErrorStmt, &hash, &partial, &rev.OperatorVersion); err != nil {
			return nil, err
		}
		rev.Type = migrate.RevisionType(typ)
		rev.Hash = hash
		rev.ExecutionTime = time.Duration(execNanos)
		if rev.ExecutedAt, err = time.Parse(time.RFC3339Nano, executedAt); err != nil {
			return nil, fmt.Errorf("revision %s: bad executed_at: %w", rev.Version, err)
		}
		if partial != "" {
			rev.PartialHashes = strings.Split(partial, ",")
		}
		out = append(out, &rev)
	}
	return out, rows.Err()
}

func (r *revisions) WriteRevision(ctx context.Context, rev *migrate.Revision) error {
	_, err := r.q.ExecContext(ctx, r.rebind(`INSERT INTO `+RevisionsTable+` (`+revisionColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (version) DO UPDATE SET description = excluded.description, type = excluded.type,
	applied = excluded.applied, total = excluded.total, executed_at = excluded.executed_at,
	execution_time = excluded.execution_time, error = excluded.error, error_stmt = excluded.error_stmt,
	hash = excluded.hash, partial_hashes = excluded.partial_hashes, operator_version = excluded.operator_version`),
		rev.Version, rev.Description, int64(rev.Type), rev.Applied, rev.Total,
		rev.ExecutedAt.UTC().Format(time.RFC3339Nano), int64(rev.ExecutionTime), rev.Error, rev.ErrorStmt,
		rev.Hash, strings.Join(rev.PartialHashes, ","), rev.OperatorVersion)
	return err
}

func (r *revisions) DeleteRevision(ctx context.Context, version string) error {
	_, err := r.q.ExecContext(ctx, r.rebind(`DELETE FROM `+RevisionsTable+` WHERE version = ?`), version)
	return err
}

func isMissingTable(err error) bool {
	var msg = err.Error()
	return errors.Is(err, sql.ErrNoRows) ||
		strings.Contains(msg, "no such table") || // SQLite
		strings.Contains(msg, "SQLSTATE 42P01") // PostgreSQL undefined_table
}
