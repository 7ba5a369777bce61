package whatif

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/miekg/dns"
)

// Sentinel errors; callers turn them into exit codes and HTTP statuses.
var (
	// ErrUnknownName: the scenario names a region, target or pool the
	// configuration does not have. The message lists the known ones.
	ErrUnknownName = errors.New("unknown name")
	// ErrBadScenario: a malformed entry ("POOL=N" without a number).
	ErrBadScenario = errors.New("bad scenario")
)

// Scenario is a hypothetical change, as the command line's flags and the
// API's JSON keys name it.
type Scenario struct {
	Down    []string `json:"down,omitempty"`    // regions or targets (REGION/ADDR) whose health is down
	Up      []string `json:"up,omitempty"`      // regions or targets whose health is up
	Drain   []string `json:"drain,omitempty"`   // regions or targets drained
	Undrain []string `json:"undrain,omitempty"` // regions or targets whose drain is lifted
	// Weight sets pool weights: "POOL=N", POOL a pool name unique among
	// the records, "NAME/POOL" or "NAME/TYPE/POOL"; or a target's
	// ("REGION/ADDR=N"). N "configured" lifts a runtime weight.
	Weight []string `json:"weight,omitempty"`
	// Load has a region report a load ("REGION=PCT"): PCT percent of
	// its max_load, held, for the records that follow load
	// (load = "headroom"); the report shows the shares the node's load
	// controller settles at (gslb.Engine.SettleLoad).
	Load []string `json:"load,omitempty"`
}

// Empty reports a scenario that changes nothing: the report then shows
// the state in force.
func (s Scenario) Empty() bool {
	return len(s.Down)+len(s.Up)+len(s.Drain)+len(s.Undrain)+len(s.Weight)+len(s.Load) == 0
}

// change is a scenario resolved against an engine's names.
type change struct {
	health        map[string]gslb.State // target ID -> forced state
	drainRegions  map[string]bool       // region -> drained (false: lifted)
	drainTargets  map[string]bool
	poolWeights   []poolWeight
	targetWeights map[string]*uint32 // target ID -> weight (nil: configured)
	drainedByName []string           // what the scenario drains, for the never_drain guards
	loads         map[string]float64 // region -> percent of max_load
	loadOrder     []string           // the regions of loads, as given
	settled       []LoadResult       // what apply settled the loads at
}

type poolWeight struct {
	rec    *gslb.Record
	pool   string
	target string  // a target's ID instead of a pool
	weight *uint32 // nil: back to the configured weight
}

