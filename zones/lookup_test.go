package zones

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testZone is the zone most lookup tests run against. The SOA's own TTL
// (3600) is above its MINIMUM (120), so negative answers carry 120.
const testZone = `
$ORIGIN example.test.
$TTL 300
@        3600 IN SOA   ns1.example.test. hostmaster.example.test. 2026010101 7200 3600 1209600 120
@             IN NS    ns1.example.test.
@             IN NS    ns2.example.test.
@             IN MX    10 mail.example.test.
@             IN A     192.0.2.1
ns1           IN A     192.0.2.53
ns2           IN A     192.0.2.54
ns2           IN AAAA  2001:db8::54
www           IN A     192.0.2.10
www           IN A     192.0.2.11
www           IN AAAA  2001:db8::10
mail          IN A     192.0.2.25
MiXeD.Case    IN A     192.0.2.99
a\.b          IN TXT   "one label with a dot in it"
_sip._udp     IN SRV   10 5 5060 sip.example.test.
sip      600  IN AAAA  2001:db8::5060
_dns          IN SVCB  1 ns2.example.test. alpn=dot port=853
svc           IN HTTPS 1 . alpn=h2,h3
svc           IN A     192.0.2.44
svcalias      IN HTTPS 0 svc.example.test.

; CNAMEs
shop          IN CNAME www.example.test.
chain1        IN CNAME chain2.example.test.
chain2        IN CNAME www.example.test.
mxalias       IN CNAME example.test.
dangling      IN CNAME nowhere.example.test.
external      IN CNAME www.example.org.
loop1         IN CNAME loop2.example.test.
loop2         IN CNAME loop1.example.test.
self          IN CNAME self.example.test.
tochild       IN CNAME www.child.example.test.
toent         IN CNAME path.to.example.test.
towild        IN CNAME host.apps.example.test.

; empty non-terminals: path.to and to exist only because of deep.path.to
deep.path.to  IN TXT   "deep"

; wildcards
*.apps        IN A     192.0.2.80
*.apps        IN TXT   "wild"
sub.apps      IN TXT   "an existing sibling of the wildcard"
x.ent.apps    IN TXT   "makes ent.apps an empty non-terminal"
*.alias       IN CNAME www.example.test.
*.wmx         IN MX    20 mail.example.test.

; a delegation with in-bailiwick glue and an out-of-zone server
child         IN NS    ns1.child.example.test.
child         IN NS    ns.example.org.
ns1.child     IN A     192.0.2.153
`

const negSOA = "example.test. 120 IN SOA ns1.example.test. hostmaster.example.test. 2026010101 7200 3600 1209600 120"

// zoneFromText parses master-file text for origin and builds the zone.
func zoneFromText(t testing.TB, origin, text string) *Zone {
	t.Helper()
	z, err := buildText(origin, text)
	if err != nil {
		t.Fatalf("Build(%s): %v", origin, err)
	}
	return z
}

func buildText(origin, text string) (*Zone, error) {
	rrs, err := parseText(origin, text)
	if err != nil {
		return nil, err
	}
	return Build(origin, rrs)
}

func parseText(origin, text string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "test.zone")
	zp.SetDefaultTTL(3600)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	return rrs, zp.Err()
}

