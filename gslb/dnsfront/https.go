package dnsfront

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// A dynamic name whose record has https set answers HTTPS queries (RFC
// 9460) with one ServiceMode record, TargetName "." (the name itself):
// alpn and port from the pool that answers, and address hints that are
// the decisions of the name's A and AAAA records for this client. So a
// client that uses the hints connects where its A query would have sent
// it, and the answer's ECS scope is the narrowest of the decisions it
// holds: the A answer's when the name has no AAAA record.

// maxHints bounds the addresses kept per family; decisions answer at most
// eight (record.max_answers).
const maxHints = 8

// httpsScratch is an HTTPS answer's working memory, reused query after
// query.
type httpsScratch struct {
	v4    [maxHints][4]byte
	v6    [maxHints][16]byte
	n4    int
	n6    int
	ttl   uint32
	scope int
	carry *gslb.Record  // the record with https set
	d     gslb.Decision // the carrier's decision (its Addrs not kept)
	param *gslb.ServiceParams

	// the full path's record
	rr     dns.HTTPS
	vals   []dns.SVCBKeyValue
	alpn   dns.SVCBAlpn
	port   dns.SVCBPort
	hint4  dns.SVCBIPv4Hint
	hint6  dns.SVCBIPv6Hint
	hintIP [2][maxHints]net.IP
	rrs    [1]dns.RR
}

// httpsCarrier returns the record of recs that answers HTTPS queries, or nil.
func httpsCarrier(recs []*gslb.Record) *gslb.Record {
	for _, r := range recs {
		if r.HTTPS != nil {
			return r
		}
	}
	return nil
}

// decideHTTPS decides every record of the name for client c into s.https:
// the carrier's decision first (its outcome is the answer's), then the
// other family's, whose addresses only add hints.
func (st *State) decideHTTPS(s *scratch, carry *gslb.Record, recs []*gslb.Record, c *gslb.Client) {
	hs := &s.https
	hs.n4, hs.n6, hs.carry = 0, 0, carry
	hs.d = st.GSLB.Decide(carry, c, &s.gslb)
	hs.ttl, hs.scope = hs.d.TTL, hs.d.Scope
	hs.param = carry.HTTPSParams(hs.d.Pool)
	hs.keep(hs.d.Addrs)
	hs.d.Addrs = nil // lives in s.gslb, which the next decision reuses
	if hs.d.Outcome == gslb.Servfail || hs.d.Outcome == gslb.NoData {
		return
	}
	for _, r := range recs {
		if r == carry || (r.Type != dns.TypeA && r.Type != dns.TypeAAAA) {
			continue
		}
		d := st.GSLB.Decide(r, c, &s.gslb)
		if d.Outcome == gslb.Servfail || d.Outcome == gslb.NoData || len(d.Addrs) == 0 {
			continue
		}
		hs.keep(d.Addrs)
		hs.ttl = min(hs.ttl, d.TTL)
		hs.scope = max(hs.scope, d.Scope)
	}
}

// keep copies a decision's addresses into the hints of their family.
func (hs *httpsScratch) keep(addrs []netip.Addr) {
	for _, a := range addrs {
		switch {
		case a.Is4() && hs.n4 < maxHints:
			hs.v4[hs.n4] = a.As4()
			hs.n4++
		case a.Is6() && hs.n6 < maxHints:
			hs.v6[hs.n6] = a.As16()
			hs.n6++
		}
	}
}

// answerHTTPS is decide for an HTTPS query at a name whose carrier is
// carry: the full path's answer, built in scratch memory.
func (h *Handler) answerHTTPS(st *State, s *scratch, z *zones.Zone, carry *gslb.Record, recs []*gslb.Record, q *query, src netip.Addr) zones.Result {
	c := &s.client
	st.locate(c, q, src)
	st.decideHTTPS(s, carry, recs, c)
	hs := &s.https
	s.noteHTTPS()
	h.logHTTPS(st, s, c, &q.ecs)
	if q.ecs.present {
		q.ecs.scope = uint8(hs.scope)
	}
	switch hs.d.Outcome {
	case gslb.Servfail:
		q.ecs.scope = 0
		return zones.Result{Kind: zones.KindAnswer, Rcode: dns.RcodeServerFailure}
	case gslb.NoData:
		return z.NoData()
	}
	hs.rr = dns.HTTPS{SVCB: dns.SVCB{
		Hdr:      dns.RR_Header{Name: q.lower, Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: hs.ttl},
		Priority: 1, Target: ".", Value: hs.vals[:0],
	}}
	v := &hs.rr.Value
	if p := hs.param; p != nil && len(p.ALPN) > 0 {
		hs.alpn.Alpn = p.ALPN
		*v = append(*v, &hs.alpn)
	}
	if p := hs.param; p != nil && p.Port != 0 {
		hs.port.Port = p.Port
		*v = append(*v, &hs.port)
	}
	if hs.n4 > 0 {
		for i := range hs.n4 {
			hs.hintIP[0][i] = hs.v4[i][:]
		}
		hs.hint4.Hint = hs.hintIP[0][:hs.n4]
		*v = append(*v, &hs.hint4)
	}
	if hs.n6 > 0 {
		for i := range hs.n6 {
			hs.hintIP[1][i] = hs.v6[i][:]
		}
		hs.hint6.Hint = hs.hintIP[1][:hs.n6]
		*v = append(*v, &hs.hint6)
	}
	hs.vals = *v
	hs.rrs[0] = &hs.rr
	return zones.Result{Kind: zones.KindAnswer, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: hs.rrs[:]}
}

