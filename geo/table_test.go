package geo

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
)

func TestTableLongestPrefix(t *testing.T) {
	tab, err := NewTable([]Row{
		{pfx("10.0.0.0/8"), Location{Region: "core"}},
		{pfx("10.1.0.0/16"), Location{Region: "edge"}},
		{pfx("10.1.2.0/24"), Location{Country: "de", Subdivision: "be", Lat: 52.5, Lon: 13.4, HasCoords: true}},
		{pfx("10.1.2.128/32"), Location{Region: "one-host"}},
		{pfx("2001:db8::/32"), Location{Region: "v6"}},
		{pfx("2001:db8:aa::/48"), Location{Country: "JP", Continent: "AS", Region: "tokyo"}},
		// An IPv4-mapped row covers the IPv4 addresses it maps.
		{pfx("::ffff:172.16.0.0/108"), Location{Continent: "OC"}},
		{pfx("0.0.0.0/0"), Location{Region: "v4-default"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Len(); got != 8 {
		t.Errorf("Len() = %d, want 8", got)
	}
	berlin := Location{Country: "DE", Continent: "EU", Subdivision: "BE", Lat: 52.5, Lon: 13.4, HasCoords: true, Network: pfx("10.1.2.0/24")}
	checkLocate(t, tab, []locateCase{
		{"10.9.9.9", Location{Region: "core", Network: pfx("10.0.0.0/8")}, true},
		{"10.1.9.9", Location{Region: "edge", Network: pfx("10.1.0.0/16")}, true},
		{"10.1.2.3", berlin, true},
		{"::ffff:10.1.2.3", berlin, true},
		{"10.1.2.128", Location{Region: "one-host", Network: pfx("10.1.2.128/32")}, true},
		{"10.1.2.129", berlin, true},
		{"172.16.5.5", Location{Continent: "OC", Network: pfx("172.16.0.0/12")}, true},
		{"::ffff:172.16.5.5", Location{Continent: "OC", Network: pfx("172.16.0.0/12")}, true},
		{"192.0.2.1", Location{Region: "v4-default", Network: pfx("0.0.0.0/0")}, true},
		{"2001:db8:1::1", Location{Region: "v6", Network: pfx("2001:db8::/32")}, true},
		{"2001:db8:aa:bb::1", Location{Country: "JP", Continent: "AS", Region: "tokyo", Network: pfx("2001:db8:aa::/48")}, true},
		{"fe80::1%eth0", Location{}, false},
		// The IPv4 default route does not cover IPv6.
		{"2001:db9::1", Location{}, false},
		{"invalid", Location{}, false},
	})
}

func TestTableNil(t *testing.T) {
	var tab *Table
	if loc, ok := tab.Locate(netip.MustParseAddr("192.0.2.1")); ok {
		t.Errorf("nil table matched: %+v", loc)
	}
	if tab.Len() != 0 {
		t.Errorf("nil table has %d rows", tab.Len())
	}
}

func TestTableRowErrors(t *testing.T) {
	ok := Row{pfx("192.0.2.0/24"), Location{Region: "a"}}
	for _, tc := range []struct {
		name string
		bad  Row
		want error
	}{
		{"no prefix", Row{Location: Location{Region: "a"}}, ErrInvalidRow},
		{"says nothing", Row{pfx("198.51.100.0/24"), Location{}}, ErrInvalidRow},
		{"unknown country", Row{pfx("198.51.100.0/24"), Location{Country: "XY"}}, ErrInvalidRow},
		{"three-letter country", Row{pfx("198.51.100.0/24"), Location{Country: "DEU"}}, ErrInvalidRow},
		{"unknown continent", Row{pfx("198.51.100.0/24"), Location{Continent: "EUR"}}, ErrInvalidRow},
		{"subdivision without country", Row{pfx("198.51.100.0/24"), Location{Subdivision: "CA"}}, ErrInvalidRow},
		{"subdivision name", Row{pfx("198.51.100.0/24"), Location{Country: "US", Subdivision: "California"}}, ErrInvalidRow},
		{"latitude out of range", Row{pfx("198.51.100.0/24"), Location{Lat: 91, Lon: 0, HasCoords: true}}, ErrInvalidRow},
		{"longitude out of range", Row{pfx("198.51.100.0/24"), Location{Lat: 0, Lon: -181, HasCoords: true}}, ErrInvalidRow},
		{"coordinates without HasCoords", Row{pfx("198.51.100.0/24"), Location{Region: "a", Lat: 1, Lon: 2}}, ErrInvalidRow},
		{"same prefix", Row{pfx("192.0.2.0/24"), Location{Region: "b"}}, ErrDuplicatePrefix},
		{"same prefix after masking", Row{pfx("192.0.2.77/24"), Location{Region: "b"}}, ErrDuplicatePrefix},
		{"same prefix IPv4-mapped", Row{pfx("::ffff:192.0.2.0/120"), Location{Region: "b"}}, ErrDuplicatePrefix},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTable([]Row{ok, {pfx("2001:db8::/32"), Location{Region: "c"}}, tc.bad})
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewTable: %v, want %v", err, tc.want)
			}
			var re *RowError
			if !errors.As(err, &re) || re.Index != 2 || re.Prefix != tc.bad.Prefix {
				t.Errorf("error %v is not a *RowError for row 2 (%s)", err, tc.bad.Prefix)
			}
		})
	}
}

func TestTableLocateAllocs(t *testing.T) {
	tab, err := NewTable(benchRows(10_000))
	if err != nil {
		t.Fatal(err)
	}
	addrs := benchAddrs(benchRows(10_000), 256)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		tab.Locate(addrs[i%len(addrs)])
		i++
	}); n != 0 {
		t.Errorf("Locate allocates %v times per call, want 0", n)
	}
}

