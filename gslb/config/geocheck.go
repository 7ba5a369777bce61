package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/meridian-gslb/meridian/geo"
)

// GeoGuard holds each [[geo.database]] to what the configuration's
// records need of it, so that a database that cannot serve them is an
// error at check, start and reload, and a replaced file is refused while
// serving, instead of every client silently getting the first pool:
//
//   - proximity and latency place clients by coordinates, which Country
//     databases (GeoIP2/GeoLite2/DB-IP Country, ip-location-db's country
//     files) do not carry;
//   - a geo record's subdivisions map is keyed by ISO 3166-2 codes, which
//     Country databases do not carry and DB-IP's and GeoLite2's flat files
//     replace with names ("California").
//
// A database lacking what records need is an error when no CIDR row
// supplies it either, and a warning when some rows do (the operator may
// mean those rows to be the source). Region-only rows supply neither.
// The geo policy's distance order of its leftover pools is not held to
// this: a Country database under a geo policy is the textbook setup, and
// a warning there would teach operators to ignore warnings.
type GeoGuard struct {
	c *Config
	// coords and subdivisions index the records that need coordinates and
	// subdivision codes.
	coords, subdivisions []int
	// rowCoords and rowSubdivisions: some CIDR row (TOML or
	// networks_file) gives coordinates, or a subdivision.
	rowCoords, rowSubdivisions bool
}

// GeoGuard returns the guard of the configuration's databases; rows are
// the whole CIDR table, networks_file's rows included.
func (c *Config) GeoGuard(rows []geo.Row) *GeoGuard {
	g := &GeoGuard{c: c}
	for i, r := range c.Records {
		switch {
		case r.Policy == "proximity" || r.Policy == "latency":
			g.coords = append(g.coords, i)
		case r.Policy == "geo" && len(r.Geo.Subdivisions) > 0:
			g.subdivisions = append(g.subdivisions, i)
		}
	}
	for _, r := range rows {
		g.rowCoords = g.rowCoords || r.Location.HasCoords
		g.rowSubdivisions = g.rowSubdivisions || r.Location.Subdivision != ""
	}
	return g
}

// Vet holds database i, opened as l, to the records: the error, located
// at geo.database[i].path, when it lacks what they need and no CIDR row
// supplies it; warnings, located alike, when rows supply some of it.
func (g *GeoGuard) Vet(i int, l geo.Locator) (warnings []error, err error) {
	errs, warns := g.problems(i, l)
	key := fmt.Sprintf("geo.database[%d].path", i)
	line := g.c.LineOf(key)
	for _, w := range warns {
		warnings = append(warnings, g.c.Errorf(line, key, "%s", w))
	}
	located := make([]error, len(errs))
	for j, e := range errs {
		located[j] = g.c.Errorf(line, key, "%s", e)
	}
	return warnings, errors.Join(located...)
}

// Accept returns the geo.WatcherOptions.Accept of database i: a replaced
// file that Vet would refuse is refused, and the previous data goes on
// serving; its warnings are logged to log.
func (g *GeoGuard) Accept(i int, log *slog.Logger) func(geo.Locator) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(l geo.Locator) error {
		errs, warns := g.problems(i, l)
		for _, w := range warns {
			log.Warn("geo database replaced: "+w, "file", g.c.ResolvePath(g.c.Geo.Databases[i].Path))
		}
		if len(errs) > 0 {
			return errors.New(strings.Join(errs, "; "))
		}
		return nil
	}
}

// problems says what database i, opened as l, lacks for the records.
func (g *GeoGuard) problems(i int, l geo.Locator) (errs, warns []string) {
	if w, ok := l.(*geo.Watcher); ok {
		l = w.Current()
	}
	caps, ok := geo.CapabilitiesOf(l)
	if !ok {
		return nil, nil
	}
	db := fmt.Sprintf("%q", g.c.Geo.Databases[i].Path)
	if d, ok := l.(interface{ Info() geo.Info }); ok && d.Info().Type != "" {
		db += fmt.Sprintf(" (%s)", d.Info().Type)
	}
	if len(g.coords) > 0 && !caps.Coordinates {
		recs := g.records(g.coords, "policy", func(r Record) string { return fmt.Sprintf(", policy %q", r.Policy) })
		if g.rowCoords {
			warns = append(warns, fmt.Sprintf("%s has no coordinates: these records place by coordinates only the clients of [[geo.network]] rows with lat and lon, and give every other client the first pool: %s", db, recs))
		} else {
			errs = append(errs, fmt.Sprintf("%s has no coordinates, and these records place clients by them: %s. Every client would get the first pool. "+
				"Use a City database (GeoIP2/GeoLite2 City, or DB-IP City lite), or give [[geo.network]] rows lat and lon", db, recs))
		}
	}
	if len(g.subdivisions) > 0 && !caps.SubdivisionCodes {
		what := "has no subdivisions"
		if caps.SubdivisionNames {
			what = `names subdivisions ("California") instead of giving their ISO 3166-2 codes ("US-CA"), as DB-IP's and GeoLite2's ip-location-db flat files do`
		}
		recs := g.records(g.subdivisions, "geo.subdivisions", func(Record) string { return "" })
		if g.rowSubdivisions {
			warns = append(warns, fmt.Sprintf("%s %s: these subdivisions maps match only the clients of [[geo.network]] rows with a subdivision: %s", db, what, recs))
		} else {
			errs = append(errs, fmt.Sprintf("%s %s, so these subdivisions maps would never match: %s. "+
				"Use a GeoIP2/GeoLite2 City MMDB (format = \"maxmind\"), or [[geo.network]] rows with a subdivision", db, what, recs))
		}
	}
	return errs, warns
}

// records names the records of idx for a message: the key (key under
// each record), its line, the record's name and what else matters.
func (g *GeoGuard) records(idx []int, key string, about func(Record) string) string {
	parts := make([]string, len(idx))
	for j, i := range idx {
		k := fmt.Sprintf("record[%d].%s", i, key)
		parts[j] = fmt.Sprintf("%s (line %d: %s%s)", k, g.c.LineOf(k), g.c.Records[i].Name, about(g.c.Records[i]))
	}
	return strings.Join(parts, ", ")
}

// GeoDatabaseError locates an error opening database i: at its format key
// when the file is of the other layout (the error says which format to
// set), else at its path.
func (c *Config) GeoDatabaseError(i int, err error) error {
	key := fmt.Sprintf("geo.database[%d].path", i)
	if errors.Is(err, geo.ErrWrongFormat) {
		key = fmt.Sprintf("geo.database[%d].format", i)
	}
	return c.Errorf(c.LineOf(key), key, "%v", err)
}
