// Package jobs runs DataPulse's durable background work on River
// (github.com/riverqueue/river) in the metadata database itself: riversqlite
// on SQLite, riverpgxv5 on PostgreSQL. River's tables come from our own
// migration files (see RiverModuleVersion).
//
// Domain packages register typed workers (Register) and periodic jobs
// (AddPeriodic) before the service starts, and insert jobs either on their own
// (Insert) or in the same transaction as the state change that causes them
// (WithTx + InsertTx: the outbox rule, so a crash neither loses nor invents a
// job). The Service is a core/workers.Worker: App starts it with the other
// background work and stops it on Close, letting running jobs finish within
// the shutdown timeout and handing the others back to the queue.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/workers"
)

var _ workers.Worker = (*Service)(nil)

// Defaults. River's own defaults apply to what is not listed: up to 25
// attempts with exponential backoff (attempt⁴ seconds plus jitter), finished
// jobs kept for a day (completed), a week (cancelled, discarded).
const (
	DefaultMaxWorkers = 10
	// DefaultJobTimeout cancels a job's context; a worker's Timeout method
	// overrides it per kind (-1: none).
	DefaultJobTimeout = time.Minute
	// DefaultRescueStuckJobsAfter: a job still "running" this long after it
	// started (and past its own timeout) belonged to a process that died; the
	// leader's rescuer schedules it again. River's default is an hour.
	DefaultRescueStuckJobsAfter = 10 * time.Minute
	// DefaultSoftStopGrace bounds StopAndCancel once the caller's stop
	// deadline has passed (see Stop).
	DefaultSoftStopGrace = 5 * time.Second
)

// SQLite has no LISTEN/NOTIFY: riversqlite polls its notification table
// every 50 ms, and these settings make producers fetch soon after being
// told, and poll on their own every so often. PostgreSQL wakes producers
// through LISTEN/NOTIFY; the cooldown bounds fetches under a burst.
var fetchDefaults = map[string]struct{ cooldown, poll time.Duration }{
	store.SQLite:   {cooldown: 10 * time.Millisecond, poll: 200 * time.Millisecond},
	store.Postgres: {cooldown: 20 * time.Millisecond, poll: time.Second},
}

// Options tunes the job service; zero values pick the defaults above.
type Options struct {
	// DatabaseURL is the store's postgres:// URL: River works jobs through
	// its own pgx pool on it. Ignored on SQLite (River shares the store's
	// single writer connection).
	DatabaseURL string
	Logger      *slog.Logger
	// ID names this process among the job clients of one database
	// (default: host name, process id and start time).
	ID string
	// Queues maps queue names to their concurrency; default
	// {"default": DefaultMaxWorkers}.
	Queues               map[string]int
	JobTimeout           time.Duration
	MaxAttempts          int
	RescueStuckJobsAfter time.Duration
	// RetryPolicy decides when a failed job runs again (default River's
	// exponential backoff).
	RetryPolicy                      river.ClientRetryPolicy
	FetchCooldown, FetchPollInterval time.Duration
	// SoftStopGrace bounds how long Stop waits for cancelled jobs to return
	// once its context is done.
	SoftStopGrace time.Duration
	// PoolSize caps River's pgx pool on PostgreSQL (default 8).
	PoolSize int32
}

// ErrStarted is returned when a worker is registered after Start.
var ErrStarted = errors.New("jobs: workers must be registered before the job service starts")

// ErrStopped is returned by inserts and reads once the service is stopped.
var ErrStopped = errors.New("jobs: the job service is stopped")

// ErrForeignTx is returned by InsertTx for a transaction not opened by
// Service.WithTx or Service.BeginTx.
var ErrForeignTx = errors.New("jobs: InsertTx needs a transaction opened by jobs.Service (WithTx/BeginTx), not by ent or store.WithTx")

// client is what the service uses of a River client, whatever its driver.
type client interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
	PeriodicJobs() *river.PeriodicJobBundle
	SubscribeConfig(config *river.SubscribeConfig) (<-chan *river.Event, func())
}

// Service owns the River clients of one process.
type Service struct {
	dialect string
	log     *slog.Logger
	db      *sql.DB
	opts    Options
	workers *river.Workers
	// run works jobs and inserts outside transactions.
	run client
	// txc inserts inside database/sql transactions: the working client on
	// SQLite; an insert-only riverdatabasesql client on PostgreSQL.
	txc  *river.Client[*sql.Tx]
	pool *pgxpool.Pool // PostgreSQL only

	metrics *Collector

	closed atomic.Bool // Stop was called: no more inserts or reads

	mu       sync.Mutex
	kinds    []string
	started  bool // Start was called
	running  bool // River's working client runs
	stopped  bool
	stopSubs func()
	subsDone chan struct{}

	txs sync.Map // *ent.Tx → *sql.Tx, for InsertTx
}

