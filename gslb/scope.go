package gslb

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/meridian-gslb/meridian/geo"
)

// An answer's ECS scope tells a resolver for which clients it may reuse
// the answer, so it must never cover a client that would be answered
// differently, and should be as wide as that allows (each narrower scope
// multiplies the resolver's cache entries and its queries to us). The
// engine gets both from the geo index: for every record whose pool order
// depends on where the client is, it cuts the address space where that
// order changes, merging every run of networks with the same order into
// one range, as gdnsd merges a map's networks at load. A decision's scope
// is then the widest prefix of the client's address inside its range.
//
// The order, not the answer, is what must stay the same: health, drains
// and weights change the answer for every client of an order alike, and
// the cut need not be made again when they change.

// geoState is the geo index decisions read, with its partitions, so the
// client's location and its scope always come from the same data.
type geoState struct {
	idx   *geo.Index
	parts []*partition // by record; nil when the order does not depend on the location
	// coverage is class 1 where a source locates the address, 0 where
	// none does, for counting the answers given blind.
	coverage *geo.Partition
}

// partition is a record's cut of the address space, one class per order.
type partition struct {
	*geo.Partition
	// orders holds each class's pool order when the policy's order
	// depends on the location alone (geo, proximity): a decision then
	// reads it instead of locating the client and ordering the pools.
	// nil for latency, whose order depends on measured times too.
	orders [][]int
}

// locationOrdered is implemented by the region policies whose order
// depends on where the client is. orderKey appends to dst what that order
// depends on for a client at loc: two locations with the same key get the
// same order, whatever the health.
type locationOrdered interface {
	orderKey(c *Client, r *Record, h HealthView, dst []byte) []byte
	// locationOnly reports an order that depends on nothing but the
	// location, so the order of each class can be kept.
	locationOnly() bool
}

func (*Geo) locationOnly() bool      { return true }
func (Proximity) locationOnly() bool { return true }
func (Latency) locationOnly() bool   { return false }

var (
	_ locationOrdered = (*Geo)(nil)
	_ locationOrdered = Proximity{}
	_ locationOrdered = Latency{}
)

func (g *Geo) orderKey(c *Client, r *Record, _ HealthView, dst []byte) []byte {
	return appendOrder(dst, g, c, r)
}

func (p Proximity) orderKey(c *Client, r *Record, _ HealthView, dst []byte) []byte {
	return appendOrder(dst, p, c, r)
}

// orderKey of the latency policy: proximity's order, and where the client
// is when the times come from the vantage nearest it, since which vantage
// is nearest changes from place to place.
func (l Latency) orderKey(c *Client, r *Record, h HealthView, dst []byte) []byte {
	dst = appendOrder(dst, Proximity{}, c, r)
	if _, near := h.(NearRTT); near && c.HasCoords {
		dst = fmt.Appendf(dst, "@%x,%x", math.Float64bits(c.Lat), math.Float64bits(c.Lon))
	}
	return dst
}

func appendOrder(dst []byte, p RegionPolicy, c *Client, r *Record) []byte {
	var buf [maxSortPools]int
	order, _ := p.Order(c, r, &Inputs{}, buf[:0])
	for _, i := range order {
		dst = append(dst, byte(i), byte(i>>8))
	}
	return dst
}

// SetGeo gives the engine the geo index to locate clients with, and cuts
// each location-dependent record's partition from it, in one walk over
// the index's sources. For a City database that takes seconds, so call it
// before the engine serves, or from the goroutine that noticed a new
// database; decisions go on reading the previous index until it returns.
// nil: clients are not located. On error nothing changes.
func (e *Engine) SetGeo(idx *geo.Index) error {
	gs := &geoState{idx: idx, parts: make([]*partition, len(e.records))}
	if idx == nil {
		e.geo.Store(gs)
		return nil
	}
	var (
		groups  = map[string]int{} // signature -> group
		members [][]int            // group -> records
		cutters []*cutter
	)
	for i, r := range e.records {
		if _, ok := r.Regions.(locationOrdered); !ok {
			continue
		}
		sig := e.orderSignature(r)
		g, ok := groups[sig]
		if !ok {
			g = len(members)
			groups[sig] = g
			members = append(members, nil)
			cutters = append(cutters, e.newCutter(r))
		}
		members[g] = append(members[g], i)
	}
	classes := make([]geo.Class, len(cutters), len(cutters)+1)
	for g, c := range cutters {
		classes[g] = c.class
	}
	classes = append(classes, func(_ geo.Location, located bool) uint32 {
		if located {
			return 1
		}
		return 0
	})
	parts, err := idx.Partitions(classes...)
	if err != nil {
		return fmt.Errorf("cutting the geo partitions: %w", err)
	}
	gs.coverage = parts[len(cutters)]
	for g, recs := range members {
		p := &partition{Partition: parts[g], orders: cutters[g].orders}
		for _, i := range recs {
			gs.parts[i] = p
		}
	}
	e.geo.Store(gs)
	return nil
}

