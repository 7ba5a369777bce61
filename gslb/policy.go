package gslb

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// RegionPolicy orders a record's pools for a client: the first eligible
// one answers, the others are the fallbacks in order.
type RegionPolicy interface {
	// Order appends the indexes of r.Pools to dst in preference order and
	// returns the ECS scope (prefix bits) the order depends on.
	Order(c *Client, r *Record, in *Inputs, dst []int) ([]int, int)
	Name() string
}

// Inputs is what a region policy may read besides the client and the
// record, all from the engine's plan: the pool weights in force
// (configured, or set at runtime through the admin API) and the measured
// round-trip times. The zero Inputs has configured weights and no times.
type Inputs struct {
	Weights []uint32 // by index in Record.Pools

	rtt     *rttPlan // nil: no health, no times
	regions []int    // the region index of each of Record.Pools, for rtt
}

// TargetPolicy picks the addresses to answer from a pool's usable targets
// (healthy, or all of them when failing open), which come in descending
// weight order.
type TargetPolicy interface {
	// Pick appends the chosen addresses to dst and returns the ECS scope
	// the choice depends on.
	Pick(c *Client, targets []Target, dst []netip.Addr) ([]netip.Addr, int)
	Name() string
}

// Interface guards.
var (
	_ RegionPolicy = Failover{}
	_ RegionPolicy = (*Geo)(nil)
	_ RegionPolicy = Proximity{}
	_ RegionPolicy = Latency{}
	_ RegionPolicy = WeightedPools{}
	_ TargetPolicy = All{}
	_ TargetPolicy = WeightedTargets{}
)

// clientScope is the scope of a decision made from the client's location:
// the matched geo network, or the client's own prefix when nothing matched
// (the answer then holds for an unmatched gap of unknown size).
func clientScope(c *Client) int {
	if c.Located && c.NetworkBits > 0 {
		return min(c.NetworkBits, c.Prefix)
	}
	return c.Prefix
}

// Failover serves from the pools in their configured order.
type Failover struct{}

// Name implements RegionPolicy.
func (Failover) Name() string { return "failover" }

// Order implements RegionPolicy.
func (Failover) Order(_ *Client, r *Record, _ *Inputs, dst []int) ([]int, int) {
	for i := range r.Pools {
		dst = append(dst, i)
	}
	return dst, 0
}

// Geo maps where the client is to an ordered list of regions: the most
// specific match wins (a CIDR row naming a region, then subdivision,
// country, continent), then the default list; pools in no list come last,
// nearest first (in configured order for clients without coordinates).
type Geo struct {
	Subdivisions map[string][]string // "US-CA"
	Countries    map[string][]string // "DE"
	Continents   map[string][]string // "EU"
	Default      []string
}

// Name implements RegionPolicy.
func (*Geo) Name() string { return "geo" }

// Order implements RegionPolicy.
func (g *Geo) Order(c *Client, r *Record, _ *Inputs, dst []int) ([]int, int) {
	var regions []string
	switch {
	case c.Region != "":
		dst = appendRegion(dst, r, c.Region)
	case !c.Located:
	case c.Subdivision != "" && g.Subdivisions[c.Country+"-"+c.Subdivision] != nil:
		regions = g.Subdivisions[c.Country+"-"+c.Subdivision]
	case g.Countries[c.Country] != nil:
		regions = g.Countries[c.Country]
	default:
		regions = g.Continents[c.Continent]
	}
	for _, name := range regions {
		dst = appendRegion(dst, r, name)
	}
	for _, name := range g.Default {
		dst = appendRegion(dst, r, name)
	}
	// Pools in no list follow, nearest first when the client has
	// coordinates: the next best region is the next nearest.
	rest := len(dst)
	for i := range r.Pools {
		if !slices.Contains(dst[:rest], i) {
			dst = append(dst, i)
		}
	}
	if c.HasCoords && len(dst)-rest > 1 && len(r.Pools) <= maxSortPools {
		var km [maxSortPools]float64
		for _, i := range dst[rest:] {
			km[i] = biasedKm(c, r.Pools[i].Region)
		}
		sortByKey(dst[rest:], km[:len(r.Pools)])
	}
	return dst, clientScope(c)
}

