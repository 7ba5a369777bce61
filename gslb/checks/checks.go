package checks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/probes"
)

// rttWeight is the share of a new round-trip time in a region's smoothed
// value (an EWMA, as TCP's SRTT uses 1/8).
const rttWeight = 0.125

// Runner runs the checks of the current configuration and writes what
// they find into a health store; it knows nothing of the engine, which
// follows the store.
type Runner struct {
	store *health.Store
	sched *probes.Scheduler
	log   *slog.Logger

	mu          sync.Mutex
	rtt         map[string]float64   // region -> smoothed RTT in ns
	transitions map[[2]string]uint64 // (target, new state) -> count, for metrics
}

// New returns a runner writing into store; Run starts it.
func New(store *health.Store, log *slog.Logger) *Runner {
	r := &Runner{store: store, log: log, rtt: map[string]float64{}, transitions: map[[2]string]uint64{}}
	r.sched = probes.NewScheduler(probes.Options{Sink: probes.SinkFunc(r.observe), Logger: log})
	return r
}

// Update sets the checks to run. Unchanged checks keep their state; new
// ones run at once. On error nothing changed.
func (r *Runner) Update(specs []probes.CheckSpec) error {
	targets := make([]probes.Target, 0, len(specs))
	for _, s := range specs {
		ck, err := probes.NewChecker(s)
		if err != nil {
			return fmt.Errorf("check of %s: %w", s.Target, err)
		}
		targets = append(targets, probes.Target{
			ID: string(s.Target), Checker: ck, Interval: s.Interval, Timeout: s.Timeout,
			Rise: s.Rise, Fall: s.Fall,
		})
	}
	return r.sched.Update(targets) // on error nothing changed: the old checks stay
}

// Run checks until ctx ends.
func (r *Runner) Run(ctx context.Context) error { return r.sched.Run(ctx) }

// Snapshot returns every target's status, for explanations.
func (r *Runner) Snapshot() map[string]probes.Status { return r.sched.Snapshot() }

// observe takes every result: the state goes to the store, and a
// successful round trip feeds the region's smoothed RTT, both in one
// publish.
func (r *Runner) observe(sid string, st probes.Status) {
	id := health.TargetID(sid)
	region := id.Region()
	var rtt time.Duration
	if st.Result.OK && st.Result.RTT > 0 && region != "" {
		r.mu.Lock()
		old, seen := r.rtt[region]
		v := float64(st.Result.RTT)
		if seen {
			v = old + rttWeight*(v-old)
		}
		r.rtt[region] = v
		r.mu.Unlock()
		rtt = time.Duration(v)
	}
	var changed bool
	r.store.Update(func(tx *health.Tx) {
		changed = tx.Set(id, st.State)
		if rtt > 0 {
			tx.SetRTT(region, rtt)
		}
	})
	if changed {
		r.mu.Lock()
		r.transitions[[2]string{sid, st.State.String()}]++
		r.mu.Unlock()
		level := slog.LevelInfo
		if st.State == health.Down {
			level = slog.LevelWarn
		}
		r.log.Log(context.Background(), level, "target "+st.State.String(), "target", sid, "reason", st.Reason, "rtt", st.Result.RTT)
	}
}
