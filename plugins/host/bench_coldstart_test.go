package host_test

import (
	"context"
	"strconv"
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
func BenchmarkColdStart(b *testing.B) {
	for _, n := range []int{1, 5} {
		b.Run("x"+strconv.Itoa(n), func(b *testing.B) {
			names := make([]string, n)
			for i := range names {
				names[i] = "fake" + strconv.Itoa(i)
			}
			var total time.Duration
			for i := 0; i < b.N; i++ {
				h, err := host.New(context.Background(), host.Options{
					Executable: fakeconn, Builtins: names, Logger: discardLogger(),
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
			b.ReportMetric(0, "ns/op")
		})
	}
}
