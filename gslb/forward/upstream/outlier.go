package upstream

import (
	"time"
)

// OutlierConfig is a pool's passive health (pool.outlier).
type OutlierConfig struct {
	Consecutive int // connect failures in a row that eject; 0 disables
	Base, Max   time.Duration
	MaxPercent  int
}

// ConnectOK clears the backend's run of failures. It only reads in the
// common case, so healthy traffic costs no write to shared memory.
func (b *Backend) ConnectOK() {
	if b.State.failures.Load() != 0 {
		b.State.failures.Store(0)
	}
}

// ConnectFailed counts a failed connection to the backend and ejects it
// once the failures in a row reach the pool's threshold.
func (b *Backend) ConnectFailed(now time.Time) {
	b.State.ConnectErrors.Add(1)
	b.Failed(now)
}

// Failed counts a failure of live traffic: a connection refused, or for
// HTTP a 5xx answer or a timeout. Enough of them in a row eject the
// backend.
func (b *Backend) Failed(now time.Time) {
	s := b.State
	oc := b.Pool.Outlier
	if oc.Consecutive == 0 {
		return
	}
	if int(s.failures.Add(1)) < oc.Consecutive || s.Ejected.Load() {
		return
	}
	s.Pool.eject(b, oc, now)
}

// eject takes b out of rotation for base_ejection_time times the number
// of ejections in a row, up to max_ejection_time, unless the pool already
// has its max_ejection_percent ejected. One backend may always be ejected:
// a percentage of a small pool would otherwise round down to none.
func (ps *PoolState) eject(b *Backend, oc OutlierConfig, now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := b.State
	if s.Ejected.Load() {
		return
	}
	ejected, total := 0, 0
	if p := ps.cur; p != nil {
		total = len(p.Backends)
		for _, o := range p.Backends {
			if o.State.Ejected.Load() {
				ejected++
			}
		}
	}
	if ejected > 0 && (ejected+1)*100 > oc.MaxPercent*total {
		ps.log.Warn("backend not ejected: the pool is at max_ejection_percent",
			"pool", ps.Name, "backend", s.Addr, "failures", s.failures.Load(), "ejected", ejected, "max_ejection_percent", oc.MaxPercent)
		s.failures.Store(0)
		return
	}
	s.mu.Lock()
	if !s.restoredAt.IsZero() && now.Sub(s.restoredAt) > oc.Max {
		// Healthy for longer than the longest ejection: a new
		// failure starts the count again.
		s.ejectStreak = 0
	}
	s.ejectStreak++
	d := min(oc.Base*time.Duration(s.ejectStreak), oc.Max)
	s.ejectedUntil = now.Add(d)
	s.Ejected.Store(true)
	s.Ejections.Add(1)
	failures := s.failures.Swap(0)
	if s.ejectTimer != nil {
		s.ejectTimer.Stop()
	}
	s.ejectTimer = time.AfterFunc(d, func() { ps.restore(s) })
	streak := s.ejectStreak
	s.mu.Unlock()
	ps.refreshLocked()
	ps.log.Warn("backend ejected", "pool", ps.Name, "backend", s.Addr, "failures", failures, "for", d, "ejections_in_a_row", streak)
}

// restore puts an ejected backend back in rotation when its time is up.
func (ps *PoolState) restore(s *BackendState) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s.mu.Lock()
	if !s.Ejected.Load() {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	s.Ejected.Store(false)
	s.ejectTimer = nil
	s.restoredAt = now
	s.ejectedUntil = time.Time{}
	s.joined.Store(now.UnixNano())
	s.mu.Unlock()
	ps.refreshLocked()
	ps.log.Info("backend restored", "pool", ps.Name, "backend", s.Addr)
}
