package gslb

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/miekg/dns"
)

// Sentinel errors of the engine's API; callers turn them into 404s and 400s.
var (
	ErrUnknownRegion = errors.New("no such region")
	ErrUnknownTarget = errors.New("no such target")
	ErrUnknownRecord = errors.New("no such dynamic record")
	ErrUnknownPool   = errors.New("no such pool")
)

// Options tune an Engine.
type Options struct {
	// UnknownIsUp counts targets with no health result yet as up, so a
	// server that has just started answers as before, not blind or empty.
	UnknownIsUp bool
	// Load tunes how shares follow load, for records with load on.
	Load LoadOptions
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
	// Regions by index, for the plan's round-trip times: regionNames in
	// name order, and each record's pools' regions (by Record.idx).
	regionNames []string
	poolRegion  [][]int
	poolHash    [][]uint64 // pools' name hashes, for load shedding

	mu   sync.Mutex // serialises plan builds and override changes
	over overrides  // drains and runtime weights
	// The load controller's state, by record and pool, and the loads
	// version of the snapshot it last stepped on.
	loads  [][]loadState
	loadAt uint64
	plan   atomic.Pointer[plan]
	geo    atomic.Pointer[geoState]
}

type overrides struct {
	regions map[string]bool
	targets map[string]bool
	// Runtime weights: pools by PoolKey, targets by ID.
	poolWeights   map[string]uint32
	targetWeights map[string]uint32
}

// PoolKey names a pool of a record for weight overrides:
// "app.example.test./A/eu-west".
func PoolKey(r *Record, p *Pool) string {
	return r.Name + "/" + dns.TypeToString[r.Type] + "/" + p.Name
}

// plan is health and overrides turned into what decisions read, aligned
// with Engine.records and Record.Pools.
type plan struct {
	records [][]poolPlan
	weights [][]uint32 // pool weights in force, by record and pool
	rtt     *rttPlan   // the health's round-trip times; nil without health
	// statesAt is the StatesVersion of the health snapshot the pools were
	// built from, and fromSnapshot whether there was one: a snapshot that
	// changes only times then refolds the times alone.
	statesAt     uint64
	fromSnapshot bool
	// shed is, by record, whether some pool keeps less than all its
	// clients: only then does a decision hash the client's subnet.
	shed []bool
}

type poolPlan struct {
	eligible bool
	healthy  []Target // usable and healthy, descending weight
	open     []Target // usable whatever their health (fail open), descending weight
	// Load (records with load on): shares is whether the pool keeps
	// less than all its clients, keep the threshold of the client's
	// subnet hash (share * 2^64), and load what explain shows.
	shares bool
	keep   uint64
	share  float64
	load   PoolLoad
}

