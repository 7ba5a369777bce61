package dnsfront

import (
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// stats counts answers as they leave, with atomics only: the query path
// pays an add or two, and Prometheus reads them at scrape time.
type stats struct {
	replies   [2][16]atomic.Uint64 // [tcp][rcode's low four bits]
	truncated atomic.Uint64
	ecs       atomic.Uint64
}

func (st *stats) count(out []byte, udp, ecs bool) {
	if len(out) < headerLen {
		return
	}
	t := 0
	if !udp {
		t = 1
	}
	st.replies[t][out[3]&0xF].Add(1)
	if out[2]&0x02 != 0 {
		st.truncated.Add(1)
	}
	if ecs {
		st.ecs.Add(1)
	}
}

var (
	repliesDesc   = prometheus.NewDesc("meridian_dns_responses_total", "DNS responses sent, by transport and rcode.", []string{"transport", "rcode"}, nil)
	truncatedDesc = prometheus.NewDesc("meridian_dns_truncated_total", "UDP responses sent with TC set.", nil, nil)
	ecsDesc       = prometheus.NewDesc("meridian_dns_ecs_queries_total", "Queries answered that carried a valid EDNS Client Subnet.", nil, nil)
)

var _ prometheus.Collector = (*Handler)(nil)

// Describe implements prometheus.Collector.
func (h *Handler) Describe(ch chan<- *prometheus.Desc) {
	ch <- repliesDesc
	ch <- truncatedDesc
	ch <- ecsDesc
}

// Collect implements prometheus.Collector.
func (h *Handler) Collect(ch chan<- prometheus.Metric) {
	for t, transport := range []string{"udp", "tcp"} {
		for rcode := range h.stats.replies[t] {
			if n := h.stats.replies[t][rcode].Load(); n > 0 {
				name := dns.RcodeToString[rcode]
				if name == "" {
					name = "RCODE" + string(rune('0'+rcode/10)) + string(rune('0'+rcode%10))
				}
				ch <- prometheus.MustNewConstMetric(repliesDesc, prometheus.CounterValue, float64(n), transport, name)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(truncatedDesc, prometheus.CounterValue, float64(h.stats.truncated.Load()))
	ch <- prometheus.MustNewConstMetric(ecsDesc, prometheus.CounterValue, float64(h.stats.ecs.Load()))
}
