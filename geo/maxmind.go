package geo

import (
	"errors"
	"fmt"
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
	Networks  int       // networks listed (with data)
	// Places counts the distinct records that say where their network
	// is, Coordinates those of them with coordinates (0 in a Country
	// database, which proximity and latency cannot use).
	Places, Coordinates int
}

// MaxMind locates addresses with a GeoIP2 or GeoLite2 City or Country
// database, the layout geoipupdate installs (DB-IP's MaxMind-compatible
// City and Country files share it).
type MaxMind struct {
	db   *dbFile
	caps Capabilities
}

var _ Locator = (*MaxMind)(nil)

// OpenMaxMind opens a GeoIP2/GeoLite2 City or Country database, reading
// every record once to refuse a broken file. Any other database type
// (ASN, ISP, Anonymous IP, ...) is ErrUnsupportedDatabase, and a flat
// ip-location-db file is ErrWrongFormat.
func OpenMaxMind(path string) (*MaxMind, error) {
	city := false
	check := func(mm *maxminddb.Reader) error {
		// Looked at before the type: a flat file's database_type may be
		// unknown to geoip2 or may be a City type, and either way the
		// operator needs to hear which format to set, not that every
		// lookup misses.
		if flatLayout(mm) {
			return wrongFormat(`this is an ip-location-db flat file (records with country_code, not GeoIP2's country map): set format = "ip-location-db"`)
		}
		// geoip2 vets the type as its readers would; lookups then decode
		// only the fields Meridian uses.
		g, err := geoip2.Open(path)
		if err != nil {
			var unknown geoip2.UnknownDatabaseTypeError
			if errors.As(err, &unknown) {
				return fmt.Errorf("%w %q", ErrUnsupportedDatabase, unknown.DatabaseType)
			}
			return fmt.Errorf("not a readable MaxMind DB: %w", err)
		}
		g.Close()
		switch mm.Metadata.DatabaseType {
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
			return fmt.Errorf("%w %q", ErrUnsupportedDatabase, mm.Metadata.DatabaseType)
		}
		return nil
	}
	db, err := openDB(path, func(res maxminddb.Result) (Location, error) { return decodeCity(res, city) }, check)
	if err != nil {
		return nil, err
	}
	return &MaxMind{db: db, caps: maxMindCapabilities(db.mm, db.info, city)}, nil
}

// Info describes the database.
func (m *MaxMind) Info() Info { return m.db.info }

// Locate returns the country, continent and, from a City database, the
// first-level subdivision and coordinates of addr, with the database's
// network. A network the database lists without any of those is a miss,
// so a Chain goes on to its next source.
func (m *MaxMind) Locate(addr netip.Addr) (Location, bool) { return m.db.locate(addr) }

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
