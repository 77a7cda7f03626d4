package alerting

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alert"
	"github.com/datapulse/datapulse/ent/alertevent"
	"github.com/datapulse/datapulse/ent/schema/types"
)

// BenchmarkEvaluateDue10k evaluates 10,000 active alerts, all due at once,
// through EvaluateDue (the periodic job's loop: claim, run the source under
// the owner's rights, apply the state) on SQLite and, with
// DATAPULSE_TEST_POSTGRES_URL, PostgreSQL metadata. The source is a tiny
// SQLite file on the builtin connector, which runs in its own plugin process
// (the host re-executes the test binary), so this process's CPU time
// (getrusage RUSAGE_SELF) is DataPulse's own work per evaluation — the
// source query's execution is not in it (the gRPC client side of the call
// is). Reported:
//
//   - cpu-ms/eval: RUSAGE_SELF user+system time / evaluations;
//   - evals/s: wall-clock evaluation rate of one EvaluateDue loop;
//   - burst-lag-p99-s: for the burst (all 10,000 due at the same instant),
//     the 99th percentile of (evaluation time − due time). At a 60 s
//     interval the steady state needs 10,000/60 ≈ 167 evals/s; the
//     scheduling lag is then the 1 s periodic tick plus queueing, and the
//     burst lag is the worst case (e.g. after a restart).
//
// Run: go test -run '^$' -bench EvaluateDue10k -benchtime 1x ./core/alerting
func BenchmarkEvaluateDue10k(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("DATAPULSE_BENCH_ALERTS")); err == nil && v > 0 {
		n = v // smaller runs for profiling
	}
	for _, tg := range storetest.Targets() {
		b.Run(tg.Name, func(b *testing.B) {
			e := newTenv(b, tg)
			e.setValue(1)
			sys := principal.System(context.Background())
			for range b.N {
				b.StopTimer()
				e.db.Alert.Delete().ExecX(sys)
				due := e.now
				for i := 0; i < n; i += 500 {
					bulk := make([]*ent.AlertCreate, 0, 500)
					for j := i; j < i+500 && j < n; j++ {
						bulk = append(bulk, e.db.Alert.Create().SetUserID(e.owner).SetMetric(fmt.Sprintf("a%d", j)).
							SetThresholdType(alert.ThresholdTypeAbove).SetThresholdValue(1e12).
							SetChannels([]types.AlertChannel{}).SetSource(&types.AlertSource{QueryID: e.query.String(), Column: "total"}).
							SetIntervalSeconds(60).SetNextEvalAt(due))
					}
					e.db.Alert.CreateBulk(bulk...).ExecX(sys)
				}
				// Real time from here on: the service's clock follows the wall clock.
				start := time.Now()
				e.mu.Lock()
				e.now = due
				e.mu.Unlock()
				lags := make([]float64, 0, n)
				var ru0, ru1 syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru0) //nolint:errcheck // Linux
				b.StartTimer()
				total := 0
				for total < n {
					e.mu.Lock()
					e.now = due.Add(time.Since(start))
					e.mu.Unlock()
					k, err := e.svc.EvaluateDue(context.Background(), 200)
					if err != nil {
						b.Fatal(err)
					}
					el := time.Since(start).Seconds()
					for range k {
						lags = append(lags, el) // upper bound: the batch's end
					}
					total += k
					if k == 0 {
						b.Fatalf("EvaluateDue evaluated nothing with %d of %d left", n-total, n)
					}
				}
				b.StopTimer()
				wall := time.Since(start)
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru1) //nolint:errcheck // Linux
				cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
				slices.Sort(lags)
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(total), "cpu-ms/eval")
				b.ReportMetric(float64(total)/wall.Seconds(), "evals/s")
				b.ReportMetric(lags[len(lags)*99/100], "burst-lag-p99-s")
			}
		})
	}
}

// BenchmarkWebhookDeliveries measures webhook deliveries per second through
// River (alerts.deliver jobs, the service's default workers) and
// core/notify to a local listener (httptest, allowed by the egress guard):
// b.N delivery jobs of distinct events of one firing alert are inserted at
// once, and the clock runs from the insert to the listener's b.N-th POST.
//
// Run: go test -run '^$' -bench WebhookDeliveries -benchtime 2000x ./core/alerting
func BenchmarkWebhookDeliveries(b *testing.B) {
	for _, tg := range storetest.Targets() {
		b.Run(tg.Name, func(b *testing.B) {
			e := newTenv(b, tg)
			var got atomic.Int64
			done := make(chan struct{}, 1)
			var want int64
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body) //nolint:errcheck
				if got.Add(1) == atomic.LoadInt64(&want) {
					select {
					case done <- struct{}{}:
					default:
					}
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			b.Cleanup(hook.Close)
			allow, err := egress.ParseAllowList("127.0.0.1")
			if err != nil {
				b.Fatal(err)
			}
			e.svc.allow = allow
			n, err := notify.New(notify.Config{Guard: egress.New(allow), PublicURL: "https://bi.example.com"})
			if err != nil {
				b.Fatal(err)
			}
			e.setValue(500)
			in := queryAlert(e, "above", 100, 0)
			in.Channels = &[]ChannelInput{{Type: "webhook", Target: hook.URL + "/hook", Secret: ptr("webhook secret for the bench")}}
			a := e.create(e.owner, in)
			e.eval(a.ID) // fires: one event, one instance (no jobs yet: dispatched inline without River)
			sys := principal.System(context.Background())
			ev0 := e.db.AlertEvent.Query().Where(alertevent.AlertID(a.ID)).FirstX(sys)
			got.Store(0)

			js, err := jobs.New(context.Background(), e.st, jobs.Options{DatabaseURL: e.so.DatabaseURL})
			if err != nil {
				b.Fatal(err)
			}
			if err := e.svc.UseJobs(js, n); err != nil {
				b.Fatal(err)
			}
			// Pause the alert so that the periodic job does not evaluate it meanwhile.
			e.db.Alert.UpdateOneID(a.ID).SetStatus(alert.StatusPaused).ExecX(sys)
			if err := js.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				js.Stop(ctx) //nolint:errcheck
			})
			// b.N events of the alert (distinct ids: River's uniqueness keys on the args).
			params := make([]river.InsertManyParams, 0, b.N)
			for i := 0; i < b.N; i += 500 {
				bulk := make([]*ent.AlertEventCreate, 0, 500)
				for j := i; j < i+500 && j < b.N; j++ {
					bulk = append(bulk, e.db.AlertEvent.Create().SetAlertID(a.ID).SetInstanceID(ev0.InstanceID).
						SetFromState(ev0.FromState).SetToState(ev0.ToState).SetValue(500).SetThresholdValue(100).SetSeq(ev0.Seq+j+1))
				}
				for _, ev := range e.db.AlertEvent.CreateBulk(bulk...).SaveX(sys) {
					params = append(params, river.InsertManyParams{Args: DeliverArgs{AlertID: a.ID, EventID: ev.ID, Change: DeliveryFiring},
						InsertOpts: &river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}})
				}
			}
			got.Store(0)
			atomic.StoreInt64(&want, int64(b.N))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < len(params); i += 1000 {
				if _, err := js.InsertMany(context.Background(), params[i:min(i+1000, len(params))]); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("%d of %d deliveries after 5 minutes", got.Load(), b.N)
			}
			wall := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/wall.Seconds(), "deliveries/s")
		})
	}
}
