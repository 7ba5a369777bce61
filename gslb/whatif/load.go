package whatif

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/miekg/dns"
)

// MaxLoadPercent bounds a scenario's load: ten times what a region can
// carry. From 100 (max) on the settled share is none (no new clients
// while another region has room) whatever the number, so a larger one
// says nothing more and is more likely a typo; it stays accepted up to
// here to paste a load read off a badly overloaded region.
const MaxLoadPercent = 1000

// LoadResult is what a scenario's load did to one region: the pools of
// the records that follow load there and the shares they settled at, and
// the records with a pool there that do not follow load, unchanged by it
// (said once, so an operator does not read their "no change" as the
// load's verdict); Note says why nothing changed when no record there
// follows load.
type LoadResult struct {
	Region    string             `json:"region"`
	Percent   float64            `json:"percent"` // of max_load, as reported
	Pools     []gslb.SettledPool `json:"pools"`
	Unchanged []string           `json:"unchanged,omitempty"` // NAME/TYPE
	Note      string             `json:"note,omitempty"`
}

// loads resolves "REGION=PCT" entries: a known region, once, and a
// percent from 0 to MaxLoadPercent (a trailing % allowed).
func (n names) loads(entries []string) (map[string]float64, []string, error) {
	if len(entries) == 0 {
		return nil, nil, nil
	}
	out := map[string]float64{}
	var order []string
	for _, entry := range entries {
		region, val, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, nil, fmt.Errorf("%w: load %q: want REGION=PCT, PCT the region's load in percent of its max_load", ErrBadScenario, entry)
		}
		if _, known := n.regionTargets[region]; !known {
			return nil, nil, fmt.Errorf("%w: load %q: no region %q; regions: %s", ErrUnknownName, entry, region,
				strings.Join(slices.Sorted(maps.Keys(n.regionTargets)), ", "))
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
		if err != nil || math.IsNaN(pct) || pct < 0 || pct > MaxLoadPercent {
			return nil, nil, fmt.Errorf("%w: load %q: PCT must be a number from 0 to %d (percent of max_load)", ErrBadScenario, entry, MaxLoadPercent)
		}
		if _, twice := out[region]; twice {
			return nil, nil, fmt.Errorf("%w: load %q: region %s given a load twice", ErrBadScenario, entry, region)
		}
		out[region] = pct
		order = append(order, region)
	}
	return out, order, nil
}

// loadResults groups the settled pools by region, in the scenario's
// order, with the records there that do not follow load, and a note for
// a region where none does.
func loadResults(records []*gslb.Record, order []string, pct map[string]float64, pools []gslb.SettledPool) []LoadResult {
	out := make([]LoadResult, 0, len(order))
	for _, region := range order {
		res := LoadResult{Region: region, Percent: pct[region], Pools: []gslb.SettledPool{}}
		for _, p := range pools {
			if p.Region == region {
				res.Pools = append(res.Pools, p)
			}
		}
		for _, r := range records {
			if r.Load != gslb.LoadHeadroom && slices.ContainsFunc(r.Pools, func(p *gslb.Pool) bool { return p.Region.Name == region }) {
				res.Unchanged = append(res.Unchanged, strings.TrimSuffix(r.Name, ".")+"/"+dns.TypeToString[r.Type])
			}
		}
		if len(res.Pools) == 0 {
			res.Note = "no record with a pool in " + region + ` follows load (load = "headroom"): nothing changes`
		}
		out = append(out, res)
	}
	return out
}
