package cluster

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/gslb/quorum"
)

// DefaultRecheck is how often Health recomputes verdicts when nothing
// arrives, so that results age out on time.
const DefaultRecheck = time.Second

// Health feeds a DNS node's health store from the cluster: whenever
// results arrive it recomputes the verdicts of the node's quorum table and
// writes them, and the vantages' round-trip times, into the store, whose
// snapshot the engine folds into its plan. It knows nothing of the
// engine: the store tells whoever follows it.
type Health struct {
	node    *Node
	store   *health.Store
	log     *slog.Logger
	recheck time.Duration
	// loadStale is how old a forwarder's load report may be and count;
	// DefaultLoadStaleAfter.
	loadStale time.Duration

	mu          sync.Mutex
	transitions map[[2]string]uint64     // (target, new state) -> count
	regionRTT   map[string]time.Duration // as the latest Apply set them, for the metrics
}

// NewHealth returns the bridge from node's table to store.
func NewHealth(node *Node, store *health.Store, log *slog.Logger) *Health {
	return &Health{node: node, store: store, log: log, recheck: DefaultRecheck, loadStale: DefaultLoadStaleAfter, transitions: map[[2]string]uint64{}}
}

// Run recomputes on every merge and every second until ctx ends.
func (h *Health) Run(ctx context.Context) {
	t := time.NewTicker(h.recheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.node.ResultsChanged():
			changed := h.node.table.RecomputeChanged(time.Now())
			h.store.Update(func(tx *health.Tx) { setVerdicts(tx, changed) })
			h.logChanges(changed)
		case <-t.C:
			h.apply(time.Now(), true)
		}
	}
}

// Apply recomputes every verdict at now, suspects and ageing included,
// and publishes the changes and the regions' round-trip times as one
// snapshot.
func (h *Health) Apply(now time.Time) { h.apply(now, false) }

// apply is Apply, and with loads the forwarders' fresh load reports too:
// only the ticker of Run publishes them, so that the engine's load
// controller steps once a second, not at every reload.
func (h *Health) apply(now time.Time, loads bool) {
	changed := h.node.table.Recompute(now)
	perVantage := vantageRTTs(h.node.table.Entries(), now, h.node.cfg.Quorum.StaleAfter)
	medians := medianRTTs(perVantage)
	where := map[string]Meta{}
	for _, m := range h.node.Members() {
		if m.Role == RoleProbe {
			where[m.Vantage] = m.Meta
		}
	}
	var vs []health.VantageRTT
	for name, rtts := range perVantage {
		if m, ok := where[name]; ok {
			vs = append(vs, health.VantageRTT{Name: name, Lat: m.Lat, Lon: m.Lon, RTT: rtts})
		}
	}
	slices.SortFunc(vs, func(a, b health.VantageRTT) int { return strings.Compare(a.Name, b.Name) })
	h.store.Update(func(tx *health.Tx) {
		setVerdicts(tx, changed)
		// A region no vantage measures any more keeps its last time.
		for region, rtt := range medians {
			tx.SetRTT(region, rtt)
		}
		tx.SetVantageRTTs(vs)
		if loads {
			tx.SetLoads(h.node.freshLoads(now, h.loadStale))
		}
	})
	h.mu.Lock()
	h.regionRTT = medians
	h.mu.Unlock()
	h.logChanges(changed)
}

func setVerdicts(tx *health.Tx, changed []quorum.Verdict) {
	for _, v := range changed {
		tx.Set(v.Target, v.State)
	}
}

// logChanges counts and logs verdicts that changed.
func (h *Health) logChanges(changed []quorum.Verdict) {
	for _, v := range changed {
		h.mu.Lock()
		h.transitions[[2]string{string(v.Target), v.State.String()}]++
		h.mu.Unlock()
		level := slog.LevelInfo
		if v.State == health.Down {
			level = slog.LevelWarn
		}
		h.log.Log(context.Background(), level, "target "+v.State.String(), "target", v.Target,
			"votes_up", v.Up, "votes_down", v.Down, "reason", v.Reason, "vantages", voteDetail(v.Votes))
	}
}

// RegionRTTs returns the regions' round-trip times as the latest Apply
// computed them.
func (h *Health) RegionRTTs() map[string]time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.regionRTT // replaced whole by Apply, never changed in place
}

// Transitions returns the count of state changes by target and new state.
func (h *Health) Transitions() map[[2]string]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[[2]string]uint64, len(h.transitions))
	for k, v := range h.transitions {
		out[k] = v
	}
	return out
}

func voteDetail(votes []quorum.Vote) string {
	parts := make([]string, 0, len(votes))
	for _, v := range votes {
		s := v.Vantage + "=" + v.State
		switch {
		case v.Suspect:
			s += "(suspect)"
		case !v.Fresh:
			s += "(stale)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// vantageRTTs is each vantage's round-trip time to each region: the mean
// over its fresh, up results for the region's targets.
func vantageRTTs(entries []quorum.Entry, now time.Time, staleAfter time.Duration) map[string]map[string]time.Duration {
	if staleAfter <= 0 {
		staleAfter = quorum.DefaultStaleAfter
	}
	type acc struct {
		sum time.Duration
		n   int
	}
	per := map[[2]string]*acc{} // (vantage, region)
	for _, e := range entries {
		if e.State != health.Up || e.RTT <= 0 || now.Sub(e.Seen) > staleAfter {
			continue
		}
		region := e.Target.Region()
		if region == "" {
			continue
		}
		k := [2]string{e.Vantage, region}
		if per[k] == nil {
			per[k] = &acc{}
		}
		per[k].sum += e.RTT
		per[k].n++
	}
	out := map[string]map[string]time.Duration{}
	for k, a := range per {
		if out[k[0]] == nil {
			out[k[0]] = map[string]time.Duration{}
		}
		out[k[0]][k[1]] = a.sum / time.Duration(a.n)
	}
	return out
}

// medianRTTs is each region's round-trip time over the vantages: the
// median, so that one far or troubled vantage does not move it.
func medianRTTs(perVantage map[string]map[string]time.Duration) map[string]time.Duration {
	byRegion := map[string][]time.Duration{}
	for _, rtts := range perVantage {
		for region, d := range rtts {
			byRegion[region] = append(byRegion[region], d)
		}
	}
	out := make(map[string]time.Duration, len(byRegion))
	for region, rtts := range byRegion {
		slices.Sort(rtts)
		out[region] = rtts[len(rtts)/2]
	}
	return out
}
