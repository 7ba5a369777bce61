package geo

import (
	"iter"
	"net/netip"
	"slices"
	"strings"
)

// Rows yields the table's rows, IPv4 then IPv6, each in address order,
// with its location (Network is the row's prefix). Simulations walk the
// rows as the clients an operator mapped: one row, one client.
func (t *Table) Rows() iter.Seq2[netip.Prefix, Location] {
	return func(yield func(netip.Prefix, Location) bool) {
		if t == nil {
			return
		}
		for pfx, id := range t.trie.AllSorted() {
			loc := t.locs[id]
			loc.Network = pfx
			if !yield(pfx, loc) {
				return
			}
		}
	}
}

// Rows yields the rows of the index's CIDR tables, each located as the
// index locates the row's first address when no narrower row covers it:
// a row naming only a region gets its place from the sources after its
// table.
func (x *Index) Rows() iter.Seq2[netip.Prefix, Location] {
	return func(yield func(netip.Prefix, Location) bool) {
		if x == nil {
			return
		}
		for i, s := range x.srcs {
			t, ok := s.(*Table)
			if !ok {
				continue
			}
			for pfx, loc := range t.Rows() {
				if loc.regionOnly() {
					loc = x.placeBelow(i, pfx.Addr(), loc)
				}
				if !yield(pfx, loc) {
					return
				}
			}
		}
	}
}

// placeBelow fills a region-only location's place from the sources after
// source i, as Locate does.
func (x *Index) placeBelow(i int, addr netip.Addr, loc Location) Location {
	for _, below := range x.srcs[i+1:] {
		if place, ok := below.Locate(addr); ok && !place.regionOnly() {
			return loc.withPlace(place)
		}
	}
	return loc
}

// Countries returns each country the index's databases place an address
// in, with its continent, sorted by code (the CIDR tables' rows are
// clients of their own, Rows): one walk over the databases, calling back
// once per distinct location, so a City database's millions of networks
// cost seconds and its countries a few hundred entries.
func (x *Index) Countries() ([]Location, error) {
	if x == nil {
		return nil, nil
	}
	dbs := &Index{}
	for i, s := range x.srcs {
		if _, table := s.(*Table); !table {
			dbs.srcs, dbs.names = append(dbs.srcs, s), append(dbs.names, x.names[i])
		}
	}
	if len(dbs.srcs) == 0 {
		return nil, nil
	}
	seen := map[string]Location{}
	collect := func(loc Location, ok bool) uint32 {
		if ok && loc.Country != "" {
			if _, dup := seen[loc.Country]; !dup {
				seen[loc.Country] = Location{Country: loc.Country, Continent: loc.Continent}
			}
		}
		return 0
	}
	if _, err := dbs.Partitions(collect); err != nil {
		return nil, err
	}
	out := make([]Location, 0, len(seen))
	for _, loc := range seen {
		out = append(out, loc)
	}
	slices.SortFunc(out, func(a, b Location) int { return strings.Compare(a.Country, b.Country) })
	return out, nil
}