// New builds an engine over records; health may be nil until SetHealth.
func New(records []*Record, health HealthView, opts Options) (*Engine, error) {
	e := &Engine{
		byName:  make(map[string][]*Record),
		regions: make(map[string]*Region),
		targets: make(map[string]bool),
		health:  health,
		opts:    opts,
		over:    overrides{regions: map[string]bool{}, targets: map[string]bool{}, poolWeights: map[string]uint32{}, targetWeights: map[string]uint32{}},
	}
	for i, r := range records {
		if r.Regions == nil || r.Targets == nil || len(r.Pools) == 0 {
			return nil, fmt.Errorf("record %s: needs a region policy, a target policy and pools", r.Name)
		}
		for _, other := range e.byName[r.Name] {
			if other.Type == r.Type {
				return nil, fmt.Errorf("record %s: defined twice for one type", r.Name)
			}
			if other.HTTPS != nil && r.HTTPS != nil {
				return nil, fmt.Errorf("record %s: https set on both its A and AAAA records; one HTTPS answer per name", r.Name)
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
	e.indexRegions()
	e.poolHash = poolHashes(e.records)
	e.loads = make([][]loadState, len(e.records))
	for ri, r := range e.records {
		e.loads[ri] = make([]loadState, len(r.Pools))
	}
	e.geo.Store(&geoState{parts: make([]*partition, len(e.records))})
	e.Refresh()
	return e, nil
}

// Records returns the records of name (lower-case, fully qualified); a
// name with records answers NODATA for other types.
func (e *Engine) Records(name string) []*Record { return e.byName[name] }

// indexRegions numbers the regions, for the plan's round-trip times.
func (e *Engine) indexRegions() {
	e.regionNames = slices.Sorted(maps.Keys(e.regions))
	e.poolRegion = make([][]int, len(e.records))
	for ri, r := range e.records {
		e.poolRegion[ri] = make([]int, len(r.Pools))
		for pi, p := range r.Pools {
			e.poolRegion[ri][pi], _ = slices.BinarySearch(e.regionNames, p.Region.Name)
		}
	}
}

// Refresh rebuilds the plan from the current health and overrides; call it
// when health changes (a health.Store's OnPublish can). A snapshot whose
// states are those of the plan changes only the round-trip times, and
// only those are folded again.
func (e *Engine) Refresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if snap := e.snapshot(); snap != nil {
		e.stepLoads(snap)
		if old := e.plan.Load(); old != nil && old.fromSnapshot && old.statesAt == snap.StatesVersion() {
			p := *old
			p.rtt = e.foldRTTs(e.health, snap)
			p.records = slices.Clone(p.records)
			e.applyShares(&p)
			e.plan.Store(&p)
			return
		}
	}
	e.rebuild()
}

// snapshot is the health's current snapshot, or nil for a view without.
func (e *Engine) snapshot() *health.Snapshot {
	if s, ok := e.health.(snapshotter); ok {
		return s.Snapshot()
	}
	return nil
}

func (e *Engine) rebuild() {
	snap := e.snapshot()
	p := &plan{records: make([][]poolPlan, len(e.records)), weights: make([][]uint32, len(e.records)), rtt: e.foldRTTs(e.health, snap)}
	if snap != nil {
		p.statesAt, p.fromSnapshot = snap.StatesVersion(), true
	}
	for ri, r := range e.records {
		pools := make([]poolPlan, len(r.Pools))
		weights := make([]uint32, len(r.Pools))
		for pi, pool := range r.Pools {
			weights[pi] = pool.Weight
			if len(e.over.poolWeights) > 0 { // spare building the key on every refresh
				if w, ok := e.over.poolWeights[PoolKey(r, pool)]; ok {
					weights[pi] = w
				}
			}
			pp := &pools[pi]
			if e.over.regions[pool.Region.Name] {
				continue // drained: not eligible, nothing usable even failing open
			}
			for _, t := range pool.Targets {
				if w, ok := e.over.targetWeights[t.ID]; ok {
					t.Weight = w // t is a copy: the configuration stays as written
				}
				if t.Weight == 0 || e.over.targets[t.ID] {
					continue
				}
				pp.open = append(pp.open, t)
				if e.up(snap, t.ID) {
					pp.healthy = append(pp.healthy, t)
				}
			}
			byWeight := func(a, b Target) int { return cmp.Compare(b.Weight, a.Weight) }
			slices.SortStableFunc(pp.open, byWeight)
			slices.SortStableFunc(pp.healthy, byWeight)
			pp.eligible = len(pp.healthy) > 0 && len(pp.healthy) >= pool.MinHealthy
		}
		p.records[ri] = pools
		p.weights[ri] = weights
	}
	e.applyShares(p)
	e.plan.Store(p)
}

func (e *Engine) up(snap *health.Snapshot, id string) bool {
	if e.health == nil {
		return e.opts.UnknownIsUp
	}
	var st State
	if snap != nil {
		st = snap.State(health.TargetID(id))
	} else {
		st = e.health.State(id)
	}
	switch st {
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
	e.over.regions = withKey(e.over.regions, name, drain)
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
	e.over.targets = withKey(e.over.targets, id, drain)
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
	in    Inputs
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
	pl := e.plan.Load()
	sc.in = Inputs{Weights: pl.weights[r.idx], rtt: pl.rtt, regions: e.poolRegion[r.idx]}
	if ex != nil {
		c.Resolve()
	}
	order, scope, unlocated := e.order(r, c, sc)
	sc.order = order
	buf := sc.addrs[:0]
	pools := pl.records[r.idx]
	if ex != nil {
		ex.Policy, ex.TargetPolicy = r.Regions.Name(), r.Targets.Name()
		ex.explainPools(e, r, c, order, pools, pl.weights[r.idx])
	}
	d := Decision{TTL: r.TTL, Unlocated: unlocated}
	if pl.shed[r.idx] {
		if rank, bits := pickByLoad(c, r, order, pools, e.poolHash[r.idx]); rank >= 0 {
			return e.answer(r, c, sc, d, order, pools, rank, max(scope, bits))
		}
	}
	for rank, i := range order {
		if pools[i].eligible {
			return e.answer(r, c, sc, d, order, pools, rank, scope)
		}
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

// answer answers from the pool at rank in order, which is eligible: a
// fallback when the client's first pool is not (a pool passed over for
// load is not a fallback: both are healthy, and the answer keeps the
// record's TTL so that resolvers' caches hold the split steady).
func (e *Engine) answer(r *Record, c *Client, sc *Scratch, d Decision, order []int, pools []poolPlan, rank, scope int) Decision {
	i := order[rank]
	d.Pool = r.Pools[i]
	if rank > 0 && !pools[order[0]].eligible {
		d.Outcome = Fallback
		if r.FallbackTTL > 0 {
			d.TTL = r.FallbackTTL
		}
	}
	var s int
	d.Addrs, s = r.Targets.Pick(c, pools[i].healthy, sc.addrs[:0])
	sc.addrs = d.Addrs[:0] // keep what the buffer grew to
	d.Scope = max(scope, s)
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
	return e.over.regions, e.over.targets
}

// Pools returns each pool of r as the current plan sees it, in
// configuration order (no client: no distance).
func (e *Engine) Pools(r *Record) []Candidate {
	order := make([]int, len(r.Pools))
	for i := range order {
		order[i] = i
	}
	var ex Explanation
	pl := e.plan.Load()
	ex.explainPools(e, r, &Client{}, order, pl.records[r.idx], pl.weights[r.idx])
	return ex.Candidates
}

// SetPoolWeight overrides the weight of pool (its name) in record name's
// record of type qtype, or restores the configured one when weight is nil.
// It returns the weight in force before.
func (e *Engine) SetPoolWeight(name string, qtype uint16, pool string, weight *uint32) (uint32, error) {
	var rec *Record
	for _, r := range e.byName[name] {
		if r.Type == qtype {
			rec = r
		}
	}
	if rec == nil {
		return 0, fmt.Errorf("%w: %s %s", ErrUnknownRecord, name, dns.TypeToString[qtype])
	}
	for i, p := range rec.Pools {
		if p.Name != pool {
			continue
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		old := e.plan.Load().weights[rec.idx][i]
		e.over.poolWeights = WithWeight(e.over.poolWeights, PoolKey(rec, p), weight)
		e.rebuild()
		return old, nil
	}
	return 0, fmt.Errorf("%w: %q in %s", ErrUnknownPool, pool, name)
}

// SetTargetWeight overrides a target's weight everywhere it answers, or
// restores the configured one when weight is nil. It returns the weight
// in force before.
func (e *Engine) SetTargetWeight(id string, weight *uint32) (uint32, error) {
	if !e.targets[id] {
		return 0, fmt.Errorf("%w: %q", ErrUnknownTarget, id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old, ok := e.over.targetWeights[id]
	if !ok {
		old = e.configuredWeight(id)
	}
	e.over.targetWeights = WithWeight(e.over.targetWeights, id, weight)
	e.rebuild()
	return old, nil
}

func (e *Engine) configuredWeight(id string) uint32 {
	for _, r := range e.records {
		for _, p := range r.Pools {
			for _, t := range p.Targets {
				if t.ID == id {
					return t.Weight
				}
			}
		}
	}
	return 0
}

// WithWeight returns a copy of m with key set to *w, or removed when w is nil.
func WithWeight(m map[string]uint32, key string, w *uint32) map[string]uint32 {
	out := make(map[string]uint32, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if w == nil {
		delete(out, key)
	} else {
		out[key] = *w
	}
	return out
}
