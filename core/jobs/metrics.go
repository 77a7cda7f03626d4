package jobs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// Collector exports the job queue on /metrics:
//
//   - datapulse_jobs{kind,state}: jobs in the database by kind and state, read
//     at scrape time (so it covers every process on the database);
//   - datapulse_jobs_oldest_available_seconds: age of the oldest job that is
//     due but not started (0 when none) — grows when nothing works the queue;
//   - datapulse_job_runs_total{kind,outcome}: attempts finished by this process
//     (completed, failed, cancelled, snoozed);
//   - datapulse_job_failures_total{kind}: failed attempts (errors, panics,
//     timeouts) in this process; the job is retried until MaxAttempts;
//   - datapulse_job_lag_seconds{kind}: time from a job's scheduled_at to the
//     start of its attempt in this process.
type Collector struct {
	s *Service

	jobs, oldest *prometheus.Desc
	runs         *prometheus.CounterVec
	failures     *prometheus.CounterVec
	lag          *prometheus.HistogramVec
}

// scrapeTimeout bounds the queries a scrape runs.
const scrapeTimeout = 3 * time.Second

func newCollector(s *Service) *Collector {
	return &Collector{
		s: s,
		jobs: prometheus.NewDesc("datapulse_jobs",
			"Jobs in the database by kind and state (all processes).", []string{"kind", "state"}, nil),
		oldest: prometheus.NewDesc("datapulse_jobs_oldest_available_seconds",
			"Age of the oldest job that is due but not yet started (0: none).", nil, nil),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapulse_job_runs_total",
			Help: "Job attempts finished by this process, by kind and outcome (completed, failed, cancelled, snoozed).",
		}, []string{"kind", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapulse_job_failures_total",
			Help: "Failed job attempts (error, panic or timeout) in this process, by kind.",
		}, []string{"kind"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "datapulse_job_lag_seconds",
			Help:    "Time from a job's scheduled time to the start of its attempt, by kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"kind"}),
	}
}

// Collector returns the service's Prometheus collector.
func (s *Service) Collector() *Collector { return s.metrics }

func (c *Collector) observe(ev *river.Event) {
	if ev == nil || ev.Job == nil {
		return
	}
	kind := ev.Job.Kind
	outcome := map[river.EventKind]string{
		river.EventKindJobCompleted: "completed",
		river.EventKindJobFailed:    "failed",
		river.EventKindJobCancelled: "cancelled",
		river.EventKindJobSnoozed:   "snoozed",
	}[ev.Kind]
	if outcome == "" {
		return
	}
	c.runs.WithLabelValues(kind, outcome).Inc()
	if ev.Kind == river.EventKindJobFailed {
		c.failures.WithLabelValues(kind).Inc()
	}
	if ev.JobStats != nil {
		c.lag.WithLabelValues(kind).Observe(max(ev.JobStats.QueueWaitDuration, 0).Seconds())
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.oldest
	c.runs.Describe(ch)
	c.failures.Describe(ch)
	c.lag.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.runs.Collect(ch)
	c.failures.Collect(ch)
	c.lag.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, oldest, err := c.s.queueState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.jobs, err)
		return
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n.count), n.kind, n.state)
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest.Seconds())
}

type stateCount struct {
	kind, state string
	count       int64
}

// queueState counts jobs by kind and state, and finds the oldest due job.
func (s *Service) queueState(ctx context.Context) ([]stateCount, time.Duration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, state, count(*) FROM river_job GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []stateCount
	for rows.Next() {
		var n stateCount
		if err := rows.Scan(&n.kind, &n.state, &n.count); err != nil {
			return nil, 0, err
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	// The age is computed by the database against its own clock, in seconds.
	q := `SELECT coalesce(max(extract(epoch FROM now() - scheduled_at)), 0)::float8 FROM river_job WHERE state = 'available'`
	if s.dialect != "postgres" {
		q = `SELECT coalesce(max((julianday('now') - julianday(scheduled_at)) * 86400.0), 0) FROM river_job WHERE state = 'available'`
	}
	var secs float64
	if err := s.db.QueryRowContext(ctx, q).Scan(&secs); err != nil {
		return nil, 0, err
	}
	return out, time.Duration(max(secs, 0) * float64(time.Second)), nil
}
