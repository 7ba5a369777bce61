package node

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/whatif"
	"github.com/prometheus/client_golang/prometheus"
)

// guardWatch holds the configuration's [[guard]] rules for the admin API
// and watches what health does to them: health never waits for a guard
// (failover goes on), but a guard it breaks is logged when it breaks and
// when it holds again, and meridian_guard_broken shows it.
type guardWatch struct {
	log    *slog.Logger
	guards atomic.Pointer[[]whatif.Guard]
	engine func() *gslb.Engine // the engine serving now, for the metric

	mu     sync.Mutex // serialises observe
	broken map[string]string
}

var _ admin.GuardSource = (*Node)(nil)

// Guards are the [[guard]] rules in force (admin.GuardSource).
func (n *Node) Guards() []whatif.Guard { return *n.guards.guards.Load() }

func newGuardWatch(log *slog.Logger, guards []whatif.Guard, engine func() *gslb.Engine) *guardWatch {
	g := &guardWatch{log: log, engine: engine, broken: map[string]string{}}
	g.set(guards)
	return g
}

func (g *guardWatch) set(guards []whatif.Guard) { g.guards.Store(&guards) }

// observe logs the guards health broke or mended since the last look; it
// runs after each health publish has refreshed e.
func (g *guardWatch) observe(e *gslb.Engine) {
	guards := *g.guards.Load()
	if len(guards) == 0 {
		return
	}
	now := map[string]string{}
	for _, v := range whatif.Broken(guards, e) {
		now[v.Guard] = v.Reason
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, reason := range now {
		if _, was := g.broken[name]; !was {
			g.log.Warn("guard broken by health; failover goes on", "guard", name, "reason", reason)
		}
	}
	for name := range g.broken {
		if _, is := now[name]; !is {
			g.log.Info("guard holds again", "guard", name)
		}
	}
	g.broken = now
}

var guardBrokenDesc = prometheus.NewDesc("meridian_guard_broken",
	"1 while the state in force breaks the guard (health or a forced change), else 0.", []string{"guard"}, nil)

// Describe implements prometheus.Collector.
func (g *guardWatch) Describe(ch chan<- *prometheus.Desc) { ch <- guardBrokenDesc }

// Collect implements prometheus.Collector: the guards judged now.
func (g *guardWatch) Collect(ch chan<- prometheus.Metric) {
	guards := *g.guards.Load()
	e := g.engine()
	if e == nil {
		return
	}
	broken := whatif.Broken(guards, e)
	for _, gd := range guards {
		v := 0.0
		if slices.ContainsFunc(broken, func(b whatif.Violation) bool { return b.Guard == gd.Name }) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(guardBrokenDesc, prometheus.GaugeValue, v, gd.Name)
	}
}
