package gslb

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Sentinel errors of the engine's API; callers turn them into 404s and 400s.
var (
	ErrUnknownRegion = errors.New("no such region")
	ErrUnknownTarget = errors.New("no such target")
)

// Options tune an Engine.
type Options struct {
	// UnknownIsUp counts targets with no health result yet as up, so a
	// server that has just started answers as before, not blind or empty.
	UnknownIsUp bool
}

// Engine decides dynamic answers. It is safe for concurrent use: Decide
// reads an immutable plan; Refresh, Drain and Restore build a new one.
type Engine struct {
	records []*Record
	byName  map[string][]*Record // name -> records of that name (A and AAAA)
	regions map[string]*Region
	targets map[string]bool
	health  HealthView
	opts    Options

	mu      sync.Mutex // serialises plan builds and override changes
	drained overrides
	plan    atomic.Pointer[plan]
}

type overrides struct {
	regions map[string]bool
	targets map[string]bool
}

// plan is health and overrides turned into what decisions read, aligned
// with Engine.records and Record.Pools.
type plan struct {
	records [][]poolPlan
}

type poolPlan struct {
	eligible bool
	healthy  []Target // usable and healthy, descending weight
	open     []Target // usable whatever their health (fail open), descending weight
}

// New builds an engine over records; health may be nil until SetHealth.
func New(records []*Record, health HealthView, opts Options) (*Engine, error) {
	e := &Engine{
		byName:  make(map[string][]*Record),
		regions: make(map[string]*Region),
		targets: make(map[string]bool),
		health:  health,
		opts:    opts,
		drained: overrides{regions: map[string]bool{}, targets: map[string]bool{}},
	}
	for i, r := range records {
		if r.Regions == nil || r.Targets == nil || len(r.Pools) == 0 {
			return nil, fmt.Errorf("record %s: needs a region policy, a target policy and pools", r.Name)
		}
		for _, other := range e.byName[r.Name] {
			if other.Type == r.Type {
				return nil, fmt.Errorf("record %s: defined twice for one type", r.Name)
			}
		}
		r.idx = i
		e.records = append(e.records, r)
		e.byName[r.Name] = append(e.byName[r.Name], r)
		for _, p := range r.Pools {
			e.regions[p.Region.Name] = p.Region
			for _, t := range p.Targets {
				e.targets[t.ID] = true
			}
		}
	}
	e.Refresh()
	return e, nil
}

// Records returns the records of name (lower-case, fully qualified); a
// name with records answers NODATA for other types.
func (e *Engine) Records(name string) []*Record { return e.byName[name] }

// Refresh rebuilds the plan from the current health and overrides; call it
// when health changes.
func (e *Engine) Refresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rebuild()
}

func (e *Engine) rebuild() {
	p := &plan{records: make([][]poolPlan, len(e.records))}
	for ri, r := range e.records {
		pools := make([]poolPlan, len(r.Pools))
		for pi, pool := range r.Pools {
			pp := &pools[pi]
			if e.drained.regions[pool.Region.Name] {
				continue // drained: not eligible, nothing usable even failing open
			}
			for _, t := range pool.Targets {
				if t.Weight == 0 || e.drained.targets[t.ID] {
					continue
				}
				pp.open = append(pp.open, t)
				if e.up(t.ID) {
					pp.healthy = append(pp.healthy, t)
				}
			}
			byWeight := func(a, b Target) int { return cmp.Compare(b.Weight, a.Weight) }
			slices.SortStableFunc(pp.open, byWeight)
			slices.SortStableFunc(pp.healthy, byWeight)
			pp.eligible = len(pp.healthy) > 0 && len(pp.healthy) >= pool.MinHealthy
		}
		p.records[ri] = pools
	}
	e.plan.Store(p)
}

func (e *Engine) up(id string) bool {
	if e.health == nil {
		return e.opts.UnknownIsUp
	}
	switch e.health.State(id) {
	case Up:
		return true
	case Unknown:
		return e.opts.UnknownIsUp
	}
	return false
}

