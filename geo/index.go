package geo

import (
	"fmt"
	"net/netip"
	"slices"
)

// source is a Locator whose data is held as ranges: a Table, or a
// database loaded by OpenMaxMind or OpenFlat.
type source interface {
	Locator
	ranges() *ranges
}

// Index is a fixed snapshot of a Chain's sources, what every decision of
// one query reads: a Watcher's database may be replaced at any time, so
// the Index holds the one it served when it was built.
//
// It locates as the Chain does (first match wins), with one difference:
// a CIDR row that names a region and nothing of where its network is (no
// country, continent, subdivision or coordinates) does not end the
// search. The place comes from the next source that knows it, so a region
// row overriding the geo policy does not leave the proximity and latency
// policies without coordinates.
//
// Partition cuts the address space where a classification of locations
// changes, which is how a caller finds the widest ECS scope for which an
// answer is the same.
type Index struct {
	srcs  []source
	names []string
}

var _ Locator = (*Index)(nil)

// Named is a Locator with a name for logs and explanations: a database's
// path, or "table".
type Named struct {
	Name string
	Locator
}

// NewIndex snapshots the chain: a Watcher contributes the database it
// serves now. Every entry must be a Table, a database from OpenMaxMind or
// OpenFlat, a Watcher of one, or a Named of those; nil entries are
// skipped.
func NewIndex(chain ...Named) (*Index, error) {
	x := &Index{}
	for _, n := range chain {
		l := n.Locator
		if w, ok := l.(*Watcher); ok {
			l = w.Current()
		}
		if l == nil {
			continue
		}
		s, ok := l.(source)
		if !ok {
			return nil, fmt.Errorf("geo source %q (%T) cannot be indexed", n.Name, l)
		}
		x.srcs = append(x.srcs, s)
		x.names = append(x.names, n.Name)
	}
	return x, nil
}

// Locate returns the location of addr: the first source's match, with
// the place filled in from a later source when that match names only a
// region. Network is the narrower of the networks that contributed.
func (x *Index) Locate(addr netip.Addr) (Location, bool) {
	if x == nil {
		return Location{}, false
	}
	addr = normalize(addr)
	if !addr.IsValid() {
		return Location{}, false
	}
	for i, s := range x.srcs {
		loc, ok := s.Locate(addr)
		if !ok {
			continue
		}
		if !loc.regionOnly() {
			return loc, true
		}
		for _, below := range x.srcs[i+1:] {
			if place, ok := below.Locate(addr); ok && !place.regionOnly() {
				return loc.withPlace(place), true
			}
		}
		return loc, true
	}
	return Location{}, false
}

// Match is one source's view of an address, for explanations.
type Match struct {
	Source   string
	Location Location
}

// Matches returns what each source says of addr, in chain order: the
// first is the one that decided (and the next, when it named only a
// region, the one that placed it).
func (x *Index) Matches(addr netip.Addr) []Match {
	if x == nil {
		return nil
	}
	addr = normalize(addr)
	var out []Match
	for i, s := range x.srcs {
		if loc, ok := s.Locate(addr); ok {
			out = append(out, Match{Source: x.names[i], Location: loc})
		}
	}
	return out
}

// regionOnly reports a location that names a region and nothing else.
func (l *Location) regionOnly() bool {
	return l.Region != "" && l.Country == "" && l.Continent == "" && l.Subdivision == "" && !l.HasCoords
}

// withPlace is l's region at place's place, on the narrower network.
func (l Location) withPlace(place Location) Location {
	network := l.Network
	if place.Network.Bits() > network.Bits() {
		network = place.Network
	}
	place.Region, place.Network = l.Region, network
	return place
}

// Partition is the address space cut into ranges whose addresses all
// belong to one class, each range as wide as its class allows. It is
// immutable.
type Partition struct {
	v4, v4Class []uint32
	v6          []u128
	v6Class     []uint32
}

// Lookup returns addr's class and the length of the shortest prefix of
// addr whose addresses are all in that class: the widest ECS scope an
// answer decided by the class can carry. The scope can be longer than the
// prefix a query sent, when that prefix holds more than one class (RFC
// 7871 7.2.1 allows this). An IPv4-mapped address is taken as the IPv4
// address it carries.
func (p *Partition) Lookup(addr netip.Addr) (class uint32, scope int) {
	if addr.Is4In6() {
		// ::ffff:0:0/96 holds the IPv4 space: the scope of the query's
		// family is 96 bits longer.
		class, scope = p.Lookup(addr.Unmap())
		return class, 96 + scope
	}
	addr = addr.WithZone("")
	k := keyOf(addr)
	if addr.Is4() {
		a := uint32(k.lo)
		i, found := slices.BinarySearch(p.v4, a)
		if !found {
			i--
		}
		var next u128
		hasNext := i+1 < len(p.v4)
		if hasNext {
			next = u128{lo: uint64(p.v4[i+1])}
		}
		return p.v4Class[i], scopeBits(k, u128{lo: uint64(p.v4[i])}, next, hasNext, 32)
	}
	c := cover6{starts: p.v6}
	i := c.find(k)
	var next u128
	hasNext := i+1 < len(p.v6)
	if hasNext {
		next = p.v6[i+1]
	}
	return p.v6Class[i], scopeBits(k, p.v6[i], next, hasNext, 128)
}