// appendRegion appends the pools of the named region not yet in dst.
func appendRegion(dst []int, r *Record, region string) []int {
	for i, p := range r.Pools {
		if p.Region.Name == region && !slices.Contains(dst, i) {
			dst = append(dst, i)
		}
	}
	return dst
}

// Proximity orders pools by the great-circle distance from the client to
// their region, scaled by the region's bias. Clients without coordinates
// get the configured order.
type Proximity struct{}

// Name implements RegionPolicy.
func (Proximity) Name() string { return "proximity" }

// Order implements RegionPolicy.
func (Proximity) Order(c *Client, r *Record, _ *Inputs, dst []int) ([]int, int) {
	start := len(dst)
	for i := range r.Pools {
		dst = append(dst, i)
	}
	if !c.HasCoords {
		return dst, clientScope(c)
	}
	var km [maxSortPools]float64
	if len(r.Pools) > len(km) {
		slices.SortStableFunc(dst[start:], func(a, b int) int {
			return cmp.Compare(biasedKm(c, r.Pools[a].Region), biasedKm(c, r.Pools[b].Region))
		})
		return dst, clientScope(c)
	}
	for i, p := range r.Pools {
		km[i] = biasedKm(c, p.Region)
	}
	sortByKey(dst[start:], km[:len(r.Pools)])
	return dst, clientScope(c)
}

// maxSortPools bounds the per-decision arrays on the stack; records with
// more pools than that sort with a comparator instead.
const maxSortPools = 32

// sortByKey sorts pool indexes by key[index], stably: an insertion sort,
// the fastest for the handful of pools a record has.
func sortByKey(idx []int, key []float64) {
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && key[idx[j]] < key[idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}

func biasedKm(c *Client, reg *Region) float64 {
	return distanceKm(c.Lat, c.Lon, reg.Lat, reg.Lon) * (1 - reg.Bias/100)
}

// Latency orders pools by the measured round-trip time to their region;
// regions without a measurement follow, nearest first, and with no
// measurement at all it is Proximity.
type Latency struct{}

// Name implements RegionPolicy.
func (Latency) Name() string { return "latency" }

// Order implements RegionPolicy. The times come from the plan: a decision
// takes no lock and allocates nothing.
func (Latency) Order(c *Client, r *Record, in *Inputs, dst []int) ([]int, int) {
	dst, scope := Proximity{}.Order(c, r, in, dst)
	if in.rtt == nil || len(r.Pools) > maxSortPools || len(in.regions) != len(r.Pools) {
		return dst, scope
	}
	// From the vantage nearest a located client when the health has
	// several; else the region's one RTT, the same for every client.
	times, near := in.rtt.region, false
	if c.HasCoords {
		if t := in.rtt.nearest(c.Lat, c.Lon); t != nil {
			times, near = t, true
		}
	}
	// Measured regions first by RTT; unmeasured keep proximity's order
	// after them (a stable sort on a key that is +Inf for all of them).
	var rtt [maxSortPools]float64
	measured := 0
	for i := range r.Pools {
		rtt[i] = times[in.regions[i]]
		if !math.IsInf(rtt[i], 1) {
			measured++
		}
	}
	if measured == 0 {
		return dst, scope
	}
	sortByKey(dst[len(dst)-len(r.Pools):], rtt[:len(r.Pools)])
	if measured == len(r.Pools) && !near {
		// One view measures the same for every client: the order does
		// not depend on who asks.
		return dst, 0
	}
	return dst, scope
}

// WeightedPools picks the first pool by weight, at random or stably per
// client subnet (rendezvous hashing: one resolver's cache does not flap,
// and changing one pool's weight moves only its share of clients). The
// rest follow in descending weight.
type WeightedPools struct {
	Stable bool
	// StableBits is the client prefix hashed for Stable (default 24 for
	// IPv4, 56 for IPv6 when 0).
	StableBits4, StableBits6 int
}

// Name implements RegionPolicy.
func (w WeightedPools) Name() string {
	if w.Stable {
		return "weighted-stable"
	}
	return "weighted"
}

// Order implements RegionPolicy.
func (w WeightedPools) Order(c *Client, r *Record, in *Inputs, dst []int) ([]int, int) {
	start := len(dst)
	for i := range r.Pools {
		dst = append(dst, i)
	}
	order := dst[start:]
	weight := func(i int) uint32 {
		if i < len(in.Weights) {
			return in.Weights[i]
		}
		return r.Pools[i].Weight
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(weight(b), weight(a)) })
	key, scope := uint64(0), 0
	if w.Stable {
		key, scope = subnetKey(c, w.StableBits4, w.StableBits6)
	} else {
		key = rand.Uint64()
	}
	best, bestScore := -1, -1.0
	for j, i := range order {
		if wt := weight(i); wt > 0 {
			if s := rendezvous(key, xxhash.Sum64String(r.Pools[i].Name), wt); s > bestScore {
				best, bestScore = j, s
			}
		}
	}
	if best > 0 {
		chosen := order[best]
		copy(order[1:best+1], order[:best])
		order[0] = chosen
	}
	return dst, scope
}