// DrainRegion takes a region out of every answer whatever its health;
// RestoreRegion puts it back. The same for targets.
func (e *Engine) DrainRegion(name string, drain bool) error {
	if e.regions[name] == nil {
		return fmt.Errorf("%w: %q", ErrUnknownRegion, name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drained.regions = withKey(e.drained.regions, name, drain)
	e.rebuild()
	return nil
}

// DrainTarget takes a target out of every answer, or puts it back.
func (e *Engine) DrainTarget(id string, drain bool) error {
	if !e.targets[id] {
		return fmt.Errorf("%w: %q", ErrUnknownTarget, id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drained.targets = withKey(e.drained.targets, id, drain)
	e.rebuild()
	return nil
}

// withKey returns a copy of m with key set or removed: plans built before
// keep reading the old map.
func withKey(m map[string]bool, key string, set bool) map[string]bool {
	out := make(map[string]bool, len(m)+1)
	for k := range m {
		out[k] = true
	}
	if set {
		out[key] = true
	} else {
		delete(out, key)
	}
	return out
}

// Scratch is a decision's working memory. Reusing one (one per goroutine)
// makes decisions allocation-free; the Decision's addresses live in it
// until the next use.
type Scratch struct {
	order []int
	addrs []netip.Addr
}

// Decide answers record r for client c; s may be nil at the cost of
// allocating.
func (e *Engine) Decide(r *Record, c *Client, s *Scratch) Decision {
	if s == nil {
		s = new(Scratch)
	}
	return e.decide(r, c, s, nil)
}

func (e *Engine) decide(r *Record, c *Client, sc *Scratch, ex *Explanation) Decision {
	order, scope := r.Regions.Order(c, r, e.health, sc.order[:0])
	sc.order = order
	buf := sc.addrs[:0]
	pools := e.plan.Load().records[r.idx]
	if ex != nil {
		ex.Policy, ex.TargetPolicy = r.Regions.Name(), r.Targets.Name()
		ex.explainPools(e, r, c, order, pools)
	}
	d := Decision{TTL: r.TTL}
	for rank, i := range order {
		if !pools[i].eligible {
			continue
		}
		d.Pool = r.Pools[i]
		if rank > 0 {
			d.Outcome = Fallback
			if r.FallbackTTL > 0 {
				d.TTL = r.FallbackTTL
			}
		}
		var s int
		d.Addrs, s = r.Targets.Pick(c, pools[i].healthy, buf)
		sc.addrs = d.Addrs[:0] // keep what the buffer grew to
		d.Scope = max(scope, s)
		return d
	}
	// Nothing eligible.
	switch r.Fail {
	case FailServfail:
		d.Outcome, d.Scope = Servfail, 0
		return d
	case FailNoData:
		d.Outcome, d.Scope = NoData, 0
		return d
	}
	for _, i := range order {
		if len(pools[i].open) > 0 {
			d.Outcome, d.Pool = Opened, r.Pools[i]
			if r.FallbackTTL > 0 {
				d.TTL = r.FallbackTTL
			}
			var s int
			d.Addrs, s = r.Targets.Pick(c, pools[i].open, buf)
			sc.addrs = d.Addrs[:0]
			d.Scope = max(scope, s)
			return d
		}
	}
	d.Outcome, d.Scope = NoData, 0 // everything drained
	return d
}

// AllRecords returns the engine's records in configuration order.
func (e *Engine) AllRecords() []*Record { return e.records }

// Regions returns the regions the records' pools live in.
func (e *Engine) Regions() map[string]*Region { return e.regions }

// HasTarget reports whether a target ID belongs to some pool.
func (e *Engine) HasTarget(id string) bool { return e.targets[id] }

// Drains returns what is drained now.
func (e *Engine) Drains() (regions, targets map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.drained.regions, e.drained.targets
}

// Pools returns each pool of r as the current plan sees it, in
// configuration order (no client: no distance).
func (e *Engine) Pools(r *Record) []Candidate {
	order := make([]int, len(r.Pools))
	for i := range order {
		order[i] = i
	}
	var ex Explanation
	ex.explainPools(e, r, &Client{}, order, e.plan.Load().records[r.idx])
	return ex.Candidates
}
