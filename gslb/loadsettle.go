package gslb

// AssumedTarget is the target_load taken, as a fraction of max_load, for
// a pool with no load reports when a simulation gives its region a load:
// the configuration alone says nothing of the forwarders' capacity, and
// 80 % leaves the 20 % band over which the share falls.
const AssumedTarget = 0.8

// UnitPercentOfMax is the unit of a settled load with no reports to take
// one from: percent of max_load.
const UnitPercentOfMax = "% of max"

// maxSettleSteps bounds the controller steps a settle runs: near its
// goal the share moves only past the hysteresis, and the demand estimate
// needs a TTL (at most maxPast steps) to catch up with each move.
const maxSettleSteps = 20 * maxPast

// SettledPool is a pool whose load a simulation set: what it was settled
// against and the share it settled at.
type SettledPool struct {
	Key     string  `json:"pool"` // PoolKey
	Region  string  `json:"region"`
	Unit    string  `json:"unit"`
	Load    float64 `json:"load"` // the reported load, held
	Target  float64 `json:"target"`
	Max     float64 `json:"max"`
	Assumed bool    `json:"assumed"` // no reports: target and max assumed (AssumedTarget, 100 % of max)
	Share   float64 `json:"share"`
	Steps   int     `json:"steps"` // controller steps until it settled
}

// SettleLoad has the pools in each region of percent, of every record
// that follows load, report a load of that percent of their max_load,
// and runs their load controller, the one the node steps on every
// report, until the share stops moving: the share the node settles at
// while the region keeps reporting that load (the smoothstep of
// headroomShare at it, within the hysteresis, and none from max, as
// minGoal makes it). Target and max are the pool's last reports', or
// assumed (AssumedTarget of max) without any. It is meant for a fork
// (Fork): the plan is rebuilt with the settled shares. Pools of other
// regions keep theirs.
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
			sp := settle(&e.loads[ri][pi], pct, r.TTL, o)
			sp.Key, sp.Region = PoolKey(r, p), p.Region.Name
			out = append(out, sp)
		}
	}
	e.rebuild()
	return out
}

// settle steps one pool's controller with the load held at pct of max
// until the share has not moved for a TTL and more (the demand estimate,
// read through the shares the resolvers hold, has caught up), or
// maxSettleSteps.
func settle(st *loadState, pct float64, ttl uint32, o LoadOptions) SettledPool {
	in := PoolLoad{Reports: st.last.Reports, Unit: st.last.Unit, Target: st.last.Target, Max: st.last.Max}
	assumed := !st.known
	if assumed {
		in = PoolLoad{Unit: UnitPercentOfMax, Target: 100 * AssumedTarget, Max: 100}
	}
	load := pct / 100 * in.Max
	quiet := min(max(int(ttl), 1), maxPast) + 10
	steps, still := 0, 0
	for steps < maxSettleSteps && still < quiet {
		before := st.share
		in.Load = load
		st.step(in, ttl, o)
		steps++
		if st.share == before {
			still++
		} else {
			still = 0
		}
	}
	return SettledPool{Unit: in.Unit, Load: load, Target: in.Target, Max: in.Max, Assumed: assumed, Share: st.share, Steps: steps}
}
