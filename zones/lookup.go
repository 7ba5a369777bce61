package zones

import (
	"github.com/miekg/dns"
)

// Kind says what sort of answer a lookup produced, for logs, metrics and
// explanations; the DNS message itself is fully described by the other fields.
type Kind uint8

// The kinds of lookup result.
const (
	KindAnswer   Kind = iota // data for the name and type (possibly via CNAME or wildcard)
	KindNoData               // the name exists, the type does not (RFC 2308 section 2.2)
	KindNXDomain             // the name does not exist (RFC 2308 section 2.1)
	KindReferral             // the name lies at or below a delegation point
)

func (k Kind) String() string {
	switch k {
	case KindAnswer:
		return "answer"
	case KindNoData:
		return "nodata"
	case KindNXDomain:
		return "nxdomain"
	case KindReferral:
		return "referral"
	}
	return "unknown"
}

// Result is the outcome of a lookup. Its slices may be shared with the zone
// and must not be modified.
type Result struct {
	Kind          Kind
	Rcode         int
	Authoritative bool
	Wildcard      bool   // the answer was synthesised from a wildcard
	WildcardOwner string // the wildcard's owner ("*.example.test."), when Wildcard
	// Static identifies a result that is the same for every query that
	// gets it (1 and up, unique within the zone; see Zone.Statics), so a
	// front end can prepare its wire form once. 0 for results built per
	// query: CNAME chains and wildcard synthesis.
	Static int
	Answer []dns.RR
	Ns     []dns.RR
	Extra  []dns.RR
}

// maxChase bounds CNAME chains inside a zone, which also ends loops.
const maxChase = 8

// Lookup answers qname (lower-case, fully qualified, at or below the origin)
// and qtype from the zone's data. CNAMEs are followed while their targets
// stay inside the zone; the rcode is that of the last name in the chain
// (RFC 6604).
func (z *Zone) Lookup(qname string, qtype uint16) Result {
	r, target := z.lookupOne(qname, qtype)
	if target == "" {
		return r
	}
	chain := append([]dns.RR(nil), r.Answer...)
	wild, wildOwner := r.Wildcard, r.WildcardOwner
	for hop := 1; hop < maxChase && target != ""; hop++ {
		// A target already in the chain is a loop (a CNAME to itself
		// included): stop before giving any record twice.
		if !isSubdomain(target, z.origin) || chainHas(chain, target) {
			break
		}
		var next Result
		next, target = z.lookupOne(target, qtype)
		if next.Kind == KindReferral {
			// The chain leaves our authority; the resolver follows the CNAME itself.
			break
		}
		chain = append(chain, next.Answer...)
		r = next
		if next.Wildcard && !wild {
			wildOwner = next.WildcardOwner
		}
		wild = wild || next.Wildcard
	}
	r.Answer = chain
	r.Static = 0
	r.Wildcard, r.WildcardOwner = wild, wildOwner // any synthesised link makes the answer synthesised
	r.Authoritative = true
	if r.Kind == KindReferral {
		r.Kind = KindAnswer
	}
	if r.Kind == KindAnswer {
		r.Ns = nil
	}
	return r
}

func chainHas(chain []dns.RR, name string) bool {
	for _, rr := range chain {
		if Lower(rr.Header().Name) == name {
			return true
		}
	}
	return false
}

// lookupOne resolves one name without following CNAMEs. When the answer is a
// CNAME for another type, it returns the CNAME's target (lower-case) as well.
func (z *Zone) lookupOne(qname string, qtype uint16) (Result, string) {
	if z.hasCuts {
		if cut := z.cutAbove(qname, qtype); cut != nil {
			return cut.referral, ""
		}
	}
	if n := z.nodes[qname]; n != nil {
		return z.fromNode(n, qtype, "")
	}
	// RFC 4592 section 4: find the closest encloser; only its "*" child may
	// synthesise. An existing name (empty non-terminals included) between the
	// two blocks the wildcard, because the closest encloser is then lower.
	ce := qname
	for {
		p, ok := parent(ce)
		if !ok {
			break
		}
		ce = p
		if n := z.nodes[ce]; n != nil {
			if n.wild != nil {
				r, target := z.fromNode(n.wild, qtype, qname)
				r.Wildcard, r.WildcardOwner = true, n.wild.name
				return r, target
			}
			break
		}
	}
	return z.nxDomain(), ""
}

