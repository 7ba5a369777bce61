package zones

import (
	"errors"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// Sentinel errors of zone validation; Build wraps them with the offending name.
var (
	ErrNoSOA        = errors.New("zone has no SOA record at its apex")
	ErrManySOA      = errors.New("zone has more than one SOA record")
	ErrNoApexNS     = errors.New("zone has no NS records at its apex")
	ErrOutOfZone    = errors.New("record is outside the zone")
	ErrCNAMEAndData = errors.New("CNAME and other data at the same name (RFC 1034 3.6.2)")
	ErrSOANotApex   = errors.New("SOA record below the apex")
)

// Zone is one authoritative zone, immutable once built.
type Zone struct {
	origin  string // lower-case FQDN
	soa     *dns.SOA
	nodes   map[string]*node
	negSOA  []dns.RR // SOA carrying the negative-caching TTL of RFC 2308 section 5
	hasCuts bool
	records int
	statics int // next free static result id
}

// node is one owner name. A node without sets is an empty non-terminal: it
// exists (NODATA, not NXDOMAIN) because names below it hold data.
type node struct {
	name string
	sets []rrset // sorted by type; nodes hold few sets, so a scan beats a map
	cut  bool    // NS below the apex: a delegation point
	wild *node   // the "*" child of this node, for RFC 4592 synthesis
	// referral is prepared at build for cut nodes: NS in authority, glue in additional.
	referral Result
}

type rrset struct {
	rrtype uint16
	rrs    []dns.RR
	extra  []dns.RR // A/AAAA of in-zone targets of NS, MX and SRV records
	static int      // Result.Static of the answer this set gives
}

// Origin returns the zone's apex, lower-case and fully qualified.
func (z *Zone) Origin() string { return z.origin }

// Serial returns the serial of the zone's SOA record.
func (z *Zone) Serial() uint32 { return z.soa.Serial }

// Records returns how many records the zone holds.
func (z *Zone) Records() int { return z.records }

// Build validates rrs as the content of the zone at origin and prepares it for
// lookups. Owner names are lower-cased; record data is kept as written.
func Build(origin string, rrs []dns.RR) (*Zone, error) {
	origin = Lower(dns.Fqdn(origin))
	z := &Zone{origin: origin, nodes: make(map[string]*node)}
	z.nodes[origin] = &node{name: origin}
	byOwner, err := groupByOwner(origin, rrs)
	if err != nil {
		return nil, err
	}
	for owner, types := range byOwner {
		if err := z.addNode(owner, types); err != nil {
			return nil, err
		}
	}
	if err := z.apex(); err != nil {
		return nil, err
	}
	z.prepare()
	return z, nil
}

// groupByOwner sorts rrs into RRsets by owner (lower-cased) and type,
// dropping duplicates (RFC 2181 section 5: an RRset holds none).
func groupByOwner(origin string, rrs []dns.RR) (map[string]map[uint16][]dns.RR, error) {
	byOwner := make(map[string]map[uint16][]dns.RR)
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = Lower(h.Name)
		if !isSubdomain(h.Name, origin) {
			return nil, fmt.Errorf("%s %s: %w %s", h.Name, dns.TypeToString[h.Rrtype], ErrOutOfZone, origin)
		}
		types := byOwner[h.Name]
		if types == nil {
			types = make(map[uint16][]dns.RR)
			byOwner[h.Name] = types
		}
		if slices.ContainsFunc(types[h.Rrtype], func(o dns.RR) bool { return dns.IsDuplicate(o, rr) }) {
			continue
		}
		types[h.Rrtype] = append(types[h.Rrtype], rr)
	}
	return byOwner, nil
}

// addNode checks one owner's RRsets (SOA only at the apex; a CNAME alone)
// and stores them, marking a delegation point.
func (z *Zone) addNode(owner string, types map[uint16][]dns.RR) error {
	if _, ok := types[dns.TypeSOA]; ok && owner != z.origin {
		return fmt.Errorf("%s: %w", owner, ErrSOANotApex)
	}
	if _, ok := types[dns.TypeCNAME]; ok {
		for t := range types {
			if t != dns.TypeCNAME && t != dns.TypeRRSIG && t != dns.TypeNSEC {
				return fmt.Errorf("%s: %w", owner, ErrCNAMEAndData)
			}
		}
		if len(types[dns.TypeCNAME]) > 1 {
			return fmt.Errorf("%s: %w", owner, ErrCNAMEAndData)
		}
	}
	n := z.ensure(owner)
	for t, set := range types {
		n.sets = append(n.sets, rrset{rrtype: t, rrs: set})
		z.records += len(set)
	}
	slices.SortFunc(n.sets, func(a, b rrset) int { return int(a.rrtype) - int(b.rrtype) })
	if _, ok := types[dns.TypeNS]; ok && owner != z.origin {
		n.cut = true
		z.hasCuts = true
	}
	return nil
}

