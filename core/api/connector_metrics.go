package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/datapulse/datapulse/plugins/host"
)

// connectorCollector exports every connector's counters on /metrics with
// the connector's name as the label, read from the host at scrape time.
type connectorCollector struct {
	stats func() []host.ConnectorStats
	descs map[string]*prometheus.Desc
	dur   *prometheus.Desc
}

func newConnectorCollector(stats func() []host.ConnectorStats) *connectorCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("datapulse_connector_"+name, help, []string{"connector"}, nil)
	}
	return &connectorCollector{stats: stats, descs: map[string]*prometheus.Desc{
		"starts_total":         d("starts_total", "Connector processes started and described."),
		"restarts_total":       d("restarts_total", "Connector processes started after the first one."),
		"start_failures_total": d("start_failures_total", "Connector starts that failed (handshake, describe, checksum)."),
		"crashes_total":        d("crashes_total", "Unexpected exits of running connector processes."),
		"hung_kills_total":     d("hung_kills_total", "Connector processes killed because they hung (wedged, or holding a call past its deadline)."),
		"calls_total":          d("calls_total", "Calls to the connector (queries and metadata calls)."),
		"errors_total":         d("errors_total", "Calls to the connector that failed."),
		"start_waits_total":    d("start_waits_total", "Calls that waited for the connector's process to start."),
	}, dur: d("call_duration_seconds", "Duration of calls to the connector (a query: until its result is read).")}
}

func (c *connectorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.dur
}

func (c *connectorCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		for name, v := range map[string]int64{
			"starts_total": s.Starts, "restarts_total": s.Restarts, "start_failures_total": s.StartFailures,
			"crashes_total": s.Crashes, "hung_kills_total": s.HungKills, "calls_total": s.Calls,
			"errors_total": s.Errors, "start_waits_total": s.StartWaits,
		} {
			ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), s.Name)
		}
		buckets := make(map[float64]uint64, len(host.CallDurationBuckets))
		for i, b := range host.CallDurationBuckets {
			buckets[b] = s.DurationBuckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.dur, s.DurationCount, s.DurationSum, buckets, s.Name)
	}
}
