package cluster

import (
	"time"

	"github.com/meridian-gslb/meridian/gslb/checks"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/prometheus/client_golang/prometheus"
)

// The health metrics (meridian_target_up, meridian_targets, transitions,
// region RTT) are package checks', under the same names as a single
// node's; the rest are the cluster's own.
var (
	staleDesc = prometheus.NewDesc("meridian_target_stale",
		"1 while no vantage's result for a target is fresh: its state is the last verdict.", []string{"target", "region"}, nil)
	membersDesc = prometheus.NewDesc("meridian_cluster_members",
		"Cluster members known to this node, by role and state: alive, or lost (left, failed) and still called back.", []string{"role", "state"}, nil)
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
	keyErrorsDesc = prometheus.NewDesc("meridian_cluster_decrypt_errors_total",
		"Gossip messages this node's keys could not read, by reason: wrong_key (another key), clear_text (the sender has no key), unexpected_encryption (this node has none).", []string{"reason"}, nil)
)

// Describe implements prometheus.Collector.
func (h *Health) Describe(ch chan<- *prometheus.Desc) {
	checks.DescribeHealth(ch)
	for _, d := range []*prometheus.Desc{staleDesc, membersDesc, vantageFreshDesc, vantageAgeDesc, vantageSuspectDesc, bytesDesc, droppedDesc, keyErrorsDesc} {
		ch <- d
	}
	h.node.rtts.Describe(ch)
}

// Collect implements prometheus.Collector, reading the table at scrape
// time.
func (h *Health) Collect(ch chan<- prometheus.Metric) {
	for k, n := range h.Transitions() {
		ch <- checks.TransitionsMetric(k[0], k[1], n)
	}
	counts := map[[2]string]int{}
	for _, v := range h.node.table.Verdicts() {
		region := v.Target.Region()
		counts[[2]string{region, v.State.String()}]++
		if v.State != health.Unknown {
			ch <- checks.TargetUpMetric(string(v.Target), region, v.State == health.Up)
		}
		stale := 0.0
		if v.Stale {
			stale = 1
		}
		ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, stale, string(v.Target), region)
	}
	for k, n := range counts {
		ch <- checks.TargetsMetric(k[0], k[1], n)
	}
	now := time.Now()
	for region, rtt := range h.RegionRTTs() {
		ch <- checks.RegionRTTMetric(region, rtt)
	}
	members := map[[2]string]int{}
	for _, m := range append(h.node.Members(), h.node.Lost()...) {
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
	for reason, n := range h.node.keyErrs.counts() {
		ch <- prometheus.MustNewConstMetric(keyErrorsDesc, prometheus.CounterValue, float64(n), reason)
	}
	h.node.rtts.Collect(ch)
}
