package health

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// VantageRTT is what one vantage measures: the smoothed round-trip time
// to each region's targets, from where it is.
type VantageRTT struct {
	Name     string
	Lat, Lon float64
	RTT      map[string]time.Duration // by region
}

// Snapshot is the health known at one moment. It is never changed once
// published: share it freely, and keep it as long as needed.
type Snapshot struct {
	version  uint64 // of the snapshot: every publish adds one
	statesAt uint64 // the version at which states last changed
	states   map[TargetID]State
	rtt      map[string]time.Duration // by region
	vantages []VantageRTT
	loads    []Load
	loadsAt  uint64 // the version at which loads were last published
}

var empty = &Snapshot{states: map[TargetID]State{}, rtt: map[string]time.Duration{}}

// State is a target's state; Unknown for a target never written.
func (s *Snapshot) State(id TargetID) State { return s.states[id] }

// RTT is the round-trip time to a region's targets (from this node, or
// the median over the vantages); ok is false with no measurement.
func (s *Snapshot) RTT(region string) (rtt time.Duration, ok bool) {
	rtt, ok = s.rtt[region]
	return rtt, ok
}

// Vantages are the vantages' own times, those with coordinates only. The
// slice and its maps are the snapshot's: read them, do not change them.
func (s *Snapshot) Vantages() []VantageRTT { return s.vantages }

// Version increases with every publish.
func (s *Snapshot) Version() uint64 { return s.version }

// StatesVersion is the Version at which a state last changed: two
// snapshots with the same StatesVersion hold the same states, and differ
// at most in their round-trip times.
func (s *Snapshot) StatesVersion() uint64 { return s.statesAt }

// Store holds the current Snapshot. Writers (a node's checks, the
// cluster's verdicts) change it through Update or the one-change methods;
// readers load Snapshot, which never blocks. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex // serialises writers
	cur     atomic.Pointer[Snapshot]
	publish atomic.Pointer[func()]
}

// NewStore returns an empty store: every target Unknown, no times.
func NewStore() *Store {
	s := &Store{}
	s.cur.Store(empty)
	return s
}

// Snapshot is the health published last.
func (s *Store) Snapshot() *Snapshot { return s.cur.Load() }

// OnPublish sets the function called after each publish, in the writer's
// goroutine, outside the store's lock; nil for none. The DNS node points
// it at the serving engine's Refresh, which reads Snapshot again.
func (s *Store) OnPublish(f func()) {
	if f == nil {
		s.publish.Store(nil)
		return
	}
	s.publish.Store(&f)
}

// Tx is one batch of changes, published as one snapshot.
type Tx struct {
	next                 Snapshot
	cloned               [2]bool // states, rtt
	statesChanged, dirty bool
	loadsSet             bool
}

// Set records a target's state and reports whether it changed.
func (tx *Tx) Set(id TargetID, st State) bool {
	if tx.next.states[id] == st {
		return false
	}
	if !tx.cloned[0] {
		tx.next.states, tx.cloned[0] = maps.Clone(tx.next.states), true
	}
	tx.next.states[id] = st
	tx.statesChanged, tx.dirty = true, true
	return true
}

// SetRTT records the smoothed round-trip time to a region.
func (tx *Tx) SetRTT(region string, rtt time.Duration) {
	if old, ok := tx.next.rtt[region]; ok && old == rtt {
		return
	}
	if !tx.cloned[1] {
		tx.next.rtt, tx.cloned[1] = maps.Clone(tx.next.rtt), true
	}
	tx.next.rtt[region] = rtt
	tx.dirty = true
}

// SetVantageRTTs replaces the vantages' times. Vantages without
// coordinates (both 0) or without times are left out: nearness cannot be
// judged, or there is nothing to judge by. The maps are kept: the caller
// must not change them afterwards.
func (tx *Tx) SetVantageRTTs(vs []VantageRTT) {
	kept := make([]VantageRTT, 0, len(vs))
	for _, v := range vs {
		if (v.Lat != 0 || v.Lon != 0) && len(v.RTT) > 0 {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 && len(tx.next.vantages) == 0 {
		return
	}
	tx.next.vantages = kept
	tx.dirty = true
}

// Update runs f on a batch of changes and publishes them as one snapshot,
// then calls the OnPublish function; nothing is published when f changed
// nothing. Writers are serialised; readers are never held up.
func (s *Store) Update(f func(tx *Tx)) {
	s.mu.Lock()
	cur := s.cur.Load()
	tx := &Tx{next: *cur}
	f(tx)
	if !tx.dirty {
		s.mu.Unlock()
		return
	}
	tx.next.version = cur.version + 1
	if tx.statesChanged {
		tx.next.statesAt = tx.next.version
	}
	if tx.loadsSet {
		tx.next.loadsAt = tx.next.version
	}
	next := tx.next
	s.cur.Store(&next)
	s.mu.Unlock()
	if p := s.publish.Load(); p != nil {
		(*p)()
	}
}

// Set records a target's state, publishes, and reports whether it changed.
func (s *Store) Set(id TargetID, st State) (changed bool) {
	s.Update(func(tx *Tx) { changed = tx.Set(id, st) })
	return changed
}

// SetRTT records the smoothed round-trip time to a region and publishes.
func (s *Store) SetRTT(region string, rtt time.Duration) {
	s.Update(func(tx *Tx) { tx.SetRTT(region, rtt) })
}

// SetVantageRTTs replaces the vantages' times (Tx.SetVantageRTTs) and
// publishes.
func (s *Store) SetVantageRTTs(vs []VantageRTT) {
	s.Update(func(tx *Tx) { tx.SetVantageRTTs(vs) })
}
