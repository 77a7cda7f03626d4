package jobs

import (
	"context"
	"database/sql"
	"fmt"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
)

// The outbox rule: a job caused by a state change is inserted in the same
// transaction as that change, so both commit or neither does.
//
// River inserts through a *sql.Tx, and an *ent.Tx does not expose the
// *sql.Tx under it. So the service opens the *sql.Tx itself (on the store's
// writer: the single SQLite connection, or the PostgreSQL pool) and builds an
// ordinary *ent.Tx over it; InsertTx finds the *sql.Tx again by the *ent.Tx.
// On SQLite the insert runs through riversqlite, on PostgreSQL through an
// insert-only riverdatabasesql client: both on that same *sql.Tx.

// WithTx runs fn in one transaction, like store.WithTx: committed when fn
// returns nil, rolled back when it returns an error or panics. Jobs inserted
// with InsertTx inside fn commit or roll back with fn's changes.
func (s *Service) WithTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	tx, err := s.BeginTx(ctx)
	if err != nil {
		return err
	}
	return store.Finish(tx, fn)
}

// BeginTx opens a transaction InsertTx can insert jobs into. The caller
// commits or rolls it back as any *ent.Tx. Schema hooks and privacy rules
// apply as on the store's client (they are registered by ent/runtime).
func (s *Service) BeginTx(ctx context.Context) (*ent.Tx, error) {
	stx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	tx, err := ent.NewClient(ent.Driver(&sqlTxDriver{tx: stx, dialect: s.dialect})).Tx(ctx)
	if err != nil {
		stx.Rollback() //nolint:errcheck // the original error matters
		return nil, err
	}
	s.txs.Store(tx, stx)
	tx.OnCommit(func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			defer s.txs.Delete(tx)
			return next.Commit(ctx, tx)
		})
	})
	tx.OnRollback(func(next ent.Rollbacker) ent.Rollbacker {
		return ent.RollbackFunc(func(ctx context.Context, tx *ent.Tx) error {
			defer s.txs.Delete(tx)
			return next.Rollback(ctx, tx)
		})
	})
	return tx, nil
}

func (s *Service) sqlTx(tx *ent.Tx) (*sql.Tx, error) {
	if s.closed.Load() {
		return nil, ErrStopped
	}
	v, ok := s.txs.Load(tx)
	if !ok {
		return nil, ErrForeignTx
	}
	return v.(*sql.Tx), nil
}

// InsertTx enqueues a job in tx (opened by WithTx or BeginTx): the job
// becomes visible to workers when tx commits and never exists if it rolls
// back.
func (s *Service) InsertTx(ctx context.Context, tx *ent.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	stx, err := s.sqlTx(tx)
	if err != nil {
		return nil, err
	}
	return s.txc.InsertTx(ctx, stx, args, opts)
}

// InsertManyTx enqueues several jobs in tx.
func (s *Service) InsertManyTx(ctx context.Context, tx *ent.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	stx, err := s.sqlTx(tx)
	if err != nil {
		return nil, err
	}
	return s.txc.InsertManyTx(ctx, stx, params)
}

// sqlTxDriver is an ent driver over one *sql.Tx: ent's Client.Tx on it
// returns an *ent.Tx whose Commit and Rollback are the *sql.Tx's.
type sqlTxDriver struct {
	tx      *sql.Tx
	dialect string
}

var _ dialect.Driver = (*sqlTxDriver)(nil)

func (d *sqlTxDriver) conn() entsql.Conn { return entsql.Conn{ExecQuerier: d.tx} }

func (d *sqlTxDriver) Exec(ctx context.Context, query string, args, v any) error {
	return d.conn().Exec(ctx, query, args, v)
}

func (d *sqlTxDriver) Query(ctx context.Context, query string, args, v any) error {
	return d.conn().Query(ctx, query, args, v)
}

func (d *sqlTxDriver) Tx(context.Context) (dialect.Tx, error) {
	return &entsql.Tx{Conn: d.conn(), Tx: d.tx}, nil
}

func (d *sqlTxDriver) Close() error    { return nil }
func (d *sqlTxDriver) Dialect() string { return d.dialect }
