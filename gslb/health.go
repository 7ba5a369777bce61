package gslb

import (
	"sync"
	"time"
)

// HealthMap is a HealthView kept in memory: the local checker writes
// results into it, and the engine reads. Writers call Engine.Refresh after
// a change so decisions see it.
type HealthMap struct {
	mu     sync.RWMutex
	states map[string]State
	rtts   map[string]time.Duration
}

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
