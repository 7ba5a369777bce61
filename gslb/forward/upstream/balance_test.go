package upstream

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/probes"
)

// testPool builds pool "p" directly, without a configuration: backends
// 10.0.0.1:80, 10.0.0.2:80... of the given weights, healthy (nothing
// checks them) and at full weight, picked by balance. set, when not nil,
// changes the pool before its balancer is built. Its p2c draws from a
// seeded generator, so runs repeat.
func testPool(t testing.TB, balance string, set func(p *Pool), weights ...int) *Pool {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ps := &PoolState{Name: "p", log: log}
	p := &Pool{Name: "p", Balance: balance, hashes: config.Hashing(balance), MinHealthy: 1, State: ps}
	for i, w := range weights {
		addr := fmt.Sprintf("10.0.0.%d:80", i+1)
		st := newBackendState(BackendID("p", addr), addr, ps, probes.Up, log)
		p.Backends = append(p.Backends, &Backend{Addr: addr, Weight: w, ConfigWeight: w, Pool: p, State: st})
	}
	if set != nil {
		set(p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	bal, err := newBalancer(balance, p.Backends, rng.Uint64N)
	if err != nil {
		t.Fatal(err)
	}
	p.balancer = bal
	ps.Install(p)
	return p
}

// setHealth marks backend i up or down as the checks would.
func setHealth(p *Pool, i int, s probes.State) {
	p.Backends[i].State.Health.Store(uint32(s))
	p.State.Refresh()
}

// pickN picks n times and returns how often each backend was chosen. With
// hold the picks stay active, as connections that have not ended.
func pickN(p *Pool, n int, hold bool, key func(i int) uint64) []int {
	counts := make([]int, len(p.Backends))
	index := map[*Backend]int{}
	for i, b := range p.Backends {
		index[b] = i
	}
	for i := range n {
		r := &Request{Now: time.Now().UnixNano()}
		if key != nil {
			r.Key = key(i)
		}
		b := p.Pick(r)
		if b == nil {
			continue
		}
		counts[index[b]]++
		if !hold {
			b.Release()
		}
	}
	return counts
}

// within reports whether got is within tol (a fraction) of want.
func within(got, want int, tol float64) bool {
	return math.Abs(float64(got-want)) <= tol*float64(want)
}

// randomKeys hashes n distinct client addresses as the source_ip key does.
func randomKeys(n int, seed uint64) []uint64 {
	rng := rand.New(rand.NewPCG(seed, seed))
	keys := make([]uint64, n)
	for i := range keys {
		ip := netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		keys[i] = hashRequest(keySourceIP, netip.AddrPortFrom(ip, 1234), "")
	}
	return keys
}

// Each balancer's promise, on backends that all stay available.
func TestBalancerDistribution(t *testing.T) {
	keys := randomKeys(40000, 7)
	byKey := func(i int) uint64 { return keys[i%len(keys)] }
	tests := []struct {
		name    string
		balance string
		weights []int
		picks   int
		hold    bool // connections stay open: what least-connection policies react to
		key     func(int) uint64
		want    []int
		tol     float64
	}{
		// Round robin ignores weights and is exact.
		{"round robin", "round_robin", []int{1, 5, 1}, 300, false, nil, []int{100, 100, 100}, 0},
		// nginx's SWRR is exact over every sum(weights) picks.
		{"smooth weighted", "weighted_round_robin", []int{5, 1, 1}, 700, false, nil, []int{500, 100, 100}, 0},
		{"least conn, weighted", "least_conn", []int{1, 2, 3}, 600, true, nil, []int{100, 200, 300}, 0.01},
		// Short connections: every pick finds an idle pool, and the
		// weights decide.
		{"least conn, idle pool by weight", "least_conn", []int{1, 1, 2}, 400, false, nil, []int{100, 100, 200}, 0},
		{"power of two, idle pool by weight", "p2c", []int{1, 3}, 4000, false, nil, []int{1000, 3000}, 0.05},
		{"power of two, equal", "p2c", []int{1, 1, 1, 1}, 4000, true, nil, []int{1000, 1000, 1000, 1000}, 0.02},
		{"power of two, weighted", "p2c", []int{1, 3}, 4000, true, nil, []int{1000, 3000}, 0.05},
		{"source hash, weighted", "source_hash", []int{1, 1, 2}, 40000, false, byKey, []int{10000, 10000, 20000}, 0.04},
		{"maglev, weighted", "maglev", []int{1, 2, 3, 4}, 40000, false, byKey, []int{4000, 8000, 12000, 16000}, 0.05},
		{"maglev, equal", "maglev", []int{1, 1, 1, 1, 1}, 40000, false, byKey, []int{8000, 8000, 8000, 8000, 8000}, 0.05},
		{"rendezvous, weighted", "rendezvous", []int{1, 2, 3, 4}, 40000, false, byKey, []int{4000, 8000, 12000, 16000}, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, tt.balance, nil, tt.weights...)
			got := pickN(p, tt.picks, tt.hold, tt.key)
			for i := range got {
				if !within(got[i], tt.want[i], tt.tol) {
					t.Errorf("picks = %v, want %v within %.0f%%", got, tt.want, tt.tol*100)
					break
				}
			}
		})
	}
}

