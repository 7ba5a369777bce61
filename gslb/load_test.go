package gslb

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// loadOf is a report for pool p of world(): load and its capacity.
func loadOf(p *Pool, load, target, maxLoad float64) health.Load {
	l := health.Load{Forwarder: "fwd-" + p.Name, Region: p.Region.Name, Listener: "web", Unit: health.UnitRPS,
		Load: load, Target: target, Max: maxLoad}
	for _, t := range p.Targets {
		l.VIPs = append(l.VIPs, t.Addr)
	}
	return l
}

// report publishes loads n times (n controller steps).
func report(e *Engine, h *HealthMap, n int, loads ...health.Load) {
	for range n {
		h.SetLoads(loads)
		e.Refresh()
	}
}

// subnets are 256 client /24s.
func subnets() []*Client {
	out := make([]*Client, 256)
	for i := range out {
		out[i] = client(netip.AddrFrom4([4]byte{10, 1, byte(i), 7}).String(), 32)
	}
	return out
}

// answered counts the decisions by pool name over the clients.
func answered(e *Engine, r *Record, cs []*Client) map[string]int {
	out := map[string]int{}
	for _, c := range cs {
		out[e.Decide(r, c, nil).Pool.Name]++
	}
	return out
}

func TestHeadroomShare(t *testing.T) {
	tests := []struct{ load, want float64 }{{0, 1}, {100, 1}, {115, 0.5}, {130, 0}, {500, 0}}
	for _, tc := range tests {
		if got := headroomShare(tc.load, 100, 130); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("headroomShare(%v) = %v, want %v", tc.load, got, tc.want)
		}
	}
	for l := 100.0; l < 130; l++ { // falls smoothly: never rises, never jumps
		if a, b := headroomShare(l, 100, 130), headroomShare(l+1, 100, 130); b > a || a-b > 0.06 {
			t.Errorf("from %v to %v the share goes %v to %v", l, l+1, a, b)
		}
	}
	// The goal share's load lies between target and max.
	for _, demand := range []float64{101, 150, 400, 10000} {
		s := goalShare(demand, 100, 130)
		if l := s * demand; l < 100-1e-6 || l > 130 {
			t.Errorf("demand %v: goal share %v puts %v on the region", demand, s, l)
		}
	}
}

