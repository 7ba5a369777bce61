package admin

import (
	"cmp"
	"maps"
	"slices"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// RegionLoad is a region's load as the forwarders there report it, and
// the share of clients each of its pools keeps (records with load =
// "headroom").
type RegionLoad struct {
	Reports []LoadReport             `json:"reports"`
	Pools   map[string]gslb.PoolLoad `json:"pools,omitempty"` // by "record/TYPE/pool"
}

// LoadReport is one forwarder listener's fresh report.
type LoadReport struct {
	Forwarder   string   `json:"forwarder"`
	Listener    string   `json:"listener"`
	VIPs        []string `json:"vips,omitempty"`
	Unit        string   `json:"unit"`
	Load        float64  `json:"load"`
	Target      float64  `json:"target"`
	Max         float64  `json:"max"`
	Active      float64  `json:"active_connections"`
	Rate        float64  `json:"rate"` // requests (or new connections) per second
	P99Millis   float64  `json:"p99_ms"`
	BackendsUp  int      `json:"backends_up"`
	BackendsAll int      `json:"backends_configured"`
	AgeSeconds  float64  `json:"age_seconds"` // by this node's clock
}

// regionLoads are the engine's load reports and shares by region; nil
// when no forwarder reports and no record follows load.
func regionLoads(e *gslb.Engine) map[string]*RegionLoad {
	out := map[string]*RegionLoad{}
	at := func(region string) *RegionLoad {
		if out[region] == nil {
			out[region] = &RegionLoad{Reports: []LoadReport{}}
		}
		return out[region]
	}
	for _, l := range e.LoadReports() {
		r := LoadReport{Forwarder: l.Forwarder, Listener: l.Listener, Unit: l.Unit, Load: l.Load, Target: l.Target, Max: l.Max,
			Active: l.Active, Rate: l.Rate, P99Millis: float64(l.P99.Microseconds()) / 1000, BackendsUp: l.BackendsUp,
			BackendsAll: l.BackendsAll, AgeSeconds: l.Age.Seconds()}
		for _, a := range l.VIPs {
			r.VIPs = append(r.VIPs, a.String())
		}
		rl := at(l.Region)
		rl.Reports = append(rl.Reports, r)
	}
	for region, pools := range e.LoadsByRegion() {
		at(region).Pools = pools
	}
	for _, rl := range out {
		slices.SortFunc(rl.Reports, func(a, b LoadReport) int {
			return cmp.Or(cmp.Compare(a.Forwarder, b.Forwarder), cmp.Compare(a.Listener, b.Listener))
		})
	}
	return out
}

var (
	regionLoadDesc = prometheus.NewDesc("meridian_region_load",
		"Load the region's forwarders report (fresh reports, summed), in their unit.", []string{"region", "unit"}, nil)
	regionTargetLoadDesc = prometheus.NewDesc("meridian_region_target_load",
		"The region's target_load: the load its forwarders should stay under, summed.", []string{"region", "unit"}, nil)
	regionMaxLoadDesc = prometheus.NewDesc("meridian_region_max_load",
		"The region's max_load: the load its forwarders must not pass, summed.", []string{"region", "unit"}, nil)
	poolShareDesc = prometheus.NewDesc("meridian_pool_load_share",
		"Share of client subnets a pool of a record with load = \"headroom\" keeps: 1 below target, falling to 0 at max.",
		[]string{"record", "type", "pool", "region"}, nil)
)

func describeLoad(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{regionLoadDesc, regionTargetLoadDesc, regionMaxLoadDesc, poolShareDesc} {
		ch <- d
	}
}

// collectLoad writes the load metrics: reports summed by region and
// unit, and every load-following pool's share.
func collectLoad(ch chan<- prometheus.Metric, e *gslb.Engine) {
	type sum struct{ load, target, max float64 }
	sums := map[[2]string]*sum{}
	for _, l := range e.LoadReports() {
		k := [2]string{l.Region, l.Unit}
		if sums[k] == nil {
			sums[k] = &sum{}
		}
		sums[k].load += l.Load
		sums[k].target += l.Target
		sums[k].max += l.Max
	}
	for _, k := range slices.SortedFunc(maps.Keys(sums), func(a, b [2]string) int { return cmp.Compare(a[0]+a[1], b[0]+b[1]) }) {
		s := sums[k]
		ch <- prometheus.MustNewConstMetric(regionLoadDesc, prometheus.GaugeValue, s.load, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(regionTargetLoadDesc, prometheus.GaugeValue, s.target, k[0], k[1])
		ch <- prometheus.MustNewConstMetric(regionMaxLoadDesc, prometheus.GaugeValue, s.max, k[0], k[1])
	}
	for _, r := range e.AllRecords() {
		loads := e.Loads(r)
		for i, p := range r.Pools {
			if i < len(loads) {
				ch <- prometheus.MustNewConstMetric(poolShareDesc, prometheus.GaugeValue, loads[i].Share, r.Name, dns.TypeToString[r.Type], p.Name, p.Region.Name)
			}
		}
	}
}
