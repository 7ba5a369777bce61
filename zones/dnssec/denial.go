package dnssec

import (
	"slices"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// Compact denial of existence (RFC 9824): a name that does not exist is
// answered as one that exists with no data of the type asked. One NSEC,
// owned by the name asked, covers nothing but the name itself (its next
// name is the immediate successor, "\000.<name>"), so no other name of the
// zone can be learnt from it, and it can be signed the moment it is
// needed. Its type bitmap holds NXNAME for a name that does not exist
// (section 3.1), or the types the name has (section 3.2; only RRSIG and
// NSEC for an empty non-terminal).

// successor is the immediate successor of name in canonical order
// (RFC 4471 section 3.1.2.1).
func successor(name string) string {
	if name == "." {
		return "\\000."
	}
	return "\\000." + name
}

// nsec is a compact denial NSEC at owner with the given types (RRSIG and
// NSEC added), sorted as the bitmap wants them.
func nsec(owner string, ttl uint32, types []uint16) *dns.NSEC {
	bitmap := append(slices.Clone(types), dns.TypeRRSIG, dns.TypeNSEC)
	slices.Sort(bitmap)
	bitmap = slices.Compact(bitmap)
	return &dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
		NextDomain: successor(owner), TypeBitMap: bitmap}
}

// Query is what signing an answer needs to know of the query.
type Query struct {
	Name string // lower-case
	Type uint16
	// CO: the query set the Compact Answers OK flag (RFC 9824 section
	// 4): a name that does not exist is then answered with NXDOMAIN.
	CO bool
	// Types are the types a dynamic name has, for its NODATA answers;
	// nil for a name of the zone's data, whose types the zone knows.
	Types []uint16
}

// Scratch is per-query memory for SignResult.
type Scratch struct {
	answer, ns []dns.RR
	key        []byte
}

// SignResult turns res, the zone's answer to q, into its signed form: an
// RRSIG after every RRset of the answer and authority sections (a
// referral's NS excepted, RFC 4035 section 2.2), and negative answers in
// compact form. It returns false when an RRset could not be signed.
func (s *Signer) SignResult(z *zones.Zone, q Query, res *zones.Result, sc *Scratch) error {
	if q.Type == dns.TypeNXNAME {
		// RFC 9824 section 3.5: NXNAME is a meta type, never asked for.
		*res = zones.Result{Kind: zones.KindAnswer, Rcode: dns.RcodeFormatError}
		return nil
	}
	var err error
	if sc.answer, err = s.appendSigned(sc.answer[:0], res.Answer, sc); err != nil {
		return err
	}
	res.Answer = sc.answer
	sc.ns = sc.ns[:0]
	switch {
	case res.Kind == zones.KindReferral:
		err = s.signReferral(z, res, sc)
	case res.Kind == zones.KindNXDomain || res.Kind == zones.KindNoData:
		err = s.signDenial(z, q, res, sc)
	default:
		sc.ns, err = s.appendSigned(sc.ns, res.Ns, sc)
		res.Ns = sc.ns
	}
	return err
}

// signReferral adds a delegation's DS, signed (RFC 4035 section 3.1.4), or
// proves there is none with an NSEC at the cut (NS, RRSIG and NSEC in its
// bitmap), so a validator knows the child is unsigned.
func (s *Signer) signReferral(z *zones.Zone, res *zones.Result, sc *Scratch) error {
	var ns, ds []dns.RR
	for _, rr := range res.Ns {
		if rr.Header().Rrtype == dns.TypeDS {
			ds = append(ds, rr)
		} else {
			ns = append(ns, rr)
		}
	}
	sc.ns = append(sc.ns, ns...)
	if len(ds) == 0 && len(ns) > 0 {
		cut := ns[0].Header()
		if r := z.Lookup(zones.Lower(cut.Name), dns.TypeDS); r.Kind == zones.KindAnswer && len(r.Answer) > 0 {
			ds = r.Answer
		} else {
			ds = []dns.RR{nsec(zones.Lower(cut.Name), cut.Ttl, []uint16{dns.TypeNS})}
		}
	}
	var err error
	sc.ns, err = s.appendSigned(sc.ns, ds, sc)
	res.Ns = sc.ns
	return err
}

// signDenial answers NXDOMAIN and NODATA in compact form: the SOA and
// one NSEC at the name denied, each with its RRSIG.
func (s *Signer) signDenial(z *zones.Zone, q Query, res *zones.Result, sc *Scratch) error {
	owner := q.Name
	if n := len(res.Answer); n > 0 {
		// A CNAME chain that ends in a denial: the denial is the last target's.
		for _, rr := range res.Answer {
			if c, ok := rr.(*dns.CNAME); ok {
				owner = zones.Lower(c.Target)
			}
		}
	}
	var ttl uint32
	if len(res.Ns) > 0 {
		ttl = res.Ns[0].Header().Ttl // the SOA's negative TTL (RFC 9077)
	}
	var types []uint16
	switch {
	case res.Kind == zones.KindNXDomain:
		types = []uint16{dns.TypeNXNAME}
		res.Rcode = dns.RcodeSuccess
		if q.CO {
			res.Rcode = dns.RcodeNameError
		}
	case q.Types != nil && owner == q.Name:
		types = q.Types
	default:
		types = z.Types(owner)
	}
	// The type asked is not there, whatever the data says: a dynamic
	// record with no address of its type for this client is NODATA too.
	types = slices.DeleteFunc(slices.Clone(types), func(t uint16) bool { return t == q.Type })
	var err error
	if sc.ns, err = s.appendSigned(sc.ns, res.Ns, sc); err != nil {
		return err
	}
	sc.ns, err = s.appendSigned(sc.ns, []dns.RR{nsec(owner, ttl, types)}, sc)
	res.Ns = sc.ns
	return err
}

// appendSigned appends rrs to out, each RRset (consecutive records of one
// owner and type) followed by its RRSIGs.
func (s *Signer) appendSigned(out, rrs []dns.RR, sc *Scratch) ([]dns.RR, error) {
	for i := 0; i < len(rrs); {
		h := rrs[i].Header()
		j := i + 1
		for j < len(rrs) && rrs[j].Header().Rrtype == h.Rrtype && rrs[j].Header().Name == h.Name {
			j++
		}
		sigs, key, err := s.Sign(rrs[i:j], sc.key)
		sc.key = key
		if err != nil {
			return out, err
		}
		out = append(out, rrs[i:j]...)
		out = append(out, sigs...)
		i = j
	}
	return out, nil
}
