package node

import (
	"time"

	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/prometheus/client_golang/prometheus"
)

// Signers are the signers of the zones served now, by origin.
func (n *Node) Signers() map[string]*dnssec.Signer { return n.handler.State().Signers }

// keepSigners returns next with each signer that signs as prev's does
// replaced by prev's, so a reload that changes no key keeps the cached
// signatures (and the counters) instead of signing everything again.
func keepSigners(next, prev map[string]*dnssec.Signer) map[string]*dnssec.Signer {
	out := make(map[string]*dnssec.Signer, len(next))
	for zone, sg := range next {
		if old := prev[zone]; old.Same(sg) {
			sg = old
		}
		out[zone] = sg
	}
	return out
}

// dnssecMetrics exports the signers of the zones served now.
type dnssecMetrics struct{ n *Node }

var (
	dnssecMadeDesc = prometheus.NewDesc("meridian_dnssec_signatures_made_total",
		"RRSIGs made for a signed zone's answers (each distinct RRset once, and again before it expires).", []string{"zone"}, nil)
	dnssecHitsDesc = prometheus.NewDesc("meridian_dnssec_cache_hits_total",
		"Signed answers whose signatures came from the cache.", []string{"zone"}, nil)
	dnssecCachedDesc = prometheus.NewDesc("meridian_dnssec_cached_rrsets",
		"RRsets whose signatures are cached.", []string{"zone"}, nil)
	dnssecExpiryDesc = prometheus.NewDesc("meridian_dnssec_signature_expiry_seconds",
		"Seconds until the soonest expiry of a signature the zone serves; at least refresh while signing works.", []string{"zone"}, nil)
)

var _ prometheus.Collector = dnssecMetrics{}

// Describe implements prometheus.Collector.
func (m dnssecMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- dnssecMadeDesc
	ch <- dnssecHitsDesc
	ch <- dnssecCachedDesc
	ch <- dnssecExpiryDesc
}

// Collect implements prometheus.Collector.
func (m dnssecMetrics) Collect(ch chan<- prometheus.Metric) {
	if m.n.handler == nil {
		return
	}
	for zone, sg := range m.n.Signers() {
		st := sg.Stats()
		ch <- prometheus.MustNewConstMetric(dnssecMadeDesc, prometheus.CounterValue, float64(st.Made), zone)
		ch <- prometheus.MustNewConstMetric(dnssecHitsDesc, prometheus.CounterValue, float64(st.Hits), zone)
		ch <- prometheus.MustNewConstMetric(dnssecCachedDesc, prometheus.GaugeValue, float64(st.Cached), zone)
		if !st.Soonest.IsZero() {
			ch <- prometheus.MustNewConstMetric(dnssecExpiryDesc, prometheus.GaugeValue, time.Until(st.Soonest).Seconds(), zone)
		}
	}
}