// New builds the job service on an open, migrated store. It checks that
// River's tables are those of the pinned River release. Nothing runs until
// Start.
func New(ctx context.Context, st *store.Store, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if err := CheckRiverSchema(ctx, st.Dialect, st.DB()); err != nil {
		return nil, err
	}
	if len(o.Queues) == 0 {
		o.Queues = map[string]int{river.QueueDefault: DefaultMaxWorkers}
	}
	fd, ok := fetchDefaults[st.Dialect]
	if !ok {
		return nil, fmt.Errorf("jobs: unsupported dialect %q", st.Dialect)
	}
	if o.FetchCooldown <= 0 {
		o.FetchCooldown = fd.cooldown
	}
	if o.FetchPollInterval <= 0 {
		o.FetchPollInterval = max(fd.poll, o.FetchCooldown)
	}
	if o.JobTimeout == 0 {
		o.JobTimeout = DefaultJobTimeout
	}
	if o.RescueStuckJobsAfter <= 0 {
		// River requires it to be at least JobTimeout.
		o.RescueStuckJobsAfter = max(DefaultRescueStuckJobsAfter, o.JobTimeout)
	}
	if o.SoftStopGrace <= 0 {
		o.SoftStopGrace = DefaultSoftStopGrace
	}
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s-%d-%s", cmpOr(host, "datapulse"), os.Getpid(), time.Now().UTC().Format("20060102T150405.000"))
	}
	// The River clients are built now, so that jobs can be inserted before
	// Start, with the worker bundle still empty: Register adds to that same
	// bundle, which River reads when it inserts (unknown kinds are refused)
	// and when it works a job. River's own checks at NewClient (kind syntax)
	// are repeated by Register; nothing is added once the clients run.
	s := &Service{
		dialect: st.Dialect,
		log:     o.Logger,
		db:      st.DB(),
		opts:    o,
		workers: river.NewWorkers(),
	}
	queues := make(map[string]river.QueueConfig, len(o.Queues))
	for name, n := range o.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: n}
	}
	cfg := &river.Config{
		ID:                   o.ID,
		Logger:               riverLogger(o.Logger.With("component", "river")),
		Queues:               queues,
		Workers:              s.workers,
		JobTimeout:           o.JobTimeout,
		MaxAttempts:          o.MaxAttempts,
		RescueStuckJobsAfter: o.RescueStuckJobsAfter,
		RetryPolicy:          o.RetryPolicy,
		FetchCooldown:        o.FetchCooldown,
		FetchPollInterval:    o.FetchPollInterval,
	}
	var err error
	switch st.Dialect {
	case store.SQLite:
		// River shares the store's single writer connection: its fetches and
		// completions queue behind our writes in Go, never on the busy
		// timeout, and InsertTx runs on the writer transaction itself.
		var c *river.Client[*sql.Tx]
		if c, err = river.NewClient(riversqlite.New(st.DB()), cfg); err != nil {
			return nil, fmt.Errorf("jobs: %w", err)
		}
		s.run, s.txc = c, c
	case store.Postgres:
		if s.pool, err = newPool(ctx, o.DatabaseURL, o.PoolSize); err != nil {
			return nil, err
		}
		var c *river.Client[pgx.Tx]
		if c, err = river.NewClient(riverpgxv5.New(s.pool), cfg); err != nil {
			s.pool.Close()
			return nil, fmt.Errorf("jobs: %w", err)
		}
		s.run = c
		// Inserts inside the store's database/sql transactions (pgx stdlib)
		// go through riverdatabasesql. This client never works jobs; it
		// shares the worker bundle so unknown kinds are refused at insert.
		icfg := &river.Config{
			ID:          o.ID + "-tx",
			Logger:      cfg.Logger,
			Workers:     s.workers,
			MaxAttempts: o.MaxAttempts,
		}
		if s.txc, err = river.NewClient(riverdatabasesql.New(st.DB()), icfg); err != nil {
			s.pool.Close()
			return nil, fmt.Errorf("jobs: %w", err)
		}
	}
	s.metrics = newCollector(s)
	return s, nil
}

func newPool(ctx context.Context, url string, size int32) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("jobs: PostgreSQL needs Options.DatabaseURL")
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("jobs: the database URL does not parse") // the error may quote the password
	}
	// As in core/store: River's queries are short; JIT only adds latency.
	if _, set := pc.ConnConfig.RuntimeParams["jit"]; !set {
		pc.ConnConfig.RuntimeParams["jit"] = "off"
	}
	if size <= 0 {
		size = 8
	}
	pc.MaxConns = size
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, errors.New("jobs: cannot create River's connection pool")
	}
	return pool, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// kindRE is River's rule for job kinds.
var kindRE = regexp.MustCompile(`\A[\w][\w\-\[\]<>\/.·:+]+\z`)

