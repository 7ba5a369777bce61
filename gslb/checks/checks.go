package checks

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/probes"
)

// rttWeight is the share of a new round-trip time in a region's smoothed
// value (an EWMA, as TCP's SRTT uses 1/8).
const rttWeight = 0.125

// Runner runs the checks of the current configuration.
type Runner struct {
	health *gslb.HealthMap
	sched  *probes.Scheduler
	engine atomic.Pointer[gslb.Engine]
	log    *slog.Logger

	mu          sync.Mutex
	rtt         map[string]float64   // region -> smoothed RTT in ns
	transitions map[[2]string]uint64 // (target, new state) -> count, for metrics
}

// New returns a runner writing into health; Run starts it.
func New(health *gslb.HealthMap, log *slog.Logger) *Runner {
	r := &Runner{health: health, log: log, rtt: map[string]float64{}, transitions: map[[2]string]uint64{}}
	r.sched = probes.NewScheduler(probes.Options{Sink: probes.SinkFunc(r.observe), Logger: log})
	return r
}

// Update sets the checks to run and the engine to refresh on changes.
// Unchanged checks keep their state; new ones run at once.
func (r *Runner) Update(specs []probes.CheckSpec, e *gslb.Engine) error {
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
	if err := r.sched.Update(targets); err != nil {
		return err // nothing changed: the old checks and engine stay
	}
	r.engine.Store(e)
	if e != nil {
		e.Refresh() // results that came in while the new engine was built
	}
	return nil
}

// Run checks until ctx ends.
func (r *Runner) Run(ctx context.Context) error { return r.sched.Run(ctx) }

// Snapshot returns every target's status, for explanations.
func (r *Runner) Snapshot() map[string]probes.Status { return r.sched.Snapshot() }

// Checker builds the probe for one check: probes.NewChecker, under the
// name the forwarder calls it by.
func Checker(s probes.CheckSpec) (probes.Checker, error) { return probes.NewChecker(s) }

// observe takes every result: a state change goes to the health map and
// rebuilds the engine's plan; successful round trips feed the region's RTT.
func (r *Runner) observe(id string, st probes.Status) {
	state := st.State
	changed := r.health.Set(id, state)
	if st.Result.OK && st.Result.RTT > 0 {
		if region, _, ok := strings.Cut(id, "/"); ok {
			r.mu.Lock()
			old, seen := r.rtt[region]
			v := float64(st.Result.RTT)
			if seen {
				v = old + rttWeight*(v-old)
			}
			r.rtt[region] = v
			r.mu.Unlock()
			r.health.SetRTT(region, time.Duration(v))
		}
	}
	if changed {
		r.mu.Lock()
		r.transitions[[2]string{id, state.String()}]++
		r.mu.Unlock()
		level := slog.LevelInfo
		if state == gslb.Down {
			level = slog.LevelWarn
		}
		r.log.Log(context.Background(), level, "target "+state.String(), "target", id, "reason", st.Reason, "rtt", st.Result.RTT)
		if e := r.engine.Load(); e != nil {
			e.Refresh()
		}
	}
}