// cutter numbers the orders a record's policy gives, one class per order.
type cutter struct {
	e      *Engine
	r      *Record
	p      locationOrdered
	ids    map[string]uint32
	orders [][]int // by class, when the order depends on the location only
	key    []byte
}

func (e *Engine) newCutter(r *Record) *cutter {
	return &cutter{e: e, r: r, p: r.Regions.(locationOrdered), ids: map[string]uint32{}}
}

func (k *cutter) class(loc geo.Location, ok bool) uint32 {
	var c Client
	if ok {
		c = clientAt(loc)
	}
	k.key = k.p.orderKey(&c, k.r, k.e.health, k.key[:0])
	id, seen := k.ids[string(k.key)]
	if !seen {
		id = uint32(len(k.ids))
		k.ids[string(k.key)] = id
		if k.p.locationOnly() {
			order, _ := k.r.Regions.Order(&c, k.r, &Inputs{}, nil)
			k.orders = append(k.orders, order)
		}
	}
	return id
}

// orderSignature is the same for records whose orders are the same for
// every client, so they share one partition: same policy settings, same
// pools in the same regions.
func (e *Engine) orderSignature(r *Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%T %+v", r.Regions, r.Regions)
	for _, p := range r.Pools {
		fmt.Fprintf(&b, "|%s %v %v %v", p.Region.Name, p.Region.Lat, p.Region.Lon, p.Region.Bias)
	}
	if _, near := e.health.(NearRTT); near {
		b.WriteString("|near")
	}
	return b.String()
}

// clientAt is a located client at loc, as the policies read it.
func clientAt(loc geo.Location) Client {
	return Client{
		Located: true, Country: loc.Country, Continent: loc.Continent, Subdivision: loc.Subdivision,
		Lat: loc.Lat, Lon: loc.Lon, HasCoords: loc.HasCoords, Region: loc.Region, NetworkBits: loc.Network.Bits(),
	}
}

// Locate prepares c for a client in subnet p, with p's length as its
// prefix, to be located with the engine's current geo index. The lookup
// itself waits until a decision needs it (a geo or proximity record reads
// its partition instead); call Resolve to read the location fields.
func (e *Engine) Locate(c *Client, p netip.Prefix) {
	c.Addr, c.Prefix, c.geo, c.resolved = p.Addr(), p.Bits(), e.geo.Load(), false
}

// Resolve fills c's location fields from the index Engine.Locate gave it;
// a client built by hand is left as it is.
func (c *Client) Resolve() {
	if c.resolved || c.geo == nil {
		return
	}
	addr, prefix, gs := c.Addr, c.Prefix, c.geo
	*c = Client{Addr: addr, Prefix: prefix, geo: gs, resolved: true}
	if gs.idx == nil || !addr.IsValid() {
		return
	}
	if loc, ok := gs.idx.Locate(addr); ok {
		*c = clientAt(loc)
		c.Addr, c.Prefix, c.geo, c.resolved = addr, prefix, gs, true
	}
}

// order returns r's pool order for c and its scope: from r's partition
// when it holds the order, else from the policy, with the scope cut to
// the partition's.
func (e *Engine) order(r *Record, c *Client, sc *Scratch) (order []int, scope int, unlocated bool) {
	gs := c.geo
	if gs != nil && c.Addr.IsValid() && c.Prefix > 0 {
		if part := gs.parts[r.idx]; part != nil && part.orders != nil {
			class, scope := part.Lookup(c.Addr)
			located, _ := gs.coverage.Lookup(c.Addr)
			return append(sc.order[:0], part.orders[class]...), scope, located == 0
		}
	}
	c.Resolve()
	order, scope = r.Regions.Order(c, r, &sc.in, sc.order[:0])
	_, dependent := r.Regions.(locationOrdered)
	return order, scopeOf(r, c, scope), dependent && gs != nil && gs.idx != nil && !c.Located
}

// GeoRanges returns how many ranges the partitions serving now hold, each
// partition shared by several records counted once.
func (e *Engine) GeoRanges() int {
	gs := e.geo.Load()
	seen := map[*partition]bool{}
	n := 0
	for _, p := range gs.parts {
		if p != nil && !seen[p] {
			seen[p] = true
			v4, v6 := p.Ranges()
			n += v4 + v6
		}
	}
	return n
}

// GeoIndex returns the geo index decisions read now, or nil.
func (e *Engine) GeoIndex() *geo.Index { return e.geo.Load().idx }

// scopeOf returns the scope of r's order for c: the policy's own when it
// does not depend on the client (0) or when c was not located by the
// engine, else the widest prefix of c's address with the same order.
func scopeOf(r *Record, c *Client, policyScope int) int {
	if policyScope == 0 || c.geo == nil {
		return policyScope
	}
	if _, ok := r.Regions.(locationOrdered); !ok {
		return policyScope
	}
	part := c.geo.parts[r.idx]
	if part == nil {
		// No geo: every client is unlocated and gets the same order.
		return 0
	}
	_, scope := part.Lookup(c.Addr)
	return scope
}
