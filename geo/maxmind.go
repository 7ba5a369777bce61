package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Info describes a loaded database file, for logs and the admin API.
type Info struct {
	Type      string    // the metadata's database_type, e.g. "GeoLite2-City"
	Built     time.Time // the metadata's build_epoch
	IPVersion uint      // 4: IPv4 only; 6: IPv6 and IPv4
	Networks  int       // ranges with a location, after merging neighbours that share one
	Memory    int       // bytes the loaded ranges hold
}

// MaxMind locates addresses with a GeoIP2 or GeoLite2 City or Country
// database, the layout geoipupdate installs (DB-IP's MaxMind-compatible
// City and Country files share it). The file is memory-mapped only while
// it is read into ranges (see ranges): lookups never touch it.
type MaxMind struct {
	r    ranges
	info Info
}

var _ Locator = (*MaxMind)(nil)

// OpenMaxMind reads a GeoIP2/GeoLite2 City or Country database. Any other
// database type (ASN, ISP, Anonymous IP, ...) is ErrUnsupportedDatabase.
func OpenMaxMind(path string) (*MaxMind, error) {
	// geoip2 vets the database type as its readers would; the ranges are
	// then read with maxminddb, which decodes only the fields used.
	g, err := geoip2.Open(path)
	if err != nil {
		var unknown geoip2.UnknownDatabaseTypeError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("%s: %w %q", path, ErrUnsupportedDatabase, unknown.DatabaseType)
		}
		return nil, openError(path, err)
	}
	defer g.Close()
	mm, err := maxminddb.Open(path)
	if err != nil {
		return nil, openError(path, err)
	}
	defer mm.Close()
	m, err := newMaxMind(mm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// openError names the file in err once: os errors name it already.
func openError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s: not a readable MaxMind DB: %w", path, err)
}

func newMaxMind(mm *maxminddb.Reader) (*MaxMind, error) {
	md := mm.Metadata
	m := &MaxMind{info: Info{Type: md.DatabaseType, Built: md.BuildTime().UTC(), IPVersion: md.IPVersion}}
	city := false
	switch md.DatabaseType {
	case "GeoIP2-City", "GeoLite2-City", "GeoIP2-Precision-City", "GeoIP-City-Redacted-US",
		"GeoIP2-City-Africa", "GeoIP2-City-Asia-Pacific", "GeoIP2-City-Europe",
		"GeoIP2-City-North-America", "GeoIP2-City-South-America",
		"GeoIP2-Enterprise", "GeoIP-Enterprise-Redacted-US",
		"DBIP-City-Lite", "DBIP-Location (compat=City)":
		city = true
	case "GeoIP2-Country", "GeoLite2-Country", "DBIP-Country-Lite", "DBIP-Country":
	default:
		// ASN, ISP, domain and anonymity databases say nothing about
		// where an address is.
		return nil, fmt.Errorf("%w %q", ErrUnsupportedDatabase, md.DatabaseType)
	}
	r, err := readRanges(mm, func(res maxminddb.Result) (Location, error) { return decodeCity(res, city) })
	if err != nil {
		return nil, err
	}
	m.r = r
	m.info.Networks, m.info.Memory = r.networks(), r.memory()
	return m, nil
}

// Info describes the database.
func (m *MaxMind) Info() Info { return m.info }

// Locate returns the country, continent and, from a City database, the
// first-level subdivision and coordinates of addr. A network the database
// lists without any of those is a miss, so a Chain goes on to its next
// source. Network is the widest prefix around addr that the database
// places at the same spot (neighbouring networks with the same location
// are merged).
func (m *MaxMind) Locate(addr netip.Addr) (Location, bool) {
	addr = normalize(addr)
	if !addr.IsValid() {
		return Location{}, false
	}
	return m.r.locate(addr)
}

func (m *MaxMind) ranges() *ranges { return &m.r }

// decodeCity reads the fields Meridian uses from a City or Country record.
// A record that says nothing of where its network is gives a Location
// that is not known(): a miss.
func decodeCity(res maxminddb.Result, city bool) (Location, error) {
	rec := cityRecord{}
	rec.Location.Latitude, rec.Location.Longitude = math.NaN(), math.NaN()
	if err := res.Decode(&rec); err != nil {
		return Location{}, err
	}
	loc := Location{Country: rec.Country.ISOCode, Continent: rec.Continent.Code}
	if city {
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
	return loc, nil
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
