package dnsfront

import (
	"math/rand/v2"
	"net/netip"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// ecs is a query's EDNS Client Subnet option (RFC 7871), validated.
type ecs struct {
	present bool
	family  uint16
	source  uint8 // SOURCE PREFIX-LENGTH as sent
	scope   uint8 // SCOPE PREFIX-LENGTH of our answer
	addr    netip.Addr
	raw     []byte // the address as sent, echoed back
}

// parse validates the option: a known family, a source prefix within the
// address, and no bits set past it (RFC 7871 section 6). It reports false
// for an option that must be answered with FORMERR.
func (e *ecs) parse(o *dns.EDNS0_SUBNET) bool {
	*e = ecs{}
	var addr netip.Addr
	switch o.Family {
	case 0:
		// dig sends family 0 with source 0 to ask for no tailoring.
		if o.SourceNetmask != 0 {
			return false
		}
		*e = ecs{present: true}
		return true
	case 1:
		ip := o.Address.To4()
		if ip == nil || o.SourceNetmask > 32 {
			return false
		}
		addr = netip.AddrFrom4([4]byte(ip))
	case 2:
		ip := o.Address.To16()
		if ip == nil || o.SourceNetmask > 128 {
			return false
		}
		addr = netip.AddrFrom16([16]byte(ip))
	default:
		return false
	}
	p, err := addr.Prefix(int(o.SourceNetmask))
	if err != nil || p.Addr() != addr {
		return false // bits set past the source prefix
	}
	*e = ecs{present: true, family: o.Family, source: o.SourceNetmask, addr: addr, raw: o.Address}
	if o.Family == 1 {
		e.raw = o.Address.To4()
	}
	return true
}

// dynamic returns the dynamic records of name, or nil.
func (st *State) dynamic(name string) []*gslb.Record {
	if st.GSLB == nil {
		return nil
	}
	return st.GSLB.Records(name)
}

// decide answers a name that has dynamic records: the record of the type
// asked, decided for the client, or NODATA for another type (RFC 2308).
// It sets q.ecs.scope for the reply.
func (h *Handler) decide(st *State, s *scratch, z *zones.Zone, recs []*gslb.Record, q *query, src netip.Addr) zones.Result {
	if q.qtype == dns.TypeHTTPS {
		if carry := httpsCarrier(recs); carry != nil {
			return h.answerHTTPS(st, s, z, carry, recs, q, src)
		}
	}
	var rec *gslb.Record
	for _, r := range recs {
		if r.Type == q.qtype || q.qtype == dns.TypeANY {
			rec = r
			break
		}
	}
	if rec == nil {
		return z.NoData()
	}
	c := &s.client
	st.locate(c, q, src)
	d := st.GSLB.Decide(rec, c, &s.gslb)
	s.info.dec = decision{rec: rec, rtype: rec.Type, outcome: d.Outcome, scope: d.Scope}
	h.logDecision(st, rec, c, &q.ecs, d)
	if d.Pool != nil {
		s.info.region = d.Pool.Region.Name
	}
	s.info.unlocated = d.Unlocated
	if q.ecs.present {
		q.ecs.scope = uint8(d.Scope) // may pass the source prefix when that holds several answers (RFC 7871 7.2.1)
	}
	switch d.Outcome {
	case gslb.Servfail:
		q.ecs.scope = 0
		return zones.Result{Kind: zones.KindAnswer, Rcode: dns.RcodeServerFailure}
	case gslb.NoData:
		return z.NoData()
	}
	s.dynRRs = s.dynRRs[:0]
	hdr := dns.RR_Header{Name: q.lower, Rrtype: rec.Type, Class: dns.ClassINET, Ttl: d.TTL}
	if rec.Type == dns.TypeA {
		s.dynA = s.dynA[:0]
		for _, a := range d.Addrs {
			b := a.As4()
			s.dynA = append(s.dynA, dns.A{Hdr: hdr, A: b[:]})
		}
		for i := range s.dynA {
			s.dynRRs = append(s.dynRRs, &s.dynA[i])
		}
	} else {
		s.dynAAAA = s.dynAAAA[:0]
		for _, a := range d.Addrs {
			b := a.As16()
			s.dynAAAA = append(s.dynAAAA, dns.AAAA{Hdr: hdr, AAAA: b[:]})
		}
		for i := range s.dynAAAA {
			s.dynRRs = append(s.dynRRs, &s.dynAAAA[i])
		}
	}
	return zones.Result{Kind: zones.KindAnswer, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: s.dynRRs}
}

// locate fills c for the query: the ECS subnet when the query has one and
// ECS is on (its prefix capped), else the address the query came from.
func (st *State) locate(c *gslb.Client, q *query, src netip.Addr) {
	if q.ecs.present && st.ECS {
		if q.ecs.source == 0 {
			// RFC 7871 7.1.2: the resolver asks for an answer that does
			// not depend on where its client is.
			*c = gslb.Client{}
			return
		}
		p, _ := q.ecs.addr.Prefix(int(q.ecs.source))
		st.clientFor(c, st.CapECS(p))
		return
	}
	src = src.Unmap()
	st.clientFor(c, netip.PrefixFrom(src, src.BitLen()))
}

// CapECS shortens a client subnet to the configured ECS limits, as a
// query carrying it would be.
func (st *State) CapECS(p netip.Prefix) netip.Prefix {
	limit := st.ECSMaxPrefix4
	switch {
	case p.Addr().Is4In6() && p.Bits() >= 96:
		// An IPv4 client written as IPv6 (::ffff:a.b.c.d) is an IPv4
		// client: capped as one, and located as one.
		limit = 96 + st.ECSMaxPrefix4
	case p.Addr().Is6():
		limit = st.ECSMaxPrefix6
	}
	if p.Bits() > limit {
		p, _ = p.Addr().Prefix(limit)
	}
	return p
}

// ClientFor is the client the engine sees for a query from subnet p:
// located, with p's length as the client's prefix.
func (st *State) ClientFor(p netip.Prefix) gslb.Client {
	var c gslb.Client
	st.clientFor(&c, p)
	c.Resolve()
	return c
}

func (st *State) clientFor(c *gslb.Client, p netip.Prefix) {
	if st.GSLB == nil {
		*c = gslb.Client{Addr: p.Addr(), Prefix: p.Bits()}
		return
	}
	st.GSLB.Locate(c, p)
}

// logDecision writes a sampled line per dynamic answer (log.query_sample
// of them) with the decision behind it: who asked, from where, which
// region answered and with what.
func (h *Handler) logDecision(st *State, rec *gslb.Record, c *gslb.Client, e *ecs, d gslb.Decision) {
	if st.QuerySample <= 0 || rand.Float64() >= st.QuerySample {
		return
	}
	c.Resolve() // a geo decision may not have needed the location
	region := ""
	if d.Pool != nil {
		region = d.Pool.Region.Name
	}
	answer := make([]string, len(d.Addrs))
	for i, a := range d.Addrs {
		answer[i] = a.String()
	}
	subnet := ""
	if e.present && e.family != 0 {
		subnet = netip.PrefixFrom(e.addr, int(e.source)).String()
	}
	h.log.Info("query", "name", rec.Name, "type", dns.TypeToString[rec.Type], "client", c.Addr.String(),
		"ecs", subnet, "country", c.Country, "geo_region", c.Region, "outcome", d.Outcome.String(),
		"region", region, "answer", answer, "ttl", d.TTL, "scope", d.Scope)
}