// cutAbove returns the topmost delegation point at or above qname (below the
// apex). DS at the cut itself belongs to the parent side (RFC 4035 3.1.4.1).
func (z *Zone) cutAbove(qname string, qtype uint16) *node {
	var top *node
	for name := qname; name != z.origin; {
		if n := z.nodes[name]; n != nil && n.cut && !(name == qname && qtype == dns.TypeDS) {
			top = n
		}
		p, ok := parent(name)
		if !ok {
			break
		}
		name = p
	}
	return top
}

// fromNode answers qtype from node n. A non-empty owner renames the records
// (wildcard synthesis, RFC 4592 section 3.3.1).
func (z *Zone) fromNode(n *node, qtype uint16, owner string) (Result, string) {
	if len(n.sets) == 0 {
		return z.noData(), ""
	}
	var set *rrset
	if qtype == dns.TypeANY {
		// RFC 8482 section 4.1: one RRset instead of all of them. A CNAME is
		// the only set at its name, so it is the one given.
		set = &n.sets[0]
	} else if set = n.find(qtype); set == nil {
		if cn := n.find(dns.TypeCNAME); cn != nil {
			r := z.answer(cn, owner)
			return r, Lower(cn.rrs[0].(*dns.CNAME).Target)
		}
		return z.noData(), ""
	}
	return z.answer(set, owner), ""
}

func (z *Zone) answer(s *rrset, owner string) Result {
	r := Result{Kind: KindAnswer, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: s.rrs, Extra: s.extra, Static: s.static}
	if owner != "" {
		r.Static = 0
		r.Answer = make([]dns.RR, len(s.rrs))
		for i, rr := range s.rrs {
			c := dns.Copy(rr)
			c.Header().Name = owner
			r.Answer[i] = c
		}
	}
	return r
}

// Static result ids shared by the whole zone; rrsets and referrals take
// the ids after these.
const (
	staticNXDomain = 1 + iota
	staticNoData
	firstStatic
)

func (z *Zone) noData() Result {
	return Result{Kind: KindNoData, Rcode: dns.RcodeSuccess, Authoritative: true, Ns: z.negSOA, Static: staticNoData}
}

func (z *Zone) nxDomain() Result {
	return Result{Kind: KindNXDomain, Rcode: dns.RcodeNameError, Authoritative: true, Ns: z.negSOA, Static: staticNXDomain}
}

// Statics calls fn once for every static result the zone can give (see
// Result.Static); the answer sections' owner names all equal the query name.
// The number of ids is StaticCount.
func (z *Zone) Statics(fn func(Result)) {
	fn(z.nxDomain())
	fn(z.noData())
	for _, n := range z.nodes {
		for i := range n.sets {
			fn(z.answer(&n.sets[i], ""))
		}
		if n.cut {
			fn(n.referral)
		}
	}
}

// StaticCount is one more than the largest static id of the zone.
func (z *Zone) StaticCount() int { return z.statics }

// NoData is the zone's negative answer for a name that exists without the
// type asked, for names whose data lives outside the zone (dynamic records).
func (z *Zone) NoData() Result { return z.noData() }

// Types returns the types of the RRsets at qname, or at the wildcard that
// would synthesise qname's answers; none for an empty non-terminal or a
// name that does not exist. A signed zone's denial of existence lists them
// (RFC 9824 section 3).
func (z *Zone) Types(qname string) []uint16 {
	n := z.nodes[qname]
	if n == nil {
		for ce := qname; n == nil; {
			p, ok := parent(ce)
			if !ok {
				return nil
			}
			ce = p
			if c := z.nodes[ce]; c != nil {
				if c.wild == nil {
					return nil
				}
				n = c.wild
			}
		}
	}
	out := make([]uint16, 0, len(n.sets))
	for _, s := range n.sets {
		out = append(out, s.rrtype)
	}
	return out
}
