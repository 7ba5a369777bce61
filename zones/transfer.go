package zones

import (
	"maps"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// What zone transfers (RFC 5936, RFC 1995) need of a zone: its records in
// a stable order, its SOA, a copy with another serial, and the difference
// between two loads.

// SOA returns the zone's SOA record; treat it as read-only.
func (z *Zone) SOA() *dns.SOA { return z.soa }

// RRs returns every record of the zone, the SOA first, then by owner in
// canonical order (RFC 4034 section 6.1) and by type, so that two
// transfers of one zone list the same records in the same order. The
// slice is new; the records are the zone's and read-only.
func (z *Zone) RRs() []dns.RR {
	type owner struct{ key, name string }
	owners := make([]owner, 0, len(z.nodes))
	for name, n := range z.nodes {
		if len(n.sets) > 0 {
			owners = append(owners, owner{canonicalKey(name), name})
		}
	}
	slices.SortFunc(owners, func(a, b owner) int { return strings.Compare(a.key, b.key) })
	out := make([]dns.RR, 0, z.records)
	out = append(out, z.soa)
	for _, o := range owners {
		for _, set := range z.nodes[o.name].sets {
			if set.rrtype != dns.TypeSOA {
				out = append(out, set.rrs...)
			}
		}
	}
	return out
}

// canonicalKey is name's labels from the right, each ended by a zero
// byte: keys compare as the names do in canonical order.
func canonicalKey(name string) string {
	labels := dns.SplitDomainName(name)
	var b strings.Builder
	b.Grow(len(name) + 1)
	for i := len(labels) - 1; i >= 0; i-- {
		b.WriteString(labels[i])
		b.WriteByte(0)
	}
	return b.String()
}

// canonicalCompare orders names as RFC 4034 section 6.1 does: label by
// label from the right. Names are lower-case already.
func canonicalCompare(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// WithSerial returns a copy of z whose SOA carries serial, sharing
// everything but the apex: how a zone's serial is set by the server
// (serial = "unixtime" or "increment") without building it again. z is
// unchanged.
func (z *Zone) WithSerial(serial uint32) *Zone {
	if serial == z.soa.Serial {
		return z
	}
	nz := *z
	soa := dns.Copy(z.soa).(*dns.SOA)
	soa.Serial = serial
	nz.soa = soa
	neg := dns.Copy(z.negSOA[0]).(*dns.SOA)
	neg.Serial = serial
	nz.negSOA = []dns.RR{neg}
	nz.nodes = maps.Clone(z.nodes)
	apex := *z.nodes[z.origin]
	apex.sets = slices.Clone(apex.sets)
	for i := range apex.sets {
		if apex.sets[i].rrtype == dns.TypeSOA {
			apex.sets[i].rrs = []dns.RR{soa}
		}
	}
	nz.nodes[z.origin] = &apex
	return &nz
}

// Diff returns the records of old that new no longer has and the records
// new has that old had not, leaving out the SOA, in canonical order. It is
// the body of an incremental transfer (RFC 1995) from old to new.
func Diff(old, new *Zone) (deleted, added []dns.RR) {
	for name, n := range old.nodes {
		deleted = appendMissing(deleted, n, new.nodes[name])
	}
	for name, n := range new.nodes {
		added = appendMissing(added, n, old.nodes[name])
	}
	byName := func(a, b dns.RR) int {
		if c := canonicalCompare(a.Header().Name, b.Header().Name); c != 0 {
			return c
		}
		return int(a.Header().Rrtype) - int(b.Header().Rrtype)
	}
	slices.SortStableFunc(deleted, byName)
	slices.SortStableFunc(added, byName)
	return deleted, added
}

// appendMissing appends the records of n that other (the same owner in
// the other zone, or nil) does not hold, but the SOA.
func appendMissing(out []dns.RR, n, other *node) []dns.RR {
	for _, set := range n.sets {
		if set.rrtype == dns.TypeSOA {
			continue
		}
		var theirs []dns.RR
		if other != nil {
			theirs = other.set(set.rrtype)
		}
		for _, rr := range set.rrs {
			if !slices.ContainsFunc(theirs, func(o dns.RR) bool { return sameRR(o, rr) }) {
				out = append(out, rr)
			}
		}
	}
	return out
}

// sameRR reports whether a and b are the same record, TTL included: a
// changed TTL must reach the secondaries too.
func sameRR(a, b dns.RR) bool {
	return a.Header().Ttl == b.Header().Ttl && dns.IsDuplicate(a, b)
}

// SameSOA reports whether two SOA records are equal but for the serial.
func SameSOA(a, b *dns.SOA) bool {
	x := *a
	x.Serial = b.Serial
	return x.Hdr.Ttl == b.Hdr.Ttl && dns.IsDuplicate(&x, b)
}