// apex checks the apex's one SOA and its NS, and keeps the SOA and the
// SOA of negative answers (TTL the lower of its TTL and minimum).
func (z *Zone) apex() error {
	apex := z.nodes[z.origin]
	soas := apex.set(dns.TypeSOA)
	switch {
	case len(soas) == 0:
		return fmt.Errorf("%s: %w", z.origin, ErrNoSOA)
	case len(soas) > 1:
		return fmt.Errorf("%s: %w", z.origin, ErrManySOA)
	}
	if len(apex.set(dns.TypeNS)) == 0 {
		return fmt.Errorf("%s: %w", z.origin, ErrNoApexNS)
	}
	z.soa = soas[0].(*dns.SOA)
	neg := dns.Copy(z.soa).(*dns.SOA)
	neg.Hdr.Ttl = min(z.soa.Hdr.Ttl, z.soa.Minttl)
	z.negSOA = []dns.RR{neg}
	return nil
}

// prepare links wildcards to their parents, and numbers every answer
// that is the same for all who get it (Static) with its additional data
// and each delegation's referral.
func (z *Zone) prepare() {
	z.statics = firstStatic
	for name, n := range z.nodes {
		if p, ok := parent(name); ok && len(name) > 2 && name[:2] == "*." {
			if pn := z.nodes[p]; pn != nil {
				pn.wild = n
			}
		}
		for i := range n.sets {
			n.sets[i].extra = z.additional(n.sets[i].rrs)
			n.sets[i].static = z.statics
			z.statics++
		}
		if n.cut {
			n.referral = Result{
				Kind:   KindReferral,
				Rcode:  dns.RcodeSuccess,
				Ns:     n.set(dns.TypeNS),
				Extra:  z.additional(n.set(dns.TypeNS)),
				Static: z.statics,
			}
			z.statics++
		}
	}
}

// ensure returns the node for owner, creating it and any empty non-terminals
// between it and the apex.
func (z *Zone) ensure(owner string) *node {
	n := z.nodes[owner]
	if n != nil {
		return n
	}
	n = &node{name: owner}
	z.nodes[owner] = n
	for p, ok := parent(owner); ok && p != z.origin && isSubdomain(p, z.origin); p, ok = parent(p) {
		if z.nodes[p] != nil {
			break
		}
		z.nodes[p] = &node{name: p}
	}
	return n
}

func (n *node) set(t uint16) []dns.RR {
	if s := n.find(t); s != nil {
		return s.rrs
	}
	return nil
}

func (n *node) find(t uint16) *rrset {
	for i := range n.sets {
		if n.sets[i].rrtype == t {
			return &n.sets[i]
		}
	}
	return nil
}

// additional collects the in-zone addresses of the names that NS, MX, SRV,
// SVCB and HTTPS records point at (RFC 1034 section 4.3.2 step 6, RFC 9460
// section 4.2), including glue below delegation points.
func (z *Zone) additional(rrs []dns.RR) []dns.RR {
	var extra []dns.RR
	for _, rr := range rrs {
		var target string
		switch v := rr.(type) {
		case *dns.NS:
			target = v.Ns
		case *dns.MX:
			target = v.Mx
		case *dns.SRV:
			target = v.Target
		case *dns.SVCB:
			target = svcbTarget(&v.Hdr, v.Priority, v.Target)
		case *dns.HTTPS:
			target = svcbTarget(&v.Hdr, v.Priority, v.Target)
		default:
			continue
		}
		n := z.nodes[Lower(target)]
		if n == nil {
			continue
		}
		for _, rr := range n.set(dns.TypeA) {
			if !slices.Contains(extra, rr) {
				extra = append(extra, rr)
			}
		}
		for _, rr := range n.set(dns.TypeAAAA) {
			if !slices.Contains(extra, rr) {
				extra = append(extra, rr)
			}
		}
	}
	return extra
}

// svcbTarget is the name an SVCB or HTTPS record sends clients to: its
// TargetName, or for "." in ServiceMode the owner itself (RFC 9460
// section 2.5); "" for AliasMode's "." (no service).
func svcbTarget(hdr *dns.RR_Header, priority uint16, target string) string {
	if target != "." {
		return target
	}
	if priority == 0 {
		return ""
	}
	return hdr.Name
}

// Reserve makes name (lower-case, fully qualified, inside the zone) exist
// without data, with the empty non-terminals above it: the name of a
// dynamic record answered elsewhere. Its parents are then NODATA, not
// NXDOMAIN, and a wildcard no longer stands in for it (RFC 4592 2.2.2).
// Call it only while building, before the zone is published: zones are
// immutable once served.
func (z *Zone) Reserve(name string) {
	name = Lower(name)
	if !isSubdomain(name, z.origin) {
		return
	}
	z.ensure(name)
}