// noteHTTPS notes an HTTPS decision for the counters as decide does an A one.
func (s *scratch) noteHTTPS() {
	s.info.dec = decision{rec: s.https.carry, rtype: dns.TypeHTTPS, outcome: s.https.d.Outcome, scope: s.https.scope}
	if p := s.https.d.Pool; p != nil {
		s.info.region = p.Region.Name
	}
	s.info.unlocated = s.https.d.Unlocated
}

// logHTTPS logs a sampled HTTPS decision: the carrier's, with the
// answer's scope.
func (h *Handler) logHTTPS(st *State, s *scratch, c *gslb.Client, e *ecs) {
	d := s.https.d
	d.Scope = s.https.scope
	h.logDecision(st, s.https.carry, c, e, d)
}

// fastHTTPS is fastDynamic for an HTTPS query: the record written
// straight into the reply, as the full path's packer writes it. Fail-closed
// outcomes and answers that do not fit go to the full path.
func (h *Handler) fastHTTPS(st *State, s *scratch, pkt []byte, fq *fastQuery, recs []*gslb.Record, src netip.Addr) []byte {
	carry := httpsCarrier(recs)
	if carry == nil {
		return nil // NODATA is the full path's
	}
	if fq.do && st.dynSigned[carry.Name] != nil {
		return nil // signed: the full path adds the RRSIG from the signer's cache
	}
	s.info.rrl = rrlInfo{set: true, class: rrl.Dynamic, name: carry.Name}
	q := query{ecs: s.fecs}
	c := &s.client
	st.locate(c, &q, src)
	st.decideHTTPS(s, carry, recs, c)
	s.noteHTTPS()
	hs := &s.https
	if hs.d.Outcome == gslb.Servfail || hs.d.Outcome == gslb.NoData {
		return nil
	}
	if s.fecs.present {
		s.fecs.scope = uint8(hs.scope)
	}
	rdlen := 3 // SvcPriority and the root as TargetName
	var alpn []string
	var port uint16
	if hs.param != nil {
		alpn, port = hs.param.ALPN, hs.param.Port
	}
	if len(alpn) > 0 {
		rdlen += 4
		for _, id := range alpn {
			rdlen += 1 + len(id)
		}
	}
	if port != 0 {
		rdlen += 6
	}
	if hs.n4 > 0 {
		rdlen += 4 + 4*hs.n4
	}
	if hs.n6 > 0 {
		rdlen += 4 + 16*hs.n6
	}
	size := fq.qend + 12 + rdlen
	if fq.edns {
		size += optLen(&s.fecs, &s.fck2)
	}
	if size > fq.limit {
		return nil
	}
	h.logHTTPS(st, s, c, &s.fecs)
	out := startReply(s, pkt, fq.qend, fq.bits, flagAA, 1, 0, 0, fq.edns)
	out = append(out, 0xC0, headerLen, byte(dns.TypeHTTPS>>8), byte(dns.TypeHTTPS), 0, dns.ClassINET)
	out = binary.BigEndian.AppendUint32(out, hs.ttl)
	out = append(out, byte(rdlen>>8), byte(rdlen), 0, 1, 0)
	out = appendHTTPSParams(out, hs, alpn, port)
	if fq.edns {
		out = appendOPT(out, fq.adv, fq.do, &s.fecs, &s.fck2)
	}
	return out
}

// appendHTTPSParams appends the SvcParams in key order (RFC 9460 section
// 2.2): alpn (1), port (3), ipv4hint (4), ipv6hint (6).
func appendHTTPSParams(out []byte, hs *httpsScratch, alpn []string, port uint16) []byte {
	be := binary.BigEndian
	if len(alpn) > 0 {
		n := 0
		for _, id := range alpn {
			n += 1 + len(id)
		}
		out = be.AppendUint16(be.AppendUint16(out, uint16(dns.SVCB_ALPN)), uint16(n))
		for _, id := range alpn {
			out = append(append(out, byte(len(id))), id...)
		}
	}
	if port != 0 {
		out = be.AppendUint16(be.AppendUint16(be.AppendUint16(out, uint16(dns.SVCB_PORT)), 2), port)
	}
	if hs.n4 > 0 {
		out = be.AppendUint16(be.AppendUint16(out, uint16(dns.SVCB_IPV4HINT)), uint16(4*hs.n4))
		for i := range hs.n4 {
			out = append(out, hs.v4[i][:]...)
		}
	}
	if hs.n6 > 0 {
		out = be.AppendUint16(be.AppendUint16(out, uint16(dns.SVCB_IPV6HINT)), uint16(16*hs.n6))
		for i := range hs.n6 {
			out = append(out, hs.v6[i][:]...)
		}
	}
	return out
}
