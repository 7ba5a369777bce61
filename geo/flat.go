package geo

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// Flat locates addresses with the flat MMDB files of the ip-location-db
// project (its DB-IP lite City and Country packages, CC-BY 4.0: credit
// DB-IP.com where the data is shown). Each record is a single map with
// country_code, state1, state2, city, postcode, latitude, longitude and
// timezone, which geoip2-golang does not read, so the record is decoded
// here. IPv4 and IPv6 come in separate files; put both in a Chain.
//
// The files carry no continent: it is derived from the country with
// ContinentOf. In DB-IP lite, state1 is the subdivision's name
// ("California"), not its ISO 3166-2 code, so Subdivision is set only when state1 already looks like a
// code (one to three upper-case letters or digits, optionally after the
// country and a hyphen, as in "US-CA"); otherwise it stays empty rather
// than holding a name the rest of Meridian could not match against codes.
type Flat struct {
	db   *dbFile
	caps Capabilities
}

var _ Locator = (*Flat)(nil)

// OpenFlat opens an ip-location-db flat MMDB file, reading every record
// once to refuse a broken file. A file whose records have no country_code
// (a GeoIP2-layout database, say) is ErrUnsupportedDatabase: every lookup
// would otherwise miss without a word.
func OpenFlat(path string) (*Flat, error) {
	db, err := openDB(path, decodeFlat, checkFlat)
	if err != nil {
		return nil, err
	}
	return &Flat{db: db, caps: flatCapabilities(db.mm, db.info)}, nil
}

// checkFlat looks at the first record: the metadata's database_type is
// not a reliable sign of this layout.
func checkFlat(mm *maxminddb.Reader) error {
	for res := range mm.Networks() {
		var rec flatRecord
		if err := res.Decode(&rec); err != nil {
			return fmt.Errorf("first record (%s): %w", res.Prefix(), err)
		}
		if !rec.hasCountry {
			if geoIP2Layout(res) {
				return wrongFormat(fmt.Sprintf(`this is a GeoIP2-layout database (%q: records with a country map, no country_code): set format = "maxmind"`,
					mm.Metadata.DatabaseType))
			}
			return fmt.Errorf("%w %q: records have no country_code field", ErrUnsupportedDatabase, mm.Metadata.DatabaseType)
		}
		break
	}
	return nil
}

// Info describes the database.
func (f *Flat) Info() Info { return f.db.info }

// Locate returns the country, derived continent, subdivision (when state1 is
// a code) and coordinates of addr, with the file's network.
func (f *Flat) Locate(addr netip.Addr) (Location, bool) { return f.db.locate(addr) }

// decodeFlat reads the fields Meridian uses from a flat record.
func decodeFlat(res maxminddb.Result) (Location, error) {
	var rec flatRecord
	if err := res.Decode(&rec); err != nil {
		return Location{}, err
	}
	var loc Location
	if c := strings.ToUpper(rec.country); ContinentOf(c) != "" {
		// Unknown codes, DB-IP's "ZZ" among them, say nothing.
		loc.Country, loc.Continent = c, ContinentOf(c)
		loc.Subdivision = subdivisionCode(c, rec.state1)
	}
	if rec.hasLat && rec.hasLon && validCoords(rec.lat, rec.lon) {
		loc.Lat, loc.Lon, loc.HasCoords = rec.lat, rec.lon, true
	}
	return loc, nil
}

// subdivisionCode returns state1 when it is a first-level ISO 3166-2 code
// (with or without its "CC-" prefix) and "" when it is a name.
func subdivisionCode(country, state string) string {
	state = strings.TrimPrefix(state, country+"-")
	if len(state) == 0 || len(state) > 3 {
		return ""
	}
	for i := 0; i < len(state); i++ {
		if c := state[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return ""
		}
	}
	return state
}

// flatRecord is the part of an ip-location-db record Meridian uses. It
// decodes itself from the record's map so a lookup reads only these keys
// and allocates nothing for them (short strings come from the reader's
// string cache).
type flatRecord struct {
	country, state1 string
	lat, lon        float64
	hasCountry      bool
	hasLat, hasLon  bool
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (f *flatRecord) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	entries, err := c.MapReader()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[flatRecord](err)
	}
	next := entries.First()
	for range entries.Len() {
		key, value, err := next.ReadMapKey()
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		switch string(key) {
		case "country_code":
			f.country, next, err = value.ReadString()
			f.hasCountry = err == nil
		case "state1":
			f.state1, next, err = value.ReadString()
		case "latitude":
			f.lat, f.hasLat, next, err = readCoordinate(value)
		case "longitude":
			f.lon, f.hasLon, next, err = readCoordinate(value)
		default:
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, fmt.Errorf("field %s: %w", key, mmdbdata.NormalizeUnmarshalError[flatRecord](err))
		}
	}
	return entries.End(next)
}

// readCoordinate reads a latitude or longitude stored as either float kind
// or, as CSV-derived files sometimes do, as a decimal string. A value of
// another kind, or a string that is no number, is skipped as absent rather
// than failing the whole record: the country is still worth having.
func readCoordinate(c mmdbdata.Cursor) (v float64, ok bool, next mmdbdata.Cursor, err error) {
	kind, err := c.Kind()
	if err != nil {
		return 0, false, mmdbdata.Cursor{}, err
	}
	switch kind {
	case mmdbdata.KindFloat64, mmdbdata.KindFloat32:
		v, next, err = c.ReadFloat()
		return v, err == nil, next, err
	case mmdbdata.KindString:
		var s string
		if s, next, err = c.ReadString(); err != nil {
			return 0, false, mmdbdata.Cursor{}, err
		}
		v, perr := strconv.ParseFloat(s, 64)
		return v, perr == nil, next, nil
	default:
		next, err = c.Skip()
		return 0, false, next, err
	}
}