// Register adds the worker of one job kind. Call it before the service
// starts (domain packages do it while App is built).
func Register[T river.JobArgs](s *Service, w river.Worker[T]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	var args T
	kind := args.Kind()
	if !kindRE.MatchString(kind) {
		return fmt.Errorf("jobs: job kind %q does not match %s", kind, kindRE)
	}
	if err := river.AddWorkerSafely(s.workers, w); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	s.kinds = append(s.kinds, kind)
	return nil
}

// Every is a fixed-interval schedule for AddPeriodic (at least a second).
func Every(d time.Duration) river.PeriodicSchedule { return river.PeriodicInterval(d) }

// PeriodicOptions tune a periodic job.
type PeriodicOptions struct {
	// ID identifies the periodic job (unique among them).
	ID string
	// RunOnStart inserts a job as soon as this process becomes the leader.
	RunOnStart bool
}

// AddPeriodic inserts the job construct returns on every tick of schedule.
// Periodic jobs are enqueued by the elected leader only: with several
// processes on one PostgreSQL database each tick inserts one job, which
// any process may then work. construct must not block; returning nil args
// skips a tick. Give the job UniqueOpts{ByPeriod: interval} if a tick must
// never run twice even across a change of leader.
func (s *Service) AddPeriodic(schedule river.PeriodicSchedule, construct func() (river.JobArgs, *river.InsertOpts), o PeriodicOptions) error {
	_, err := s.run.PeriodicJobs().AddSafely(river.NewPeriodicJob(schedule, construct,
		&river.PeriodicJobOpts{ID: o.ID, RunOnStart: o.RunOnStart}))
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	return nil
}

// Insert enqueues a job on its own. On SQLite never call it inside a
// transaction of the store (the single writer is held by it): use InsertTx.
func (s *Service) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	if s.closed.Load() {
		return nil, ErrStopped
	}
	return s.run.Insert(ctx, args, opts)
}

// InsertMany enqueues several jobs at once.
func (s *Service) InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	if s.closed.Load() {
		return nil, ErrStopped
	}
	return s.run.InsertMany(ctx, params)
}

// JobGet reads a job.
func (s *Service) JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	if s.closed.Load() {
		return nil, ErrStopped
	}
	return s.run.JobGet(ctx, id)
}

// JobCancel cancels a job: a queued job never runs; a running one has its
// context cancelled.
func (s *Service) JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	if s.closed.Load() {
		return nil, ErrStopped
	}
	return s.run.JobCancel(ctx, id)
}

// Subscribe streams River's events of the given kinds (for tests and
// diagnostics); call the returned function to stop.
func (s *Service) Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func()) {
	return s.run.SubscribeConfig(&river.SubscribeConfig{Kinds: kinds, ChanSize: 10000})
}

// Name implements workers.Worker.
func (s *Service) Name() string { return "jobs" }

// Start starts working jobs, and the leader's periodic jobs and maintenance
// (rescuing stuck jobs, cleaning finished ones). With no worker registered
// no job can be inserted either, and River is not started at all.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return nil
	}
	s.started = true
	if len(s.kinds) == 0 {
		s.log.InfoContext(ctx, "no job kinds registered; the job queue is idle")
		return nil
	}
	events, stop := s.run.SubscribeConfig(&river.SubscribeConfig{
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled, river.EventKindJobSnoozed},
		ChanSize: 10000,
	})
	s.stopSubs = stop
	s.subsDone = make(chan struct{})
	go func() {
		defer close(s.subsDone)
		for ev := range events {
			s.metrics.observe(ev)
		}
	}()
	// River's client lives until Stop, not until the caller's context ends
	// (cancelling the Start context would cancel running jobs at once).
	if err := s.run.Start(context.WithoutCancel(ctx)); err != nil {
		stop()
		return fmt.Errorf("jobs: start River: %w", err)
	}
	s.running = true
	s.log.InfoContext(ctx, "job queue started", "kinds", s.kinds, "dialect", s.dialect)
	return nil
}

// Stop stops fetching new jobs and lets running ones finish until ctx ends;
// then it cancels their contexts (StopAndCancel) and waits up to
// SoftStopGrace for them to return. A job cancelled this way is handed back
// to the queue without using up an attempt; one whose worker ignores its
// context stays "running" until the rescuer of a live process picks it up
// (RescueStuckJobsAfter).
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.closed.Store(true)
	var err error
	if s.running {
		err = s.run.Stop(ctx)
		if err != nil && ctx.Err() != nil {
			s.log.Warn("jobs still running at the stop deadline; cancelling them", "grace", s.opts.SoftStopGrace.String())
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.SoftStopGrace)
			err = s.run.StopAndCancel(hctx)
			cancel()
		}
		if s.stopSubs != nil {
			s.stopSubs()
			<-s.subsDone
		}
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if err != nil {
		return fmt.Errorf("jobs: stop: %w", err)
	}
	return nil
}

// Dialect is the store's dialect the service runs on.
func (s *Service) Dialect() string { return s.dialect }
