package jobs_test

// Behaviour of the job service on SQLite and, when DATAPULSE_TEST_POSTGRES_URL
// is set, PostgreSQL. Every test counts executions and reads job rows; waits
// are bounded polls that only fail as timeouts.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/department"
	"github.com/datapulse/datapulse/ent/privacy"
)

// waitLimit bounds every wait; reaching it fails the test.
const waitLimit = 60 * time.Second

// ---------------------------------------------------------------------------
// Workers used by the tests.

// recorder counts executions by key.
type recorder struct {
	mu   sync.Mutex
	runs map[string]int
	errs map[string][]error
}

func newRecorder() *recorder {
	return &recorder{runs: map[string]int{}, errs: map[string][]error{}}
}

func (r *recorder) add(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[key]++
	return r.runs[key]
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[key]
}

func (r *recorder) addErr(key string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[key] = append(r.errs[key], err)
}

func (r *recorder) errors(key string) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs[key]...)
}

// recordArgs: the worker records the run and fails the first FailTimes attempts.
type recordArgs struct {
	Key       string `json:"key"`
	FailTimes int    `json:"fail_times,omitempty"`
}

func (recordArgs) Kind() string { return "test_record" }

type recordWorker struct {
	river.WorkerDefaults[recordArgs]
	rec *recorder
}

func (w *recordWorker) Work(ctx context.Context, job *river.Job[recordArgs]) error {
	if n := w.rec.add(job.Args.Key); n <= job.Args.FailTimes {
		return fmt.Errorf("attempt %d fails on purpose", n)
	}
	return nil
}

// slowArgs: the first attempt outlives the kind's 200 ms timeout.
type slowArgs struct {
	Key string `json:"key"`
}

func (slowArgs) Kind() string { return "test_slow" }

type slowWorker struct {
	river.WorkerDefaults[slowArgs]
	rec *recorder
}

func (w *slowWorker) Timeout(*river.Job[slowArgs]) time.Duration { return 200 * time.Millisecond }

func (w *slowWorker) Work(ctx context.Context, job *river.Job[slowArgs]) error {
	if w.rec.add(job.Args.Key) == 1 {
		select {
		case <-ctx.Done():
			w.rec.addErr(job.Args.Key, ctx.Err())
			return ctx.Err()
		case <-time.After(waitLimit):
			return errors.New("the job's timeout never cancelled its context")
		}
	}
	return nil
}

// blockArgs: the worker signals its start and runs until released.
type blockArgs struct {
	Key string `json:"key"`
	// HonourCancel makes the worker return when its context is cancelled.
	HonourCancel bool `json:"honour_cancel,omitempty"`
}

func (blockArgs) Kind() string { return "test_block" }

type blockWorker struct {
	river.WorkerDefaults[blockArgs]
	rec      *recorder
	started  chan int64
	release  chan struct{}
	finished atomic.Bool
	ctxErr   atomic.Value // error seen by the worker when it finished
}

func newBlockWorker() *blockWorker {
	return &blockWorker{rec: newRecorder(), started: make(chan int64, 10), release: make(chan struct{})}
}

func (w *blockWorker) Timeout(*river.Job[blockArgs]) time.Duration { return -1 }

func (w *blockWorker) Work(ctx context.Context, job *river.Job[blockArgs]) error {
	w.rec.add(job.Args.Key)
	w.started <- job.ID
	var done <-chan struct{}
	if job.Args.HonourCancel {
		done = ctx.Done()
	}
	select {
	case <-w.release:
	case <-done:
		w.ctxErr.Store(fmt.Sprint(ctx.Err()))
		return ctx.Err()
	}
	w.ctxErr.Store(fmt.Sprint(ctx.Err()))
	w.finished.Store(true)
	return nil
}

// quickRetry retries after 50 ms instead of River's attempt⁴ seconds.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(50 * time.Millisecond)
}

// ---------------------------------------------------------------------------
// Helpers.

// openStore opens a fresh migrated database of the target; it returns the
// options that reopen it (a second process or replica uses them).
func openStore(t testing.TB, tg storetest.Target) (*store.Store, store.Options) {
	t.Helper()
	so := tg.New(t)
	st := openOn(t, so)
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st, so
}

