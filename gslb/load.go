package gslb

import (
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/meridian-gslb/meridian/gslb/health"
)

// LoadMode says whether a record's answers follow the forwarders' load
// reports (record option load).
type LoadMode uint8

// Load modes.
const (
	LoadOff      LoadMode = iota // load reports are ignored (the default)
	LoadHeadroom                 // a pool's share of new clients falls as its load passes its target
)

// Defaults of the load controller (LoadOptions), one step per publish of
// the load reports: the cluster publishes them once a second.
const (
	DefaultLoadSmoothing  = 0.3  // weight of a new report in the smoothed load (EWMA)
	DefaultLoadMaxStep    = 0.1  // most a share moves in one step
	DefaultLoadHysteresis = 0.02 // a share moves only when its goal is further than this
)

// LoadOptions tune how shares follow load; zero fields take the defaults.
type LoadOptions struct {
	Smoothing  float64
	MaxStep    float64
	Hysteresis float64
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Smoothing <= 0 || o.Smoothing > 1 {
		o.Smoothing = DefaultLoadSmoothing
	}
	if o.MaxStep <= 0 || o.MaxStep > 1 {
		o.MaxStep = DefaultLoadMaxStep
	}
	if o.Hysteresis < 0 || o.Hysteresis >= 1 {
		o.Hysteresis = DefaultLoadHysteresis
	}
	return o
}

// PoolLoad is a pool's load as the engine last folded it, and the share
// of new clients it keeps because of it.
type PoolLoad struct {
	Reports  int     `json:"reports"`  // fresh load reports that name the pool's targets or region
	Unit     string  `json:"unit"`     // of Load, Target and Max ("mixed" when reports disagree)
	Load     float64 `json:"load"`     // summed over the reports, as reported
	Smoothed float64 `json:"smoothed"` // the controller's input
	Target   float64 `json:"target"`
	Max      float64 `json:"max"`
	// Share is the share of the clients the policy sends it that it
	// keeps: 1 below target, falling to 0 at max. It moves by at most
	// the controller's step at each report.
	Share  float64 `json:"share"`
	Reason string  `json:"reason"`
}

// Reasons a pool's share is what it is.
const (
	ReasonNoReports = "no load reports: load ignored"
	ReasonBelow     = "below target: full share"
	ReasonBetween   = "between target and max: share falls"
	ReasonAbove     = "at or above max: only clients no region with headroom can take"
	ReasonRecover   = "below target: share coming back"
)

// loadState is the controller's memory of one pool.
type loadState struct {
	known    bool
	smoothed float64 // load, EWMA
	share    float64
	// The shares of the last TTL steps: resolvers hold answers that long,
	// so the load now reflects their mean, not the share just set.
	past []float64
	next int // in past, the oldest
	last PoolLoad
}

// minGoal is the smallest share a pool is steered to: under it, the
// goal is none. A load that does not fall as the share does (its clients
// do not move, or the demand keeps growing) drives the goal toward 0;
// this gets it there.
const minGoal = 0.05

// maxPast bounds the shares remembered, whatever the TTL.
const maxPast = 600

// applied is the mean share over the remembered steps.
func (st *loadState) applied() float64 {
	sum := 0.0
	for _, s := range st.past {
		sum += s
	}
	return sum / float64(len(st.past))
}

func (st *loadState) remember(share float64) {
	st.past[st.next] = share
	st.next = (st.next + 1) % len(st.past)
}

// headroomShare is the share a pool keeps at a load: 1 up to target, 0
// from max, and between them a smoothstep, flat at both ends so that a
// load near the target or the max does not jolt the share.
func headroomShare(load, target, maxLoad float64) float64 {
	switch {
	case load <= target:
		return 1
	case load >= maxLoad:
		return 0
	}
	x := (load - target) / (maxLoad - target)
	return 1 - x*x*(3-2*x)
}

