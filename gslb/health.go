package gslb

import (
	"math"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// VantageRTT is what one vantage measures (health.VantageRTT).
type VantageRTT = health.VantageRTT

// HealthMap is the engine's view of a health.Store: the node's checks or
// the cluster write the store, and the engine folds the store's snapshot
// into its plan when it is built (Engine.Refresh). Its Set takes a plain
// string, for tests and tools that set states by hand.
type HealthMap struct{ *health.Store }

var (
	_ HealthView = (*HealthMap)(nil)
	_ NearRTT    = (*HealthMap)(nil)
)

// NewHealthMap returns a view of a new, empty store: every target
// Unknown, no RTTs.
func NewHealthMap() *HealthMap { return &HealthMap{health.NewStore()} }

// HealthOf is the engine's view of s.
func HealthOf(s *health.Store) *HealthMap { return &HealthMap{s} }

// Set records a target's state and reports whether it changed. Call
// Engine.Refresh after, unless the store's OnPublish does.
func (h *HealthMap) Set(target string, s State) bool {
	return h.Store.Set(health.TargetID(target), s)
}

// State implements HealthView.
func (h *HealthMap) State(target string) State {
	return h.Snapshot().State(health.TargetID(target))
}

// RTT implements HealthView.
func (h *HealthMap) RTT(region string) (time.Duration, bool) { return h.Snapshot().RTT(region) }

// NearestRTTs implements NearRTT, from the current snapshot. Decisions do
// not call it: the vantages are folded into the plan.
func (h *HealthMap) NearestRTTs(lat, lon float64) map[string]time.Duration {
	var best map[string]time.Duration
	bestKm := math.Inf(1)
	for _, v := range h.Snapshot().Vantages() {
		if d := distanceKm(lat, lon, v.Lat, v.Lon); d < bestKm {
			best, bestKm = v.RTT, d
		}
	}
	return best
}

// snapshotter is a HealthView with a health.Snapshot behind it: the plan
// is built from one snapshot, states and times of one moment.
type snapshotter interface{ Snapshot() *health.Snapshot }

// rttPlan is the round-trip times of the plan's health, by region index
// (Engine.regionIdx), +Inf where not measured: what the latency policy
// orders by, read without a lock or a map.
type rttPlan struct {
	region   []float64 // the view's own times, the same for every client
	vantages []vantagePlan
}

// vantagePlan is one vantage's times, for the clients nearest it.
type vantagePlan struct {
	lat, lon float64
	rtt      []float64
}

// nearest is the times of the vantage nearest a point, as NearestRTTs
// chose it: the first of equally near ones.
func (p *rttPlan) nearest(lat, lon float64) []float64 {
	best, bestKm := -1, math.Inf(1)
	for i := range p.vantages {
		if d := distanceKm(lat, lon, p.vantages[i].lat, p.vantages[i].lon); d < bestKm {
			best, bestKm = i, d
		}
	}
	if best < 0 {
		return nil
	}
	return p.vantages[best].rtt
}

// foldRTTs builds the plan's times from a view: a snapshot's times and
// vantages, or a plain view's times asked region by region.
func (e *Engine) foldRTTs(view HealthView, snap *health.Snapshot) *rttPlan {
	if view == nil {
		return nil
	}
	byRegion := func(rtt func(string) (time.Duration, bool)) []float64 {
		out := make([]float64, len(e.regionNames))
		for i, name := range e.regionNames {
			out[i] = math.Inf(1)
			if d, ok := rtt(name); ok {
				out[i] = float64(d)
			}
		}
		return out
	}
	if snap == nil {
		return &rttPlan{region: byRegion(view.RTT)}
	}
	p := &rttPlan{region: byRegion(snap.RTT)}
	for _, v := range snap.Vantages() {
		p.vantages = append(p.vantages, vantagePlan{lat: v.Lat, lon: v.Lon, rtt: byRegion(func(region string) (time.Duration, bool) {
			d, ok := v.RTT[region]
			return d, ok
		})})
	}
	return p
}