// subnetKey hashes the client's subnet for stable choices, returning the
// prefix length it covers.
func subnetKey(c *Client, bits4, bits6 int) (uint64, int) {
	if c.Prefix == 0 || !c.Addr.IsValid() {
		return 0, 0 // asked for an answer that does not depend on the client (RFC 7871 7.1.2)
	}
	bits := cmp.Or(bits6, 56)
	if c.Addr.Is4() {
		bits = cmp.Or(bits4, 24)
	}
	// The hash covers bits of the address even past a shorter ECS
	// prefix (those bits are zero): every client of the /bits then gets
	// the same pool, and the scope says so (RFC 7871 allows a scope
	// longer than the source prefix).
	p, _ := c.Addr.Prefix(bits)
	b := p.Addr().As16()
	return xxhash.Sum64(b[:]) ^ uint64(bits), bits
}

// rendezvous is weighted rendezvous hashing's score for item under key
// (Schindelhauer and Schomaker): -weight / ln(u) with u uniform in (0,1)
// from the hash, so each item wins with probability weight/total.
func rendezvous(key, item uint64, weight uint32) float64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], key)
	binary.LittleEndian.PutUint64(b[8:], item)
	h := xxhash.Sum64(b[:])
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -float64(weight) / math.Log(u)
}

// All answers every usable target, highest weight first, at most Max (0:
// no limit): multivalue answers.
type All struct{ Max int }

// Name implements TargetPolicy.
func (All) Name() string { return "all" }

// Pick implements TargetPolicy.
func (a All) Pick(_ *Client, targets []Target, dst []netip.Addr) ([]netip.Addr, int) {
	for i, t := range targets {
		if a.Max > 0 && i == a.Max {
			break
		}
		dst = append(dst, t.Addr)
	}
	return dst, 0
}

// WeightedTargets answers Count targets (default 1) chosen by weight, at
// random or stably per client subnet.
type WeightedTargets struct {
	Count                    int
	Stable                   bool
	StableBits4, StableBits6 int
}

// Name implements TargetPolicy.
func (w WeightedTargets) Name() string {
	if w.Stable {
		return "weighted-stable"
	}
	return "weighted"
}

// Pick implements TargetPolicy: the Count targets with the highest
// rendezvous scores, which is a weighted choice without replacement.
func (w WeightedTargets) Pick(c *Client, targets []Target, dst []netip.Addr) ([]netip.Addr, int) {
	n := min(max(w.Count, 1), len(targets))
	key, scope := uint64(0), 0
	if w.Stable {
		key, scope = subnetKey(c, w.StableBits4, w.StableBits6)
	} else {
		key = rand.Uint64()
	}
	// Selection of the n best scores without allocating: n is small.
	var chosen [8]int
	var scores [8]float64
	n = min(n, len(chosen))
	k := 0
	for i, t := range targets {
		if t.Weight == 0 {
			continue
		}
		s := rendezvous(key, xxhash.Sum64String(t.ID), t.Weight)
		if k < n {
			chosen[k], scores[k] = i, s
			k++
		} else if s > scores[n-1] {
			chosen[n-1], scores[n-1] = i, s
		} else {
			continue
		}
		for j := k - 1; j > 0 && scores[j] > scores[j-1]; j-- {
			chosen[j], chosen[j-1] = chosen[j-1], chosen[j]
			scores[j], scores[j-1] = scores[j-1], scores[j]
		}
	}
	for _, i := range chosen[:k] {
		dst = append(dst, targets[i].Addr)
	}
	return dst, scope
}
