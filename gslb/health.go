package gslb

import (
	"math"
	"sync"
	"time"
)

// HealthMap is a HealthView kept in memory: the local checker writes
// results into it, and the engine reads. Writers call Engine.Refresh after
// a change so decisions see it.
type HealthMap struct {
	mu       sync.RWMutex
	states   map[string]State
	rtts     map[string]time.Duration
	vantages []VantageRTT
}

// VantageRTT is what one vantage measures: the smoothed round-trip time
// to each region's targets, from where it is.
type VantageRTT struct {
	Name     string
	Lat, Lon float64
	RTT      map[string]time.Duration // by region
}

var _ NearRTT = (*HealthMap)(nil)

var _ HealthView = (*HealthMap)(nil)

// NewHealthMap returns an empty map: every target Unknown, no RTTs.
func NewHealthMap() *HealthMap {
	return &HealthMap{states: map[string]State{}, rtts: map[string]time.Duration{}}
}

// Set records a target's state and reports whether it changed.
func (h *HealthMap) Set(target string, s State) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.states[target]
	h.states[target] = s
	return old != s
}

// SetRTT records the smoothed round-trip time to a region.
func (h *HealthMap) SetRTT(region string, rtt time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rtts[region] = rtt
}

// State implements HealthView.
func (h *HealthMap) State(target string) State {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.states[target]
}

// RTT implements HealthView.
func (h *HealthMap) RTT(region string) (time.Duration, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	d, ok := h.rtts[region]
	return d, ok
}

// SetVantageRTTs replaces the vantages' measurements. Vantages without
// coordinates (both 0) are ignored: nearness cannot be judged.
func (h *HealthMap) SetVantageRTTs(vs []VantageRTT) {
	kept := make([]VantageRTT, 0, len(vs))
	for _, v := range vs {
		if (v.Lat != 0 || v.Lon != 0) && len(v.RTT) > 0 {
			kept = append(kept, v)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vantages = kept
}

// NearestRTTs implements NearRTT. SetVantageRTTs replaces the vantages
// whole, so the map handed out is never written again.
func (h *HealthMap) NearestRTTs(lat, lon float64) map[string]time.Duration {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var best map[string]time.Duration
	bestKm := math.Inf(1)
	for _, v := range h.vantages {
		if d := distanceKm(lat, lon, v.Lat, v.Lon); d < bestKm {
			best, bestKm = v.RTT, d
		}
	}
	return best
}
