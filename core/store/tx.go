package store

import (
	"context"
	"fmt"

	"github.com/datapulse/datapulse/ent"
)

// WithTx runs fn in one transaction of client: committed when fn returns
// nil, rolled back when it returns an error or panics (the panic goes on).
// It is the one way services write several rows atomically.
func WithTx(ctx context.Context, client *ent.Client, fn func(tx *ent.Tx) error) error {
	tx, err := client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	return Finish(tx, fn)
}

// Finish runs fn in the open transaction tx and ends it as WithTx does:
// committed when fn returns nil, rolled back on an error or a panic. It is
// for transactions opened another way (e.g. core/jobs, whose transactions
// can also carry job inserts).
func Finish(tx *ent.Tx, fn func(tx *ent.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback() //nolint:errcheck // the panic matters more
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck // the original error matters
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
