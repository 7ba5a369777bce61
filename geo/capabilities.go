package geo

import (
	"errors"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// ErrWrongFormat: the file is a database of the other layout than the one
// it was opened as (a flat ip-location-db file opened as "maxmind", or a
// GeoIP2-layout file opened as "ip-location-db"). The error says which
// format to set, and is an ErrUnsupportedDatabase too: the format asked
// for cannot read it.
var ErrWrongFormat = errors.New("wrong database format")

// wrongFormat is the error for ErrWrongFormat: its text is the advice
// alone, since the sentinel's words would only stand in its way.
type wrongFormat string

func (e wrongFormat) Error() string { return string(e) }

// Is makes the error match ErrWrongFormat and ErrUnsupportedDatabase.
func (e wrongFormat) Is(target error) bool {
	return target == ErrWrongFormat || target == ErrUnsupportedDatabase
}

// Capabilities says what a database's records carry beyond the country,
// so a configuration whose policies need more can be refused up front
// rather than answer every client with the first pool.
type Capabilities struct {
	// Coordinates: records carry latitude and longitude (a City
	// database; a Country database has none), which proximity and
	// latency need.
	Coordinates bool
	// SubdivisionCodes: records carry first-level ISO 3166-2 subdivision
	// codes ("CA" of US-CA), which a geo policy's subdivisions map is
	// keyed by.
	SubdivisionCodes bool
	// SubdivisionNames: records name subdivisions ("California") without
	// their codes, as DB-IP's and GeoLite2's ip-location-db flat files
	// do. Such names never match a subdivisions map.
	SubdivisionNames bool
}

// capabilitySample is how many records with data are looked at to decide
// whether a database's subdivisions are codes or names. Metadata cannot be
// trusted for this (the flat files' database_type says nothing about
// their fields, and DB-IP's MaxMind-layout City files may leave out
// subdivision codes), and every real City file has subdivisions within its
// first few dozen networks.
const capabilitySample = 64

// CapabilitiesOf returns what l's records carry, when l is a database
// this package opened (or a Watcher serving one); ok is false for other
// Locators (a Table, a Chain).
func CapabilitiesOf(l Locator) (c Capabilities, ok bool) {
	if w, isWatcher := l.(*Watcher); isWatcher {
		l = w.Current()
	}
	if d, isDB := l.(interface{ Capabilities() Capabilities }); isDB {
		return d.Capabilities(), true
	}
	return Capabilities{}, false
}

// Capabilities says what the database carries.
func (m *MaxMind) Capabilities() Capabilities { return m.caps }

// Capabilities says what the database carries.
func (f *Flat) Capabilities() Capabilities { return f.caps }

// maxMindCapabilities looks at the first records of a GeoIP2-layout
// database for its subdivisions, because DB-IP's MaxMind-compatible files
// may name them without an iso_code; coordinates are counted when the file
// is opened (Info.Coordinates), and only a City database has them.
func maxMindCapabilities(r *maxminddb.Reader, info Info, city bool) Capabilities {
	c := Capabilities{Coordinates: info.Coordinates > 0}
	if !city {
		return c
	}
	codes, names, seen := 0, 0, 0
	for res := range r.Networks() {
		if seen++; seen > capabilitySample {
			break
		}
		var rec struct {
			Subdivisions []struct {
				ISOCode string            `maxminddb:"iso_code"`
				Names   map[string]string `maxminddb:"names"`
			} `maxminddb:"subdivisions"`
		}
		if res.Decode(&rec) != nil || len(rec.Subdivisions) == 0 {
			continue
		}
		switch s := rec.Subdivisions[0]; {
		case s.ISOCode != "":
			codes++
		case len(s.Names) > 0:
			names++
		}
	}
	// A City file whose sample shows no subdivision at all is taken at
	// its word: GeoIP2 City has codes.
	c.SubdivisionCodes = codes > 0 || names == 0
	c.SubdivisionNames = !c.SubdivisionCodes
	return c
}

// flatCapabilities looks at the first records of an ip-location-db flat
// file for what its state1 holds, a name or a code; coordinates are
// counted when the file is opened (Info.Coordinates: the City files have
// them in every record, the Country files in none).
func flatCapabilities(r *maxminddb.Reader, info Info) Capabilities {
	c := Capabilities{Coordinates: info.Coordinates > 0}
	codes, names, seen := 0, 0, 0
	for res := range r.Networks() {
		if seen++; seen > capabilitySample {
			break
		}
		var rec flatRecord
		if res.Decode(&rec) != nil {
			continue
		}
		switch {
		case rec.state1 == "":
		case subdivisionCode(strings.ToUpper(rec.country), rec.state1) != "":
			codes++
		default:
			names++
		}
	}
	// Most records decide: a short all-capitals name ("NSW" where the
	// file otherwise has names) must not pass a file of names as codes.
	c.SubdivisionCodes = codes > names
	c.SubdivisionNames = names > 0 && !c.SubdivisionCodes
	return c
}

// flatLayout reports whether the first record of r is an ip-location-db
// flat record (country_code at the top, no GeoIP2 country map), for the
// error that tells an operator which format to set.
func flatLayout(r *maxminddb.Reader) bool {
	for res := range r.Networks() {
		var rec struct {
			CountryCode *string        `maxminddb:"country_code"`
			Country     map[string]any `maxminddb:"country"`
		}
		if res.Decode(&rec) != nil {
			return false
		}
		return rec.CountryCode != nil && rec.Country == nil
	}
	return false
}

// geoIP2Layout reports whether a record is a GeoIP2 City or Country one
// (a country, registered_country or continent map: some networks carry
// only the registered country), for the error that tells an operator
// which format to set.
func geoIP2Layout(res maxminddb.Result) bool {
	var rec struct {
		Country    map[string]any `maxminddb:"country"`
		Registered map[string]any `maxminddb:"registered_country"`
		Continent  map[string]any `maxminddb:"continent"`
	}
	return res.Decode(&rec) == nil && (rec.Country != nil || rec.Registered != nil || rec.Continent != nil)
}
