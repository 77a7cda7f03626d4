package main_test

import (
	"os"
	"testing"
	"time"
)

// BenchmarkColdStart measures `datapulse serve` from exec to the first
// GET /readyz 200 (the binary is the one TestMain built; the page cache is
// warm after the first iteration). No timing is asserted anywhere.
//
//	go test -run '^$' -bench ColdStart -benchtime 5x ./cmd/datapulse
//
// Sub-benchmarks:
//   - sqlite/existing: restart on an SQLite database that is already migrated
//     (the common case: a process restart or upgrade without new migrations);
//   - sqlite/first-start: an empty data directory each time, so the time
//     includes creating the database, applying every migration and
//     generating the keys;
//   - postgres/existing and postgres/first-start: the same on PostgreSQL,
//     only when DATAPULSE_TEST_POSTGRES_URL is set (creating and dropping the
//     throw-away databases is not timed).
//
// ms/op is the same measurement as ns/op, in a unit easier to read.
func BenchmarkColdStart(b *testing.B) {
	b.Run("sqlite/existing", func(b *testing.B) {
		db := newSQLite(b)
		startServer(b, db).stop() // create and migrate it, untimed
		benchStarts(b, func() *database { return db })
	})
	b.Run("sqlite/first-start", func(b *testing.B) {
		benchStarts(b, func() *database { return newSQLite(b) })
	})
	pg := os.Getenv("DATAPULSE_TEST_POSTGRES_URL")
	b.Run("postgres/existing", func(b *testing.B) {
		if pg == "" {
			b.Skip("DATAPULSE_TEST_POSTGRES_URL is not set")
		}
		db := newPostgres(b, pg)
		startServer(b, db).stop()
		benchStarts(b, func() *database { return db })
	})
	b.Run("postgres/first-start", func(b *testing.B) {
		if pg == "" {
			b.Skip("DATAPULSE_TEST_POSTGRES_URL is not set")
		}
		benchStarts(b, func() *database { return newPostgres(b, pg) })
	})
}

// benchStarts times b.N starts, each on the database next returns; preparing
// the database and stopping the server (SIGTERM, exit 0) are not timed.
func benchStarts(b *testing.B, next func() *database) {
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		db := next()
		b.StartTimer()
		s := startServer(b, db)
		b.StopTimer()
		total += time.Since(s.started)
		s.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/op")
}
