package dnsfront

import (
	"encoding/hex"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"net/netip"
	"time"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// minUDPSize is the payload every DNS client accepts (RFC 1035 4.2.1), and
// the floor for a smaller EDNS advertisement (RFC 6891 6.2.5).
const minUDPSize = 512

// query is a request parsed once: what every later step needs to know.
type query struct {
	name    string // as sent, case preserved
	lower   string // lower-cased, for lookups
	qtype   uint16
	qclass  uint16
	edns    bool
	do      bool
	co      bool // Compact Answers OK (RFC 9824 section 4)
	limit   int  // largest answer this client takes over this transport
	version uint8
	ecs     ecs // EDNS Client Subnet, when the query carried one
	// keepalive: the query asked for the TCP idle timeout (RFC 7828);
	// honoured over TCP only.
	keepalive bool
	cookie    cookieQuery
}

// answer is the full path: it builds the wire reply to r (a query, QR
// clear: answerPacket drops the rest) into s.buf. It never panics on input
// that miekg/dns could unpack.
func (h *Handler) answer(st *State, s *scratch, r *dns.Msg, udp bool, client netip.Addr) []byte {
	m := &s.msg
	*m = dns.Msg{}
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled

	q, rcode := parse(r, udp, st.UDPSize)
	if !st.ECS {
		q.ecs = ecs{} // not ours to use, nor to echo
	}
	s.info = queryInfo{qtype: q.qtype, ecs: q.ecs.present && q.ecs.family != 0, edns: q.edns}
	if len(r.Question) == 1 {
		s.q[0] = r.Question[0]
		m.Question = s.q[:]
	}
	if q.edns {
		h.setOPT(st, s, &q, client)
	}
	if rcode == dns.RcodeNotImplemented {
		// RFC 8906, RFC 2136 section 2.2: an opcode we do not implement
		// gets QR, the opcode and the rcode, none of the query's flags.
		m.RecursionDesired, m.CheckingDisabled = false, false
	}
	if rcode != dns.RcodeSuccess {
		return h.refuse(s, q, rcode)
	}

	res, refuse := h.resolve(st, s, &q, client)
	if refuse != dns.RcodeSuccess {
		return h.refuse(s, q, refuse)
	}

	m.Rcode = res.Rcode
	m.Authoritative = res.Authoritative
	m.Answer = res.Answer
	m.Ns = res.Ns
	m.Extra = s.withOPT(q, res.Extra)
	return h.pack(s, q, &res)
}

// setOPT makes the answer's OPT record: the buffer size, DO, the server
// cookie and the TCP keepalive.
func (h *Handler) setOPT(st *State, s *scratch, q *query, client netip.Addr) {
	s.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	s.opt.SetUDPSize(uint16(min(q.limit, st.UDPSize)))
	s.opt.SetDo(q.do)
	if s.info.cookie = h.cookies(st, &q.cookie, client, &s.fck2); s.fck2.n > 0 {
		s.opt.Option = append(s.opt.Option, s.fck2.option(&s.ckOpt))
	}
	if q.keepalive {
		// The idle time this connection has now, in units of 100 ms.
		s.keepalive = dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Length: 2,
			Timeout: uint16(min(s.tcpIdle/(100*time.Millisecond), 0xFFFF))}
		s.opt.Option = append(s.opt.Option[:0], &s.keepalive)
	}
}

// resolve finds the answer to q, or returns the rcode that refuses it.
func (h *Handler) resolve(st *State, s *scratch, q *query, client netip.Addr) (zones.Result, int) {
	switch q.qclass {
	case dns.ClassINET:
		return h.resolveIN(st, s, q, client)
	case dns.ClassCHAOS:
		res, ok := chaos(st, *q)
		if !ok {
			return res, dns.RcodeRefused
		}
		s.info.rrl = rrlInfo{set: true, class: rrl.Answer, name: q.lower}
		return res, dns.RcodeSuccess
	}
	return zones.Result{}, dns.RcodeRefused
}

// resolveIN answers from the zone q falls in: a dynamic record's decision
// or the zone's data, signed when the zone is and the query asks.
func (h *Handler) resolveIN(st *State, s *scratch, q *query, client netip.Addr) (zones.Result, int) {
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return zones.Result{}, dns.RcodeRefused // only reached with no transfers configured (xfr takes them first)
	}
	z := st.Zones.Find(q.lower)
	if z == nil {
		return zones.Result{}, dns.RcodeRefused // not ours, and we never recurse
	}
	s.info.counters = st.counters(z)
	var res zones.Result
	recs := st.dynamic(q.lower)
	if recs != nil {
		res = h.decide(st, s, z, recs, q, client)
		s.info.rrl = rrlInfo{set: true, class: rrl.Dynamic, name: q.lower}
	} else {
		res = z.Lookup(q.lower, q.qtype)
		s.info.rrl = classify(&res, q.lower, z)
	}
	if sg := st.signerOf(z); sg != nil && q.do {
		h.sign(st, sg, s, z, recs != nil, q, &res)
	}
	return res, dns.RcodeSuccess
}

