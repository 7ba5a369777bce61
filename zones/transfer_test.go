package zones

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const transferZone = `
@        3600 IN SOA ns1 hostmaster 10 7200 3600 1209600 300
@        3600 IN NS  ns1
ns1      300  IN A   192.0.2.53
www      300  IN A   192.0.2.10
www      300  IN A   192.0.2.11
b.a      300  IN TXT "b.a"
a        300  IN TXT "a"
*.apps   300  IN A   192.0.2.80
z        300  IN MX  10 www
`

func owners(rrs []dns.RR) string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.TrimSuffix(rr.Header().Name, ".example.test.")+"/"+dns.TypeToString[rr.Header().Rrtype])
	}
	return strings.Join(out, " ")
}

func TestRRs(t *testing.T) {
	z := zoneFromText(t, "example.test.", transferZone)
	z.Reserve("app.example.test.") // a dynamic name: no records to transfer
	got := owners(z.RRs())
	// SOA first, then canonical order (RFC 4034 6.1): the apex, a, b.a, *.apps, ns1, www, z.
	want := "example.test./SOA example.test./NS a/TXT b.a/TXT *.apps/A ns1/A www/A www/A z/MX"
	if got != want {
		t.Errorf("RRs:\n got %s\nwant %s", got, want)
	}
	if n := len(z.RRs()); n != z.Records() {
		t.Errorf("%d records listed, Records() = %d", n, z.Records())
	}
}

func TestWithSerial(t *testing.T) {
	z := zoneFromText(t, "example.test.", transferZone)
	if z.WithSerial(10) != z {
		t.Error("the same serial made a copy")
	}
	n := z.WithSerial(11)
	if z.Serial() != 10 || z.Lookup("example.test.", dns.TypeSOA).Answer[0].(*dns.SOA).Serial != 10 {
		t.Error("WithSerial changed the original")
	}
	if n.Serial() != 11 || n.SOA().Serial != 11 {
		t.Errorf("serial %d, want 11", n.Serial())
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		soa   func(Result) dns.RR
	}{
		{"example.test.", dns.TypeSOA, func(r Result) dns.RR { return r.Answer[0] }},
		{"nx.example.test.", dns.TypeA, func(r Result) dns.RR { return r.Ns[0] }},
		{"www.example.test.", dns.TypeTXT, func(r Result) dns.RR { return r.Ns[0] }},
	} {
		if got := tc.soa(n.Lookup(tc.name, tc.qtype)).(*dns.SOA).Serial; got != 11 {
			t.Errorf("%s %s: SOA serial %d, want 11", tc.name, dns.TypeToString[tc.qtype], got)
		}
	}
	if got := n.Lookup("www.example.test.", dns.TypeA); len(got.Answer) != 2 {
		t.Errorf("the copy lost www: %v", got.Answer)
	}
}

func TestDiff(t *testing.T) {
	old := zoneFromText(t, "example.test.", transferZone)
	next := zoneFromText(t, "example.test.", strings.NewReplacer(
		" 10 7200", " 11 7200", // the serial does not count
		"www      300  IN A   192.0.2.11", "www      300  IN A   192.0.2.12",
		"a        300  IN TXT \"a\"", "a        60   IN TXT \"a\"", // a TTL does
		"z        300  IN MX  10 www", "",
	).Replace(transferZone)+"new 300 IN AAAA 2001:db8::1\n")
	deleted, added := Diff(old, next)
	if got, want := owners(deleted), "a/TXT www/A z/MX"; got != want {
		t.Errorf("deleted %s, want %s", got, want)
	}
	if got, want := owners(added), "a/TXT new/AAAA www/A"; got != want {
		t.Errorf("added %s, want %s", got, want)
	}
	if d, a := Diff(old, old.WithSerial(12)); len(d)+len(a) != 0 {
		t.Errorf("a new serial alone: %v %v", d, a)
	}
	if !SameSOA(old.SOA(), next.SOA()) {
		t.Error("SOAs differing only in serial are not the same")
	}
	changed := zoneFromText(t, "example.test.", strings.Replace(transferZone, "7200 3600", "7201 3600", 1))
	if SameSOA(old.SOA(), changed.SOA()) {
		t.Error("a new refresh went unnoticed")
	}
}

// BenchmarkRRs lists a zone of 100,000 names for AXFR: what the first
// transfer after a load pays (later ones reuse the list).
func BenchmarkRRs(b *testing.B) {
	var text strings.Builder
	text.WriteString("@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\n")
	for i := range 100_000 {
		fmt.Fprintf(&text, "host%06d.sub%d 300 IN A 10.%d.%d.%d\n", i, i%100, i>>16, (i>>8)&255, i&255)
	}
	z := zoneFromText(b, "example.test.", text.String())
	b.ReportAllocs()
	for b.Loop() {
		if len(z.RRs()) != 100_002 {
			b.Fatal("records missing")
		}
	}
}
