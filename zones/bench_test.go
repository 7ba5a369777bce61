package zones

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkLookup measures the zone lookup alone. Static answers share the
// zone's slices and must not allocate; CNAME chains and wildcard synthesis
// build their answers per query.
func BenchmarkLookup(b *testing.B) {
	z := zoneFromText(b, "example.test.", testZone)
	set, err := NewSet(z)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"static_A", "www.example.test.", dns.TypeA},
		{"nxdomain", "nope.example.test.", dns.TypeA},
		{"nodata", "www.example.test.", dns.TypeMX},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if set.Find(bc.qname).Lookup(bc.qname, bc.qtype).Static == 0 {
					b.Fatal("not a static result")
				}
			}
		})
	}
}
