package gslb

import (
	"net/netip"
	"slices"

	"github.com/meridian-gslb/meridian/geo"
)

// Fork returns an engine over e's records, regions and geo index, with
// e's drains, runtime weights and load shares as they are now and health read from h
// (nil: every target counts as Options.UnknownIsUp says). Draining,
// weighting or refreshing the fork never changes e, and e's later changes
// do not reach the fork: simulations decide hypothetical answers on one
// without touching the answers being served. The records are shared,
// read-only.
func (e *Engine) Fork(h HealthView) *Engine {
	e.mu.Lock()
	over := e.over // the maps are copied on write, so sharing them is safe
	loads := cloneLoads(e.loads)
	loadAt := e.loadAt
	e.mu.Unlock()
	f := &Engine{
		records:     e.records,
		byName:      e.byName,
		regions:     e.regions,
		targets:     e.targets,
		health:      h,
		opts:        e.opts,
		regionNames: e.regionNames,
		poolRegion:  e.poolRegion,
		poolHash:    e.poolHash,
		over:        over,
		loads:       loads,
		loadAt:      loadAt,
	}
	f.geo.Store(e.geo.Load())
	f.Refresh()
	return f
}

// cloneLoads copies the load controller's state, so that a fork starts
// from the shares in force and stepping it leaves e's alone.
func cloneLoads(in [][]loadState) [][]loadState {
	out := make([][]loadState, len(in))
	for ri, pools := range in {
		out[ri] = slices.Clone(pools)
		for pi := range out[ri] {
			out[ri][pi].past = slices.Clone(pools[pi].past)
		}
	}
	return out
}

// Health returns the view the engine reads health from, nil without one.
func (e *Engine) Health() HealthView { return e.health }

// Weights returns the runtime weights in force: pools by PoolKey, targets
// by ID. The maps must not be changed.
func (e *Engine) Weights() (pools, targets map[string]uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.over.poolWeights, e.over.targetWeights
}

// ClientAt is a client in subnet p at loc, located as a query from p
// would be by a geo index that placed p at loc: what a simulation asks
// the policies about an operator's CIDR row or a database's country.
func ClientAt(p netip.Prefix, loc geo.Location, located bool) Client {
	var c Client
	if located {
		c = clientAt(loc)
	}
	if p.IsValid() {
		c.Addr, c.Prefix = p.Addr(), p.Bits()
	}
	return c
}
