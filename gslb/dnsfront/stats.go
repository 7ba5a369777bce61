package dnsfront

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// tcpCloseReasons are why TCP connections end: the client closed or
// broke the framing, it stayed idle, a message came too slowly, a
// newcomer took its place at the total cap, it was refused over the caps
// of its address or prefix or with every connection busy, it reached
// tcp_max_queries, a write failed, or the server shut down.
var tcpCloseReasons = []string{"client", "idle", "slow", "evicted", "client_limit", "prefix_limit", "full", "max_queries", "write", "shutdown"}

func (st *stats) tcpClosed(reason string) {
	if c := st.tcpCloses[reason]; c != nil {
		c.Add(1)
	}
}

// rrlClasses are the rate limiter's response classes, for the counters.
var rrlClasses = [...]rrl.Class{rrl.Answer, rrl.Dynamic, rrl.Wildcard, rrl.NoData, rrl.NXDomain, rrl.Referral, rrl.Error}

// The query types counted apart; the rest are "other". A small fixed set
// keeps the counters an array indexed on the query path.
var countedTypes = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeNS, dns.TypeSOA,
	dns.TypeTXT, dns.TypeSRV, dns.TypePTR, dns.TypeCAA, dns.TypeHTTPS, dns.TypeANY}

const otherType = len(countedTypes)

func typeIndex(t uint16) int {
	for i, c := range countedTypes {
		if c == t {
			return i
		}
	}
	return otherType
}

// zoneCounters counts one zone's responses by query type and rcode.
type zoneCounters [otherType + 1][16]atomic.Uint64

// stats counts answers as they leave, with atomics only, and keeps the
// counters of each zone and region by name across reloads so Prometheus
// sees them only grow.
type stats struct {
	replies   [2][16]atomic.Uint64 // [tcp][rcode's low four bits]
	truncated atomic.Uint64
	ecs       atomic.Uint64
	unlocated atomic.Uint64                     // dynamic answers for clients no geo source locates
	rrl       [len(rrlClasses)][3]atomic.Uint64 // limited responses by class and action (send unused)
	tcpOpen   atomic.Int64                      // TCP connections open
	tcpCloses map[string]*atomic.Uint64         // TCP connections closed, by reason; fixed at start
	latency   prometheus.Histogram

	noZone *zoneCounters // names in no served zone

	mu      sync.Mutex
	zones   map[string]*zoneCounters  // by origin; "" is noZone
	regions map[string]*atomic.Uint64 // dynamic answers by the region that answered
}

func newStats() *stats {
	none := new(zoneCounters)
	closes := map[string]*atomic.Uint64{}
	for _, r := range tcpCloseReasons {
		closes[r] = new(atomic.Uint64)
	}
	return &stats{
		tcpCloses: closes,
		noZone:    none,
		zones:     map[string]*zoneCounters{"": none},
		regions:   map[string]*atomic.Uint64{},
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "meridian_dns_answer_duration_seconds",
			Help: "Time from a query's bytes to its reply's, in the server (kernel time excluded); one query in 64 is timed.",
			// From the fast path's ~200 ns to a slow full path.
			Buckets: []float64{250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 100e-6, 1e-3},
		}),
	}
}

// resolve gives a new State its counters: existing ones for zones and
// regions it shares with the previous configuration.
func (st *stats) resolve(wire wireTable, regions []string) map[string]*atomic.Uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	for z, zw := range wire {
		c := st.zones[z.Origin()]
		if c == nil {
			c = new(zoneCounters)
			st.zones[z.Origin()] = c
		}
		zw.counters = c
	}
	rc := make(map[string]*atomic.Uint64)
	for _, r := range regions {
		c := st.regions[r]
		if c == nil {
			c = new(atomic.Uint64)
			st.regions[r] = c
		}
		rc[r] = c
	}
	return rc
}

// counters returns the counters of zone z, or nil.
func (st *State) counters(z *zones.Zone) *zoneCounters {
	if zw := st.wire[z]; zw != nil {
		return zw.counters
	}
	return nil
}

// queryInfo is what the answer paths note about a query for counting.
type queryInfo struct {
	counters  *zoneCounters // the zone's; nil: no served zone
	qtype     uint16
	ecs       bool
	region    string // the region of a dynamic answer
	unlocated bool   // a dynamic answer for a client no geo source locates
	rrl       rrlInfo
	edns      bool     // the query had an OPT record
	cookie    bool     // the query carried a valid server cookie (exempt from rate limiting)
	dec       decision // a dynamic answer's decision, for dnstap
}

func (h *Handler) count(st *State, s *scratch, out []byte, udp bool, start time.Time) {
	if len(out) < headerLen {
		return
	}
	t := 0
	if !udp {
		t = 1
	}
	rcode := out[3] & 0xF
	h.stats.replies[t][rcode].Add(1)
	if out[2]&0x02 != 0 {
		h.stats.truncated.Add(1)
	}
	qi := &s.info
	if qi.ecs {
		h.stats.ecs.Add(1)
	}
	zc := qi.counters
	if zc == nil {
		zc = h.stats.noZone
	}
	zc[typeIndex(qi.qtype)][rcode].Add(1)
	if qi.unlocated {
		h.stats.unlocated.Add(1)
	}
	if qi.region != "" {
		if c := st.regionCounters[qi.region]; c != nil {
			c.Add(1)
		}
	}
	if !start.IsZero() {
		h.stats.latency.Observe(time.Since(start).Seconds())
	}
}