// Ranges returns the number of ranges of each family.
func (p *Partition) Ranges() (v4, v6 int) { return len(p.v4), len(p.v6) }

// Class sorts locations for Partition: two locations in one class must get
// the same answer. ok is false for addresses no source locates. It is
// called once per distinct location (and combination of a region row with
// the place below it), not per network.
type Class func(loc Location, ok bool) uint32

// Partition cuts the address space where class changes, merging every
// run of neighbouring ranges of one class, across sources, into one.
func (x *Index) Partition(class Class) *Partition {
	w := walker{x: x, class: class, cache: make([][]uint32, len(x.srcs)), pairs: map[[4]int32]uint32{}}
	for i, s := range x.srcs {
		w.cache[i] = make([]uint32, len(s.ranges().locs))
	}
	p := &Partition{}
	starts, classes := w.cuts(32)
	for _, start := range starts {
		p.v4 = append(p.v4, uint32(start.lo))
	}
	p.v4Class = classes
	p.v6, p.v6Class = w.cuts(128)
	return p
}

// walker merges the sources' covers of one family in address order.
type walker struct {
	x     *Index
	class Class
	// cache holds each source's location classes plus one (0: not yet
	// computed); pairs the classes of region rows placed by a later
	// source.
	cache    [][]uint32
	pairs    map[[4]int32]uint32
	none     uint32
	haveNone bool
}

// cursor steps through one source's cover.
type cursor struct {
	n     int
	start func(i int) u128
	id    func(i int) int32
	i     int
}

func (w *walker) cursors(width int) []cursor {
	cs := make([]cursor, len(w.x.srcs))
	for i, s := range w.x.srcs {
		r := s.ranges()
		if width == 32 {
			c := &r.v4
			cs[i] = cursor{n: len(c.starts), start: func(j int) u128 { return u128{lo: uint64(c.starts[j])} }, id: func(j int) int32 { return c.ids[j] }}
		} else {
			c := &r.v6
			cs[i] = cursor{n: len(c.starts), start: func(j int) u128 { return c.starts[j] }, id: func(j int) int32 { return c.ids[j] }}
		}
	}
	return cs
}

// cuts returns the starts and classes of the family's class ranges.
func (w *walker) cuts(width int) ([]u128, []uint32) {
	cs := w.cursors(width)
	var out []u128
	var classes []uint32
	pos := u128{}
	ids := make([]int32, len(cs))
	for {
		next, hasNext := u128{}, false
		for i := range cs {
			c := &cs[i]
			for c.i+1 < c.n && !pos.less(c.start(c.i+1)) {
				c.i++
			}
			ids[i] = -1
			if c.n > 0 {
				ids[i] = c.id(c.i)
			}
			if c.i+1 < c.n && (!hasNext || c.start(c.i+1).less(next)) {
				next, hasNext = c.start(c.i+1), true
			}
		}
		if k := w.classOf(ids); len(out) == 0 || k != classes[len(classes)-1] {
			out, classes = append(out, pos), append(classes, k)
		}
		if !hasNext {
			return slices.Clip(out), slices.Clip(classes)
		}
		pos = next
	}
}

// classOf returns the class of the location the sources' ids give,
// computing it once per location.
func (w *walker) classOf(ids []int32) uint32 {
	for i, id := range ids {
		if id < 0 {
			continue
		}
		loc := w.x.srcs[i].ranges().locs[id]
		if loc.regionOnly() {
			for j := i + 1; j < len(ids); j++ {
				if ids[j] >= 0 && !w.x.srcs[j].ranges().locs[ids[j]].regionOnly() {
					key := [4]int32{int32(i), id, int32(j), ids[j]}
					k, ok := w.pairs[key]
					if !ok {
						k = w.class(loc.withPlace(w.x.srcs[j].ranges().locs[ids[j]]), true)
						w.pairs[key] = k
					}
					return k
				}
			}
		}
		if c := w.cache[i][id]; c != 0 {
			return c - 1
		}
		k := w.class(loc, true)
		w.cache[i][id] = k + 1
		return k
	}
	if !w.haveNone {
		w.none, w.haveNone = w.class(Location{}, false), true
	}
	return w.none
}