func openOn(t testing.TB, so store.Options) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), so)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newService builds a job service with the test workers registered through
// register; it is stopped when the test ends.
func newService(t testing.TB, st *store.Store, so store.Options, mod func(*jobs.Options), register func(*jobs.Service)) *jobs.Service {
	t.Helper()
	o := jobs.Options{DatabaseURL: so.DatabaseURL, RetryPolicy: quickRetry{}}
	if mod != nil {
		mod(&o)
	}
	s, err := jobs.New(context.Background(), st, o)
	if err != nil {
		t.Fatalf("jobs.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx) //nolint:errcheck // tests that care stop it themselves
	})
	if register != nil {
		register(s)
	}
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func start(t testing.TB, s *jobs.Service) {
	t.Helper()
	must(t, s.Start(context.Background()))
}

// waitState polls a job until it reaches one of states.
func waitState(t testing.TB, s *jobs.Service, id int64, states ...rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var last *rivertype.JobRow
	for time.Now().Before(deadline) {
		row, err := s.JobGet(context.Background(), id)
		if err == nil {
			last = row
			for _, st := range states {
				if row.State == st {
					return row
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("job %d (%s) still %s after %s (attempt %d, errors %v); want %v", id, last.Kind, last.State, waitLimit, last.Attempt, last.Errors, states)
	}
	t.Fatalf("job %d not found within %s", id, waitLimit)
	return nil
}

func countRows(t testing.TB, st *store.Store, kind string) int {
	t.Helper()
	q := "SELECT count(*) FROM river_job WHERE kind = ?"
	if st.Dialect == store.Postgres {
		q = "SELECT count(*) FROM river_job WHERE kind = $1"
	}
	var n int
	must(t, st.DB().QueryRowContext(context.Background(), q, kind).Scan(&n))
	return n
}

// stateOf reads a job's state from the database (a stopped service cannot).
func stateOf(t testing.TB, st *store.Store, id int64) (rivertype.JobState, int) {
	t.Helper()
	q := "SELECT state, attempt FROM river_job WHERE id = ?"
	if st.Dialect == store.Postgres {
		q = "SELECT state, attempt FROM river_job WHERE id = $1"
	}
	var state string
	var attempt int
	must(t, st.DB().QueryRowContext(context.Background(), q, id).Scan(&state, &attempt))
	return rivertype.JobState(state), attempt
}

// allow lets the tests write rows past the privacy backstop.
func allow(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

// ---------------------------------------------------------------------------
// Tests.

// TestInsertTxOutbox: a job inserted in a transaction that rolls back never
// exists, so it never runs; one inserted in a transaction that commits runs
// exactly once, together with the domain row written beside it.
func TestInsertTxOutbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := allow(context.Background())
		st, so := openStore(t, tg)
		rec := newRecorder()
		s := newService(t, st, so, nil, func(s *jobs.Service) {
			must(t, jobs.Register(s, &recordWorker{rec: rec}))
		})
		start(t, s)

		abort := errors.New("abort")
		err := s.WithTx(ctx, func(tx *ent.Tx) error {
			if err := tx.Department.Create().SetName("rolled back").Exec(ctx); err != nil {
				return err
			}
			if _, err := s.InsertTx(ctx, tx, recordArgs{Key: "rolled-back"}, nil); err != nil {
				return err
			}
			return abort
		})
		if !errors.Is(err, abort) {
			t.Fatalf("WithTx = %v; want the abort error", err)
		}

		// By hand with BeginTx: a panic-free rollback path.
		tx, err := s.BeginTx(ctx)
		must(t, err)
		if _, err := s.InsertTx(ctx, tx, recordArgs{Key: "rolled-back-2"}, nil); err != nil {
			t.Fatal(err)
		}
		must(t, tx.Rollback())
		if _, err := s.InsertTx(ctx, tx, recordArgs{Key: "after-rollback"}, nil); !errors.Is(err, jobs.ErrForeignTx) {
			t.Fatalf("InsertTx on a finished transaction = %v; want ErrForeignTx", err)
		}

		var id int64
		must(t, s.WithTx(ctx, func(tx *ent.Tx) error {
			if err := tx.Department.Create().SetName("committed").Exec(ctx); err != nil {
				return err
			}
			res, err := s.InsertTx(ctx, tx, recordArgs{Key: "committed"}, nil)
			if err != nil {
				return err
			}
			id = res.Job.ID
			return nil
		}))

		row := waitState(t, s, id, rivertype.JobStateCompleted)
		// Stopping waits for anything still running; nothing else may run.
		must(t, s.Stop(context.Background()))
		if row.Attempt != 1 {
			t.Errorf("committed job: attempt %d; want 1", row.Attempt)
		}
		if n := rec.count("committed"); n != 1 {
			t.Errorf("committed job ran %d times; want 1", n)
		}
		for _, key := range []string{"rolled-back", "rolled-back-2", "after-rollback"} {
			if n := rec.count(key); n != 0 {
				t.Errorf("job %s ran %d times; want never", key, n)
			}
		}
		if n := countRows(t, st, recordArgs{}.Kind()); n != 1 {
			t.Errorf("%d %s rows in river_job; want only the committed one", n, recordArgs{}.Kind())
		}
		names := st.Client.Department.Query().Order(department.ByName()).Select(department.FieldName).StringsX(ctx)
		if strings.Join(names, ",") != "committed" {
			t.Errorf("departments %v; want only the committed one", names)
		}
	})
}

// TestInsertTxRefusesForeignTx: a transaction ent opened on its own has no
// *sql.Tx the service knows; InsertTx says so instead of inserting outside it.
func TestInsertTxRefusesForeignTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := allow(context.Background())
		st, so := openStore(t, tg)
		s := newService(t, st, so, nil, func(s *jobs.Service) {
			must(t, jobs.Register(s, &recordWorker{rec: newRecorder()}))
		})
		err := store.WithTx(ctx, st.Client, func(tx *ent.Tx) error {
			_, err := s.InsertTx(ctx, tx, recordArgs{Key: "x"}, nil)
			return err
		})
		if !errors.Is(err, jobs.ErrForeignTx) {
			t.Fatalf("InsertTx in store.WithTx = %v; want ErrForeignTx", err)
		}
		if n := countRows(t, st, recordArgs{}.Kind()); n != 0 {
			t.Fatalf("%d rows inserted; want none", n)
		}
	})
}

