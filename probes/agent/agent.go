package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb/cluster"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/probes"
)

// DefaultRefresh is how often an agent sends every result, when
// Config.Refresh is 0. It must stay well under the DNS nodes' stale_after
// (10 s by default), since results not refreshed stop voting.
const DefaultRefresh = 2 * time.Second

// rttWeight is the share of a new round-trip time in the smoothed value
// (an EWMA, as TCP's SRTT uses 1/8).
const rttWeight = 0.125

// Config configures an Agent.
type Config struct {
	// Cluster is the agent's membership: its Meta says the role is probe
	// and carries the vantage's name, region and coordinates.
	Cluster cluster.Config
	Source  netip.Addr    // checks are sent from this address; zero lets the system choose
	Refresh time.Duration // DefaultRefresh when 0
	Log     *slog.Logger
}

// Agent is a vantage: it learns the check plan from the DNS nodes, runs
// the checks and reports the results to every DNS node.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	node  *cluster.Node
	sched *probes.Scheduler

	// boot names this run at the DNS nodes: they start a vantage whose
	// boot changes over, judging it before its votes count.
	boot uint64

	mu      sync.Mutex
	results map[string]*result // by target
	pending map[string]bool    // changed since the last send
	seq     uint64
	wake    chan struct{}
	specs   map[string]probes.CheckSpec // the plan in force
	// whole is set when every target of the plan has its first result
	// and the whole view is yet to be sent: the DNS nodes judge a
	// vantage on its whole view before counting its votes.
	whole bool
}

type result struct {
	state   health.State
	seq     uint64
	rtt     float64 // smoothed, ns
	reason  string
	checked time.Time
	due     time.Duration // interval + timeout: a result older than this is late
	backed  time.Time     // the newest result that agrees with state
	window  time.Duration // how long state may stand without one
	streak  int
}

// New starts the agent's cluster node; Run joins and works.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	cfg.Cluster.Meta.Role = cluster.RoleProbe
	if cfg.Cluster.Meta.Vantage == "" {
		return nil, errors.New("a probe agent needs a vantage name")
	}
	if cfg.Cluster.Name == "" {
		cfg.Cluster.Name = cfg.Cluster.Meta.Vantage
	}
	if cfg.Cluster.Log == nil {
		cfg.Cluster.Log = cfg.Log
	}
	start := time.Now()
	a := &Agent{
		cfg: cfg, log: cfg.Log, boot: uint64(start.UnixNano()),
		results: map[string]*result{}, pending: map[string]bool{},
		// Sequence numbers start at the clock so that a restarted agent's
		// results replace those of its previous run.
		seq:   uint64(start.UnixNano()),
		wake:  make(chan struct{}, 1),
		specs: map[string]probes.CheckSpec{},
	}
	a.sched = probes.NewScheduler(probes.Options{Sink: probes.SinkFunc(a.observe), Logger: cfg.Log})
	node, err := cluster.New(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	a.node = node
	node.SetOwnResults(a.all)
	return a, nil
}

// Node is the agent's cluster membership.
func (a *Agent) Node() *cluster.Node { return a.node }

// Run joins the cluster and checks and reports until ctx ends; then it
// leaves the cluster, so that the DNS nodes stop counting its votes at
// once rather than after failure detection.
func (a *Agent) Run(ctx context.Context) error {
	defer a.node.Leave(time.Second)
	if err := a.node.Join(ctx); err != nil {
		return err
	}
	a.follow()
	schedDone := make(chan error, 1)
	go func() { schedDone <- a.sched.Run(ctx) }()
	refresh := time.NewTicker(a.cfg.Refresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-schedDone
		case <-a.node.PlansChanged():
			a.follow()
		case <-a.wake:
			a.send(false)
		case <-refresh.C:
			a.send(true)
		}
	}
}

// follow runs the checks of the plans the DNS nodes published: their
// union, a target defined differently by two plans taking the newer
// plan's definition (a reload rolling through the DNS nodes).
func (a *Agent) follow() {
	plans := a.node.Plans()
	slices.SortFunc(plans, func(x, y cluster.Plan) int { return compareUint(x.Generation, y.Generation) })
	specs := map[string]probes.CheckSpec{}
	for _, p := range plans {
		list, err := probes.DecodePlan(p.Body)
		if err != nil {
			a.log.Error("ignoring a check plan", "from", p.Origin, "err", err)
			continue
		}
		for _, s := range list {
			specs[string(s.Target)] = s
		}
	}
	targets := make([]probes.Target, 0, len(specs))
	for id, s := range specs {
		s.Source = a.cfg.Source
		ck, err := probes.NewChecker(s)
		if err != nil {
			a.log.Error("ignoring a check", "target", id, "err", err)
			delete(specs, id)
			continue
		}
		targets = append(targets, probes.Target{
			ID: id, Checker: ck, Interval: s.Interval, Timeout: s.Timeout, Rise: s.Rise, Fall: s.Fall,
		})
	}
	if err := a.sched.Update(targets); err != nil {
		a.log.Error("check plan", "err", err)
		return
	}
	a.mu.Lock()
	for id := range a.results {
		if _, ok := specs[id]; !ok {
			delete(a.results, id)
			delete(a.pending, id)
		}
	}
	a.specs = specs
	a.mu.Unlock()
	a.log.Info("following the check plan", "targets", len(targets), "plans", len(plans))
}