// refuse answers with rcode and nothing but the OPT record.
func (h *Handler) refuse(s *scratch, q query, rcode int) []byte {
	s.msg.Rcode = rcode
	s.msg.Extra = s.withOPT(q, nil)
	return h.pack(s, q, nil)
}

// withOPT returns extra followed by our OPT record when the query had one.
// The zone's slices are shared, so the result is built in scratch memory.
func (s *scratch) withOPT(q query, extra []dns.RR) []dns.RR {
	if !q.edns {
		return extra
	}
	if q.ecs.present && q.ecs.family != 0 {
		// RFC 7871 7.2.1: echo family, source prefix and address; the
		// scope says how widely the resolver may share the answer (0 but
		// for dynamic answers).
		s.ecsOpt = dns.EDNS0_SUBNET{
			Code: dns.EDNS0SUBNET, Family: q.ecs.family, SourceNetmask: q.ecs.source,
			SourceScope: q.ecs.scope, Address: q.ecs.raw,
		}
		s.opt.Option = append(s.opt.Option, &s.ecsOpt) // after a keepalive, if any
	}
	s.extra = append(append(s.extra[:0], extra...), &s.opt)
	return s.extra
}

// parse validates r and derives what answering needs. A non-zero rcode means
// the query is refused with it (FORMERR, NOTIMP, BADVERS).
func parse(r *dns.Msg, udp bool, udpSize int) (query, int) {
	q := query{limit: dns.MaxMsgSize}
	if udp {
		q.limit = minUDPSize
	}
	if len(r.Question) == 1 {
		// Known before any check, so every reply echoes the question.
		qn := r.Question[0]
		q.name, q.lower, q.qtype, q.qclass = qn.Name, zones.Lower(qn.Name), qn.Qtype, qn.Qclass
	}
	// EDNS first: once the OPT is known good, every error reply carries one
	// (RFC 6891 section 6.1.1), NOTIMP and FORMERR included.
	var opt *dns.OPT
	for _, rr := range r.Extra {
		o, ok := rr.(*dns.OPT)
		if !ok {
			continue
		}
		if opt != nil || o.Hdr.Name != "." {
			// More than one OPT, or one not at the root: FORMERR, and no
			// OPT in the reply since the client's cannot be trusted.
			return q, dns.RcodeFormatError
		}
		opt = o
	}
	if opt != nil {
		q.edns = true
		q.do = opt.Do()
		q.co = q.do && opt.Co()
		q.version = opt.Version()
		if udp {
			q.limit = min(max(int(opt.UDPSize()), minUDPSize), udpSize)
		}
		if q.version != 0 {
			return q, dns.RcodeBadVers
		}
		for _, o := range opt.Option {
			switch o := o.(type) {
			case *dns.EDNS0_SUBNET:
				if !q.ecs.parse(o) {
					return q, dns.RcodeFormatError // RFC 7871 7.1.2
				}
			case *dns.EDNS0_COOKIE:
				b, err := hex.DecodeString(o.Cookie)
				if err != nil || q.cookie.present || !q.cookie.parse(b) {
					return q, dns.RcodeFormatError // RFC 7873 5.2.2
				}
			case *dns.EDNS0_TCP_KEEPALIVE:
				// RFC 7828 3.2.2: ignored over UDP; in a query it carries
				// no timeout, else FORMERR.
				if o.Length != 0 || o.Timeout != 0 {
					return q, dns.RcodeFormatError
				}
				q.keepalive = !udp
			}
		}
	}
	switch {
	case r.Opcode != dns.OpcodeQuery:
		return q, dns.RcodeNotImplemented
	case len(r.Ns) > 0 && q.qtype == dns.TypeIXFR && len(r.Question) == 1 && len(r.Answer) == 0:
		// RFC 1995 section 3: an IXFR query carries the client's SOA in
		// the authority section. Well formed; refused like AXFR.
	case len(r.Question) != 1, len(r.Answer) > 0, len(r.Ns) > 0, q.qtype == dns.TypeOPT:
		// A query carries exactly one question and nothing else but EDNS
		// and TSIG in the additional section.
		return q, dns.RcodeFormatError
	}
	return q, dns.RcodeSuccess
}

// chaos answers the CHAOS-class identity queries operators use to tell
// which server of a set answered (RFC 4892).
func chaos(st *State, q query) (zones.Result, bool) {
	if !st.Chaos || (q.qtype != dns.TypeTXT && q.qtype != dns.TypeANY) {
		return zones.Result{}, false
	}
	var txt string
	switch q.lower {
	case "id.server.", "hostname.bind.":
		txt = st.Identity
	case "version.bind.", "version.server.":
		txt = st.Version
	default:
		return zones.Result{}, false
	}
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: q.lower, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}, Txt: []string{txt}}
	return zones.Result{Kind: zones.KindAnswer, Authoritative: true, Answer: []dns.RR{rr}}, true
}