// TestRegistration: workers are registered before Start; with none, the
// service starts idle and refuses jobs of unknown kinds.
func TestRegistration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		st, so := openStore(t, tg)
		idle := newService(t, st, so, nil, nil)
		start(t, idle)
		if _, err := idle.Insert(ctx, recordArgs{Key: "nobody"}, nil); err == nil {
			t.Error("a job of an unregistered kind was accepted")
		}
		if err := jobs.Register(idle, &recordWorker{rec: newRecorder()}); !errors.Is(err, jobs.ErrStarted) {
			t.Errorf("Register after Start = %v; want ErrStarted", err)
		}
		must(t, idle.Stop(ctx))
		if n := countRows(t, st, recordArgs{}.Kind()); n != 0 {
			t.Errorf("%d rows; want none", n)
		}

		s := newService(t, st, so, nil, nil)
		must(t, jobs.Register(s, &recordWorker{rec: newRecorder()}))
		if err := jobs.Register(s, &recordWorker{rec: newRecorder()}); err == nil {
			t.Error("a second worker for the same kind was accepted")
		}
		if err := jobs.Register(s, &badKindWorker{}); err == nil {
			t.Error("a kind with spaces was accepted")
		}
	})
}

type badKindArgs struct{}

func (badKindArgs) Kind() string { return "has spaces" }

type badKindWorker struct {
	river.WorkerDefaults[badKindArgs]
}

func (badKindWorker) Work(context.Context, *river.Job[badKindArgs]) error { return nil }