// nginx's worked example: weights 5, 1, 1 give a a b a c a a, the heavy
// backend's turns spread out instead of in a run.
func TestSmoothWeightedSequence(t *testing.T) {
	p := testPool(t, "weighted_round_robin", nil, 5, 1, 1)
	var seq strings.Builder
	for range 14 {
		b := p.Pick(&Request{})
		seq.WriteByte("abc"[strings.Index("123", b.Addr[7:8])])
		b.Release()
	}
	if got, want := seq.String(), "aabacaaaabacaa"; got != want {
		t.Errorf("sequence %s, want %s", got, want)
	}
}

// Every policy skips what the gate refuses: a backend that is down,
// draining or full, and shares its traffic among the others.
func TestBalancersSkipUnavailable(t *testing.T) {
	keys := randomKeys(3000, 3)
	for _, balance := range config.Balancers {
		t.Run(balance, func(t *testing.T) {
			p := testPool(t, balance, nil, 1, 1, 1, 1)
			setHealth(p, 0, probes.Down)
			p.Backends[1].State.SetDrain(DrainAdmin, true, time.Hour)
			defer p.Backends[1].State.SetDrain(DrainAdmin, false, 0)
			p.Backends[2].MaxConns = 1
			p.Backends[2].State.Active.Store(1)
			got := pickN(p, 3000, false, func(i int) uint64 { return keys[i] })
			if got[0] != 0 || got[1] != 0 || got[2] != 0 || got[3] != 3000 {
				t.Errorf("picks = %v, want all on the one available backend", got)
			}
			// None available: nil, not a panic or a spin.
			setHealth(p, 3, probes.Down)
			if b := p.Pick(&Request{Key: 1}); b != nil {
				t.Errorf("picked %s with nothing available", b.Addr)
			}
		})
	}
}

// The consistent policies' promise: when a backend goes, only its keys
// move. Removing it from the configuration rebuilds the balancer;
// marking it down keeps it and must move no other key either.
func TestConsistentHashMovesOnlyTheGoneShare(t *testing.T) {
	keys := randomKeys(20000, 11)
	assign := func(p *Pool) []string {
		out := make([]string, len(keys))
		for i, k := range keys {
			b := p.Pick(&Request{Key: k})
			out[i] = b.Addr
			b.Release()
		}
		return out
	}
	const gone = "10.0.0.3:80"
	tests := []struct {
		balance string
		// The share of the other backends' keys that may move when a
		// backend is removed from the configuration: none for
		// rendezvous; Maglev trades a little for its O(1) lookup.
		removeTol float64
	}{
		{"rendezvous", 0},
		{"maglev", 0.03},
	}
	for _, tt := range tests {
		t.Run(tt.balance, func(t *testing.T) {
			five := testPool(t, tt.balance, nil, 1, 1, 1, 1, 1)
			before := assign(five)

			// Removed by a reload: the four that stay, same addresses.
			four := testPool(t, tt.balance, func(p *Pool) { p.Backends = slices.Delete(p.Backends, 2, 3) }, 1, 1, 1, 1, 1)
			after := assign(four)
			movedOthers, othersTotal, goneKeys := 0, 0, 0
			for i := range keys {
				if before[i] == gone {
					goneKeys++
					continue
				}
				othersTotal++
				if after[i] != before[i] {
					movedOthers++
				}
			}
			t.Logf("removing %s moved %d of the other backends' %d keys", gone, movedOthers, othersTotal)
			if share := float64(movedOthers) / float64(othersTotal); share > tt.removeTol {
				t.Errorf("removing %s moved %.2f%% of the other backends' keys, want at most %.0f%%", gone, share*100, tt.removeTol*100)
			}
			if !within(goneKeys, len(keys)/5, 0.05) {
				t.Errorf("%s held %d keys, want about a fifth of %d", gone, goneKeys, len(keys))
			}

			// Down, not removed: no other key moves, and the down
			// backend's keys spread over the other four.
			setHealth(five, 2, probes.Down)
			down := assign(five)
			spread := map[string]int{}
			for i := range keys {
				switch {
				case before[i] == gone:
					spread[down[i]]++
				case down[i] != before[i]:
					t.Fatalf("key %d moved from %s to %s though its backend is up", i, before[i], down[i])
				}
			}
			for addr, n := range spread {
				if addr == gone || !within(n, goneKeys/4, 0.15) {
					t.Errorf("the down backend's %d keys went %v, want about a quarter to each other backend", goneKeys, spread)
					break
				}
			}
		})
	}
}