// TestChain checks the order the engine relies on: the operator's table
// first, then the City database, and separate files for each family.
func TestChain(t *testing.T) {
	dir := t.TempDir()
	cityPath := filepath.Join(dir, "city.mmdb")
	writeMMDB(t, cityPath, "GeoIP2-City", 6, cityNets)
	city, err := OpenMaxMind(cityPath)
	if err != nil {
		t.Fatal(err)
	}
	flat6Path := filepath.Join(dir, "flat6.mmdb")
	writeMMDB(t, flat6Path, "ip-location-db", 6, flatNets6)
	flat6, err := OpenFlat(flat6Path)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := NewTable([]Row{
		{pfx("192.0.2.128/25"), Location{Region: "eu-west"}},
		{pfx("2001:db8:1:5::/64"), Location{Country: "KR"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var noTable *Table
	chain := Chain{tab, nil, noTable, city, flat6}
	checkLocate(t, chain, []locateCase{
		// The table overrides the database for its networks only.
		{"192.0.2.200", Location{Region: "eu-west", Network: pfx("192.0.2.128/25")}, true},
		{"::ffff:192.0.2.200", Location{Region: "eu-west", Network: pfx("192.0.2.128/25")}, true},
		{"192.0.2.1", Location{Country: "DE", Continent: "EU", Subdivision: "BE", Lat: 52.52, Lon: 13.405, HasCoords: true, Network: pfx("192.0.2.0/24")}, true},
		{"2001:db8:1:5::1", Location{Country: "KR", Continent: "AS", Network: pfx("2001:db8:1:5::/64")}, true},
		{"2001:db8:1:6::1", Location{Country: "JP", Continent: "AS", Subdivision: "13", Lat: 35.68, Lon: 139.69, HasCoords: true, Network: pfx("2001:db8:1::/48")}, true},
		// Missed by the table and the City file, found in the flat one.
		{"2001:db8:3::1", Location{Country: "NZ", Continent: "OC", Network: pfx("2001:db8:3::/48")}, true},
		// The City record with nothing usable falls through to a miss.
		{"203.0.113.9", Location{}, false},
		{"100.64.0.1", Location{}, false},
	})
	if loc, ok := (Chain{}).Locate(netip.MustParseAddr("192.0.2.1")); ok {
		t.Errorf("empty chain matched: %+v", loc)
	}
}