// TestRetryWithBackoff: a job failing twice runs a third time and completes;
// River records both errors; the failures reach the metrics.
func TestRetryWithBackoff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		st, so := openStore(t, tg)
		rec := newRecorder()
		s := newService(t, st, so, nil, func(s *jobs.Service) {
			must(t, jobs.Register(s, &recordWorker{rec: rec}))
		})
		start(t, s)
		res, err := s.Insert(ctx, recordArgs{Key: "flaky", FailTimes: 2}, nil)
		must(t, err)
		row := waitState(t, s, res.Job.ID, rivertype.JobStateCompleted, rivertype.JobStateDiscarded)
		if row.State != rivertype.JobStateCompleted || row.Attempt != 3 || len(row.Errors) != 2 {
			t.Fatalf("job %s after attempt %d with %d errors; want completed at attempt 3 after 2 errors", row.State, row.Attempt, len(row.Errors))
		}
		if !strings.Contains(row.Errors[0].Error, "fails on purpose") {
			t.Errorf("first error %q", row.Errors[0].Error)
		}
		if n := rec.count("flaky"); n != 3 {
			t.Errorf("ran %d times; want 3", n)
		}
		must(t, s.Stop(ctx)) // events are all delivered once stopped

		reg := prometheus.NewPedanticRegistry()
		must(t, reg.Register(s.Collector()))
		mfs, err := reg.Gather()
		must(t, err)
		kind := recordArgs{}.Kind()
		checks := []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"datapulse_job_failures_total", map[string]string{"kind": kind}, 2},
			{"datapulse_job_runs_total", map[string]string{"kind": kind, "outcome": "failed"}, 2},
			{"datapulse_job_runs_total", map[string]string{"kind": kind, "outcome": "completed"}, 1},
			{"datapulse_jobs", map[string]string{"kind": kind, "state": "completed"}, 1},
			{"datapulse_job_lag_seconds", map[string]string{"kind": kind}, 3}, // observations
			{"datapulse_jobs_oldest_available_seconds", nil, 0},
		}
		for _, c := range checks {
			got, ok := metricValue(mfs, c.name, c.labels)
			if !ok || got != c.want {
				t.Errorf("%s%v = %v (found %v); want %v", c.name, c.labels, got, ok, c.want)
			}
		}
	})
}

// metricValue finds a gauge or counter value, or a histogram's sample count.
func metricValue(mfs []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// TestTimeoutCancelsAndRetries: an attempt outliving its kind's timeout has
// its context cancelled (deadline exceeded), is recorded as failed and runs
// again.
func TestTimeoutCancelsAndRetries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		st, so := openStore(t, tg)
		rec := newRecorder()
		s := newService(t, st, so, nil, func(s *jobs.Service) {
			must(t, jobs.Register(s, &slowWorker{rec: rec}))
		})
		start(t, s)
		res, err := s.Insert(ctx, slowArgs{Key: "slow"}, nil)
		must(t, err)
		row := waitState(t, s, res.Job.ID, rivertype.JobStateCompleted, rivertype.JobStateDiscarded)
		if row.State != rivertype.JobStateCompleted || row.Attempt != 2 || len(row.Errors) != 1 {
			t.Fatalf("job %s at attempt %d with errors %v; want completed at attempt 2 after one error", row.State, row.Attempt, row.Errors)
		}
		errs := rec.errors("slow")
		if len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
			t.Fatalf("worker saw %v; want one context.DeadlineExceeded", errs)
		}
		if n := rec.count("slow"); n != 2 {
			t.Fatalf("ran %d times; want 2", n)
		}
	})
}

