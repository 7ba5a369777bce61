package cluster

import (
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/prometheus/client_golang/prometheus"
)

// The health metrics have the names the single node's checks export
// (package checks), so dashboards and alerts work either way; the rest
// are the cluster's own.
var (
	transitionsDesc = prometheus.NewDesc("meridian_health_transitions_total",
		"Health state changes of a target, by the state it changed to.", []string{"target", "state"}, nil)
	targetsDesc = prometheus.NewDesc("meridian_targets",
		"Targets, by region and state as the vantages decide it.", []string{"region", "state"}, nil)
	targetUpDesc = prometheus.NewDesc("meridian_target_up",
		"1 while a quorum of vantages does not see a target down, 0 while it does; absent before the first vote.", []string{"target", "region"}, nil)
	rttDesc = prometheus.NewDesc("meridian_region_rtt_seconds",
		"Round-trip time to a region: the median over vantages of each one's mean over the region's targets.", []string{"region"}, nil)
	staleDesc = prometheus.NewDesc("meridian_target_stale",
		"1 while no vantage's result for a target is fresh: its state is the last verdict.", []string{"target", "region"}, nil)
	membersDesc = prometheus.NewDesc("meridian_cluster_members",
		"Cluster members known to this node, by role and state.", []string{"role", "state"}, nil)
	vantageFreshDesc = prometheus.NewDesc("meridian_vantage_fresh_results",
		"Results of a vantage young enough to vote.", []string{"vantage"}, nil)
	vantageAgeDesc = prometheus.NewDesc("meridian_vantage_age_seconds",
		"Age of a vantage's freshest result: how long since it was last heard.", []string{"vantage"}, nil)
	vantageSuspectDesc = prometheus.NewDesc("meridian_vantage_suspect",
		"1 while a vantage sees every target down that the others see up: its votes do not count.", []string{"vantage"}, nil)
	bytesDesc = prometheus.NewDesc("meridian_cluster_gossip_bytes_total",
		"Bytes of gossip over UDP and TCP, by direction.", []string{"direction"}, nil)
	droppedDesc = prometheus.NewDesc("meridian_cluster_dropped_messages_total",
		"Cluster messages that could not be read (malformed, or of another version).", nil, nil)
)

// Describe implements prometheus.Collector.
func (h *Health) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{transitionsDesc, targetsDesc, targetUpDesc, rttDesc, staleDesc,
		membersDesc, vantageFreshDesc, vantageAgeDesc, vantageSuspectDesc, bytesDesc, droppedDesc} {
		ch <- d
	}
	h.node.rtts.Describe(ch)
}

// Collect implements prometheus.Collector, reading the table at scrape
// time.
func (h *Health) Collect(ch chan<- prometheus.Metric) {
	for k, n := range h.Transitions() {
		ch <- prometheus.MustNewConstMetric(transitionsDesc, prometheus.CounterValue, float64(n), k[0], k[1])
	}
	counts := map[[2]string]int{}
	for _, v := range h.node.table.Verdicts() {
		region, _, _ := strings.Cut(v.Target, "/")
		counts[[2]string{region, v.State.String()}]++
		up := 0.0
		if v.State == gslb.Up {
			up = 1
		}
		if v.State != gslb.Unknown {
			ch <- prometheus.MustNewConstMetric(targetUpDesc, prometheus.GaugeValue, up, v.Target, region)
		}
		stale := 0.0
		if v.Stale {
			stale = 1
		}
		ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, stale, v.Target, region)
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	now := time.Now()
	for region, rtt := range medianRTTs(vantageRTTs(h.node.table.Entries(), now, h.node.cfg.Quorum.StaleAfter)) {
		ch <- prometheus.MustNewConstMetric(rttDesc, prometheus.GaugeValue, rtt.Seconds(), region)
	}
	members := map[[2]string]int{}
	for _, m := range h.node.Members() {
		members[[2]string{string(m.Role), m.State}]++
	}
	for k, n := range members {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for _, v := range h.node.table.Vantages(now) {
		suspect := 0.0
		if v.Suspect {
			suspect = 1
		}
		ch <- prometheus.MustNewConstMetric(vantageFreshDesc, prometheus.GaugeValue, float64(v.Fresh), v.Name)
		ch <- prometheus.MustNewConstMetric(vantageAgeDesc, prometheus.GaugeValue, v.Age.Seconds(), v.Name)
		ch <- prometheus.MustNewConstMetric(vantageSuspectDesc, prometheus.GaugeValue, suspect, v.Name)
	}
	sent, recv := h.node.Bytes()
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(sent), "sent")
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(recv), "received")
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(h.node.Dropped()))
	h.node.rtts.Collect(ch)
}
