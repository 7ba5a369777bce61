package geo

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Info describes a loaded database file, for logs and the admin API.
type Info struct {
	Type      string    // the metadata's database_type, e.g. "GeoLite2-City"
	Built     time.Time // the metadata's build_epoch
	IPVersion uint      // 4: IPv4 only; 6: IPv6 and IPv4
}

// MaxMind locates addresses with a GeoIP2 or GeoLite2 City or Country
// database, the layout geoipupdate installs (DB-IP's MaxMind-compatible
// City and Country files share it).
type MaxMind struct {
	// mm reads the database for lookups: decoding only the fields Meridian
	// uses into cityRecord costs a fraction of geoip2's full City record
	// (names in eight languages and all). geoip2 only vets the file.
	mm   *maxminddb.Reader
	info Info
	// city selects the City record, which adds the subdivision and
	// coordinates; a Country database has neither.
	city bool
}

var _ Locator = (*MaxMind)(nil)

// OpenMaxMind reads a GeoIP2/GeoLite2 City or Country database. Any other
// database type (ASN, ISP, Anonymous IP, ...) is ErrUnsupportedDatabase.
func OpenMaxMind(path string) (*MaxMind, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // names the file already
	}
	m, err := newMaxMind(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func newMaxMind(data []byte) (*MaxMind, error) {
	r, err := geoip2.OpenBytes(data)
	if err != nil {
		var unknown geoip2.UnknownDatabaseTypeError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("%w %q", ErrUnsupportedDatabase, unknown.DatabaseType)
		}
		return nil, fmt.Errorf("not a readable MaxMind DB: %w", err)
	}
	mm, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("not a readable MaxMind DB: %w", err)
	}
	md := r.Metadata()
	m := &MaxMind{
		mm:   mm,
		info: Info{Type: md.DatabaseType, Built: md.BuildTime().UTC(), IPVersion: md.IPVersion},
	}
	switch md.DatabaseType {
	case "GeoIP2-City", "GeoLite2-City", "GeoIP2-Precision-City", "GeoIP-City-Redacted-US",
		"GeoIP2-City-Africa", "GeoIP2-City-Asia-Pacific", "GeoIP2-City-Europe",
		"GeoIP2-City-North-America", "GeoIP2-City-South-America",
		"GeoIP2-Enterprise", "GeoIP-Enterprise-Redacted-US",
		"DBIP-City-Lite", "DBIP-Location (compat=City)":
		m.city = true
	case "GeoIP2-Country", "GeoLite2-Country", "DBIP-Country-Lite", "DBIP-Country":
	default:
		// geoip2 opens ASN, ISP, domain and anonymity databases too; they
		// say nothing about where an address is.
		return nil, fmt.Errorf("%w %q", ErrUnsupportedDatabase, md.DatabaseType)
	}
	return m, nil
}

// Info describes the database.
func (m *MaxMind) Info() Info { return m.info }

// Locate returns the country, continent and, from a City database, the
// first-level subdivision and coordinates of addr. A network the database
// lists without any of those is a miss, so a Chain goes on to its next
// source. A record the database cannot decode is a miss too: the query path
// has nobody to report it to, and the file was whole when it was opened.
func (m *MaxMind) Locate(addr netip.Addr) (Location, bool) {
	addr = normalize(addr)
	if !addr.IsValid() || (m.info.IPVersion == 4 && addr.Is6()) {
		// An IPv4-only file answers IPv6 lookups with an error, not a miss.
		return Location{}, false
	}
	res := m.mm.Lookup(addr)
	if !res.Found() {
		return Location{}, false
	}
	rec := cityRecord{}
	rec.Location.Latitude, rec.Location.Longitude = math.NaN(), math.NaN()
	if err := res.Decode(&rec); err != nil {
		return Location{}, false
	}
	loc := Location{Country: rec.Country.ISOCode, Continent: rec.Continent.Code, Network: res.Prefix()}
	if m.city {
		if len(rec.Subdivisions) > 0 {
			loc.Subdivision = rec.Subdivisions[0].ISOCode
		}
		lat, lon := rec.Location.Latitude, rec.Location.Longitude
		if !math.IsNaN(lat) && !math.IsNaN(lon) && validCoords(lat, lon) {
			loc.Lat, loc.Lon, loc.HasCoords = lat, lon, true
		}
	}
	if loc.Continent == "" {
		loc.Continent = ContinentOf(loc.Country)
	}
	if !loc.known() {
		return Location{}, false
	}
	return loc, true
}

// cityRecord is the part of a GeoIP2 City or Country record Meridian uses;
// the decoder skips every other field.
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}
