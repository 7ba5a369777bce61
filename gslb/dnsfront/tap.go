package dnsfront

import (
	"net/netip"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/dnstap"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// decision is what a query's answer path keeps of a dynamic decision, for
// dnstap's extra field: copied whole, formatted by the writer.
type decision struct {
	rec     *gslb.Record // nil: no decision
	rtype   uint16       // the type answered: the record's, or HTTPS
	outcome gslb.Outcome
	scope   int
}

// tapped decides whether this query is logged by st's dnstap.
func tapped(st *State) bool {
	return st.Dnstap != nil && st.Dnstap.Sampled()
}

// tap hands a query and its reply (nil: none sent) to dnstap, copied,
// with the decision behind a dynamic answer. It never waits: with the
// writer behind, the message is dropped and counted. Query and response
// get one time, the tap's millisecond clock: the answer took
// microseconds.
func (h *Handler) tap(tp *dnstap.Tap, s *scratch, pkt, out []byte, client netip.Addr, udp bool) {
	m := &s.tapMsg
	*m = dnstap.Message{Query: pkt, Response: out, Client: netip.AddrPortFrom(client, s.peerPort), TCP: !udp}
	m.QueryTime = tp.Now()
	m.ResponseTime = m.QueryTime
	if d := &s.info.dec; d.rec != nil {
		m.Decided = true
		m.Decision = dnstap.Decision{
			Record: d.rec.Name, Type: dns.TypeToString[d.rtype], Policy: d.rec.Regions.Name(),
			Outcome: d.outcome.String(), Scope: d.scope, Region: s.info.region,
		}
	}
	tp.Put(m) // copies pkt and out
}

var dnstapDesc = prometheus.NewDesc("meridian_dnstap_frames_total",
	"dnstap frames, by result: sent (written to the output) or dropped (the writer behind, or the collector gone). 0 with dnstap off.",
	[]string{"result"}, nil)

// collectDnstap reports the frames of the dnstap output in force.
func (h *Handler) collectDnstap(ch chan<- prometheus.Metric) {
	var sent, dropped uint64
	if tp := h.State().Dnstap; tp != nil {
		sent, dropped = tp.Sent(), tp.Dropped()
	}
	ch <- prometheus.MustNewConstMetric(dnstapDesc, prometheus.CounterValue, float64(sent), "sent")
	ch <- prometheus.MustNewConstMetric(dnstapDesc, prometheus.CounterValue, float64(dropped), "dropped")
}
