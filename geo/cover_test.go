package geo

import (
	"net/netip"
	"testing"
)

// TestPartitionEdges cuts partitions at the ends of the address space and
// with nested rows, and checks the scope of addresses at every edge.
func TestPartitionEdges(t *testing.T) {
	rows := []Row{
		{pfx("0.0.0.0/0"), Location{Region: "everywhere"}},
		{pfx("10.0.0.0/8"), Location{Region: "ten"}},
		{pfx("10.1.0.0/16"), Location{Region: "everywhere"}}, // back to the outer class inside ten
		{pfx("255.255.255.255/32"), Location{Region: "last"}},
		{pfx("::/0"), Location{Region: "everywhere"}},
		{pfx("2001:db8::/32"), Location{Region: "ten"}},
		{pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"), Location{Region: "last"}},
		{pfx("::ffff:192.0.2.0/120"), Location{Region: "ten"}}, // stored as 192.0.2.0/24
	}
	tab, err := NewTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := NewIndex(Named{Name: "rows", Locator: tab})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint32{}
	parts, err := idx.Partitions(func(loc Location, ok bool) uint32 {
		if _, seen := ids[loc.Region]; !seen {
			ids[loc.Region] = uint32(len(ids))
		}
		return ids[loc.Region]
	})
	if err != nil {
		t.Fatal(err)
	}
	p := parts[0]
	for _, tt := range []struct {
		addr   string
		region string
		scope  int
	}{
		{"0.0.0.0", "everywhere", 5},       // 0.0.0.0/5 ends before 10/8
		{"9.255.255.255", "everywhere", 7}, // 8.0.0.0/7
		{"10.0.0.0", "ten", 16},            // 10.0.0.0/16, before 10.1/16
		{"10.1.2.3", "everywhere", 16},     // the row inside ten
		{"10.2.0.0", "ten", 15},            // 10.2.0.0/15
		{"10.255.255.255", "ten", 9},       // 10.128.0.0/9
		{"11.0.0.0", "everywhere", 8},      // 11.0.0.0/8
		{"192.0.2.9", "ten", 24},           // the mapped row
		{"255.255.255.254", "everywhere", 32},
		{"255.255.255.255", "last", 32},
		{"::", "everywhere", 3}, // ::/3 ends before 2001:db8::
		{"2001:db8:1::", "ten", 32},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "last", 120},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff", "everywhere", 120},
		{"::ffff:10.0.0.1", "ten", 96 + 16}, // mapped: the IPv4 scope in IPv6 bits
	} {
		a := netip.MustParseAddr(tt.addr)
		class, scope := p.Lookup(a)
		if class != ids[tt.region] || scope != tt.scope {
			t.Errorf("Lookup(%s) = class %d scope /%d, want %s (%d) /%d", a, class, scope, tt.region, ids[tt.region], tt.scope)
		}
		loc, _ := idx.Locate(a)
		if loc.Region != tt.region {
			t.Errorf("Locate(%s) = %q, the partition says %q", a, loc.Region, tt.region)
		}
	}
}