// section renders records one per line, sorted, so that two sections
// compare equal exactly when they hold the same records with the same TTLs.
func section(rrs []dns.RR) string {
	lines := make([]string, len(rrs))
	for i, rr := range rrs {
		lines[i] = rr.String()
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func wantSection(t *testing.T, texts []string) string {
	t.Helper()
	rrs := make([]dns.RR, len(texts))
	for i, s := range texts {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", s, err)
		}
		rrs[i] = rr
	}
	return section(rrs)
}

type lookupCase struct {
	qname    string
	qtype    uint16
	kind     Kind
	rcode    int
	aa       bool
	wildcard bool
	answer   []string
	ns       []string
	extra    []string
}

func (tc lookupCase) name() string {
	return tc.qname + "/" + dns.TypeToString[tc.qtype]
}

func checkLookup(t *testing.T, z *Zone, tc lookupCase) {
	t.Helper()
	r := z.Lookup(tc.qname, tc.qtype)
	if r.Kind != tc.kind {
		t.Errorf("kind = %v, want %v", r.Kind, tc.kind)
	}
	if r.Rcode != tc.rcode {
		t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
	}
	if r.Authoritative != tc.aa {
		t.Errorf("authoritative = %v, want %v", r.Authoritative, tc.aa)
	}
	if r.Wildcard != tc.wildcard {
		t.Errorf("wildcard = %v, want %v", r.Wildcard, tc.wildcard)
	}
	for _, s := range []struct {
		name string
		got  []dns.RR
		want []string
	}{
		{"answer", r.Answer, tc.answer},
		{"authority", r.Ns, tc.ns},
		{"additional", r.Extra, tc.extra},
	} {
		if got, want := section(s.got), wantSection(t, s.want); got != want {
			t.Errorf("%s section:\n got:\n%s\nwant:\n%s", s.name, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	z := zoneFromText(t, "example.test.", testZone)
	const (
		ok  = dns.RcodeSuccess
		nxd = dns.RcodeNameError
	)
	wwwA := []string{
		"www.example.test. 300 IN A 192.0.2.10",
		"www.example.test. 300 IN A 192.0.2.11",
	}
	nsAddrs := []string{
		"ns1.example.test. 300 IN A 192.0.2.53",
		"ns2.example.test. 300 IN A 192.0.2.54",
		"ns2.example.test. 300 IN AAAA 2001:db8::54",
	}
	referral := lookupCase{
		kind: KindReferral, rcode: ok, aa: false,
		ns: []string{
			"child.example.test. 300 IN NS ns1.child.example.test.",
			"child.example.test. 300 IN NS ns.example.org.",
		},
		extra: []string{"ns1.child.example.test. 300 IN A 192.0.2.153"},
	}
	referralFor := func(qname string, qtype uint16) lookupCase {
		c := referral
		c.qname, c.qtype = qname, qtype
		return c
	}
	nodata := func(qname string, qtype uint16, wildcard bool) lookupCase {
		return lookupCase{qname: qname, qtype: qtype, kind: KindNoData, rcode: ok, aa: true, wildcard: wildcard, ns: []string{negSOA}}
	}
	nxdomain := func(qname string, qtype uint16) lookupCase {
		return lookupCase{qname: qname, qtype: qtype, kind: KindNXDomain, rcode: nxd, aa: true, ns: []string{negSOA}}
	}

	tests := []lookupCase{
		// Exact answers.
		{qname: "www.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true, answer: wwwA},
		{qname: "www.example.test.", qtype: dns.TypeAAAA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"www.example.test. 300 IN AAAA 2001:db8::10"}},
		{qname: "example.test.", qtype: dns.TypeSOA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2026010101 7200 3600 1209600 120"}},
		// Owner names are matched case-insensitively: the zone holds them lower-cased.
		{qname: "mixed.case.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"mixed.case.example.test. 300 IN A 192.0.2.99"}},
		// "a\.b" is one label: it exists, "b" beside it does not.
		{qname: `a\.b.example.test.`, qtype: dns.TypeTXT, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{`a\.b.example.test. 300 IN TXT "one label with a dot in it"`}},
		nxdomain("b.example.test.", dns.TypeTXT),

		// Additional-section addresses for in-zone NS, MX and SRV targets.
		{qname: "example.test.", qtype: dns.TypeNS, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{
				"example.test. 300 IN NS ns1.example.test.",
				"example.test. 300 IN NS ns2.example.test.",
			},
			extra: nsAddrs},
		{qname: "example.test.", qtype: dns.TypeMX, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"example.test. 300 IN MX 10 mail.example.test."},
			extra:  []string{"mail.example.test. 300 IN A 192.0.2.25"}},
		{qname: "_sip._udp.example.test.", qtype: dns.TypeSRV, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"_sip._udp.example.test. 300 IN SRV 10 5 5060 sip.example.test."},
			extra:  []string{"sip.example.test. 600 IN AAAA 2001:db8::5060"}},
		// SVCB and HTTPS (RFC 9460 section 4.2): the target's addresses,
		// "." in ServiceMode being the owner itself.
		{qname: "_dns.example.test.", qtype: dns.TypeSVCB, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"_dns.example.test. 300 IN SVCB 1 ns2.example.test. alpn=\"dot\" port=\"853\""},
			extra:  []string{"ns2.example.test. 300 IN A 192.0.2.54", "ns2.example.test. 300 IN AAAA 2001:db8::54"}},
		{qname: "svc.example.test.", qtype: dns.TypeHTTPS, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"svc.example.test. 300 IN HTTPS 1 . alpn=\"h2,h3\""},
			extra:  []string{"svc.example.test. 300 IN A 192.0.2.44"}},
		{qname: "svcalias.example.test.", qtype: dns.TypeHTTPS, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"svcalias.example.test. 300 IN HTTPS 0 svc.example.test."},
			extra:  []string{"svc.example.test. 300 IN A 192.0.2.44"}},

		// NODATA: the name exists, the type does not; SOA with min(TTL, MINIMUM).
		nodata("www.example.test.", dns.TypeMX, false),
		nodata("example.test.", dns.TypeAAAA, false),
		// Empty non-terminals exist.
		nodata("path.to.example.test.", dns.TypeA, false),
		nodata("to.example.test.", dns.TypeTXT, false),
		nodata("to.example.test.", dns.TypeANY, false),
		{qname: "deep.path.to.example.test.", qtype: dns.TypeTXT, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{`deep.path.to.example.test. 300 IN TXT "deep"`}},

		// NXDOMAIN.
		nxdomain("nope.example.test.", dns.TypeA),
		nxdomain("below.www.example.test.", dns.TypeA),
		nxdomain("x.deep.path.to.example.test.", dns.TypeA),
		nxdomain("nope.example.test.", dns.TypeANY),

		// CNAMEs are chased inside the zone.
		{qname: "shop.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: append([]string{"shop.example.test. 300 IN CNAME www.example.test."}, wwwA...)},
		{qname: "chain1.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: append([]string{
				"chain1.example.test. 300 IN CNAME chain2.example.test.",
				"chain2.example.test. 300 IN CNAME www.example.test.",
			}, wwwA...)},
		// The final name's additional data comes along.
		{qname: "mxalias.example.test.", qtype: dns.TypeMX, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{
				"mxalias.example.test. 300 IN CNAME example.test.",
				"example.test. 300 IN MX 10 mail.example.test.",
			},
			extra: []string{"mail.example.test. 300 IN A 192.0.2.25"}},
		// The chain ends in NODATA: the CNAME is kept, with the negative SOA.
		{qname: "shop.example.test.", qtype: dns.TypeMX, kind: KindNoData, rcode: ok, aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test."},
			ns:     []string{negSOA}},
		{qname: "toent.example.test.", qtype: dns.TypeA, kind: KindNoData, rcode: ok, aa: true,
			answer: []string{"toent.example.test. 300 IN CNAME path.to.example.test."},
			ns:     []string{negSOA}},
		// RFC 6604: the rcode is that of the last name in the chain.
		{qname: "dangling.example.test.", qtype: dns.TypeA, kind: KindNXDomain, rcode: nxd, aa: true,
			answer: []string{"dangling.example.test. 300 IN CNAME nowhere.example.test."},
			ns:     []string{negSOA}},
		// A target outside the zone is left to the resolver.
		{qname: "external.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"external.example.test. 300 IN CNAME www.example.org."}},
		// A target below a delegation is not ours to answer either.
		{qname: "tochild.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"tochild.example.test. 300 IN CNAME www.child.example.test."}},
		// Loops terminate, each CNAME given once.
		{qname: "loop1.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{
				"loop1.example.test. 300 IN CNAME loop2.example.test.",
				"loop2.example.test. 300 IN CNAME loop1.example.test.",
			}},
		{qname: "self.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"self.example.test. 300 IN CNAME self.example.test."}},
		// Asking for the CNAME (or ANY) gives the CNAME itself, not followed.
		{qname: "shop.example.test.", qtype: dns.TypeCNAME, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test."}},
		{qname: "dangling.example.test.", qtype: dns.TypeCNAME, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"dangling.example.test. 300 IN CNAME nowhere.example.test."}},
		{qname: "shop.example.test.", qtype: dns.TypeANY, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test."}},

		// Wildcards (RFC 4592): the synthesised owner is the query name.
		{qname: "host.apps.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true, wildcard: true,
			answer: []string{"host.apps.example.test. 300 IN A 192.0.2.80"}},
		{qname: "other.apps.example.test.", qtype: dns.TypeTXT, kind: KindAnswer, rcode: ok, aa: true, wildcard: true,
			answer: []string{`other.apps.example.test. 300 IN TXT "wild"`}},
		// A wildcard matches any number of labels.
		{qname: "a.b.apps.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true, wildcard: true,
			answer: []string{"a.b.apps.example.test. 300 IN A 192.0.2.80"}},
		// Wildcard NODATA.
		nodata("host.apps.example.test.", dns.TypeMX, true),
		// An existing sibling is answered from its own data, never the wildcard.
		nodata("sub.apps.example.test.", dns.TypeA, false),
		// Below an existing sibling the closest encloser is the sibling, which has no wildcard.
		nxdomain("x.sub.apps.example.test.", dns.TypeA),
		// The same for an empty non-terminal between the name and the wildcard.
		nodata("ent.apps.example.test.", dns.TypeA, false),
		nxdomain("y.ent.apps.example.test.", dns.TypeA),
		// The wildcard's parent is an empty non-terminal.
		nodata("apps.example.test.", dns.TypeA, false),
		// The literal "*" name is an ordinary match.
		{qname: "*.apps.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"*.apps.example.test. 300 IN A 192.0.2.80"}},
		// Wildcard CNAME: synthesised, then chased.
		{qname: "foo.alias.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true, wildcard: true,
			answer: append([]string{"foo.alias.example.test. 300 IN CNAME www.example.test."}, wwwA...)},
		{qname: "foo.alias.example.test.", qtype: dns.TypeCNAME, kind: KindAnswer, rcode: ok, aa: true, wildcard: true,
			answer: []string{"foo.alias.example.test. 300 IN CNAME www.example.test."}},
		// A chain into a wildcard is synthesised too.
		{qname: "towild.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: ok, aa: true, wildcard: true,
			answer: []string{
				"towild.example.test. 300 IN CNAME host.apps.example.test.",
				"host.apps.example.test. 300 IN A 192.0.2.80",
			}},
		// A wildcard MX brings its target's address.
		{qname: "x.wmx.example.test.", qtype: dns.TypeMX, kind: KindAnswer, rcode: ok, aa: true, wildcard: true,
			answer: []string{"x.wmx.example.test. 300 IN MX 20 mail.example.test."},
			extra:  []string{"mail.example.test. 300 IN A 192.0.2.25"}},

		// Delegations: referral for the cut and everything below, glue in additional.
		referralFor("child.example.test.", dns.TypeNS),
		referralFor("child.example.test.", dns.TypeA),
		referralFor("child.example.test.", dns.TypeANY),
		referralFor("www.child.example.test.", dns.TypeA),
		referralFor("a.b.child.example.test.", dns.TypeMX),
		referralFor("ns1.child.example.test.", dns.TypeA),
		referralFor("x.child.example.test.", dns.TypeDS),
		// DS at the cut belongs to the parent side: authoritative NODATA here.
		nodata("child.example.test.", dns.TypeDS, false),

		// ANY gives one RRset (RFC 8482).
		{qname: "mail.example.test.", qtype: dns.TypeANY, kind: KindAnswer, rcode: ok, aa: true,
			answer: []string{"mail.example.test. 300 IN A 192.0.2.25"}},
	}
	for _, tc := range tests {
		t.Run(tc.name(), func(t *testing.T) { checkLookup(t, z, tc) })
	}
}

func TestLookupNegativeTTL(t *testing.T) {
	// The negative TTL is the lesser of the SOA's TTL and its MINIMUM, which
	// here is the SOA's own TTL.
	z := zoneFromText(t, "low.test.", `
low.test.     60 IN SOA ns.low.test. h.low.test. 7 7200 3600 1209600 900
low.test.    300 IN NS  ns.low.test.
ns.low.test. 300 IN A   192.0.2.1
`)
	soa := "low.test. 60 IN SOA ns.low.test. h.low.test. 7 7200 3600 1209600 900"
	for _, tc := range []lookupCase{
		{qname: "ns.low.test.", qtype: dns.TypeMX, kind: KindNoData, rcode: dns.RcodeSuccess, aa: true, ns: []string{soa}},
		{qname: "nope.low.test.", qtype: dns.TypeA, kind: KindNXDomain, rcode: dns.RcodeNameError, aa: true, ns: []string{soa}},
	} {
		t.Run(tc.name(), func(t *testing.T) { checkLookup(t, z, tc) })
	}
	// The zone's own SOA keeps its TTL.
	r := z.Lookup("low.test.", dns.TypeSOA)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 60 {
		t.Errorf("SOA answer = %v, want the SOA with TTL 60", r.Answer)
	}
}

func TestLookupAnyGivesOneWholeRRset(t *testing.T) {
	z := zoneFromText(t, "example.test.", testZone)
	for _, qname := range []string{"example.test.", "www.example.test.", "ns2.example.test.", "host.apps.example.test."} {
		t.Run(qname, func(t *testing.T) {
			r := z.Lookup(qname, dns.TypeANY)
			if r.Kind != KindAnswer || len(r.Answer) == 0 {
				t.Fatalf("kind %v, %d records; want an answer", r.Kind, len(r.Answer))
			}
			rrtype := r.Answer[0].Header().Rrtype
			for _, rr := range r.Answer {
				if rr.Header().Rrtype != rrtype || rr.Header().Name != qname {
					t.Fatalf("ANY answer mixes RRsets: %v", r.Answer)
				}
			}
			// The set given is the whole set, as a query for its type returns it.
			if full := z.Lookup(qname, rrtype); section(full.Answer) != section(r.Answer) {
				t.Errorf("ANY gave\n%s\nbut the %s RRset is\n%s", section(r.Answer), dns.TypeToString[rrtype], section(full.Answer))
			}
		})
	}
}

func TestLookupLongChainStops(t *testing.T) {
	var b strings.Builder
	b.WriteString(`
@ 300 IN SOA ns.example.test. h.example.test. 1 7200 3600 1209600 300
@ 300 IN NS  ns.example.test.
ns 300 IN A  192.0.2.1
end 300 IN A 192.0.2.2
`)
	const links = maxChase + 2
	for i := range links {
		next := fmt.Sprintf("c%d", i+1)
		if i == links-1 {
			next = "end"
		}
		fmt.Fprintf(&b, "c%d 300 IN CNAME %s\n", i, next)
	}
	z := zoneFromText(t, "example.test.", b.String())
	r := z.Lookup("c0.example.test.", dns.TypeA)
	if r.Kind != KindAnswer || r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Errorf("kind %v rcode %d aa %v; want an authoritative answer", r.Kind, r.Rcode, r.Authoritative)
	}
	if len(r.Answer) != maxChase {
		t.Fatalf("answer holds %d records, want the first %d CNAMEs:\n%s", len(r.Answer), maxChase, section(r.Answer))
	}
	for i, rr := range r.Answer {
		if want := fmt.Sprintf("c%d.example.test.", i); rr.Header().Rrtype != dns.TypeCNAME || rr.Header().Name != want {
			t.Errorf("answer[%d] = %v, want the CNAME at %s", i, rr, want)
		}
	}
}

// Wildcard synthesis must copy records, never rename the zone's own.
func TestLookupWildcardLeavesZoneUnchanged(t *testing.T) {
	z := zoneFromText(t, "example.test.", testZone)
	first := z.Lookup("one.apps.example.test.", dns.TypeA)
	second := z.Lookup("two.apps.example.test.", dns.TypeA)
	literal := z.Lookup("*.apps.example.test.", dns.TypeA)
	for _, c := range []struct {
		r     Result
		owner string
	}{
		{first, "one.apps.example.test."},
		{second, "two.apps.example.test."},
		{literal, "*.apps.example.test."},
	} {
		if len(c.r.Answer) != 1 || c.r.Answer[0].Header().Name != c.owner {
			t.Errorf("answer %v, want one record owned by %s", c.r.Answer, c.owner)
		}
	}
}

func TestSetFind(t *testing.T) {
	top := zoneFromText(t, "example.test.", testZone)
	sub := zoneFromText(t, "sub.example.test.", `
@   300 IN SOA ns.sub.example.test. h.sub.example.test. 1 7200 3600 1209600 300
@   300 IN NS  ns.sub.example.test.
ns  300 IN A   192.0.2.7
`)
	other := zoneFromText(t, "example.org.", `
@ 300 IN SOA ns.example.org. h.example.org. 1 7200 3600 1209600 300
@ 300 IN NS  ns.example.org.
`)
	set, err := NewSet(sub, top, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		qname string
		want  *Zone
	}{
		{"example.test.", top},
		{"www.example.test.", top},
		{"xsub.example.test.", top},
		{"sub.example.test.", sub},
		{"ns.sub.example.test.", sub},
		{"a.b.c.sub.example.test.", sub},
		{"www.example.org.", other},
		{"test.", nil},
		{"example.net.", nil},
		{".", nil},
	} {
		got := set.Find(tc.qname)
		if got != tc.want {
			t.Errorf("Find(%q) = %s, want %s", tc.qname, origin(got), origin(tc.want))
		}
	}

	var order []string
	for _, z := range set.Zones() {
		order = append(order, z.Origin())
	}
	if want := []string{"example.org.", "example.test.", "sub.example.test."}; !slices.Equal(order, want) {
		t.Errorf("Zones() = %v, want %v", order, want)
	}

	if _, err := NewSet(top, zoneFromText(t, "EXAMPLE.test", testZone)); err == nil || !strings.Contains(err.Error(), "example.test.") {
		t.Errorf("NewSet with one origin twice: err = %v, want an error naming example.test.", err)
	}

	var empty *Set
	if z := empty.Find("example.test."); z != nil {
		t.Errorf("nil Set found %s", z.Origin())
	}
	if empty.Zones() != nil {
		t.Errorf("nil Set has zones")
	}
	none, err := NewSet()
	if err != nil {
		t.Fatal(err)
	}
	if z := none.Find("example.test."); z != nil {
		t.Errorf("empty Set found %s", z.Origin())
	}
}

func origin(z *Zone) string {
	if z == nil {
		return "<nil>"
	}
	return z.Origin()
}

func TestBuildErrors(t *testing.T) {
	const soa = "@ 300 IN SOA ns.example.test. h.example.test. 1 7200 3600 1209600 300\n"
	const ns = "@ 300 IN NS ns.example.test.\n"
	tests := []struct {
		name string
		zone string
		want error
		// the offending name, which the error must give
		names string
	}{
		{"no SOA", ns, ErrNoSOA, "example.test."},
		{"two SOAs", soa + ns + "@ 300 IN SOA ns.example.test. h.example.test. 2 7200 3600 1209600 300\n", ErrManySOA, "example.test."},
		{"no apex NS", soa, ErrNoApexNS, "example.test."},
		{"NS only below the apex", soa + "child 300 IN NS ns.example.org.\n", ErrNoApexNS, "example.test."},
		{"CNAME beside A", soa + ns + "www 300 IN CNAME x.example.test.\nwww 300 IN A 192.0.2.1\n", ErrCNAMEAndData, "www.example.test."},
		{"CNAME at the apex", soa + ns + "@ 300 IN CNAME x.example.test.\n", ErrCNAMEAndData, "example.test."},
		{"two CNAMEs", soa + ns + "www 300 IN CNAME x.example.test.\nwww 300 IN CNAME y.example.test.\n", ErrCNAMEAndData, "www.example.test."},
		{"out of zone", soa + ns + "www.example.org. 300 IN A 192.0.2.1\n", ErrOutOfZone, "www.example.org."},
		{"suffix is not a parent", soa + ns + "badexample.test. 300 IN A 192.0.2.1\n", ErrOutOfZone, "badexample.test."},
		{"escaped dot is not a parent", soa + ns + `a\.example.test. 300 IN A 192.0.2.1` + "\n", ErrOutOfZone, `a\.example.test.`},
		{"SOA below the apex", soa + ns + "sub 300 IN SOA ns.example.test. h.example.test. 1 7200 3600 1209600 300\n", ErrSOANotApex, "sub.example.test."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rrs, err := parseText("example.test.", tc.zone)
			if err != nil {
				t.Fatal(err)
			}
			z, err := Build("example.test.", rrs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Build: err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Errorf("error %q does not name %s", err, tc.names)
			}
			if z != nil {
				t.Errorf("Build returned a zone with its error")
			}
		})
	}

	// A CNAME may sit beside its DNSSEC records.
	if _, err := buildText("example.test.", soa+ns+
		"www 300 IN CNAME x.example.test.\n"+
		"www 300 IN NSEC x.example.test. CNAME RRSIG NSEC\n"); err != nil {
		t.Errorf("CNAME with NSEC: %v", err)
	}
}

func TestBuild(t *testing.T) {
	z := zoneFromText(t, "Example.TEST", `
@   300 IN SOA ns.example.test. h.example.test. 2026112501 7200 3600 1209600 300
@   300 IN NS  ns.example.test.
Ns  300 IN A   192.0.2.1
www 300 IN A   192.0.2.10
WWW 300 IN A   192.0.2.10
www 60  IN A   192.0.2.10
www 300 IN A   192.0.2.11
`)
	if got := z.Origin(); got != "example.test." {
		t.Errorf("Origin() = %q, want example.test.", got)
	}
	if got := z.Serial(); got != 2026112501 {
		t.Errorf("Serial() = %d, want 2026112501", got)
	}
	// Duplicates (same name, case aside, type and data; TTL aside) collapse
	// into one record, the first written.
	if got := z.Records(); got != 5 {
		t.Errorf("Records() = %d, want 5", got)
	}
	checkLookup(t, z, lookupCase{
		qname: "www.example.test.", qtype: dns.TypeA, kind: KindAnswer, rcode: dns.RcodeSuccess, aa: true,
		answer: []string{
			"www.example.test. 300 IN A 192.0.2.10",
			"www.example.test. 300 IN A 192.0.2.11",
		},
	})
	checkLookup(t, z, lookupCase{
		qname: "example.test.", qtype: dns.TypeNS, kind: KindAnswer, rcode: dns.RcodeSuccess, aa: true,
		answer: []string{"example.test. 300 IN NS ns.example.test."},
		extra:  []string{"ns.example.test. 300 IN A 192.0.2.1"},
	})
}

func TestLower(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"www.example.test.", "www.example.test."},
		{"WWW.Example.TEST.", "www.example.test."},
		{"a-Z_0.9", "a-z_0.9"},
		{`A\.B.example.`, `a\.b.example.`},
		// Only ASCII folds (RFC 4343): other bytes pass through.
		{"ÄÖ.Example.", "ÄÖ.example."},
		{"\xC4x.", "\xC4x."},
	} {
		if got := Lower(tc.in); got != tc.want {
			t.Errorf("Lower(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParent(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"www.example.test.", "example.test.", true},
		{"example.test.", "test.", true},
		{"test.", ".", true},
		{".", "", false},
		{"", "", false},
		{`a\.b.example.test.`, "example.test.", true},
		{`a\..example.test.`, "example.test.", true},
		{`a\\.b.example.test.`, "b.example.test.", true},
		{`a\\\.b.example.test.`, "example.test.", true},
		{`a\046b.example.test.`, "example.test.", true},
		{`*.apps.example.test.`, "apps.example.test.", true},
	} {
		got, ok := parent(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parent(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIsSubdomain(t *testing.T) {
	for _, tc := range []struct {
		child, ancestor string
		want            bool
	}{
		{"example.test.", "example.test.", true},
		{"www.example.test.", "example.test.", true},
		{"a.b.example.test.", "example.test.", true},
		{"www.example.test.", ".", true},
		{".", ".", true},
		{"example.test.", "www.example.test.", false},
		{"badexample.test.", "example.test.", false},
		{"example.org.", "example.test.", false},
		{"test.", "example.test.", false},
		// An escaped dot joins two labels into one.
		{`a\.example.test.`, "example.test.", false},
		{`a\.example.test.`, "test.", true},
		{`b.a\.example.test.`, "example.test.", false},
		// An escaped backslash does not escape the dot after it.
		{`a\\.example.test.`, "example.test.", true},
		{`a\\\.example.test.`, "example.test.", false},
	} {
		if got := isSubdomain(tc.child, tc.ancestor); got != tc.want {
			t.Errorf("isSubdomain(%q, %q) = %v, want %v", tc.child, tc.ancestor, got, tc.want)
		}
	}
}