// latencySample is how many queries one latency observation stands for.
const latencySample = 64

var (
	repliesDesc   = prometheus.NewDesc("meridian_dns_responses_total", "DNS responses sent, by transport and rcode.", []string{"transport", "rcode"}, nil)
	queriesDesc   = prometheus.NewDesc("meridian_dns_queries_total", "Queries answered, by zone (\"\" for none served), query type and rcode.", []string{"zone", "type", "rcode"}, nil)
	regionDesc    = prometheus.NewDesc("meridian_dns_dynamic_answers_total", "Dynamic answers, by the region that answered.", []string{"region"}, nil)
	truncatedDesc = prometheus.NewDesc("meridian_dns_truncated_total", "UDP responses sent with TC set.", nil, nil)
	ecsDesc       = prometheus.NewDesc("meridian_dns_ecs_queries_total", "Queries answered that carried a valid EDNS Client Subnet.", nil, nil)
	tcpOpenDesc   = prometheus.NewDesc("meridian_dns_tcp_connections", "DNS TCP connections open.", nil, nil)
	tcpClosedDesc = prometheus.NewDesc("meridian_dns_tcp_closed_total", "DNS TCP connections closed, by reason: client, idle, slow (a message not whole within tcp_message_timeout), evicted (the longest idle, for a newcomer at tcp_max_connections), client_limit, prefix_limit, full (refused with every connection busy), max_queries, write, shutdown.", []string{"reason"}, nil)
	rrlDesc       = prometheus.NewDesc("meridian_rrl_limited_total", "UDP responses over the rate limit, by response class and what was sent instead: slip (an empty truncated reply) or drop (nothing).", []string{"class", "action"}, nil)
	rrlBuckets    = prometheus.NewDesc("meridian_rrl_buckets", "Buckets in the rate limiter's table (fixed: its memory does not grow with the number of clients); 0 when rate limiting is off.", nil, nil)
	unlocatedDesc = prometheus.NewDesc("meridian_geo_unlocated_answers_total", "Dynamic answers whose order depends on where the client is, for clients no CIDR row or GeoIP database locates.", nil, nil)
)

var _ prometheus.Collector = (*Handler)(nil)

// Describe implements prometheus.Collector.
func (h *Handler) Describe(ch chan<- *prometheus.Desc) {
	ch <- repliesDesc
	ch <- queriesDesc
	ch <- regionDesc
	ch <- truncatedDesc
	ch <- ecsDesc
	ch <- unlocatedDesc
	ch <- rrlDesc
	ch <- rrlBuckets
	ch <- tcpOpenDesc
	ch <- tcpClosedDesc
	ch <- dnstapDesc
	h.stats.latency.Describe(ch)
}

func rcodeName(rcode int) string {
	if name := dns.RcodeToString[rcode]; name != "" {
		return name
	}
	return "RCODE" + string(rune('0'+rcode/10)) + string(rune('0'+rcode%10))
}

// Collect implements prometheus.Collector.
func (h *Handler) Collect(ch chan<- prometheus.Metric) {
	for t, transport := range []string{"udp", "tcp"} {
		for rcode := range h.stats.replies[t] {
			if n := h.stats.replies[t][rcode].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(repliesDesc, prometheus.CounterValue, float64(n), transport, rcodeName(rcode))
			}
		}
	}
	h.stats.mu.Lock()
	for zone, zc := range h.stats.zones {
		for ti := range zc {
			typ := "other"
			if ti < otherType {
				typ = dns.TypeToString[countedTypes[ti]]
			}
			for rcode := range zc[ti] {
				if n := zc[ti][rcode].Load(); n > 0 {
					ch <- prometheus.MustNewConstMetric(queriesDesc, prometheus.CounterValue, float64(n), zone, typ, rcodeName(rcode))
				}
			}
		}
	}
	for region, c := range h.stats.regions {
		ch <- prometheus.MustNewConstMetric(regionDesc, prometheus.CounterValue, float64(c.Load()), region)
	}
	h.stats.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(truncatedDesc, prometheus.CounterValue, float64(h.stats.truncated.Load()))
	ch <- prometheus.MustNewConstMetric(ecsDesc, prometheus.CounterValue, float64(h.stats.ecs.Load()))
	ch <- prometheus.MustNewConstMetric(unlocatedDesc, prometheus.CounterValue, float64(h.stats.unlocated.Load()))
	for _, c := range rrlClasses {
		for _, a := range []rrl.Action{rrl.Slip, rrl.Drop} {
			ch <- prometheus.MustNewConstMetric(rrlDesc, prometheus.CounterValue, float64(h.stats.rrl[c][a].Load()), c.String(), a.String())
		}
	}
	buckets := 0
	if t := h.State().RRL; t != nil {
		buckets = t.Buckets()
	}
	ch <- prometheus.MustNewConstMetric(rrlBuckets, prometheus.GaugeValue, float64(buckets))
	ch <- prometheus.MustNewConstMetric(tcpOpenDesc, prometheus.GaugeValue, float64(h.stats.tcpOpen.Load()))
	for _, r := range tcpCloseReasons {
		ch <- prometheus.MustNewConstMetric(tcpClosedDesc, prometheus.CounterValue, float64(h.stats.tcpCloses[r].Load()), r)
	}
	h.collectDnstap(ch)
	h.stats.latency.Collect(ch)
}
