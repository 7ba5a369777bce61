package dnsfront

import (
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/miekg/dns"
)

// Signed zones: a query with the DO bit for a zone that has a signer is
// answered by the full path, which hands the zone's answer to the signer
// (zones/dnssec) before packing. Queries without DO, and zones without a
// signer, keep the fast path.

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
	st.dynSigned = map[string]bool{}
	for z, zw := range st.wire {
		zw.signer = st.Signers[z.Origin()]
	}
	for name := range st.dynCounters {
		if z := st.Zones.Find(name); z != nil && st.signerOf(z) != nil {
			st.dynSigned[name] = true
		}
	}
}

// sign turns res into its signed form for a DO query of a signed zone.
// recs are the name's dynamic records (nil for static names): their types
// are what a NODATA's NSEC lists. A failure to sign is SERVFAIL.
func (h *Handler) sign(sg *dnssec.Signer, s *scratch, z *zones.Zone, recs []*gslb.Record, q *query, res *zones.Result) {
	dq := dnssec.Query{Name: q.lower, Type: q.qtype, CO: q.co}
	if recs != nil {
		dq.Types = make([]uint16, 0, len(recs))
		for _, r := range recs {
			dq.Types = append(dq.Types, r.Type)
		}
	}
	if q.co {
		s.opt.SetCo(true) // RFC 9824 section 4: we honour it
	}
	if err := sg.SignResult(z, dq, res, &s.sig); err != nil {
		h.log.Error("sign answer", "qname", q.name, "qtype", dns.TypeToString[q.qtype], "err", err)
		*res = zones.Result{Kind: zones.KindAnswer, Rcode: dns.RcodeServerFailure}
	}
}
