package cluster

import (
	"context"
	"math"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// DefaultLoadInterval is how often a forwarder reports its load.
const DefaultLoadInterval = time.Second

// The forwarder's metrics a Reporter reads: it adds nothing to the
// connection or request path, and reads what a scrape would.
const (
	metricActive   = "meridian_forward_listener_active_connections"
	metricConns    = "meridian_forward_listener_connections_total"
	metricRequests = "meridian_forward_http_requests_total"
	metricDuration = "meridian_forward_http_request_duration_seconds"
	metricHealthy  = "meridian_forward_pool_healthy_backends"
)

// LoadListener is what a Reporter reports on one listener: the
// operator's figures, and what to read.
type LoadListener struct {
	Name        string
	VIPs        []netip.Addr
	Unit        string // health.UnitConnections or health.UnitRPS
	Target, Max float64
	HTTP        bool     // requests per second from the HTTP counters; else new connections
	Pools       []string // the pools it forwards to, for the backends available
	Backends    int      // backends configured in those pools
}

// Reporter sends a forwarder's load to the DNS nodes every interval,
// read from the forwarder's own metrics.
type Reporter struct {
	node     *Node
	region   string
	gather   prometheus.Gatherer
	interval time.Duration

	mu        sync.Mutex
	listeners []LoadListener
	prev      sample
}

// sample is the counters at one moment, by listener.
type sample struct {
	at       time.Time
	counts   map[string]float64  // connections or requests so far
	duration map[string][]bucket // cumulative histogram buckets
}

type bucket struct{ le, count float64 }

// NewReporter returns a reporter for node (RoleForwarder) in region,
// reading gather; interval 0 is DefaultLoadInterval.
func NewReporter(node *Node, region string, gather prometheus.Gatherer, interval time.Duration, listeners []LoadListener) *Reporter {
	if interval <= 0 {
		interval = DefaultLoadInterval
	}
	return &Reporter{node: node, region: region, gather: gather, interval: interval, listeners: listeners}
}

// SetListeners replaces the listeners reported on, after a reload.
func (r *Reporter) SetListeners(ls []LoadListener) {
	r.mu.Lock()
	r.listeners = ls
	r.mu.Unlock()
}

// Run reports every interval until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			rep, err := r.Report(now)
			if err != nil {
				r.node.log.Warn("load report: reading the forwarder's metrics", "err", err)
				continue
			}
			r.node.SendLoad(rep)
		}
	}
}

// Report reads the metrics at now and returns the report: gauges as
// they are, rates and the p99 over the time since the previous Report
// (none on the first).
func (r *Reporter) Report(now time.Time) (LoadReport, error) {
	fams, err := r.gather.Gather()
	if err != nil {
		return LoadReport{}, err
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := sample{at: now, counts: map[string]float64{}, duration: map[string][]bucket{}}
	healthy := sumBy(byName[metricHealthy], "pool")
	active := sumBy(byName[metricActive], "listener")
	conns := sumBy(byName[metricConns], "listener")
	requests := sumBy(byName[metricRequests], "listener")
	rep := LoadReport{Region: r.region}
	for _, l := range r.listeners {
		cur.counts[l.Name] = conns[l.Name]
		if l.HTTP {
			cur.counts[l.Name] = requests[l.Name]
		}
		cur.duration[l.Name] = buckets(byName[metricDuration], l.Name)
		ll := ListenerLoad{Listener: l.Name, VIPs: l.VIPs, Unit: l.Unit, Target: l.Target, Max: l.Max,
			Active: active[l.Name], BackendsAll: l.Backends}
		for _, p := range l.Pools {
			ll.BackendsUp += int(healthy[p])
		}
		if dt := now.Sub(r.prev.at).Seconds(); !r.prev.at.IsZero() && dt > 0 {
			if prev, ok := r.prev.counts[l.Name]; ok {
				ll.Rate = max(0, cur.counts[l.Name]-prev) / dt
			}
			ll.P99 = p99(cur.duration[l.Name], r.prev.duration[l.Name])
		}
		ll.Load = ll.Rate
		if l.Unit == health.UnitConnections {
			ll.Load = ll.Active
		}
		rep.Listeners = append(rep.Listeners, ll)
	}
	r.prev = cur
	return rep, nil
}

// sumBy sums a family's gauge or counter values by one label's value.
func sumBy(f *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		out[labelOf(m, label)] += v
	}
	return out
}

func labelOf(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// buckets merges the listener's histograms (one per route) into one set
// of cumulative buckets, by upper bound.
func buckets(f *dto.MetricFamily, listener string) []bucket {
	if f == nil {
		return nil
	}
	byLE := map[float64]float64{}
	for _, m := range f.GetMetric() {
		if labelOf(m, "listener") != listener {
			continue
		}
		h := m.GetHistogram()
		for _, b := range h.GetBucket() {
			byLE[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		byLE[math.Inf(1)] += float64(h.GetSampleCount())
	}
	out := make([]bucket, 0, len(byLE))
	for le, c := range byLE {
		out = append(out, bucket{le, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].le < out[j].le })
	return out
}

// p99 is the 99th percentile of the requests between two readings of the
// buckets: the upper bound of the first bucket holding it (0 with no
// requests, and the largest finite bound when it is past them all).
func p99(cur, prev []bucket) time.Duration {
	if len(cur) == 0 {
		return 0
	}
	before := map[float64]float64{}
	for _, b := range prev {
		before[b.le] = b.count
	}
	total := 0.0
	for _, b := range cur {
		total = max(total, b.count-before[b.le])
	}
	if total <= 0 {
		return 0
	}
	last := 0.0
	for _, b := range cur {
		if math.IsInf(b.le, 1) {
			break
		}
		last = b.le
		if b.count-before[b.le] >= 0.99*total {
			return time.Duration(b.le * float64(time.Second))
		}
	}
	return time.Duration(last * float64(time.Second))
}
