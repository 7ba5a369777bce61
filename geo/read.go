package geo

import (
	"fmt"
	"slices"

	"github.com/oschwald/maxminddb-golang/v2"
)

// readRanges reads every network of an MMDB file into ranges, decoding
// each distinct record once (networks share records by offset, and a City
// database has far fewer places than networks). Neighbouring networks
// that decode to the same Location merge into one range, so the ranges
// are as wide as the data allows. A record that cannot be decoded fails
// the whole file: it is better refused at load, with the old data kept
// serving, than a silent miss for every client it covers.
//
// IPv4 networks of an IPv6 database come from its IPv4 subtree; the
// aliases of that subtree (::ffff:0:0/96, 6to4's 2002::/16 and Teredo's
// 2001::/32) are not copied, since lookups unmap IPv4-mapped addresses
// and tunnelled clients are rare enough to be located by their IPv6 rows.
func readRanges(mm *maxminddb.Reader, decode func(maxminddb.Result) (Location, error)) (ranges, error) {
	var b coverBuilder
	byOffset := map[uintptr]int32{}
	byLoc := map[Location]int32{}
	var locs []Location
	for res := range mm.Networks() {
		if err := res.Err(); err != nil {
			return ranges{}, fmt.Errorf("reading networks: %w", err)
		}
		id, seen := byOffset[res.Offset()]
		if !seen {
			loc, err := decode(res)
			if err != nil {
				return ranges{}, fmt.Errorf("record of %s: %w", res.Prefix(), err)
			}
			id = -1
			if loc.known() {
				var ok bool
				if id, ok = byLoc[loc]; !ok {
					id = int32(len(locs))
					byLoc[loc] = id
					locs = append(locs, loc)
				}
			}
			byOffset[res.Offset()] = id
		}
		first, last, width := prefixRange(res.Prefix())
		if err := b.add(first, last, width, id); err != nil {
			return ranges{}, fmt.Errorf("search tree: %w", err)
		}
	}
	v4, v6 := b.finish()
	return ranges{v4: v4, v6: v6, locs: slices.Clip(locs)}, nil
}
