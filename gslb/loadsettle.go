package gslb

// AssumedTarget is the target_load taken, as a fraction of max_load, for
// a pool with no load reports when a simulation gives its region a load:
// the configuration alone says nothing of the forwarders' capacity, and
// 80 % leaves the 20 % band over which the share falls.
const AssumedTarget = 0.8

// UnitPercentOfMax is the unit of a settled load with no reports to take
// one from: percent of max_load.
const UnitPercentOfMax = "% of max"

// maxSettleSteps bounds the controller steps a settle runs: from a full
// share the step limit needs 10 steps to reach 0, and the demand
// estimate a TTL (at most maxPast steps) to catch up with each move.
const maxSettleSteps = 20 * maxPast

// SettledPool is a pool whose load a simulation set: what it was settled
// against and the share it settled at.
type SettledPool struct {
	Key     string  `json:"pool"` // PoolKey
	Unit    string  `json:"unit"`
	Demand  float64 `json:"demand"` // the load at full share
	Target  float64 `json:"target"`
	Max     float64 `json:"max"`
	Assumed bool    `json:"assumed"` // no reports: target and max assumed (AssumedTarget, 100 % of max)
	Share   float64 `json:"share"`
	Steps   int     `json:"steps"` // controller steps until it settled
}

// SettleLoad gives the pools in each region of percent, of every record
// that follows load, a demand of that percent of their max_load (the
// load they would carry keeping every client the policy sends them), and
// runs their load controller, the one the node steps on every report,
// until the shares stop moving: each step reports the demand times the
// share the pool's clients' resolvers hold (the mean over the record's
// TTL), as the load follows the clients a pool keeps. Target and max are
// the pool's last reports', or assumed (AssumedTarget of max) without
// any. It is meant for a fork (Fork): the plan is rebuilt with the
// settled shares. Pools of other regions keep theirs.
func (e *Engine) SettleLoad(percent map[string]float64) []SettledPool {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.opts.Load.withDefaults()
	var out []SettledPool
	for ri, r := range e.records {
		if r.Load != LoadHeadroom {
			continue
		}
		for pi, p := range r.Pools {
			pct, ok := percent[p.Region.Name]
			if !ok {
				continue
			}
			out = append(out, settle(&e.loads[ri][pi], PoolKey(r, p), pct, r.TTL, o))
		}
	}
	e.rebuild()
	return out
}

// settle steps one pool's controller with the load following its share
// until the share has not moved for a TTL and more (the demand estimate
// has caught up), or maxSettleSteps.
func settle(st *loadState, key string, pct float64, ttl uint32, o LoadOptions) SettledPool {
	in := PoolLoad{Reports: st.last.Reports, Unit: st.last.Unit, Target: st.last.Target, Max: st.last.Max}
	assumed := !st.known
	if assumed {
		in = PoolLoad{Unit: UnitPercentOfMax, Target: 100 * AssumedTarget, Max: 100}
	}
	demand := pct / 100 * in.Max
	quiet := min(max(int(ttl), 1), maxPast) + 10
	steps, still := 0, 0
	for steps < maxSettleSteps && still < quiet {
		held := 1.0
		if st.known {
			held = st.applied()
		}
		before := st.share
		in.Load = demand * held
		st.step(in, ttl, o)
		steps++
		if st.share == before {
			still++
		} else {
			still = 0
		}
	}
	return SettledPool{Key: key, Unit: in.Unit, Demand: demand, Target: in.Target, Max: in.Max, Assumed: assumed, Share: st.share, Steps: steps}
}
