package xfr_test

import (
	"fmt"
	"testing"

	"github.com/meridian-gslb/meridian/zones"
)

// BenchmarkAXFR100k transfers a zone of 100,000 A records over a real
// loopback TCP connection, from the dnsfront listener to miekg/dns's
// transfer client, which unpacks every message (and checks every TSIG
// when signed). The first transfer after a load also sorts the zone; it
// is left out of the timing, see docs/performance.md for it.
func BenchmarkAXFR100k(b *testing.B) {
	lines := make([]string, 100_000)
	for i := range lines {
		lines[i] = fmt.Sprintf("host%06d 300 IN A 10.%d.%d.%d", i, i>>16, (i>>8)&255, i&255)
	}
	// example.test wants the key; open.test is open to loopback.
	addr, _ := server(b, []*zones.Zone{zoneOf(b, "example.test.", 1, lines...), zoneOf(b, "open.test.", 1, lines...)})
	for _, signed := range []bool{false, true} {
		zone := map[bool]string{false: "open.test.", true: "example.test."}[signed]
		b.Run(fmt.Sprintf("signed=%v", signed), func(b *testing.B) {
			if _, err := transfer(b, addr, axfr(zone), signed); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				rrs, err := transfer(b, addr, axfr(zone), signed)
				if err != nil || len(rrs) != 100_004 {
					b.Fatalf("%d records: %v", len(rrs), err)
				}
			}
		})
	}
}
