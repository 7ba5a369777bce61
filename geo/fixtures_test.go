package geo

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The fixtures are real MMDB files written with MaxMind's writer and read
// back by the real readers. Networks come from the documentation ranges
// (RFC 5737, RFC 3849), which mmdbwriter reserves unless told otherwise.

type fixtureNet struct {
	cidr string
	rec  mmdbtype.Map
}

// writeMMDB writes nets into a new database at path.
func writeMMDB(tb testing.TB, path, dbType string, ipVersion int, nets []fixtureNet) {
	tb.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		IPVersion:               ipVersion,
		RecordSize:              28,
		IncludeReservedNetworks: true,
		BuildEpoch:              1764000000, // 2025-11-24
	})
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.cidr)
		if err != nil {
			tb.Fatal(err)
		}
		if err := tree.Insert(ipnet, n.rec); err != nil {
			tb.Fatalf("insert %s: %v", n.cidr, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// replaceFile writes a database next to path and renames it over path, as
// geoipupdate does.
func replaceFile(tb testing.TB, path string, write func(tmp string)) {
	tb.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	write(tmp)
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(en)}
}

// cityRec is a GeoIP2 City record. Empty strings leave the field out, as
// MaxMind does; sub == "" leaves out subdivisions and coords == false the
// location.
func cityRec(country, continent, sub string, coords bool, lat, lon float64) mmdbtype.Map {
	m := mmdbtype.Map{
		"city":               mmdbtype.Map{"geoname_id": mmdbtype.Uint32(1), "names": names("Somewhere")},
		"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("US"), "names": names("United States")},
		"postal":             mmdbtype.Map{"code": mmdbtype.String("12345")},
	}
	if country != "" {
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(country), "geoname_id": mmdbtype.Uint32(2), "names": names(country)}
	}
	if continent != "" {
		m["continent"] = mmdbtype.Map{"code": mmdbtype.String(continent), "geoname_id": mmdbtype.Uint32(3), "names": names(continent)}
	}
	if sub != "" {
		m["subdivisions"] = mmdbtype.Slice{
			mmdbtype.Map{"iso_code": mmdbtype.String(sub), "names": names(sub)},
			mmdbtype.Map{"iso_code": mmdbtype.String("XX"), "names": names("second level")},
		}
	}
	if coords {
		m["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(lat),
			"longitude":       mmdbtype.Float64(lon),
			"accuracy_radius": mmdbtype.Uint16(50),
			"time_zone":       mmdbtype.String("Europe/Berlin"),
		}
	}
	return m
}

// countryRec is a GeoIP2 Country record.
func countryRec(country, continent string) mmdbtype.Map {
	return mmdbtype.Map{
		"country":            mmdbtype.Map{"iso_code": mmdbtype.String(country), "names": names(country)},
		"continent":          mmdbtype.Map{"code": mmdbtype.String(continent), "names": names(continent)},
		"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(country), "names": names(country)},
	}
}

// flatRec is an ip-location-db record; lat and lon are any mmdbtype (nil
// leaves the field out) because the files do not all store them alike.
func flatRec(country, state1 string, lat, lon mmdbtype.DataType) mmdbtype.Map {
	m := mmdbtype.Map{
		"country_code": mmdbtype.String(country),
		"state1":       mmdbtype.String(state1),
		"state2":       mmdbtype.String(""),
		"city":         mmdbtype.String("Somewhere"),
		"postcode":     mmdbtype.String("12345"),
		"timezone":     mmdbtype.String("UTC"),
	}
	if lat != nil {
		m["latitude"] = lat
	}
	if lon != nil {
		m["longitude"] = lon
	}
	return m
}

// cityNets is the City fixture: IPv4 and IPv6, a network split by a more
// specific one, a record with no continent, and one with nothing usable.
var cityNets = []fixtureNet{
	{"192.0.2.0/24", cityRec("DE", "EU", "BE", true, 52.52, 13.405)},
	{"198.51.100.0/24", cityRec("US", "NA", "CA", true, 37.77, -122.42)},
	{"198.51.100.128/25", cityRec("US", "NA", "NY", true, 40.71, -74.01)},
	{"2001:db8:1::/48", cityRec("JP", "AS", "13", true, 35.68, 139.69)},
	{"2001:db8:2::/48", cityRec("BR", "", "", false, 0, 0)},
	{"203.0.113.0/24", cityRec("", "", "", false, 0, 0)},
}

var countryNets = []fixtureNet{
	{"192.0.2.0/24", countryRec("FR", "EU")},
	{"2001:db8:1::/48", countryRec("AU", "OC")},
}

var flatNets4 = []fixtureNet{
	{"192.0.2.0/24", flatRec("DE", "Berlin", mmdbtype.Float64(52.52), mmdbtype.Float64(13.405))},
	{"198.51.100.0/24", flatRec("US", "CA", mmdbtype.Float32(37.75), mmdbtype.Float32(-122.5))},
	{"203.0.113.0/24", flatRec("ZZ", "", nil, nil)},
	{"233.252.0.0/24", flatRec("au", "AU-NSW", mmdbtype.String("-33.875"), mmdbtype.String("151.25"))},
}

var flatNets6 = []fixtureNet{
	{"2001:db8:1::/48", flatRec("JP", "Tokyo", mmdbtype.Float64(35.68), mmdbtype.Float64(139.69))},
	{"2001:db8:2::/48", flatRec("BR", "", nil, nil)},
	{"2001:db8:3::/48", flatRec("NZ", "", mmdbtype.Float64(-41.29), mmdbtype.Uint32(7))},
}
