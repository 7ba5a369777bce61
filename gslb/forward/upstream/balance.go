package upstream

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Balancer chooses the backend for a new connection. Pick returns nil when
// no backend is available, and asks nothing of a backend but
// r.Available(b): health, drains, limits, ejection and panic mode are all
// decided there. A Balancer is built for one pool's backends and is safe
// for concurrent use.
type Balancer interface {
	Pick(backends []*Backend, r *Request) *Backend
}

// Interface guards.
var (
	_ Balancer = (*roundRobin)(nil)
	_ Balancer = (*smoothWeighted)(nil)
	_ Balancer = (*leastConn)(nil)
	_ Balancer = (*powerOfTwo)(nil)
	_ Balancer = (*sourceHash)(nil)
	_ Balancer = (*maglev)(nil)
	_ Balancer = (*rendezvous)(nil)
)

// MaxTried bounds the backends one connection remembers having failed on:
// connect_attempts is at most 10, and pick skips a few full ones.
const MaxTried = 16

// Request is what a balancer knows of a new connection.
type Request struct {
	Key uint64 // hash of the pool's hash_key (see Pool.key); 0 for balancers that do not hash
	Now int64  // unix ns, read once per connection, for slow start

	tried  [MaxTried]*Backend // backends this connection already failed on
	ntried int
}

// Available is the one gate balancers use: the backend is available
// (Backend.Available) and this connection has not already failed on it.
func (r *Request) Available(b *Backend) bool {
	for _, t := range r.tried[:r.ntried] {
		if t == b {
			return false
		}
	}
	return b.Available()
}

// Avoid keeps b out of this connection's later picks.
func (r *Request) Avoid(b *Backend) {
	if r.ntried < len(r.tried) {
		r.tried[r.ntried] = b
		r.ntried++
	}
}

// newBalancer builds the balancer named in the configuration for bs. rnd
// returns a uniform number in [0, n) and must be safe for concurrent use;
// nil uses math/rand/v2.
func newBalancer(name string, bs []*Backend, rnd func(n uint64) uint64) (Balancer, error) {
	if rnd == nil {
		rnd = rand.Uint64N
	}
	switch name {
	case "round_robin":
		return &roundRobin{}, nil
	case "weighted_round_robin":
		return &smoothWeighted{current: make([]float64, len(bs))}, nil
	case "least_conn":
		return &leastConn{current: make([]float64, len(bs))}, nil
	case "p2c":
		return &powerOfTwo{rand: rnd}, nil
	case "source_hash":
		return newSourceHash(bs), nil
	case "maglev":
		return newMaglev(bs, maglevTableSize), nil
	case "rendezvous":
		return NewRendezvous(bs), nil
	}
	return nil, fmt.Errorf("unknown balancer %q", name)
}

// roundRobin takes the backends in turn, skipping unavailable ones. Weights
// are ignored.
type roundRobin struct{ next atomic.Uint64 }

func (rr *roundRobin) Pick(bs []*Backend, r *Request) *Backend {
	n := uint64(len(bs))
	if n == 0 {
		return nil
	}
	start := rr.next.Add(1) - 1
	for i := range n {
		if b := bs[(start+i)%n]; r.Available(b) {
			return b
		}
	}
	return nil
}

// smoothWeighted is nginx's smooth weighted round robin: every pick, each
// available backend's current weight grows by its weight, the largest
// wins and gives back the total. Over sum(weights) picks each backend is
// chosen exactly weight times, spread out rather than in runs (5,1,1 gives
// a a b a c a a).
type smoothWeighted struct {
	mu      sync.Mutex
	current []float64 // by backend index
}

func (sw *smoothWeighted) Pick(bs []*Backend, r *Request) *Backend {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return swrr(sw.current, bs, r, math.Inf(1))
}

// swrr is one smooth weighted round robin pick over the available
// backends whose load is at most maxLoad; current holds the running
// weights, by backend index, under the caller's lock.
func swrr(current []float64, bs []*Backend, r *Request, maxLoad float64) *Backend {
	best, total := -1, 0.0
	for i, b := range bs {
		if !r.Available(b) || (!math.IsInf(maxLoad, 1) && load(b, r.Now) > maxLoad) {
			continue
		}
		w := b.EffectiveWeight(r.Now)
		current[i] += w
		total += w
		if best < 0 || current[i] > current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	current[best] -= total
	return bs[best]
}

// leastConn is nginx's weighted least_conn: the backend with the fewest
// active connections per unit of weight, and among equals (an idle pool,
// say) smooth weighted round robin, so that the load follows the weights
// when connections are short and the connection counts when they are long.
type leastConn struct {
	mu      sync.Mutex
	current []float64 // by backend index, for the round robin among equals
}

func (lc *leastConn) Pick(bs []*Backend, r *Request) *Backend {
	least := math.Inf(1)
	for _, b := range bs {
		if r.Available(b) {
			least = min(least, load(b, r.Now))
		}
	}
	if math.IsInf(least, 1) {
		return nil
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	// Counts move under us: a backend whose load rose since the first
	// look is no longer among the least loaded.
	return swrr(lc.current, bs, r, least)
}

// load is a backend's active connections per unit of its effective weight.
func load(b *Backend, now int64) float64 {
	return float64(b.State.Active.Load()) / b.EffectiveWeight(now)
}

// powerOfTwo draws two distinct backends at random and takes the less
// loaded: nearly least-connections' spread without its scan, and without
// the herd that follows one least-loaded backend (Mitzenmacher's power of
// two choices, Envoy's LEAST_REQUEST).
type powerOfTwo struct{ rand func(n uint64) uint64 }

func (pc *powerOfTwo) Pick(bs []*Backend, r *Request) *Backend {
	n := uint64(len(bs))
	switch n {
	case 0:
		return nil
	case 1:
		if r.Available(bs[0]) {
			return bs[0]
		}
		return nil
	}
	i := pc.rand(n)
	j := pc.rand(n - 1)
	if j >= i {
		j++
	}
	a, b := bs[i], bs[j]
	okA, okB := r.Available(a), r.Available(b)
	switch {
	case okA && okB:
		la, lb := load(a, r.Now), load(b, r.Now)
		switch {
		case la < lb:
			return a
		case lb < la:
			return b
		}
		// Equally loaded (both idle, say): a draw weighted by weight,
		// so that short connections still follow the weights.
		wa, wb := a.EffectiveWeight(r.Now), b.EffectiveWeight(r.Now)
		if float64(pc.rand(1<<53))/(1<<53)*(wa+wb) < wa {
			return a
		}
		return b
	case okA:
		return a
	case okB:
		return b
	}
	// Both drawn were out: take the least loaded of the rest rather than
	// draw again, so a mostly unavailable pool still answers in bounded
	// time.
	var best *Backend
	for k := range n {
		c := bs[(i+k)%n]
		if r.Available(c) && (best == nil || load(c, r.Now) < load(best, r.Now)) {
			best = c
		}
	}
	return best
}