// TestUniqueDedupes: inserting the same unique job again (also from a
// transaction) returns the existing job; it runs once.
func TestUniqueDedupes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := allow(context.Background())
		st, so := openStore(t, tg)
		rec := newRecorder()
		s := newService(t, st, so, nil, func(s *jobs.Service) {
			must(t, jobs.Register(s, &recordWorker{rec: rec}))
		})
		unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
		first, err := s.Insert(ctx, recordArgs{Key: "once"}, unique)
		must(t, err)
		if first.UniqueSkippedAsDuplicate {
			t.Fatal("the first insert was reported as a duplicate")
		}
		second, err := s.Insert(ctx, recordArgs{Key: "once"}, unique)
		must(t, err)
		var third *rivertype.JobInsertResult
		must(t, s.WithTx(ctx, func(tx *ent.Tx) error {
			third, err = s.InsertTx(ctx, tx, recordArgs{Key: "once"}, unique)
			return err
		}))
		for i, r := range []*rivertype.JobInsertResult{second, third} {
			if !r.UniqueSkippedAsDuplicate || r.Job.ID != first.Job.ID {
				t.Errorf("insert %d: skipped=%v id=%d; want a duplicate of job %d", i+2, r.UniqueSkippedAsDuplicate, r.Job.ID, first.Job.ID)
			}
		}
		// Different args are a different job.
		other, err := s.Insert(ctx, recordArgs{Key: "other"}, unique)
		must(t, err)
		if other.UniqueSkippedAsDuplicate {
			t.Error("a job with other args was reported as a duplicate")
		}

		start(t, s)
		waitState(t, s, first.Job.ID, rivertype.JobStateCompleted)
		waitState(t, s, other.Job.ID, rivertype.JobStateCompleted)
		// Still unique once completed (River's default states include completed).
		again, err := s.Insert(ctx, recordArgs{Key: "once"}, unique)
		must(t, err)
		if !again.UniqueSkippedAsDuplicate {
			t.Error("re-inserting a completed unique job made a new job")
		}
		must(t, s.Stop(ctx))
		if n := rec.count("once"); n != 1 {
			t.Errorf("unique job ran %d times; want 1", n)
		}
		if n := countRows(t, st, recordArgs{}.Kind()); n != 2 {
			t.Errorf("%d rows; want 2 (once, other)", n)
		}
	})
}

// TestStopLetsRunningJobFinish: Stop waits for a running job, which finishes
// with its context intact and is recorded as completed.
func TestStopLetsRunningJobFinish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		st, so := openStore(t, tg)
		w := newBlockWorker()
		s := newService(t, st, so, nil, func(s *jobs.Service) { must(t, jobs.Register(s, w)) })
		start(t, s)
		res, err := s.Insert(ctx, blockArgs{Key: "graceful"}, nil)
		must(t, err)
		select {
		case <-w.started:
		case <-time.After(waitLimit):
			t.Fatal("the job never started")
		}
		stopped := make(chan error, 1)
		go func() {
			sctx, cancel := context.WithTimeout(ctx, waitLimit)
			defer cancel()
			stopped <- s.Stop(sctx)
		}()
		// Stop may not return while the job runs. (Waiting a little before
		// releasing it only gives Stop the chance to misbehave.)
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a job was running", err)
		case <-time.After(300 * time.Millisecond):
		}
		close(w.release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if !w.finished.Load() {
			t.Fatal("Stop returned before the job finished")
		}
		if got := w.ctxErr.Load(); got != "<nil>" {
			t.Errorf("the job's context ended (%v) during a graceful stop", got)
		}
		if state, _ := stateOf(t, st, res.Job.ID); state != rivertype.JobStateCompleted {
			t.Errorf("job %s after Stop; want completed", state)
		}
	})
}

// TestStopHandsBackUnfinishedJob: when the stop deadline passes, running jobs
// are cancelled and handed back to the queue without using up an attempt;
// another process then runs them.
func TestStopHandsBackUnfinishedJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		st, so := openStore(t, tg)
		w := newBlockWorker()
		s := newService(t, st, so, nil, func(s *jobs.Service) { must(t, jobs.Register(s, w)) })
		start(t, s)
		res, err := s.Insert(ctx, blockArgs{Key: "interrupted", HonourCancel: true}, nil)
		must(t, err)
		select {
		case <-w.started:
		case <-time.After(waitLimit):
			t.Fatal("the job never started")
		}
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err = s.Stop(sctx)
		cancel()
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if got := w.ctxErr.Load(); got != context.Canceled.Error() {
			t.Fatalf("worker saw %v; want its context cancelled", got)
		}
		if state, attempt := stateOf(t, st, res.Job.ID); state != rivertype.JobStateAvailable || attempt != 0 {
			t.Fatalf("after Stop the job is %s at attempt %d; want available at attempt 0 (handed back)", state, attempt)
		}
		if _, err := s.Insert(ctx, blockArgs{}, nil); !errors.Is(err, jobs.ErrStopped) {
			t.Errorf("Insert after Stop = %v; want ErrStopped", err)
		}

		// The next process (here: a new service on the same database) runs it.
		w2 := newBlockWorker()
		close(w2.release)
		s2 := newService(t, st, so, nil, func(s *jobs.Service) { must(t, jobs.Register(s, w2)) })
		start(t, s2)
		row := waitState(t, s2, res.Job.ID, rivertype.JobStateCompleted)
		if row.Attempt != 1 {
			t.Errorf("rerun at attempt %d; want 1", row.Attempt)
		}
		if n := w2.rec.count("interrupted"); n != 1 {
			t.Errorf("the new process ran the job %d times; want 1", n)
		}
	})
}

