package host_test

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/datapulse/datapulse/plugins/host"
)

// BenchmarkColdStart measures what the first use of a connector costs: a
// fresh host starts the process, completes go-plugin's handshake (with
// AutoMTLS) and describes it. "x5" starts five connectors at once, as a
// server does on its first connector listing.
//
//	go test ./plugins/host -run '^$' -bench ColdStart -benchtime 20x
//
// With DATAPULSE_BENCH_EXE set to a built datapulse binary, the connectors
// are its real builtins (csv, sqlite), re-executed as `datapulse plugin
// serve <name>` as the server does.
func BenchmarkColdStart(b *testing.B) {
	exe, builtins := fakeconn, []string{"fake0", "fake1", "fake2", "fake3", "fake4"}
	if e := os.Getenv("DATAPULSE_BENCH_EXE"); e != "" {
		exe, builtins = e, []string{"csv", "sqlite", "postgres", "mysql", "csv"}
	}
	for _, n := range []int{1, 5} {
		b.Run("x"+strconv.Itoa(n), func(b *testing.B) {
			names := append([]string(nil), builtins[:n]...)
			if n == 5 && exe != fakeconn {
				names = names[:4] // four distinct builtins
			}
			var total time.Duration
			selfCPU0, kidsCPU0 := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
			for i := 0; i < b.N; i++ {
				h, err := host.New(context.Background(), host.Options{
					Executable: exe, Builtins: names, Logger: discardLogger(),
				})
				if err != nil {
					b.Fatal(err)
				}
				t := time.Now()
				for _, c := range h.Connectors(context.Background()) {
					if c.Status != host.StatusReady {
						b.Fatalf("%s: %s %s", c.Name, c.Status, c.LastError)
					}
				}
				total += time.Since(t)
				b.StopTimer()
				h.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/start")
			// CPU spent per start (all n connectors), host and connector
			// processes: what a loaded machine makes slower.
			b.ReportMetric(float64((cpuTime(syscall.RUSAGE_SELF)-selfCPU0).Microseconds())/1e3/float64(b.N), "host-cpu-ms/start")
			b.ReportMetric(float64((cpuTime(syscall.RUSAGE_CHILDREN)-kidsCPU0).Microseconds())/1e3/float64(b.N), "conn-cpu-ms/start")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// cpuTime is the user+system CPU time of who (RUSAGE_SELF or
// RUSAGE_CHILDREN: the children waited for).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
