package dnsfront

import (
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// headerLen is the fixed DNS header; the question name starts right after it.
const headerLen = 12

// pack writes s.msg into s.buf within q.limit bytes, truncating by whole
// RRsets when it does not fit.
//
// The question is packed lower-cased, so every owner name equal to it (the
// zone stores owners lower-cased) compresses to a pointer at offset 12;
// the query's own spelling is then written over those bytes. That keeps the
// query's case in the question and every answer owner (RFC 4343 and the 0x20
// resolvers that check it) without copying a single record.
func (h *Handler) pack(s *scratch, q query, res *zones.Result) []byte {
	m := &s.msg
	m.Compress = true
	if len(m.Question) == 1 {
		m.Question[0].Name = q.lower
	}
	out, err := h.packCased(s, q)
	if err != nil {
		return h.packFailure(s, q, err)
	}
	if len(out) <= q.limit {
		return out
	}
	referral := res != nil && res.Kind == zones.KindReferral
	truncate(m, q.limit, referral)
	if out, err = h.packCased(s, q); err != nil {
		return h.packFailure(s, q, err)
	}
	return out
}

func (h *Handler) packCased(s *scratch, q query) ([]byte, error) {
	if cap(s.buf) < dns.MaxMsgSize {
		s.buf = make([]byte, dns.MaxMsgSize)
	}
	out, err := s.msg.PackBuffer(s.buf)
	if err != nil {
		return nil, err
	}
	if len(s.msg.Question) == 1 && q.name != q.lower {
		if _, err := dns.PackDomainName(q.name, out, headerLen, nil, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// packFailure answers SERVFAIL when a reply cannot be packed (a record the
// packer rejects): the client learns something went wrong instead of
// waiting for a timeout.
func (h *Handler) packFailure(s *scratch, q query, err error) []byte {
	h.log.Error("pack answer", "qname", q.name, "qtype", dns.TypeToString[q.qtype], "err", err)
	m := &s.msg
	m.Rcode = dns.RcodeServerFailure
	m.Authoritative = false
	m.Answer, m.Ns, m.Extra = nil, nil, nil
	out, err := m.PackBuffer(s.buf)
	if err != nil {
		return nil
	}
	return out
}

// truncate drops whole RRsets from the end of the message until it fits in
// limit: additional data first, which costs the client nothing it needs
// (except glue, RFC 9471), then authority and answer, which sets TC so the
// client retries over TCP (RFC 2181 section 9). The OPT record always stays.
func truncate(m *dns.Msg, limit int, referral bool) {
	var opt dns.RR
	extra := m.Extra
	if n := len(extra); n > 0 {
		if o, ok := extra[n-1].(*dns.OPT); ok {
			opt, extra = o, extra[:n-1]
		}
	}
	withOpt := func(rrs []dns.RR) []dns.RR {
		if opt == nil {
			return rrs
		}
		return append(rrs[:len(rrs):len(rrs)], opt)
	}
	fits := func() bool { return m.Len() <= limit }

	for len(extra) > 0 && !fits() {
		extra = dropLastRRset(extra)
		m.Extra = withOpt(extra)
		if referral {
			m.Truncated = true
		}
	}
	for len(m.Ns) > 0 && !fits() {
		m.Ns = dropLastRRset(m.Ns)
		m.Truncated = true
	}
	for len(m.Answer) > 0 && !fits() {
		m.Answer = dropLastRRset(m.Answer)
		m.Truncated = true
	}
}

// dropLastRRset removes the trailing run of records sharing owner, type and
// class: an RRset is never split (RFC 2181 section 5).
func dropLastRRset(rrs []dns.RR) []dns.RR {
	last := rrs[len(rrs)-1].Header()
	i := len(rrs) - 1
	for i > 0 {
		h := rrs[i-1].Header()
		if h.Rrtype != last.Rrtype || h.Class != last.Class || !equalFold(h.Name, last.Name) {
			break
		}
		i--
	}
	return rrs[:i]
}

func equalFold(a, b string) bool { return zones.Lower(a) == zones.Lower(b) }
