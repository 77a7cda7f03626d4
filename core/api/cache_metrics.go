package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/datapulse/datapulse/core/resultcache"
)

// cacheCollector exports the result cache's counters on /metrics, read at
// scrape time.
type cacheCollector struct {
	stats func() resultcache.Stats
	descs map[string]*prometheus.Desc
}

func newCacheCollector(stats func() resultcache.Stats) *cacheCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("datapulse_result_cache_"+name, help, nil, nil)
	}
	return &cacheCollector{stats: stats, descs: map[string]*prometheus.Desc{
		"hits_total":         d("hits_total", "Lookups answered from the result cache."),
		"misses_total":       d("misses_total", "Lookups the result cache could not answer."),
		"coalesced_total":    d("coalesced_total", "Requests that joined an identical query in flight."),
		"computations_total": d("computations_total", "Queries run to fill the cache."),
		"evictions_total":    d("evictions_total", "Entries dropped to stay within the memory bound."),
		"bypasses_total":     d("bypasses_total", "Requests that skipped the cache (Cache-Control: no-cache)."),
		"bytes":              d("bytes", "Estimated memory held by cached results."),
		"max_bytes":          d("max_bytes", "The result cache's memory bound."),
		"entries":            d("entries", "Cached results."),
	}}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
	counter("hits_total", st.Hits)
	counter("misses_total", st.Misses)
	counter("coalesced_total", st.Coalesced)
	counter("computations_total", st.Computations)
	counter("evictions_total", st.Evictions)
	counter("bypasses_total", st.Bypasses)
	gauge("bytes", float64(st.Bytes))
	gauge("max_bytes", float64(st.MaxBytes))
	gauge("entries", float64(st.Entries))
}