func compareUint(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// observe takes every check result from the scheduler.
func (a *Agent) observe(id string, st probes.Status) {
	if st.State == probes.Unknown {
		return
	}
	a.mu.Lock()
	spec, ok := a.specs[id]
	if !ok {
		a.mu.Unlock()
		return // removed from the plan while it ran
	}
	r := a.results[id]
	if r == nil {
		r = &result{}
		a.results[id] = r
		a.whole = a.whole || len(a.results) == len(a.specs)
	}
	r.take(st, spec)
	changed := st.Changed || r.seq == 0
	if changed {
		a.seq++
		r.seq = a.seq
		r.state = st.State
		r.reason = st.Reason
		a.pending[id] = true
	}
	wake := changed || a.whole
	a.mu.Unlock()
	if changed {
		level := slog.LevelInfo
		if st.State == probes.Down {
			level = slog.LevelWarn
		}
		a.log.Log(context.Background(), level, "target "+st.State.String(), "target", id, "reason", st.Reason)
	}
	if wake {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// take records what a result says beyond the state: when, the evidence
// behind the state, and the round-trip time.
func (r *result) take(st probes.Status, spec probes.CheckSpec) {
	interval, timeout := spec.Interval, spec.Timeout
	if interval == 0 {
		interval = probes.DefaultInterval
	}
	if timeout == 0 {
		timeout = min(probes.DefaultTimeout, interval)
	}
	r.checked, r.backed, r.streak = st.Checked, st.Backed, st.Streak()
	r.due = interval + timeout
	r.window = window(st.State, spec, interval, timeout)
	if st.Result.OK && st.Result.RTT > 0 {
		v := float64(st.Result.RTT)
		if r.rtt > 0 {
			v = r.rtt + rttWeight*(v-r.rtt)
		}
		r.rtt = v
	}
}

// window is how long a state may stand without a result that agrees with
// it: the checks that may disagree before it flips (fall while up, rise
// while down), each an interval apart, the last one's timeout, and a
// timeout more for the way to the DNS nodes. A state older than that was
// carried, not observed.
func window(st probes.State, spec probes.CheckSpec, interval, timeout time.Duration) time.Duration {
	n := spec.Fall
	if n == 0 {
		n = probes.DefaultFall
	}
	if st == probes.Down {
		n = spec.Rise
		if n == 0 {
			n = probes.DefaultRise
		}
	}
	return time.Duration(n)*interval + 2*timeout
}

// send reports the changed results, or every result when all or when
// the whole view is due.
func (a *Agent) send(all bool) {
	now := time.Now()
	a.mu.Lock()
	all = all || a.whole
	rs := cluster.Results{Vantage: a.cfg.Cluster.Meta.Vantage, Boot: a.boot, Complete: all && a.complete()}
	for id, r := range a.results {
		if all || a.pending[id] {
			rs.Reports = append(rs.Reports, a.report(id, r, now))
		}
	}
	clear(a.pending)
	if rs.Complete {
		a.whole = false
	}
	a.mu.Unlock()
	if len(rs.Reports) > 0 {
		a.node.SendResults(rs)
	}
}

// complete reports whether every target of the plan has a result; a.mu
// is held.
func (a *Agent) complete() bool { return len(a.specs) > 0 && len(a.results) == len(a.specs) }

// all lists every result, for the cluster's full-state exchange.
func (a *Agent) all() cluster.Results {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := cluster.Results{Vantage: a.cfg.Cluster.Meta.Vantage, Boot: a.boot, Complete: a.complete()}
	for id, r := range a.results {
		rs.Reports = append(rs.Reports, a.report(id, r, now))
	}
	return rs
}

// report is r as it travels. Its Delay is how late the target's check
// is: a result stays current until its next check is due, so a vantage
// whose checks stall stops voting after stale_after even while it is
// still sending. Its Backed is the age of the result the state rests on,
// by the later of the monotonic and the wall clock: the first misses a
// host's suspend, the second a process's freeze.
func (a *Agent) report(id string, r *result, now time.Time) cluster.Report {
	backed := max(now.Sub(r.backed), now.Round(0).Sub(r.backed.Round(0)), 0)
	return cluster.Report{
		Target: health.TargetID(id), State: r.state, Seq: r.seq, RTT: time.Duration(r.rtt), Reason: r.reason,
		Delay:  max(now.Sub(r.checked)-r.due, 0),
		Backed: backed, Window: r.window, Streak: r.streak,
	}
}

// Status is the agent's view, for its logs and tests.
func (a *Agent) Status() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.results))
	for id, r := range a.results {
		out[id] = fmt.Sprintf("%s (%s)", r.state, r.reason)
	}
	return out
}
