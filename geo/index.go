package geo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"

	"github.com/oschwald/maxminddb-golang/v2"
)

// source is a Locator an Index can walk: a Table, or a database opened
// by OpenMaxMind or OpenFlat.
type source interface {
	Locator
	// walk yields the source's networks in address order, IPv4 first,
	// in batches (a coroutine switch per network would cost more than
	// the rest of the walk); a batch is valid until yield returns.
	walk(yield func([]segment) bool) error
}

// batchSize is how many segments a walk yields at a time.
const batchSize = 4096

// batcher collects segments into batches for a walk's yield.
type batcher struct {
	buf   []segment
	yield func([]segment) bool
}

func (b *batcher) add(s segment) bool {
	if b.buf == nil {
		b.buf = make([]segment, 0, batchSize)
	}
	b.buf = append(b.buf, s)
	if len(b.buf) < batchSize {
		return true
	}
	return b.flush()
}

// flush yields what is left; a walk calls it before the data its
// segments point into goes away.
func (b *batcher) flush() bool {
	if len(b.buf) == 0 {
		return true
	}
	ok := b.yield(b.buf)
	b.buf = b.buf[:0]
	return ok
}

// segment is one network of a source as a walk sees it: the range of one
// family, and what identifies its location within the source (a table's
// location index, a database record's offset), with the way to read it.
type segment struct {
	first, last u128
	width       int
	key         uint64
	// The location: a table's row, or a database record to decode
	// (res is valid only until the walk moves on).
	row    *Location
	res    maxminddb.Result
	decode func(maxminddb.Result) (Location, error)
}

func (s *segment) place() (Location, error) {
	if s.row != nil {
		return *s.row, nil
	}
	return s.decode(s.res)
}

func (t *Table) walk(yield func([]segment) bool) error {
	b := batcher{yield: yield}
	for _, fam := range []struct {
		width int
		n     int
		start func(i int) u128
		id    func(i int) int32
	}{
		{32, len(t.r.v4.starts), func(i int) u128 { return u128{lo: uint64(t.r.v4.starts[i])} }, func(i int) int32 { return t.r.v4.ids[i] }},
		{128, len(t.r.v6.starts), func(i int) u128 { return t.r.v6.starts[i] }, func(i int) int32 { return t.r.v6.ids[i] }},
	} {
		for i := 0; i < fam.n; i++ {
			id := fam.id(i)
			if id < 0 {
				continue
			}
			last := lastKey(fam.width)
			if i+1 < fam.n {
				last = fam.start(i + 1).sub1()
			}
			if !b.add(segment{first: fam.start(i), last: last, width: fam.width, key: uint64(id), row: &t.locs[id]}) {
				return nil
			}
		}
	}
	b.flush()
	return nil
}