// goalShare is the share at which the pool's load would settle, given its
// demand at full share: the fixed point s = headroomShare(s*demand).
// Solving for it, rather than feeding the measured load straight back,
// keeps the loop's gain near one whatever the demand (bisection: the
// function falls while s rises).
func goalShare(demand, target, maxLoad float64) float64 {
	if demand <= target {
		return 1
	}
	lo, hi := 0.0, 1.0
	for range 30 {
		mid := (lo + hi) / 2
		if headroomShare(mid*demand, target, maxLoad) > mid {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// step moves the state one report on: the load is smoothed, the demand
// at full share estimated from the share the load reflects (the mean
// over the record's TTL, as resolvers' caches hold answers), and the
// share moved toward its goal by at most MaxStep, and only when the goal
// is further than Hysteresis (or is full share).
func (st *loadState) step(in PoolLoad, ttl uint32, o LoadOptions) {
	if !st.known {
		st.known, st.smoothed, st.share = true, in.Load, 1
		st.past, st.next = make([]float64, min(max(int(ttl), 1), maxPast)), 0
		for i := range st.past {
			st.past[i] = 1
		}
	} else {
		st.smoothed = o.Smoothing*in.Load + (1-o.Smoothing)*st.smoothed
	}
	// A share near 0 says little of the demand: stragglers in caches are
	// most of the load. Flooring it overestimates demand, which is the
	// safe side.
	demand := st.smoothed / max(st.applied(), 0.05)
	goal := goalShare(demand, in.Target, in.Max)
	if goal < minGoal {
		goal = 0 // a region this far past its max takes no new clients while others have room
	}
	if d := goal - st.share; math.Abs(d) > o.Hysteresis || (goal == 1 && st.share < 1) {
		st.share += max(-o.MaxStep, min(o.MaxStep, d))
	}
	st.share = max(0, min(1, st.share))
	st.remember(st.share)
	in.Smoothed, in.Share = st.smoothed, st.share
	switch {
	case st.smoothed >= in.Max:
		in.Reason = ReasonAbove
	case st.smoothed > in.Target:
		in.Reason = ReasonBetween
	case st.share < 1:
		in.Reason = ReasonRecover
	default:
		in.Reason = ReasonBelow
	}
	st.last = in
}

// poolLoadOf sums the valid reports that concern pool p: those naming
// one of its targets' addresses, or with no addresses, its region.
func poolLoadOf(p *Pool, loads []health.Load) PoolLoad {
	var out PoolLoad
	for i := range loads {
		l := &loads[i]
		if !l.Valid() || !concerns(p, l) {
			continue
		}
		if out.Reports == 0 {
			out.Unit = l.Unit
		} else if out.Unit != l.Unit {
			out.Unit = "mixed"
		}
		out.Reports++
		out.Load += l.Load
		out.Target += l.Target
		out.Max += l.Max
	}
	return out
}

func concerns(p *Pool, l *health.Load) bool {
	if len(l.VIPs) == 0 {
		return l.Region == p.Region.Name
	}
	for _, t := range p.Targets {
		if slices.Contains(l.VIPs, t.Addr) {
			return true
		}
	}
	return false
}

// stepLoads runs the controller one step for every pool of the records
// that follow load, when the snapshot's reports are newer than the last
// step. A pool without reports forgets its state: full share, as before
// load was known. Called with e.mu held.
func (e *Engine) stepLoads(snap *health.Snapshot) {
	if snap == nil || snap.LoadsVersion() == e.loadAt {
		return
	}
	e.loadAt = snap.LoadsVersion()
	o := e.opts.Load.withDefaults()
	for ri, r := range e.records {
		if r.Load != LoadHeadroom {
			continue
		}
		for pi, p := range r.Pools {
			st := &e.loads[ri][pi]
			in := poolLoadOf(p, snap.Loads())
			if in.Reports == 0 {
				*st = loadState{last: PoolLoad{Share: 1, Reason: ReasonNoReports}}
				continue
			}
			st.step(in, r.TTL, o)
		}
	}
}

// applyShares writes the controller's shares into a plan's pools
// (copied: plans already published are not changed).
func (e *Engine) applyShares(p *plan) {
	p.shed = make([]bool, len(e.records))
	for ri, r := range e.records {
		if r.Load != LoadHeadroom {
			continue
		}
		pools := slices.Clone(p.records[ri])
		for pi := range pools {
			st := &e.loads[ri][pi]
			pools[pi].load = st.last
			if !st.known {
				pools[pi].load = PoolLoad{Share: 1, Reason: ReasonNoReports}
			}
			pools[pi].keep, pools[pi].shares = math.MaxUint64, false
			if st.known && st.share < 1 {
				pools[pi].keep, pools[pi].shares = uint64(st.share*(1<<63))<<1, true
				p.shed[ri] = true
			}
			pools[pi].share = st.share
			if !st.known {
				pools[pi].share = 1
			}
		}
		p.records[ri] = pools
	}
}

// pickByLoad is the first eligible pool in order that keeps this client
// (by the hash of its /24 or /56 against the pool's share: lowering a
// share moves the same subnets first, and whole ones), else the eligible
// pool with the most share left, the first of equals: a full region still
// answers when no other has room. It returns the rank in order, or -1
// with nothing eligible, and the scope the choice depends on.
func pickByLoad(c *Client, r *Record, order []int, pools []poolPlan, hashes []uint64) (int, int) {
	key, bits := subnetKey(c, 24, 56)
	best, bestShare := -1, -1.0
	for rank, i := range order {
		pp := &pools[i]
		if !pp.eligible {
			continue
		}
		if !pp.shares || keeps(key, hashes[i], pp.keep) {
			return rank, bits
		}
		if pp.share > bestShare {
			best, bestShare = rank, pp.share
		}
	}
	return best, bits
}

// keeps reports whether a pool with threshold keep keeps the client of
// subnet hash key.
func keeps(key, pool, keep uint64) bool {
	var b [16]byte
	putUint64(b[:8], key)
	putUint64(b[8:], pool)
	return xxhash.Sum64(b[:]) < keep
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// Loads returns each pool's load of a record as the plan holds it, in
// configuration order; nil for a record that does not follow load.
func (e *Engine) Loads(r *Record) []PoolLoad {
	if r.Load != LoadHeadroom {
		return nil
	}
	pools := e.plan.Load().records[r.idx]
	out := make([]PoolLoad, len(pools))
	for i := range pools {
		out[i] = pools[i].load
	}
	return out
}

// LoadsByRegion returns, for each region, the loads of the pools there of
// every record that follows load, by record key ("name/TYPE").
func (e *Engine) LoadsByRegion() map[string]map[string]PoolLoad {
	out := map[string]map[string]PoolLoad{}
	pl := e.plan.Load()
	for ri, r := range e.records {
		if r.Load != LoadHeadroom {
			continue
		}
		for pi, p := range r.Pools {
			if out[p.Region.Name] == nil {
				out[p.Region.Name] = map[string]PoolLoad{}
			}
			out[p.Region.Name][PoolKey(r, p)] = pl.records[ri][pi].load
		}
	}
	return out
}

// poolHashes are the hashes of the pools' names, by record and pool, for
// pickByLoad.
func poolHashes(records []*Record) [][]uint64 {
	out := make([][]uint64, len(records))
	for ri, r := range records {
		out[ri] = make([]uint64, len(r.Pools))
		for pi, p := range r.Pools {
			out[ri][pi] = xxhash.Sum64String(p.Name)
		}
	}
	return out
}

// LoadReports are the forwarders' fresh load reports the plan was last
// built from; nil without any.
func (e *Engine) LoadReports() []health.Load {
	if snap := e.snapshot(); snap != nil {
		return snap.Loads()
	}
	return nil
}
