package forward

import (
	"time"
)

// outlierConfig is a pool's passive health (pool.outlier).
type outlierConfig struct {
	consecutive int // connect failures in a row that eject; 0 disables
	base, max   time.Duration
	maxPercent  int
}

// connectOK clears the backend's run of failures. It only reads in the
// common case, so healthy traffic costs no write to shared memory.
func (b *Backend) connectOK() {
	if b.st.failures.Load() != 0 {
		b.st.failures.Store(0)
	}
}

// connectFailed counts a failed connection to the backend and ejects it
// once the failures in a row reach the pool's threshold.
func (b *Backend) connectFailed(now time.Time) {
	b.st.connectErrors.Add(1)
	b.failed(now)
}

// failed counts a failure of live traffic: a connection refused, or for
// HTTP a 5xx answer or a timeout. Enough of them in a row eject the
// backend.
func (b *Backend) failed(now time.Time) {
	s := b.st
	oc := b.pool.outlier
	if oc.consecutive == 0 {
		return
	}
	if int(s.failures.Add(1)) < oc.consecutive || s.ejected.Load() {
		return
	}
	s.ps.eject(b, oc, now)
}

// eject takes b out of rotation for base_ejection_time times the number
// of ejections in a row, up to max_ejection_time, unless the pool already
// has its max_ejection_percent ejected. One backend may always be ejected:
// a percentage of a small pool would otherwise round down to none.
func (ps *poolState) eject(b *Backend, oc outlierConfig, now time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := b.st
	if s.ejected.Load() {
		return
	}
	ejected, total := 0, 0
	if p := ps.cur; p != nil {
		total = len(p.backends)
		for _, o := range p.backends {
			if o.st.ejected.Load() {
				ejected++
			}
		}
	}
	if ejected > 0 && (ejected+1)*100 > oc.maxPercent*total {
		ps.log.Warn("backend not ejected: the pool is at max_ejection_percent",
			"pool", ps.name, "backend", s.addr, "failures", s.failures.Load(), "ejected", ejected, "max_ejection_percent", oc.maxPercent)
		s.failures.Store(0)
		return
	}
	s.mu.Lock()
	if !s.restoredAt.IsZero() && now.Sub(s.restoredAt) > oc.max {
		// Healthy for longer than the longest ejection: a new
		// failure starts the count again.
		s.ejectStreak = 0
	}
	s.ejectStreak++
	d := min(oc.base*time.Duration(s.ejectStreak), oc.max)
	s.ejectedUntil = now.Add(d)
	s.ejected.Store(true)
	s.ejections.Add(1)
	failures := s.failures.Swap(0)
	if s.ejectTimer != nil {
		s.ejectTimer.Stop()
	}
	s.ejectTimer = time.AfterFunc(d, func() { ps.restore(s) })
	streak := s.ejectStreak
	s.mu.Unlock()
	ps.refreshLocked()
	ps.log.Warn("backend ejected", "pool", ps.name, "backend", s.addr, "failures", failures, "for", d, "ejections_in_a_row", streak)
}

// restore puts an ejected backend back in rotation when its time is up.
func (ps *poolState) restore(s *backendState) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s.mu.Lock()
	if !s.ejected.Load() {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	s.ejected.Store(false)
	s.ejectTimer = nil
	s.restoredAt = now
	s.ejectedUntil = time.Time{}
	s.joined.Store(now.UnixNano())
	s.mu.Unlock()
	ps.refreshLocked()
	ps.log.Info("backend restored", "pool", ps.name, "backend", s.addr)
}
