package upstream

import (
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
)

// outlier sets a test pool's outlier detection.
func outlier(consecutive int, base, max time.Duration, maxPercent int) func(*Pool) {
	return func(p *Pool) {
		p.Outlier = OutlierConfig{Consecutive: consecutive, Base: base, Max: max, MaxPercent: maxPercent}
	}
}

// A repeat offender stays out longer: each ejection in a row adds
// base_ejection_time, up to max_ejection_time.
func TestEjectionGrowsForRepeatOffenders(t *testing.T) {
	p := testPool(t, "round_robin", outlier(1, time.Hour, 3*time.Hour, 100), 1, 1)
	b := p.Backends[0]
	now := time.Now()
	for i, want := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 3 * time.Hour} {
		b.ConnectFailed(now)
		b.State.mu.Lock()
		got := b.State.ejectedUntil.Sub(now)
		b.State.ejectTimer.Stop()
		b.State.mu.Unlock()
		if got != want {
			t.Errorf("ejection %d lasts %v, want %v", i+1, got, want)
		}
		p.State.restore(b.State)
	}
	// max_ejection_percent: of two backends at 50%, one may be out, the
	// second not.
	p = testPool(t, "round_robin", outlier(1, time.Hour, config.DefaultMaxEjectionTime, 50), 1, 1)
	p.Backends[0].ConnectFailed(now)
	p.Backends[1].ConnectFailed(now)
	if !p.Backends[0].State.Ejected.Load() || p.Backends[1].State.Ejected.Load() {
		t.Errorf("ejected = %v, %v; want the first only", p.Backends[0].State.Ejected.Load(), p.Backends[1].State.Ejected.Load())
	}
	p.Backends[0].State.ejectTimer.Stop()
}
