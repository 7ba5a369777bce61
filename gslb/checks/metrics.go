package checks

import (
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	transitionsDesc = prometheus.NewDesc("meridian_health_transitions_total",
		"Health state changes of a target, by the state it changed to.", []string{"target", "state"}, nil)
	targetsDesc = prometheus.NewDesc("meridian_targets",
		"Targets by region and state (this node's checks, or in a cluster the vantages' verdict).", []string{"region", "state"}, nil)
	targetUpDesc = prometheus.NewDesc("meridian_target_up",
		"1 while a target is up, 0 while down (in a cluster: while a quorum of vantages sees it down); absent before the first result.", []string{"target", "region"}, nil)
	rttDesc = prometheus.NewDesc("meridian_region_rtt_seconds",
		"Smoothed round-trip time of a region's successful checks (in a cluster: the median over vantages).", []string{"region"}, nil)
)

// The health metrics have one set of names whoever decides health: this
// node's checks, or the cluster's vantages (package cluster builds them
// with the functions below), so dashboards and alerts work either way.

// DescribeHealth sends the health metrics' descriptors.
func DescribeHealth(ch chan<- *prometheus.Desc) {
	ch <- transitionsDesc
	ch <- targetsDesc
	ch <- targetUpDesc
	ch <- rttDesc
}

// TransitionsMetric counts a target's changes to state.
func TransitionsMetric(target, state string, n uint64) prometheus.Metric {
	return prometheus.MustNewConstMetric(transitionsDesc, prometheus.CounterValue, float64(n), target, state)
}

// TargetsMetric is how many targets of a region are in state.
func TargetsMetric(region, state string, n int) prometheus.Metric {
	return prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(n), region, state)
}

// TargetUpMetric is 1 for a target up, 0 for one down.
func TargetUpMetric(target, region string, up bool) prometheus.Metric {
	v := 0.0
	if up {
		v = 1
	}
	return prometheus.MustNewConstMetric(targetUpDesc, prometheus.GaugeValue, v, target, region)
}

// RegionRTTMetric is a region's round-trip time.
func RegionRTTMetric(region string, d time.Duration) prometheus.Metric {
	return prometheus.MustNewConstMetric(rttDesc, prometheus.GaugeValue, d.Seconds(), region)
}

var _ prometheus.Collector = (*Runner)(nil)

// Describe implements prometheus.Collector.
func (r *Runner) Describe(ch chan<- *prometheus.Desc) { DescribeHealth(ch) }

// Collect implements prometheus.Collector: counts kept by observe, and
// states read from the scheduler at scrape time.
func (r *Runner) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	for k, n := range r.transitions {
		ch <- TransitionsMetric(k[0], k[1], n)
	}
	for region, ns := range r.rtt {
		ch <- RegionRTTMetric(region, time.Duration(ns))
	}
	r.mu.Unlock()
	counts := map[[2]string]int{}
	for id, st := range r.sched.Snapshot() {
		region := health.TargetID(id).Region()
		counts[[2]string{region, st.State.String()}]++
		if st.State != probes.Unknown {
			ch <- TargetUpMetric(id, region, st.State == probes.Up)
		}
	}
	for k, n := range counts {
		ch <- TargetsMetric(k[0], k[1], n)
	}
}
