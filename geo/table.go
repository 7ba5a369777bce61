package geo

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/gaissmai/bart"
)

// Row is one line of an operator's CIDR table: a network and either the
// region its clients go to (Location.Region) or where it is (Country,
// Continent, Subdivision, coordinates), or both. Location.Network is
// ignored; lookups report the row's Prefix there.
type Row struct {
	Prefix   netip.Prefix
	Location Location
}

// RowError says which row of the input to NewTable is wrong, so the
// configuration can point at the line it came from.
type RowError struct {
	Index  int // 0-based index into the rows given to NewTable
	Prefix netip.Prefix
	Err    error // wraps ErrInvalidRow or ErrDuplicatePrefix
}

func (e *RowError) Error() string {
	return fmt.Sprintf("row %d (%s): %v", e.Index, e.Prefix, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// Table is a longest-prefix-match table of operator CIDR rows, IPv4 and
// IPv6. It is immutable once built, so lookups need no lock; a new
// configuration builds a new Table.
type Table struct {
	// trie maps each prefix to an index into locs. Rows share a handful of
	// distinct locations (one per region, typically), so storing the index
	// keeps a million-row table small, and the matched prefix comes back
	// from the trie itself.
	trie bart.Table[uint32]
	locs []Location
	// r is the same rows flattened (longest prefix wins), for building
	// an Index; lookups use the trie, which reports the row's prefix.
	r ranges
}

var _ Locator = (*Table)(nil)

// NewTable validates rows and builds the table. Codes are upper-cased, a
// missing continent is derived from the country, and an IPv4-mapped IPv6
// prefix (::ffff:192.0.2.0/120) is stored as the IPv4 prefix it covers,
// since lookups unmap addresses. Host bits below a prefix's length are
// ignored. The first invalid or repeated row stops the build with a
// *RowError.
func NewTable(rows []Row) (*Table, error) {
	t := &Table{}
	index := make(map[Location]uint32)
	items := make([]nested, 0, len(rows))
	for i, row := range rows {
		pfx, loc, err := checkRow(row)
		if err != nil {
			return nil, &RowError{Index: i, Prefix: row.Prefix, Err: err}
		}
		id, ok := index[loc]
		if !ok {
			id = uint32(len(t.locs))
			index[loc] = id
			t.locs = append(t.locs, loc)
		}
		before := t.trie.Size()
		t.trie.Insert(pfx, id)
		if t.trie.Size() == before {
			return nil, &RowError{Index: i, Prefix: row.Prefix, Err: ErrDuplicatePrefix}
		}
		first, last, width := prefixRange(pfx)
		items = append(items, nested{first: first, last: last, width: width, id: int32(id)})
	}
	t.r.v4, t.r.v6 = flatten(items)
	t.r.locs = t.locs
	return t, nil
}

// checkRow returns the canonical prefix and location of a row.
func checkRow(row Row) (netip.Prefix, Location, error) {
	pfx := row.Prefix
	if !pfx.IsValid() {
		return pfx, Location{}, fmt.Errorf("%w: not a valid prefix", ErrInvalidRow)
	}
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	pfx = pfx.Masked()

	loc := row.Location
	loc.Network = netip.Prefix{}
	loc.Country = strings.ToUpper(loc.Country)
	loc.Continent = strings.ToUpper(loc.Continent)
	if loc.Country != "" && ContinentOf(loc.Country) == "" {
		return pfx, loc, fmt.Errorf("%w: unknown country code %q (want ISO 3166-1 alpha-2)", ErrInvalidRow, loc.Country)
	}
	if loc.Continent == "" {
		loc.Continent = ContinentOf(loc.Country)
	} else if !continents[loc.Continent] {
		return pfx, loc, fmt.Errorf("%w: unknown continent code %q (want AF AN AS EU NA OC SA)", ErrInvalidRow, loc.Continent)
	}
	if loc.Subdivision != "" {
		sub := strings.ToUpper(loc.Subdivision)
		if loc.Country == "" {
			return pfx, loc, fmt.Errorf("%w: subdivision %q without a country", ErrInvalidRow, loc.Subdivision)
		}
		if loc.Subdivision = subdivisionCode(loc.Country, sub); loc.Subdivision == "" {
			return pfx, loc, fmt.Errorf("%w: subdivision %q is not an ISO 3166-2 code (like \"CA\" or \"US-CA\")", ErrInvalidRow, sub)
		}
	}
	if loc.HasCoords {
		if !validCoords(loc.Lat, loc.Lon) {
			return pfx, loc, fmt.Errorf("%w: coordinates %g,%g out of range", ErrInvalidRow, loc.Lat, loc.Lon)
		}
	} else if loc.Lat != 0 || loc.Lon != 0 {
		return pfx, loc, fmt.Errorf("%w: coordinates given without HasCoords", ErrInvalidRow)
	}
	if !loc.known() {
		return pfx, loc, fmt.Errorf("%w: maps to neither a region nor a location", ErrInvalidRow)
	}
	return pfx, loc, nil
}

// validCoords reports whether lat, lon is a point on Earth.
func validCoords(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 && !math.IsNaN(lat) && !math.IsNaN(lon)
}

// Len returns the number of rows in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.trie.Size()
}

// Locate returns the location of the longest prefix containing addr, with
// that prefix as Network. A nil Table matches nothing.
func (t *Table) Locate(addr netip.Addr) (Location, bool) {
	if t == nil {
		return Location{}, false
	}
	addr = normalize(addr)
	if !addr.IsValid() {
		return Location{}, false
	}
	pfx, id, ok := t.trie.LookupPrefixLPM(netip.PrefixFrom(addr, addr.BitLen()))
	if !ok {
		return Location{}, false
	}
	loc := t.locs[id]
	loc.Network = pfx
	return loc, true
}