// TestLoadShedding: a region past its max loses its clients to one with
// headroom, and gets them back when its load drops; a region between
// target and max keeps part; with every region full nothing is
// black-holed.
func TestLoadShedding(t *testing.T) {
	tests := []struct {
		name   string
		loads  [3][3]float64 // use, euw, apne: load, target, max
		policy RegionPolicy
		check  func(t *testing.T, got map[string]int)
	}{
		{"below target: as before", [3][3]float64{{50, 100, 130}, {50, 100, 130}, {0, 10, 20}}, Failover{},
			func(t *testing.T, got map[string]int) {
				if got["use"] != 256 {
					t.Errorf("got %v, want every client on use", got)
				}
			}},
		{"past max: all to headroom", [3][3]float64{{500, 100, 130}, {50, 100, 130}, {0, 10, 20}}, Failover{},
			func(t *testing.T, got map[string]int) {
				if got["use"] != 0 || got["euw"] != 256 {
					t.Errorf("got %v, want every client on euw", got)
				}
			}},
		{"between: part stays", [3][3]float64{{115, 100, 130}, {50, 100, 130}, {0, 10, 20}}, Failover{},
			func(t *testing.T, got map[string]int) {
				if got["use"] < 64 || got["use"] > 250 || got["euw"] == 0 {
					t.Errorf("got %v, want a split between use and euw", got)
				}
			}},
		{"all full: no black hole", [3][3]float64{{500, 100, 130}, {500, 100, 130}, {500, 10, 20}}, Failover{},
			func(t *testing.T, got map[string]int) {
				if got["use"] != 256 {
					t.Errorf("got %v, want every client on use, the first in order", got)
				}
			}},
		{"full prefers the one with room left", [3][3]float64{{500, 100, 130}, {120, 100, 130}, {500, 10, 20}}, Failover{},
			func(t *testing.T, got map[string]int) {
				if got["use"] != 0 || got["euw"] != 256 {
					t.Errorf("got %v, want every client on euw, the only one below max", got)
				}
			}},
		{"weighted-stable too", [3][3]float64{{500, 100, 130}, {50, 100, 130}, {50, 100, 130}}, WeightedPools{Stable: true},
			func(t *testing.T, got map[string]int) {
				if got["use"] != 0 || got["euw"] == 0 || got["apne"] == 0 {
					t.Errorf("got %v, want use's clients spread over the others", got)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealthMap()
			r := world(tc.policy, All{})
			r.Load, r.TTL = LoadHeadroom, 5 // the controller reads the load as the shares of the last TTL
			e := newEngine(t, h, r)
			var loads []health.Load
			for i, l := range tc.loads {
				loads = append(loads, loadOf(r.Pools[i], l[0], l[1], l[2]))
			}
			report(e, h, 60, loads...)
			tc.check(t, answered(e, r, subnets()))
		})
	}
}

// TestLoadSameSubnets: a falling share moves the same /24s, and more of
// them; a rising one brings back the last moved first.
func TestLoadSameSubnets(t *testing.T) {
	r := world(Failover{}, All{})
	r.Load = LoadHeadroom
	e := newEngine(t, NewHealthMap(), r)
	cs := subnets()
	moved := func(share float64) map[int]bool {
		e.loads[r.idx][0] = loadState{known: true, share: share, past: []float64{share}}
		e.Refresh()
		pl := e.plan.Load()
		pl.records[r.idx] = slices0(pl.records[r.idx])
		e.applyShares(pl)
		out := map[int]bool{}
		for i, c := range cs {
			d := e.Decide(r, c, nil)
			if d.Pool.Name != "use" {
				out[i] = true
			}
			if d.Scope != 24 {
				t.Errorf("share %v: scope %d, want 24 (the subnet decides)", share, d.Scope)
			}
		}
		return out
	}
	prev := map[int]bool{}
	for _, share := range []float64{0.9, 0.7, 0.5, 0.2} {
		now := moved(share)
		for i := range prev {
			if !now[i] {
				t.Errorf("share %v: subnet %d came back while the share fell", share, i)
			}
		}
		if len(now) <= len(prev) {
			t.Errorf("share %v moved %d subnets, no more than %d before", share, len(now), len(prev))
		}
		prev = now
	}
}

func slices0(p []poolPlan) []poolPlan { return append([]poolPlan(nil), p...) }

// TestLoadNoReports: records with load on answer as before without
// reports, and reports of nonsense are ignored.
func TestLoadNoReports(t *testing.T) {
	h := NewHealthMap()
	plain := world(WeightedPools{Stable: true}, All{})
	r := world(WeightedPools{Stable: true}, All{})
	r.Name, r.Load = "load.example.test.", LoadHeadroom
	e := newEngine(t, h, plain, r)
	want := answered(e, plain, subnets())
	bad := []health.Load{
		loadOf(r.Pools[0], math.NaN(), 100, 130),
		loadOf(r.Pools[1], 500, 130, 100), // max below target
		loadOf(r.Pools[2], -5, 100, 130),
	}
	for _, loads := range [][]health.Load{nil, bad} {
		report(e, h, 30, loads...)
		if got := answered(e, r, subnets()); !equalCounts(got, want) {
			t.Errorf("reports %v: got %v, want %v as without load", loads, got, want)
		}
		for _, pl := range e.Loads(r) {
			if pl.Share != 1 || pl.Reason != ReasonNoReports {
				t.Errorf("pool load %+v, want full share, no reports", pl)
			}
		}
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestLoadDrainWins: a drained region with room takes no client, and a
// loaded region's clients go elsewhere than the drained one.
func TestLoadDrainWins(t *testing.T) {
	h := NewHealthMap()
	r := world(Failover{}, All{})
	r.Load, r.TTL = LoadHeadroom, 5
	e := newEngine(t, h, r)
	if err := e.DrainRegion("eu-west", true); err != nil {
		t.Fatal(err)
	}
	report(e, h, 60, loadOf(r.Pools[0], 500, 100, 130), loadOf(r.Pools[1], 0, 100, 130), loadOf(r.Pools[2], 0, 100, 130))
	got := answered(e, r, subnets())
	if got["euw"] != 0 || got["apne"] != 256 {
		t.Errorf("got %v, want every client on apne (use full, euw drained)", got)
	}
}

// TestLoadGradual: the share moves at most MaxStep per report.
func TestLoadGradual(t *testing.T) {
	h := NewHealthMap()
	r := world(Failover{}, All{})
	r.Load, r.TTL = LoadHeadroom, 5
	e := newEngine(t, h, r)
	last := 1.0
	for i := range 40 {
		report(e, h, 1, loadOf(r.Pools[0], 1000, 100, 130))
		s := e.Loads(r)[0].Share
		if last-s > DefaultLoadMaxStep+1e-9 || s > last {
			t.Fatalf("report %d: share went from %v to %v", i, last, s)
		}
		last = s
	}
	if last != 0 {
		t.Errorf("after 40 reports far past max the share is %v, want 0", last)
	}
}

// TestLoadExplain: explain shows each pool's load and share, and why the
// answer moved.
func TestLoadExplain(t *testing.T) {
	h := NewHealthMap()
	r := world(Failover{}, All{})
	r.Load, r.TTL = LoadHeadroom, 5
	e := newEngine(t, h, r)
	report(e, h, 60, loadOf(r.Pools[0], 500, 100, 130), loadOf(r.Pools[1], 20, 100, 130))
	ex := e.Explain(r, client("10.9.8.7", 32))
	if ex.Pool != "euw" || !strings.Contains(ex.Load, "moved from use (us-east): it keeps 0% of client subnets") {
		t.Fatalf("answered %s, load note %q", ex.Pool, ex.Load)
	}
	use, euw, apne := ex.Candidates[0].Load, ex.Candidates[1].Load, ex.Candidates[2].Load
	if use == nil || use.Share != 0 || use.Reason != ReasonAbove || use.Target != 100 || use.Max != 130 || use.Unit != "rps" {
		t.Errorf("use: %+v", use)
	}
	if euw == nil || euw.Share != 1 || euw.Reason != ReasonBelow || euw.Reports != 1 {
		t.Errorf("euw: %+v", euw)
	}
	if apne == nil || apne.Reason != ReasonNoReports || apne.Share != 1 {
		t.Errorf("apne: %+v", apne)
	}
	if by := e.LoadsByRegion(); by["us-east"]["app.example.test./A/use"].Share != 0 {
		t.Errorf("by region: %+v", by)
	}
}

// TestForkKeepsLoad: a fork of an engine whose records follow load
// decides with the shares in force, and stepping the fork leaves the
// engine's controller alone.
func TestForkKeepsLoad(t *testing.T) {
	h := NewHealthMap()
	r := world(Failover{}, All{})
	r.Load, r.TTL = LoadHeadroom, 5
	e := newEngine(t, h, r)
	report(e, h, 60, loadOf(r.Pools[0], 500, 100, 130), loadOf(r.Pools[1], 50, 100, 130))
	want := answered(e, r, subnets())
	f := e.Fork(nil)
	if got := answered(f, r, subnets()); !equalCounts(got, want) {
		t.Fatalf("fork answers %v, engine %v", got, want)
	}
	st := &e.loads[r.idx][0]
	share, past := st.share, slices.Clone(st.past)
	for range 10 {
		f.loads[r.idx][0].step(PoolLoad{Load: 0, Target: 100, Max: 130}, r.TTL, LoadOptions{}.withDefaults())
	}
	if f.loads[r.idx][0].share == share || st.share != share || !slices.Equal(st.past, past) {
		t.Errorf("stepping the fork: fork's share %v, engine's %v (was %v), past %v (was %v)", f.loads[r.idx][0].share, st.share, share, st.past, past)
	}
}