// periodicArgs carries the name of the replica whose leader enqueued it.
type periodicArgs struct {
	Replica string `json:"replica"`
}

func (periodicArgs) Kind() string { return "test_periodic" }

type periodicWorker struct {
	river.WorkerDefaults[periodicArgs]
	runs *atomic.Int64
}

func (w *periodicWorker) Work(context.Context, *river.Job[periodicArgs]) error {
	w.runs.Add(1)
	return nil
}

// TestPeriodicOncePerIntervalAcrossReplicas: two replicas on one PostgreSQL
// database both declare the same periodic job; only the elected leader
// enqueues it, so each tick makes one job, worked once by either replica.
// On SQLite (one process per database) the same checks run with one replica.
func TestPeriodicOncePerIntervalAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several periodic intervals; runs without -short")
	}
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		st, so := openStore(t, tg)
		var runs atomic.Int64
		ticks := map[string]*atomic.Int64{"a": {}, "b": {}}
		replicas := map[string]*jobs.Service{}
		names := []string{"a", "b"}
		if st.Dialect == store.SQLite {
			names = names[:1]
		}
		for _, name := range names {
			rst := st
			if name == "b" {
				rst = openOn(t, so) // its own store, as another process would have
			}
			replicas[name] = newService(t, rst, so, func(o *jobs.Options) { o.ID = "replica-" + name }, func(s *jobs.Service) {
				must(t, jobs.Register(s, &periodicWorker{runs: &runs}))
				must(t, s.AddPeriodic(jobs.Every(time.Second), func() (river.JobArgs, *river.InsertOpts) {
					ticks[name].Add(1)
					return periodicArgs{Replica: name}, nil
				}, jobs.PeriodicOptions{ID: "test-periodic"}))
			})
		}
		for _, s := range replicas {
			start(t, s)
		}
		deadline := time.Now().Add(waitLimit)
		for runs.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if runs.Load() < 3 {
			t.Fatalf("%d periodic runs within %s; want at least 3", runs.Load(), waitLimit)
		}
		for _, s := range replicas {
			must(t, s.Stop(ctx))
		}
		a, b := ticks["a"].Load(), ticks["b"].Load()
		t.Logf("ticks enqueued by replica a: %d, by b: %d; executions: %d", a, b, runs.Load())
		if a > 0 && b > 0 {
			t.Fatalf("both replicas enqueued the periodic job (a: %d, b: %d ticks); want only the leader", a, b)
		}
		jobsMade := int64(countRows(t, st, periodicArgs{}.Kind()))
		if jobsMade != a+b {
			t.Errorf("%d jobs in river_job for %d ticks; want one per tick", jobsMade, a+b)
		}
		// Every job ran once: none ran twice, none is left (a job inserted at
		// the last tick may not have run before the stop).
		var finished, attemptsOverOne int
		q := `SELECT coalesce(sum(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0), coalesce(sum(CASE WHEN attempt > 1 THEN 1 ELSE 0 END), 0)
			FROM river_job WHERE kind = ?`
		if st.Dialect == store.Postgres {
			q = strings.Replace(q, "?", "$1", 1)
		}
		must(t, st.DB().QueryRowContext(ctx, q, periodicArgs{}.Kind()).Scan(&finished, &attemptsOverOne))
		if int64(finished) != runs.Load() || attemptsOverOne != 0 {
			t.Errorf("%d completed jobs, %d with more than one attempt, %d executions; want executions = completed jobs, none retried", finished, attemptsOverOne, runs.Load())
		}
	})
}

// ---------------------------------------------------------------------------
// A job left running by a killed process is rescued.

