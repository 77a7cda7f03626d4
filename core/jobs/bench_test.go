package jobs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/store/storetest"
)

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// BenchmarkSchedulingLag measures the time from a job's scheduled_at to the
// start of its attempt (River's QueueWaitDuration) with the service's default
// settings (10 workers on the default queue), for b.N trivial jobs:
//
//   - paced: one job every 20 ms (50 jobs/s), each insert its own
//     transaction: the pickup latency of a queue that keeps up;
//   - one-by-one: jobs inserted one after another as fast as inserts go:
//     inserts, fetches and completions compete (on SQLite for the one
//     writer connection), so the lag includes a growing backlog;
//   - burst: all b.N jobs inserted at once (batches of 1000): the lag then
//     includes waiting behind the jobs before it (throughput-bound).
//
// Run with a fixed count, e.g.
//
//	go test ./core/jobs -run '^$' -bench SchedulingLag -benchtime 1000x
//
// ns/op is the wall time per job from the first insert to the last job done.
func BenchmarkSchedulingLag(b *testing.B) {
	for _, tg := range storetest.Targets() {
		for _, mode := range []string{"paced", "one-by-one", "burst"} {
			b.Run(tg.Name+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				st, so := openStore(b, tg)
				s := newService(b, st, so, nil, func(s *jobs.Service) { must(b, jobs.Register(s, noopWorker{})) })
				events, stop := s.Subscribe(river.EventKindJobCompleted)
				defer stop()
				start(b, s)
				n := b.N
				lags := make([]time.Duration, 0, n)
				collected := make(chan struct{})
				go func() {
					defer close(collected)
					limit := time.After(10 * time.Minute)
					for len(lags) < n {
						select {
						case ev, ok := <-events:
							if !ok {
								return
							}
							lags = append(lags, ev.JobStats.QueueWaitDuration)
						case <-limit:
							return
						}
					}
				}()
				b.ResetTimer()
				switch mode {
				case "paced":
					tick := time.NewTicker(20 * time.Millisecond)
					for i := range n {
						<-tick.C
						if _, err := s.Insert(ctx, noopArgs{N: i}, nil); err != nil {
							b.Fatal(err)
						}
					}
					tick.Stop()
				case "one-by-one":
					for i := range n {
						if _, err := s.Insert(ctx, noopArgs{N: i}, nil); err != nil {
							b.Fatal(err)
						}
					}
				case "burst":
					for i := 0; i < n; i += 1000 {
						batch := make([]river.InsertManyParams, 0, 1000)
						for j := i; j < min(i+1000, n); j++ {
							batch = append(batch, river.InsertManyParams{Args: noopArgs{N: j}})
						}
						if _, err := s.InsertMany(ctx, batch); err != nil {
							b.Fatal(err)
						}
					}
				}
				<-collected
				b.StopTimer()
				if len(lags) < n {
					b.Fatalf("only %d of %d jobs ran within the limit", len(lags), n)
				}
				slices.Sort(lags)
				pct := func(p float64) float64 {
					return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))]) / float64(time.Millisecond)
				}
				b.ReportMetric(pct(0.50), "p50-lag-ms")
				b.ReportMetric(pct(0.99), "p99-lag-ms")
				b.ReportMetric(float64(lags[len(lags)-1])/float64(time.Millisecond), "max-lag-ms")
			})
		}
	}
}
