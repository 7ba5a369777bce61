package dnsfront

import (
	"encoding/binary"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/miekg/dns"
)

// Signed zones: a query with the DO bit for a zone that has a signer is
// answered by the full path, which hands the zone's answer to the signer
// (zones/dnssec) before packing, and so signs it and caches the
// signatures. Once they are cached, the fast path answers a positive
// static or dynamic answer itself: the prepared answer (or the decided
// addresses) followed by the cached signatures in wire form, allocating
// nothing. Negative answers, CNAME chains, wildcards and referrals of a
// signed zone stay on the full path. Queries without DO, and zones
// without a signer, are untouched.

// signerOf returns the signer of zone z, or nil.
func (st *State) signerOf(z *zones.Zone) *dnssec.Signer {
	if zw := st.wire[z]; zw != nil {
		return zw.signer
	}
	return nil
}

// resolveSigners links each zone's wire table to its signer, and marks
// the dynamic names of signed zones, for the fast path to hand over.
func (st *State) resolveSigners() {
	st.dynSigned = map[string]*dnssec.Signer{}
	for z, zw := range st.wire {
		zw.signer = st.Signers[z.Origin()]
		if zw.signer == nil {
			continue
		}
		// The cache keys of the static answers, made once here so the fast
		// path only looks them up.
		zw.sigKeys = make([][]byte, z.StaticCount())
		z.Statics(func(r zones.Result) {
			if r.Kind == zones.KindAnswer && len(r.Answer) > 0 {
				zw.sigKeys[r.Static], _ = dnssec.AppendKey(nil, r.Answer) // unpackable answers failed buildWire already
			}
		})
	}
	st.dynTypes = map[string][]uint16{}
	for name := range st.dynCounters {
		if z := st.Zones.Find(name); z != nil && st.signerOf(z) != nil {
			st.dynSigned[name] = st.signerOf(z)
			st.dynTypes[name] = answeredTypes(st.dynamic(name))
		}
	}
}

// answeredTypes are the types a dynamic name answers, as its NSEC lists
// them: each record's, and HTTPS when one of them carries it (or a
// validator would take HTTPS as denied, RFC 8198).
func answeredTypes(recs []*gslb.Record) []uint16 {
	types := make([]uint16, 0, len(recs)+1)
	for _, r := range recs {
		types = append(types, r.Type)
	}
	if httpsCarrier(recs) != nil {
		types = append(types, dns.TypeHTTPS)
	}
	return types
}

// sign turns res into its signed form for a DO query of a signed zone.
// dynamic says whether the name has dynamic records: the types they
// answer (made once by resolveSigners) are what a NODATA's NSEC lists. A
// failure to sign is SERVFAIL.
func (h *Handler) sign(st *State, sg *dnssec.Signer, s *scratch, z *zones.Zone, dynamic bool, q *query, res *zones.Result) {
	dq := dnssec.Query{Name: q.lower, Type: q.qtype, CO: q.co}
	if dynamic {
		dq.Types = st.dynTypes[q.lower]
	}
	if q.co {
		s.opt.SetCo(true) // RFC 9824 section 4: we honour it
	}
	if err := sg.SignResult(z, dq, res, &s.sig); err != nil {
		h.log.Error("sign answer", "qname", q.name, "qtype", dns.TypeToString[q.qtype], "err", err)
		*res = zones.Result{Kind: zones.KindAnswer, Rcode: dns.RcodeServerFailure}
	}
}

// fastSigned answers a static positive answer of a signed zone with its
// cached signatures, or returns nil for the full path: an answer with
// authority or additional records (the RRSIG goes in the answer section,
// before them), or one not yet signed.
func fastSigned(s *scratch, pkt []byte, fq *fastQuery, w *wireAnswer, zw *zoneWire, static int) []byte {
	if w.ns != 0 || w.ar != 0 || len(zw.sigKeys[static]) == 0 {
		return nil
	}
	sigs, n, ok := zw.signer.CachedWire(zw.sigKeys[static])
	if !ok {
		return nil
	}
	size := fq.qend + len(w.body) + len(sigs) + 2*n
	if fq.edns {
		size += optLen(&s.fecs, &s.fck2)
	}
	if size > fq.limit {
		return nil
	}
	out := startReply(s, pkt, fq.qend, fq.bits, w.bits, w.an+uint16(n), 0, 0, fq.edns)
	out = w.appendBody(out)
	out = appendSigs(out, sigs)
	if fq.edns {
		out = appendOPT(out, fq.adv, fq.do, &s.fecs, &s.fck2)
	}
	return out
}

// fastSigsOf returns the cached signatures of a dynamic answer: the
// decided addresses as an RRset of rtype owned by the query name, keyed as
// the full path's Sign keys it (the owner lower-case and uncompressed).
func fastSigsOf(s *scratch, pkt []byte, fq *fastQuery, sg *dnssec.Signer, rtype uint16, d gslb.Decision) ([]byte, int, bool) {
	owner := pkt[headerLen : fq.qend-4]
	key := s.sigKey[:0]
	for _, a := range d.Addrs {
		start := len(key)
		key = append(key, owner...)
		for i := start; i < len(key); i++ {
			// Length octets are at most 63, below 'A': lowering them
			// blindly is safe.
			if c := key[i]; c >= 'A' && c <= 'Z' {
				key[i] = c + ('a' - 'A')
			}
		}
		key = append(key, byte(rtype>>8), byte(rtype), 0, dns.ClassINET, byte(d.TTL>>24), byte(d.TTL>>16), byte(d.TTL>>8), byte(d.TTL))
		if rtype == dns.TypeA {
			b := a.As4()
			key = append(append(key, 0, 4), b[:]...)
		} else {
			b := a.As16()
			key = append(append(key, 0, 16), b[:]...)
		}
	}
	s.sigKey = key
	return sg.CachedWire(key)
}

// appendSigs appends signatures in CachedWire's form, each after a
// pointer to the question's name, their owner.
func appendSigs(out, sigs []byte) []byte {
	for len(sigs) >= 10 {
		n := 10 + int(binary.BigEndian.Uint16(sigs[8:]))
		out = append(out, 0xC0, headerLen)
		out = append(out, sigs[:n]...)
		sigs = sigs[n:]
	}
	return out
}