const (
	childEnv    = "DATAPULSE_JOBS_TEST_CHILD"
	childURLEnv = "DATAPULSE_JOBS_TEST_CHILD_DATABASE_URL"
	childDirEnv = "DATAPULSE_JOBS_TEST_CHILD_DATA_DIR"
)

// hangArgs: the child's worker never returns; the rescuing process's does.
type hangArgs struct{}

func (hangArgs) Kind() string { return "test_hang" }

type hangWorker struct {
	river.WorkerDefaults[hangArgs]
	hang bool
	runs *atomic.Int64
}

// Timeout: the rescuer waits for a job's own timeout before rescuing it.
func (w *hangWorker) Timeout(*river.Job[hangArgs]) time.Duration { return 500 * time.Millisecond }

func (w *hangWorker) Work(ctx context.Context, _ *river.Job[hangArgs]) error {
	if w.hang {
		select {} // ignores its context, like a process that hangs and is killed
	}
	w.runs.Add(1)
	return nil
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain works jobs until killed.
func childMain() int {
	ctx := context.Background()
	so := store.Options{DatabaseURL: os.Getenv(childURLEnv), DataDir: os.Getenv(childDirEnv)}
	st, err := store.Open(ctx, so)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := jobs.New(ctx, st, jobs.Options{DatabaseURL: so.DatabaseURL, ID: "doomed-child"})
	if err == nil {
		err = jobs.Register(s, &hangWorker{hang: true})
	}
	if err == nil {
		err = s.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	select {}
}

func TestKilledProcessJobIsRescued(t *testing.T) {
	if testing.Short() {
		// It waits for a dead process's leader lease to expire (20–30 s): the
		// full pass runs it; the race pass (-short) does not repeat it.
		t.Skip("waits for a leader lease to expire; runs without -short")
	}
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		ctx := context.Background()
		st, so := openStore(t, tg)
		var runs atomic.Int64
		// This process inserts the job; it does not work jobs yet.
		s := newService(t, st, so, func(o *jobs.Options) {
			o.RescueStuckJobsAfter = time.Second
			o.JobTimeout = time.Second // River wants RescueStuckJobsAfter >= JobTimeout
			o.ID = "rescuer"
		}, func(s *jobs.Service) {
			must(t, jobs.Register(s, &hangWorker{runs: &runs}))
		})
		res, err := s.Insert(ctx, hangArgs{}, nil)
		must(t, err)

		self, err := os.Executable()
		must(t, err)
		child := exec.Command(self, "-test.run=^$")
		child.Env = append(os.Environ(), childEnv+"=1", childURLEnv+"="+so.DatabaseURL, childDirEnv+"="+so.DataDir)
		var stderr strings.Builder
		child.Stderr = &stderr
		must(t, child.Start())
		killed := false
		defer func() {
			if !killed {
				child.Process.Kill() //nolint:errcheck
				child.Wait()         //nolint:errcheck
			}
		}()
		row := waitState(t, s, res.Job.ID, rivertype.JobStateRunning)
		if row.AttemptedBy[len(row.AttemptedBy)-1] != "doomed-child" {
			t.Fatalf("job attempted by %v; want the child", row.AttemptedBy)
		}
		must(t, child.Process.Kill()) // SIGKILL: no shutdown code runs
		child.Wait()                  //nolint:errcheck // killed
		killed = true

		// The row still says running: nobody but the rescuer will touch it.
		row, err = s.JobGet(ctx, res.Job.ID)
		must(t, err)
		if row.State != rivertype.JobStateRunning {
			t.Fatalf("after the kill the job is %s; want still running (stderr: %s)", row.State, stderr.String())
		}
		// The rescuer takes jobs that have been running longer than both
		// RescueStuckJobsAfter and their own timeout; wait until that is
		// true so its first pass (at leader election) already sees it.
		for time.Since(*row.AttemptedAt) < 2*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		start(t, s)
		row = waitState(t, s, res.Job.ID, rivertype.JobStateCompleted)
		if row.Attempt != 2 {
			t.Errorf("rescued job completed at attempt %d; want 2 (the killed attempt counts)", row.Attempt)
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("the rescuing process ran the job %d times; want 1", n)
		}
	})
}