func (db *dbFile) walk(yield func([]segment) bool) error {
	stop := errors.New("stopped")
	b := batcher{yield: yield}
	err := db.scan(func(p netip.Prefix, off uintptr, res maxminddb.Result) error {
		first, last, width := prefixRange(p)
		if !b.add(segment{first: first, last: last, width: width, key: uint64(off), res: res, decode: db.decode}) {
			return stop
		}
		return nil
	}, func() error { // before the walk's mapping goes
		if !b.flush() {
			return stop
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}

func (m *MaxMind) walk(yield func([]segment) bool) error { return m.db.walk(yield) }
func (f *Flat) walk(yield func([]segment) bool) error    { return f.db.walk(yield) }

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

// Partitions cuts the address space once per class, where that class
// changes, merging every run of neighbouring networks of one class,
// across sources, into one range. It walks every source once for all the
// classes (a City database has millions of networks): a second or more.
func (x *Index) Partitions(classes ...Class) (_ []*Partition, err error) {
	defer guard(&err)() // decoding reads the walk's mapping from here
	w := &walker{x: x, classes: classes, keys: make([]keyCache, len(x.srcs)), rows: map[[2]uint64]Location{}, pairs: map[[4]uint64]uint32{}, byClasses: map[string]uint32{}}
	for i := range w.keys {
		w.keys[i].m = map[uint64]keyInfo{}
	}
	pulls := make([]*puller, len(x.srcs))
	for i, s := range x.srcs {
		pulls[i] = newPuller(s)
		defer pulls[i].stop()
	}
	parts := make([]*Partition, len(classes))
	for g := range parts {
		parts[g] = &Partition{}
	}
	for _, width := range []int{32, 128} {
		cuts, err := w.cuts(pulls, width)
		if err != nil {
			return nil, err
		}
		for g, c := range cuts {
			if width == 32 {
				for _, start := range c.starts {
					parts[g].v4 = append(parts[g].v4, uint32(start.lo))
				}
				parts[g].v4Class = slices.Clip(c.classes)
			} else {
				parts[g].v6, parts[g].v6Class = slices.Clip(c.starts), slices.Clip(c.classes)
			}
		}
	}
	for _, p := range pulls {
		if err := p.err(); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// puller reads a source's walk one segment at a time.
type puller struct {
	next     func() ([]segment, bool)
	stop     func()
	batch    []segment
	walkErr  error // the walk's own, once it has ended
	orderErr error
	cur      segment
	have     bool // cur holds a segment not yet past
	done     bool
}

func newPuller(s source) *puller {
	p := &puller{}
	p.next, p.stop = iter.Pull(func(yield func([]segment) bool) {
		p.walkErr = s.walk(yield)
	})
	return p
}

func (p *puller) err() error { return errors.Join(p.orderErr, p.walkErr) }

// at returns the segment of the width-bit family that holds or follows
// pos, skipping those that end before it; ok is false when the family
// has no more.
func (p *puller) at(pos u128, width int) (segment, bool) {
	for {
		if !p.have && !p.done {
			prev, hadPrev := p.cur, p.cur.width != 0
			if len(p.batch) == 0 {
				p.batch, _ = p.next()
			}
			if p.have = len(p.batch) > 0; p.have {
				p.cur, p.batch = p.batch[0], p.batch[1:]
			}
			p.done = !p.have
			if p.have && hadPrev && (p.cur.width < prev.width || (p.cur.width == prev.width && !prev.last.less(p.cur.first))) {
				// The walk relies on address order; a file that breaks it
				// is refused rather than cut wrongly.
				p.orderErr = fmt.Errorf("networks out of order at %s", addrOf(p.cur.first, p.cur.width))
				p.done, p.have = true, false
			}
		}
		if !p.have || p.cur.width > width {
			return segment{}, false
		}
		if p.cur.width < width || p.cur.last.less(pos) {
			p.have = false
			continue
		}
		return p.cur, true
	}
}

// walker merges the sources' walks of one family in address order.
type walker struct {
	x       *Index
	classes []Class
	// keys says what each (source, key) is, computed at its first
	// segment; rows holds the locations of region rows, which are
	// combined with what lies below them.
	keys []keyCache // by source
	rows map[[2]uint64]Location
	// pairs numbers what the sources say at an address under a region
	// row (the row, and the source and key that place it), and where no
	// source knows the place; plain keys keep theirs in keys.
	pairs map[[4]uint64]uint32
	// vec holds each distinct vector of classes (one per Class) once, and
	// byClasses finds it: a City database has hundreds of thousands of
	// places but a handful of orders.
	vec       [][]uint32
	byClasses map[string]uint32
	scratch   []byte
}

// keyCache is one source's keys, with the last one looked up: networks
// in a row often share a record.
type keyCache struct {
	m       map[uint64]keyInfo
	lastKey uint64
	last    keyInfo
	hasLast bool
}

type keyInfo struct {
	known, regionOnly bool
	vec               uint32 // for a known place
}

// cut is one class's ranges of one family being built.
type cut struct {
	starts  []u128
	classes []uint32
}

func (w *walker) cuts(pulls []*puller, width int) ([]cut, error) {
	out := make([]cut, len(w.classes))
	segs := make([]segment, len(pulls))
	in := make([]bool, len(pulls))
	pos := u128{}
	for {
		next, hasNext := u128{}, false
		for i, p := range pulls {
			s, ok := p.at(pos, width)
			segs[i], in[i] = s, ok && !pos.less(s.first)
			// The next address where what this source says changes.
			var edge u128
			switch {
			case !ok:
				continue
			case in[i]:
				if s.last == lastKey(width) {
					continue
				}
				edge = s.last.add1()
			default:
				edge = s.first
			}
			if !hasNext || edge.less(next) {
				next, hasNext = edge, true
			}
		}
		v, err := w.vector(segs, in)
		if err != nil {
			return nil, err
		}
		for g := range out {
			k := w.vec[v][g]
			if c := &out[g]; len(c.classes) == 0 || c.classes[len(c.classes)-1] != k {
				c.starts, c.classes = append(c.starts, pos), append(c.classes, k)
			}
		}
		if !hasNext {
			return out, nil
		}
		pos = next
	}
}

// vector returns the number of what the sources say at one address, as
// Index.Locate decides it: the first source that knows the place decides,
// and a region row above takes its place from the next that knows one.
func (w *walker) vector(segs []segment, in []bool) (uint32, error) {
	for i := range segs {
		if !in[i] {
			continue
		}
		ki, err := w.info(i, segs[i])
		if err != nil {
			return 0, err
		}
		if !ki.known {
			continue // a record that says nothing: the chain goes on
		}
		if !ki.regionOnly {
			return ki.vec, nil
		}
		row := [2]uint64{uint64(i), segs[i].key}
		for j := i + 1; j < len(segs); j++ {
			if !in[j] {
				continue
			}
			kj, err := w.info(j, segs[j])
			if err != nil {
				return 0, err
			}
			if kj.known && !kj.regionOnly {
				return w.vectorOf([4]uint64{row[0], row[1], uint64(j), segs[j].key}, func() (Location, error) {
					place, err := segs[j].place()
					return w.rows[row].withPlace(place), err
				})
			}
		}
		return w.vectorOf([4]uint64{row[0], row[1], ^uint64(0), 0}, func() (Location, error) { return w.rows[row], nil })
	}
	return w.vectorOf([4]uint64{^uint64(0), 0, ^uint64(0), 0}, func() (Location, error) { return Location{}, nil })
}

// info returns what source i's key is, reading its place once.
func (w *walker) info(i int, s segment) (keyInfo, error) {
	kc := &w.keys[i]
	if kc.hasLast && kc.lastKey == s.key {
		return kc.last, nil
	}
	if ki, ok := kc.m[s.key]; ok {
		kc.lastKey, kc.last, kc.hasLast = s.key, ki, true
		return ki, nil
	}
	k := [2]uint64{uint64(i), s.key}
	loc, err := s.place()
	if err != nil {
		return keyInfo{}, err
	}
	ki := keyInfo{known: loc.known(), regionOnly: loc.regionOnly()}
	switch {
	case ki.regionOnly:
		w.rows[k] = loc
	case ki.known:
		ki.vec = w.classify(loc, true)
	}
	kc.m[s.key] = ki
	kc.lastKey, kc.last, kc.hasLast = s.key, ki, true
	return ki, nil
}

// vectorOf returns the number of a region row's pair or of "nowhere",
// classifying the location loc gives the first time.
func (w *walker) vectorOf(key [4]uint64, loc func() (Location, error)) (uint32, error) {
	if v, ok := w.pairs[key]; ok {
		return v, nil
	}
	l, err := loc()
	if err != nil {
		return 0, err
	}
	v := w.classify(l, key[0] != ^uint64(0))
	w.pairs[key] = v
	return v, nil
}

// classify returns the number of loc's vector of classes.
func (w *walker) classify(loc Location, located bool) uint32 {
	w.scratch = w.scratch[:0]
	for _, class := range w.classes {
		w.scratch = binary.LittleEndian.AppendUint32(w.scratch, class(loc, located))
	}
	if v, ok := w.byClasses[string(w.scratch)]; ok {
		return v
	}
	vec := make([]uint32, len(w.classes))
	for g := range vec {
		vec[g] = binary.LittleEndian.Uint32(w.scratch[4*g:])
	}
	v := uint32(len(w.vec))
	w.vec = append(w.vec, vec)
	w.byClasses[string(w.scratch)] = v
	return v
}
