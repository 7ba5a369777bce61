package checks

import (
	"strings"

	"github.com/meridian-gslb/meridian/probes"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	transitionsDesc = prometheus.NewDesc("meridian_health_transitions_total",
		"Health state changes of a target, by the state it changed to.", []string{"target", "state"}, nil)
	targetsDesc = prometheus.NewDesc("meridian_targets",
		"Targets checked by this node, by region and state.", []string{"region", "state"}, nil)
	targetUpDesc = prometheus.NewDesc("meridian_target_up",
		"1 while a target's checks say up, 0 while down; absent before the first result.", []string{"target", "region"}, nil)
	rttDesc = prometheus.NewDesc("meridian_region_rtt_seconds",
		"Smoothed round-trip time of a region's successful checks.", []string{"region"}, nil)
)

var _ prometheus.Collector = (*Runner)(nil)

// Describe implements prometheus.Collector.
func (r *Runner) Describe(ch chan<- *prometheus.Desc) {
	ch <- transitionsDesc
	ch <- targetsDesc
	ch <- targetUpDesc
	ch <- rttDesc
}

// Collect implements prometheus.Collector: counts kept by observe, and
// states read from the scheduler at scrape time.
func (r *Runner) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	for k, n := range r.transitions {
		ch <- prometheus.MustNewConstMetric(transitionsDesc, prometheus.CounterValue, float64(n), k[0], k[1])
	}
	for region, ns := range r.rtt {
		ch <- prometheus.MustNewConstMetric(rttDesc, prometheus.GaugeValue, ns/1e9, region)
	}
	r.mu.Unlock()
	counts := map[[2]string]int{}
	for id, st := range r.sched.Snapshot() {
		region, _, _ := strings.Cut(id, "/")
		counts[[2]string{region, st.State.String()}]++
		switch st.State {
		case probes.Up:
			ch <- prometheus.MustNewConstMetric(targetUpDesc, prometheus.GaugeValue, 1, id, region)
		case probes.Down:
			ch <- prometheus.MustNewConstMetric(targetUpDesc, prometheus.GaugeValue, 0, id, region)
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