// resolve checks every name of s against e and returns the change.
func resolve(e *gslb.Engine, s Scenario) (*change, error) {
	names := namesOf(e)
	c := &change{health: map[string]gslb.State{}, drainRegions: map[string]bool{}, drainTargets: map[string]bool{}, targetWeights: map[string]*uint32{}}
	var errs []error
	for _, set := range []struct {
		list []string
		fn   func(region string, targets []string)
	}{
		{s.Down, func(_ string, ts []string) { forceAll(c.health, ts, gslb.Down) }},
		{s.Up, func(_ string, ts []string) { forceAll(c.health, ts, gslb.Up) }},
		{s.Drain, func(region string, ts []string) { c.drain(region, ts, true) }},
		{s.Undrain, func(region string, ts []string) { c.drain(region, ts, false) }},
	} {
		for _, name := range set.list {
			region, targets, err := names.regionOrTarget(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			set.fn(region, targets)
		}
	}
	for _, w := range s.Weight {
		pw, err := names.weight(e, w)
		switch {
		case err != nil:
			errs = append(errs, err)
		case pw.target != "":
			c.targetWeights[pw.target] = pw.weight
		default:
			c.poolWeights = append(c.poolWeights, pw)
		}
	}
	var err error
	c.loads, c.loadOrder, err = names.loads(s.Load)
	errs = append(errs, err)
	return c, errors.Join(errs...)
}

func forceAll(m map[string]gslb.State, targets []string, st gslb.State) {
	for _, t := range targets {
		m[t] = st
	}
}

func (c *change) drain(region string, targets []string, on bool) {
	if region != "" {
		c.drainRegions[region] = on
	} else {
		c.drainTargets[targets[0]] = on
	}
	if on {
		c.drainedByName = append(c.drainedByName, cmpOr(region, targets...))
	}
}

func cmpOr(region string, targets ...string) string {
	if region != "" {
		return region
	}
	return targets[0]
}

// names indexes an engine's regions, targets and pools for resolve.
type names struct {
	regionTargets map[string][]string // region -> its targets' IDs
	targets       map[string]bool
	pools         map[string][]poolRef // pool name -> the records holding one
}

type poolRef struct {
	rec  *gslb.Record
	pool string
}

func namesOf(e *gslb.Engine) names {
	n := names{regionTargets: map[string][]string{}, targets: map[string]bool{}, pools: map[string][]poolRef{}}
	for name := range e.Regions() {
		n.regionTargets[name] = nil
	}
	for _, r := range e.AllRecords() {
		for _, p := range r.Pools {
			n.pools[p.Name] = append(n.pools[p.Name], poolRef{r, p.Name})
			for _, t := range p.Targets {
				if !n.targets[t.ID] {
					n.targets[t.ID] = true
					n.regionTargets[p.Region.Name] = append(n.regionTargets[p.Region.Name], t.ID)
				}
			}
		}
	}
	return n
}

// regionOrTarget resolves a region's name to its targets, or a target's
// ID to itself (region "").
func (n names) regionOrTarget(name string) (region string, targets []string, err error) {
	if ts, ok := n.regionTargets[name]; ok {
		return name, ts, nil
	}
	if n.targets[name] {
		return "", []string{name}, nil
	}
	return "", nil, fmt.Errorf("%w: %q is neither a region nor a target; regions: %s; targets: %s", ErrUnknownName, name,
		strings.Join(slices.Sorted(maps.Keys(n.regionTargets)), ", "), strings.Join(slices.Sorted(maps.Keys(n.targets)), ", "))
}

// weight resolves "POOL=N".
func (n names) weight(e *gslb.Engine, entry string) (poolWeight, error) {
	key, val, ok := strings.Cut(entry, "=")
	if !ok {
		return poolWeight{}, fmt.Errorf("%w: weight %q: want POOL=N", ErrBadScenario, entry)
	}
	var w *uint32
	if val != "configured" {
		v, err := strconv.ParseUint(val, 10, 32)
		if err != nil || v > MaxWeight {
			return poolWeight{}, fmt.Errorf("%w: weight %q: N must be 0 to %d, or \"configured\"", ErrBadScenario, entry, MaxWeight)
		}
		v32 := uint32(v)
		w = &v32
	}
	if n.targets[key] {
		return poolWeight{target: key, weight: w}, nil
	}
	parts := strings.Split(key, "/")
	pool := parts[len(parts)-1]
	var found []poolRef
	for _, ref := range n.pools[pool] {
		if len(parts) >= 2 && ref.rec.Name != strings.ToLower(dns.Fqdn(parts[0])) {
			continue
		}
		if len(parts) == 3 && dns.TypeToString[ref.rec.Type] != strings.ToUpper(parts[1]) {
			continue
		}
		found = append(found, ref)
	}
	switch {
	case len(found) == 1:
		return poolWeight{rec: found[0].rec, pool: pool, weight: w}, nil
	case len(found) > 1:
		return poolWeight{}, fmt.Errorf("%w: pool %q is in several records; name one: %s", ErrUnknownName, key, strings.Join(poolKeys(found), ", "))
	}
	var all []poolRef
	for _, refs := range n.pools {
		all = append(all, refs...)
	}
	return poolWeight{}, fmt.Errorf("%w: no pool %q; pools: %s", ErrUnknownName, key, strings.Join(poolKeys(all), ", "))
}

// MaxWeight bounds a scenario's weights as the admin API bounds runtime ones.
const MaxWeight = 1_000_000

func poolKeys(refs []poolRef) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, strings.TrimSuffix(r.rec.Name, ".")+"/"+dns.TypeToString[r.rec.Type]+"/"+r.pool)
	}
	slices.Sort(out)
	return out
}

// apply forks base with the change: health forced over base's view,
// drains and weights on top of base's.
func (c *change) apply(base *gslb.Engine) *gslb.Engine {
	f := base.Fork(forced{base: base.Health(), states: c.health})
	for region, on := range c.drainRegions {
		_ = f.DrainRegion(region, on) // resolved: the name exists
	}
	for id, on := range c.drainTargets {
		_ = f.DrainTarget(id, on)
	}
	for _, pw := range c.poolWeights {
		_, _ = f.SetPoolWeight(pw.rec.Name, pw.rec.Type, pw.pool, pw.weight)
	}
	for id, w := range c.targetWeights {
		_, _ = f.SetTargetWeight(id, w)
	}
	if len(c.loads) > 0 {
		c.settled = loadResults(f.AllRecords(), c.loadOrder, c.loads, f.SettleLoad(c.loads))
	}
	return f
}
