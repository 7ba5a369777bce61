package upstream

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

// hashKey is what the hashing balancers hash (pool.hash_key).
type hashKey uint8

const (
	keySourceIP   hashKey = iota // the client's address: a client sticks to a backend
	keySourceAddr                // address and port: each connection or flow hashes apart
	keySNI                       // the TLS server name: a name sticks to a backend
)

func parseHashKey(s string) hashKey {
	switch s {
	case "source_addr":
		return keySourceAddr
	case "sni":
		return keySNI
	}
	return keySourceIP
}

// hashRequest hashes a connection's key. IPv4-mapped IPv6 addresses hash
// as IPv4, so a dual-stack listener sees one client as one.
func hashRequest(k hashKey, src netip.AddrPort, serverName string) uint64 {
	if k == keySNI {
		return xxhash.Sum64String(serverName)
	}
	var buf [18]byte
	ip := src.Addr().Unmap().As16()
	copy(buf[:16], ip[:])
	if k == keySourceAddr {
		binary.BigEndian.PutUint16(buf[16:], src.Port())
		return xxhash.Sum64(buf[:])
	}
	return xxhash.Sum64(buf[:16])
}

// rehash derives a new 64-bit hash from k and i.
func rehash(k, i uint64) uint64 {
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], k)
	binary.LittleEndian.PutUint64(buf[8:], i)
	return xxhash.Sum64(buf[:])
}

// maxProbes bounds the rehashed looks a table balancer takes past an
// unavailable backend before it scans.
const maxProbes = 32

// probeTable picks a backend from a lookup table of backend indexes: the
// key's slot, and while that backend is unavailable, the slots of keys
// rehashed from it. The keys of available backends never move, and those
// of an unavailable one spread over the rest in proportion to their slots.
func probeTable(table []uint16, bs []*Backend, r *Request) *Backend {
	if len(bs) == 0 || len(table) == 0 {
		return nil
	}
	m := uint64(len(table))
	k := r.Key
	for i := range uint64(maxProbes) {
		if i > 0 {
			k = rehash(r.Key, i)
		}
		if b := bs[table[k%m]]; r.Available(b) {
			return b
		}
	}
	n := uint64(len(bs))
	start := r.Key % n
	for i := range n {
		if b := bs[(start+i)%n]; r.Available(b) {
			return b
		}
	}
	return nil
}

// sourceHash maps a key to a slot of a table where each backend holds
// slots in proportion to its weight, as HAProxy's map-based "balance
// source" does: cheap and even, but a backend added or removed by a reload
// moves most keys. Use maglev or rendezvous when that matters.
type sourceHash struct{ table []uint16 }

// maxHashSlots bounds source_hash's table; weights are scaled down to fit.
const maxHashSlots = 1 << 16

func newSourceHash(bs []*Backend) *sourceHash {
	counts := weightShares(bs, maxHashSlots)
	var table []uint16
	for i, c := range counts {
		for range c {
			table = append(table, uint16(i))
		}
	}
	return &sourceHash{table: table}
}

func (s *sourceHash) Pick(bs []*Backend, r *Request) *Backend { return probeTable(s.table, bs, r) }

// weightShares returns each backend's weight divided by the weights'
// greatest common divisor, scaled down when their sum is over limit; no
// share is below 1.
func weightShares(bs []*Backend, limit int) []int {
	g := 0
	for _, b := range bs {
		g = gcd(g, b.Weight)
	}
	g = max(g, 1)
	total := 0
	for _, b := range bs {
		total += b.Weight / g
	}
	scale := 1.0
	if total > limit {
		scale = float64(limit) / float64(total)
	}
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = max(1, int(float64(b.Weight/g)*scale))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// maglev is Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4): each backend
// has a permutation of the table's M slots from two hashes of its name,
// and the backends take turns claiming their next free preferred slot
// until the table is full. Each backend ends with M/N slots give or take
// one, and a backend removed from the configuration gives up its slots
// while the others keep nearly all of theirs.
//
// Weights are honoured by giving a backend as many virtual nodes as its
// share of the weights, each with its own permutation; a backend that is
// unavailable (down, draining, full) keeps its slots, and its keys go to
// the backends of rehashed slots, so the keys of the others never move.
type maglev struct{ table []uint16 }

// Maglev table sizes: primes, as the permutation needs, the larger for
// pools too big for the smaller to spread evenly (M ≥ 100 N, section 5.3).
const (
	maglevTableSize      = 65537
	maglevLargeTableSize = 655373
)

func newMaglev(bs []*Backend, size int) *maglev {
	if len(bs) == 0 {
		return &maglev{}
	}
	if size == maglevTableSize && len(bs)*100 > size {
		size = maglevLargeTableSize
	}
	m := uint64(size)
	// Virtual nodes: backend index, offset and skip of its permutation.
	type vnode struct {
		backend      uint16
		offset, skip uint64
		next         uint64
	}
	shares := weightShares(bs, max(size/100, len(bs)))
	var nodes []vnode
	for i, b := range bs {
		for j := range shares[i] {
			h := xxhash.Sum64String(b.Addr)
			if j > 0 {
				h = rehash(h, uint64(j))
			}
			nodes = append(nodes, vnode{
				backend: uint16(i),
				offset:  h % m,
				skip:    rehash(h, math.MaxUint64)%(m-1) + 1,
			})
		}
	}
	const empty = math.MaxUint16
	table := make([]uint16, size)
	for i := range table {
		table[i] = empty
	}
	for filled := 0; filled < size; {
		for k := range nodes {
			v := &nodes[k]
			c := (v.offset + v.next*v.skip) % m
			for table[c] != empty {
				v.next++
				c = (v.offset + v.next*v.skip) % m
			}
			table[c] = v.backend
			v.next++
			if filled++; filled == size {
				break
			}
		}
	}
	return &maglev{table: table}
}

func (mg *maglev) Pick(bs []*Backend, r *Request) *Backend { return probeTable(mg.table, bs, r) }

// rendezvous is weighted rendezvous (highest random weight) hashing: each
// backend scores -w/ln(u), u a uniform hash of the key and the backend's
// name, and the best available score wins (Schindelhauer and Schomaker,
// "Weighted Distributed Hash Tables", 2005). A backend's share is exactly
// its share of the weights, a removed or unavailable backend's keys go to
// their second choice and no other key moves, at the price of a score per
// backend per pick.
type rendezvous struct{ seeds []uint64 }

func NewRendezvous(bs []*Backend) *rendezvous {
	seeds := make([]uint64, len(bs))
	for i, b := range bs {
		seeds[i] = xxhash.Sum64String(b.Addr)
	}
	return &rendezvous{seeds: seeds}
}

func (rv *rendezvous) Pick(bs []*Backend, r *Request) *Backend {
	var best *Backend
	bestScore := math.Inf(-1)
	for i, b := range bs {
		if !r.Available(b) {
			continue
		}
		h := rehash(r.Key, rv.seeds[i])
		u := (float64(h>>11) + 0.5) / (1 << 53) // uniform in (0, 1)
		if s := b.EffectiveWeight(r.Now) / -math.Log(u); s > bestScore {
			best, bestScore = b, s
		}
	}
	return best
}