// source_hash is stable for a client but, unlike the consistent two,
// reshuffles when the pool changes: the reason to choose maglev or
// rendezvous.
func TestSourceHashStickyAndItsLimit(t *testing.T) {
	p := testPool(t, "source_hash", nil, 1, 1, 1, 1, 1)
	key := hashRequest(keySourceIP, netip.MustParseAddrPort("198.51.100.7:1000"), "")
	first := p.Pick(&Request{Key: key})
	first.Release()
	for port := range uint16(50) {
		// Another connection of the same client: another port.
		k := hashRequest(keySourceIP, netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), 2000+port), "")
		if b := p.Pick(&Request{Key: k}); b != first {
			t.Fatalf("connection from port %d went to %s, the client's first to %s", 2000+port, b.Addr, first.Addr)
		} else {
			b.Release()
		}
	}
	// An IPv4-mapped address is the same client.
	mapped := hashRequest(keySourceIP, netip.MustParseAddrPort("[::ffff:198.51.100.7]:9"), "")
	if mapped != key {
		t.Errorf("::ffff:198.51.100.7 hashes apart from 198.51.100.7")
	}
}

func TestPanicMode(t *testing.T) {
	tests := []struct {
		name, mode string
		wantPicks  bool
	}{
		{"refuse", "refuse", false},
		{"panic spreads over all", "panic", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, "round_robin", func(p *Pool) { p.PanicMode = tt.mode == "panic" }, 1, 1, 1)
			for i := range p.Backends {
				setHealth(p, i, probes.Down)
			}
			if got := p.State.Panicking.Load(); got != tt.wantPicks {
				t.Errorf("panicking = %v, want %v", got, tt.wantPicks)
			}
			got := pickN(p, 300, false, nil)
			want := []int{0, 0, 0}
			if tt.wantPicks {
				want = []int{100, 100, 100}
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("picks = %v, want %v", got, want)
				}
			}
			// One back up ends panic mode: traffic goes to it alone.
			setHealth(p, 1, probes.Up)
			if p.State.Panicking.Load() {
				t.Error("still panicking with a healthy backend")
			}
			if got := pickN(p, 30, false, nil); got[1] != 30 {
				t.Errorf("picks = %v, want all 30 on the healthy backend", got)
			}
		})
	}
}

func TestSlowStart(t *testing.T) {
	p := testPool(t, "weighted_round_robin", func(p *Pool) { p.SlowStart = int64(100 * time.Second) }, 10, 10)
	b := p.Backends[1]
	joined := time.Unix(1000, 0)
	b.State.joined.Store(joined.UnixNano())
	for _, tt := range []struct {
		after time.Duration
		want  float64
	}{
		{0, 1},               // slowStartFloor of 10
		{5 * time.Second, 1}, // still the floor
		{50 * time.Second, 5},
		{100 * time.Second, 10},
		{time.Hour, 10},
	} {
		if got := b.EffectiveWeight(joined.Add(tt.after).UnixNano()); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%v after joining: weight %g, want %g", tt.after, got, tt.want)
		}
	}
	// Halfway through the ramp the newcomer gets a third of the picks:
	// weight 5 beside 10.
	now := joined.Add(50 * time.Second).UnixNano()
	counts := [2]int{}
	for range 300 {
		c := p.Pick(&Request{Now: now})
		counts[strings.Index("12", c.Addr[7:8])]++
		c.Release()
	}
	if counts != [2]int{200, 100} {
		t.Errorf("picks = %v, want [200 100]", counts)
	}
}

// A backend at max_connections takes no more until one ends, whatever the
// policy says.
func TestMaxConnections(t *testing.T) {
	p := testPool(t, "least_conn", func(p *Pool) {
		for _, b := range p.Backends {
			b.MaxConns = 2
		}
	}, 1, 1)
	got := pickN(p, 5, true, nil)
	if got[0] != 2 || got[1] != 2 {
		t.Errorf("held picks = %v, want 2 each and the fifth refused", got)
	}
	p.Backends[0].Release()
	if b := p.Pick(&Request{}); b != p.Backends[0] {
		t.Errorf("after one ended, picked %v, want the backend with room", b)
	}
}

func BenchmarkPick(b *testing.B) {
	keys := randomKeys(1024, 5)
	for _, balance := range config.Balancers {
		for _, n := range []int{3, 16} {
			b.Run(fmt.Sprintf("%s/%d", balance, n), func(b *testing.B) {
				weights := make([]int, n)
				for i := range weights {
					weights[i] = 1 + i%3
				}
				p := testPool(b, balance, nil, weights...)
				r := &Request{}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					*r = Request{Key: keys[i%len(keys)], Now: int64(i)}
					i++
					bk := p.Pick(r)
					bk.Release()
				}
			})
		}
	}
}
