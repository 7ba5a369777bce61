package cluster

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	fwd "github.com/meridian-gslb/meridian/gslb/forward"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/prometheus/client_golang/prometheus"
)

// TestReporterReadsForwarderMetrics: every metric the reporter reads is
// one the forwarder's collector describes, so a rename there fails here.
func TestReporterReadsForwarderMetrics(t *testing.T) {
	f := fwd.New(fwd.Options{})
	ch := make(chan *prometheus.Desc, 256)
	f.Collector().Describe(ch)
	close(ch)
	var all strings.Builder
	for d := range ch {
		all.WriteString(d.String())
	}
	for _, name := range []string{metricActive, metricConns, metricRequests, metricDuration, metricHealthy} {
		if !strings.Contains(all.String(), `"`+name+`"`) {
			t.Errorf("the forwarder has no metric %s", name)
		}
	}
}

// TestReporter: gauges as they are, rates and p99 over the interval.
func TestReporter(t *testing.T) {
	reg := prometheus.NewRegistry()
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricActive}, []string{"listener", "protocol"})
	conns := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricConns}, []string{"listener", "protocol"})
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRequests}, []string{"listener", "route", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricDuration, Buckets: []float64{0.01, 0.1, 1}}, []string{"listener", "route"})
	healthy := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricHealthy}, []string{"pool"})
	reg.MustRegister(active, conns, reqs, dur, healthy)
	vip := netip.MustParseAddr("192.0.2.10")
	r := NewReporter(nil, "eu-west", reg, 0, []LoadListener{
		{Name: "web", VIPs: []netip.Addr{vip}, Unit: health.UnitRPS, Target: 100, Max: 130, HTTP: true, Pools: []string{"app"}, Backends: 3},
		{Name: "db", Unit: health.UnitConnections, Target: 10, Max: 20, Pools: []string{"db"}, Backends: 1},
	})
	t0 := time.Unix(1000, 0)
	if _, err := r.Report(t0); err != nil {
		t.Fatal(err)
	}
	active.WithLabelValues("web", "http").Set(7)
	active.WithLabelValues("db", "tcp").Set(4)
	conns.WithLabelValues("db", "tcp").Add(30)
	reqs.WithLabelValues("web", "a", "2xx").Add(150)
	reqs.WithLabelValues("web", "b", "5xx").Add(50)
	for i := range 100 {
		v := 0.005
		if i == 99 {
			v = 0.5
		}
		if i >= 98 {
			v = 0.05
		}
		dur.WithLabelValues("web", "a").Observe(v)
	}
	healthy.WithLabelValues("app").Set(2)
	healthy.WithLabelValues("db").Set(1)
	rep, err := r.Report(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	web, db := rep.Listeners[0], rep.Listeners[1]
	if web.Rate != 100 || web.Load != 100 || web.Active != 7 || web.BackendsUp != 2 || web.BackendsAll != 3 || web.P99 != 100*time.Millisecond {
		t.Errorf("web: %+v, want 100 req/s as its load, 7 active, 2 of 3 backends, p99 100ms", web)
	}
	if db.Rate != 15 || db.Load != 4 || db.BackendsUp != 1 {
		t.Errorf("db: %+v, want 15 conn/s, 4 open connections as its load", db)
	}
}
