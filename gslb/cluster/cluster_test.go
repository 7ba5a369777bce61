package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/internal/testkit"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// gossipToTheDead is how long memberlist goes on gossiping to a member it
// declared dead, in the tests: once it has passed, only the node's
// reconnect calls the member back.
const gossipToTheDead = 300 * time.Millisecond

// fast shortens memberlist's timers so that failures are detected in a
// fraction of a second.
func fast(c *memberlist.Config) {
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
	c.TCPTimeout = time.Second
	c.DeadNodeReclaimTime = 100 * time.Millisecond
	c.GossipToTheDeadTime = gossipToTheDead
}

const fastReconnect = 200 * time.Millisecond

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// start starts a node on a free loopback port, joined through seeds.
func start(t *testing.T, name string, meta Meta, seeds ...string) *Node {
	t.Helper()
	return startAt(t, name, "127.0.0.1:0", meta, seeds...)
}

// startAt is start on a given address.
func startAt(t *testing.T, name, bind string, meta Meta, seeds ...string) *Node {
	t.Helper()
	if meta.Role == RoleProbe && meta.Vantage == "" {
		meta.Vantage = name
	}
	n, err := New(context.Background(), Config{
		Name: name, Bind: bind, Seeds: seeds, Keys: [][]byte{testKey},
		Meta: meta, Log: testLog(t).With("node", name), Tune: fast, Reconnect: fastReconnect,
	})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { n.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Join(ctx); err != nil {
		t.Fatalf("%s join: %v", name, err)
	}
	return n
}

func verdict(n *Node, target health.TargetID) string {
	n.table.Recompute(time.Now())
	v, ok := n.table.Verdict(target)
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%s %d/%d", v.State, v.Up, v.Down)
}

func report(target health.TargetID, st gslb.State, seq uint64) Report {
	return Report{Target: target, State: st, Seq: seq, RTT: 3 * time.Millisecond, Reason: "status " + map[gslb.State]string{gslb.Up: "200", gslb.Down: "503"}[st]}
}

func TestQuorumAcrossNodes(t *testing.T) {
	dns1 := start(t, "dns1", Meta{Role: RoleDNS})
	dns2 := start(t, "dns2", Meta{Role: RoleDNS}, dns1.Addr())
	var probes []*Node
	for i := range 3 {
		probes = append(probes, start(t, fmt.Sprintf("v%d", i), Meta{Role: RoleProbe, Region: "eu"}, dns1.Addr()))
	}
	testkit.Eventually(t, "every node to see 5 members", func() bool {
		return len(dns1.alive(RoleProbe)) == 3 && len(dns2.alive(RoleProbe)) == 3 && len(probes[2].alive(RoleDNS)) == 2
	})

	// Each vantage's latest results, sent again while a test waits, as
	// agents report every interval: on a loaded machine the test's fast
	// timers can declare a live vantage dead for a moment, and it votes
	// again only with its next report.
	latest := map[*Node]Results{}
	send := func(p *Node, st gslb.State, seq uint64) {
		latest[p] = Results{Vantage: p.cfg.Meta.Vantage, Complete: true, Reports: []Report{report("eu/192.0.2.1", st, seq)}}
		p.SendResults(latest[p])
	}
	resend := func() {
		for p, rs := range latest {
			p.SendResults(rs)
		}
	}

	// Two of three vantages see the target down: it is down on both DNS
	// nodes.
	send(probes[0], gslb.Down, 1)
	send(probes[1], gslb.Down, 1)
	send(probes[2], gslb.Up, 1)
	for _, d := range []*Node{dns1, dns2} {
		awaitVerdict(t, d, "eu/192.0.2.1", "down 1/2", resend)
	}

	// One of the two comes back up: 1 of 3 down keeps it in.
	send(probes[0], gslb.Up, 2)
	for _, d := range []*Node{dns1, dns2} {
		awaitVerdict(t, d, "eu/192.0.2.1", "up 2/1", resend)
	}

	// A vantage that dies stops voting once the cluster declares it dead.
	probes[2].Shutdown()
	delete(latest, probes[2])
	for _, d := range []*Node{dns1, dns2} {
		awaitVerdict(t, d, "eu/192.0.2.1", "up 1/1", resend)
	}

	// A DNS node that joins late holds every result when Join returns:
	// its state came with the join's push/pull.
	dns3 := start(t, "dns3", Meta{Role: RoleDNS}, dns2.Addr())
	if got := verdict(dns3, "eu/192.0.2.1"); got != "up 1/1" {
		t.Fatalf("dns3 right after joining: %s, want up 1/1", got)
	}
}

// awaitVerdict waits for d's verdict on target to read want, calling
// resend every 200 ms, and logs the last verdict read if it never does.
func awaitVerdict(t *testing.T, d *Node, target health.TargetID, want string, resend func()) {
	t.Helper()
	last, polls := "", 0
	defer func() {
		if last != want {
			t.Logf("%s's last verdict on %s: %s", d.Name(), target, last)
		}
	}()
	testkit.Eventually(t, fmt.Sprintf("%s to read %s %s", d.Name(), target, want), func() bool {
		if polls++; polls%20 == 0 {
			resend()
		}
		last = verdict(d, target)
		return last == want
	})
}

func TestPlanReachesProbes(t *testing.T) {
	dns1 := start(t, "dns1", Meta{Role: RoleDNS})
	early := start(t, "early", Meta{Role: RoleProbe}, dns1.Addr())
	testkit.Eventually(t, "dns1 to see the probe", func() bool { return len(dns1.alive(RoleProbe)) == 1 })

	dns1.PublishPlan(Plan{Generation: 1, Body: []byte(`["a"]`)})
	testkit.Eventually(t, "the plan to reach the early probe", func() bool {
		p := early.Plans()
		return len(p) == 1 && p[0].Origin == "dns1" && string(p[0].Body) == `["a"]`
	})
	select {
	case <-early.PlansChanged():
	default:
		t.Fatal("the probe was not told of the plan")
	}

	// A probe that joins later gets the plan in the join's exchange, and
	// a reload's new plan replaces the old one everywhere.
	late := start(t, "late", Meta{Role: RoleProbe}, dns1.Addr())
	if p := late.Plans(); len(p) != 1 || string(p[0].Body) != `["a"]` {
		t.Fatalf("late probe's plans right after joining: %+v", p)
	}
	dns1.PublishPlan(Plan{Generation: 2, Body: []byte(`["a","b"]`)})
	for _, p := range []*Node{early, late} {
		testkit.Eventually(t, p.Name()+" to follow the new plan", func() bool {
			ps := p.Plans()
			return len(ps) == 1 && ps[0].Generation == 2 && string(ps[0].Body) == `["a","b"]`
		})
	}
}

func TestOverridesLastWriterWins(t *testing.T) {
	a := start(t, "a", Meta{Role: RoleDNS})
	b := start(t, "b", Meta{Role: RoleDNS}, a.Addr())
	c := start(t, "c", Meta{Role: RoleDNS}, a.Addr())
	testkit.Eventually(t, "three DNS nodes", func() bool { return len(c.alive(RoleDNS)) == 2 && len(b.alive(RoleDNS)) == 2 })

	b.PublishOverrides(Overrides{Version: 10, Body: []byte(`{"drained_regions":["eu"]}`), Origin: "b"})
	// An older change arriving later loses.
	a.PublishOverrides(Overrides{Version: 5, Body: []byte(`{}`), Origin: "a"})
	for _, n := range []*Node{a, b, c} {
		testkit.Eventually(t, n.Name()+" to hold the newest overrides", func() bool {
			o := n.Overrides()
			return o.Version == 10 && o.Origin == "b"
		})
	}
	if got := string(a.Overrides().Body); got != `{"drained_regions":["eu"]}` {
		t.Errorf("a holds %s", got)
	}
}

func TestPartitionHeals(t *testing.T) {
	left := start(t, "left", Meta{Role: RoleDNS})
	right := start(t, "right", Meta{Role: RoleDNS}, left.Addr())
	vl := start(t, "vl", Meta{Role: RoleProbe}, left.Addr())
	vr := start(t, "vr", Meta{Role: RoleProbe}, left.Addr())
	testkit.Eventually(t, "four members everywhere", func() bool {
		return len(left.ml.Members()) == 4 && len(right.ml.Members()) == 4
	})
	vl.SendResults(Results{Vantage: "vl", Complete: true, Reports: []Report{report("eu/192.0.2.1", gslb.Up, 1)}})
	vr.SendResults(Results{Vantage: "vr", Complete: true, Reports: []Report{report("eu/192.0.2.1", gslb.Down, 1)}})
	testkit.Eventually(t, "both votes on both sides", func() bool {
		return verdict(left, "eu/192.0.2.1") == "up 1/1" && verdict(right, "eu/192.0.2.1") == "up 1/1"
	})

	// Cut {left, vl} from {right, vr}: each side declares the other dead
	// and decides with the vantages it still hears.
	sides := map[*Node][]*Node{left: {right, vr}, vl: {right, vr}, right: {left, vl}, vr: {left, vl}}
	for n, others := range sides {
		var addrs []string
		for _, o := range others {
			addrs = append(addrs, o.Addr())
		}
		n.SetBlock(func(addr string) bool {
			for _, a := range addrs {
				if a == addr {
					return true
				}
			}
			return false
		})
	}
	testkit.Eventually(t, "each side to decide alone", func() bool {
		return verdict(left, "eu/192.0.2.1") == "up 1/0" && verdict(right, "eu/192.0.2.1") == "down 0/1"
	})
	// The partition outlasts memberlist's gossip to the dead, so that
	// nothing but the reconnect can heal it: each side has two members,
	// so none falls back on its seeds either.
	for n := range sides {
		testkit.Eventually(t, n.Name()+" to declare the other side dead", func() bool { return len(n.ml.Members()) == 2 })
	}
	time.Sleep(3 * gossipToTheDead)

	// Healing: each node keeps trying the members it declared dead, so
	// the two halves find each other again and the votes meet.
	for n := range sides {
		n.SetBlock(nil)
	}
	testkit.Eventually(t, "one cluster again", func() bool {
		return len(left.ml.Members()) == 4 && len(right.ml.Members()) == 4
	})
	vl.SendResults(Results{Vantage: "vl", Complete: true, Reports: []Report{report("eu/192.0.2.1", gslb.Up, 2)}})
	vr.SendResults(Results{Vantage: "vr", Complete: true, Reports: []Report{report("eu/192.0.2.1", gslb.Down, 2)}})
	testkit.Eventually(t, "the two sides to agree again", func() bool {
		return verdict(left, "eu/192.0.2.1") == "up 1/1" && verdict(right, "eu/192.0.2.1") == "up 1/1"
	})
}

// lostBy reports whether n is calling member back.
func lostBy(n *Node, member string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.failed[member]
	return ok
}

// TestLostMembersCalledBack: a member that crashes, and one that leaves,
// are called back. memberlist does not say which of the two happened, so
// both are tried; the crashed one, restarted at its address with no seed
// but itself (a seed node coming back), rejoins only that way once
// memberlist has stopped gossiping to it.
func TestLostMembersCalledBack(t *testing.T) {
	a := start(t, "a", Meta{Role: RoleDNS})
	b := start(t, "b", Meta{Role: RoleDNS}, a.Addr())
	c := start(t, "c", Meta{Role: RoleProbe}, a.Addr())
	testkit.Eventually(t, "three members", func() bool { return len(a.ml.Members()) == 3 && len(b.ml.Members()) == 3 })
	if m := a.Members(); len(m) != 3 || m[0].State != "alive" || m[2].State != "alive" || m[2].Role != RoleProbe {
		t.Fatalf("a's members: %+v", m)
	}

	addr := b.Addr()
	b.Shutdown() // a crash: no leave
	testkit.Eventually(t, "a to call the crashed b back", func() bool { return lostBy(a, "b") && len(a.ml.Members()) == 2 })
	if err := c.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "a to call c back too", func() bool { return lostBy(a, "c") && len(a.ml.Members()) == 1 })
	if lostBy(c, "c") {
		t.Error("c counts its own leave as a loss")
	}
	time.Sleep(3 * gossipToTheDead)

	b2 := startAt(t, "b", addr, Meta{Role: RoleDNS}, addr) // its own seed: the first of its cluster
	testkit.Eventually(t, "a and the restarted b to find each other", func() bool {
		return len(a.ml.Members()) == 2 && len(b2.ml.Members()) == 2
	})
	if lostBy(a, "b") || !lostBy(a, "c") {
		t.Errorf("a calls back b: %v, c: %v; want c only", lostBy(a, "b"), lostBy(a, "c"))
	}
}

func TestSecurity(t *testing.T) {
	t.Run("no key beyond loopback", func(t *testing.T) {
		_, err := New(context.Background(), Config{Name: "x", Bind: "0.0.0.0:0"})
		if !errors.Is(err, ErrInsecure) {
			t.Fatalf("error = %v, want ErrInsecure", err)
		}
		_, err = New(context.Background(), Config{Name: "x", Bind: "127.0.0.1:0", Seeds: []string{"192.0.2.1:7946"}})
		if !errors.Is(err, ErrInsecure) {
			t.Fatalf("with a remote seed: error = %v, want ErrInsecure", err)
		}
	})
	t.Run("a node with another key cannot join", func(t *testing.T) {
		a := start(t, "a", Meta{Role: RoleDNS})
		n, err := New(context.Background(), Config{
			Name: "intruder", Bind: "127.0.0.1:0", Seeds: []string{a.Addr()},
			Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}, Meta: Meta{Role: RoleDNS}, Tune: fast,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		if err := n.Join(ctx); !errors.Is(err, ErrNoSeeds) {
			t.Fatalf("join with the wrong key: %v, want ErrNoSeeds", err)
		}
		if len(a.ml.Members()) != 1 {
			t.Fatalf("the cluster let the intruder in: %d members", len(a.ml.Members()))
		}
	})
	t.Run("keys rotate without a split", func(t *testing.T) {
		newKey := bytes.Repeat([]byte{8}, 32)
		a := start(t, "a", Meta{Role: RoleDNS})
		b := start(t, "b", Meta{Role: RoleDNS}, a.Addr())
		for _, step := range [][][]byte{
			{testKey, newKey}, // install the new key everywhere
			{newKey, testKey}, // encrypt with it
			{newKey},          // retire the old one
		} {
			for _, n := range []*Node{a, b} {
				if err := n.SetKeys(step); err != nil {
					t.Fatal(err)
				}
			}
		}
		a.PublishOverrides(Overrides{Version: 1, Origin: "a", Body: []byte("{}")})
		testkit.Eventually(t, "b to hear a under the new key", func() bool { return b.Overrides().Version == 1 })
	})
}

func TestWire(t *testing.T) {
	rs := Results{Vantage: "tokyo", Boot: 1 << 60, Complete: true, Reports: []Report{
		{Target: "eu/192.0.2.1", State: gslb.Up, Seq: 1 << 40, RTT: 1500 * time.Microsecond, Delay: 2 * time.Second, Reason: "status 200",
			Backed: 6 * time.Second, Window: 3 * time.Second, Streak: 0},
		{Target: "us/2001:db8::1", State: gslb.Down, Seq: 3, Reason: "connect: connection refused", Backed: time.Second, Window: 5 * time.Second, Streak: 2},
	}}
	msgs := encodeResults(rs, 0)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m, err := decode(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.results) != fmt.Sprint(rs) {
		t.Errorf("round trip:\n got %+v\nwant %+v", m.results, rs)
	}

	// A thousand reports split into packets that each fit.
	var many Results
	many.Vantage = "v"
	for i := range 1000 {
		many.Reports = append(many.Reports, Report{Target: health.TargetID(fmt.Sprintf("region/10.0.%d.%d", i/256, i%256)), State: gslb.Up, Seq: uint64(i)})
	}
	many.Complete = true
	total := 0
	packets := encodeResults(many, maxPacket)
	for i, msg := range packets {
		if len(msg) > maxPacket {
			t.Fatalf("a packet of %d bytes", len(msg))
		}
		m, err := decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		total += len(m.results.Reports)
		if last := i == len(packets)-1; m.results.Complete != last {
			t.Errorf("packet %d of %d: complete %v", i+1, len(packets), m.results.Complete)
		}
	}
	if total != 1000 {
		t.Fatalf("%d reports came through, want 1000", total)
	}

	// A message of an agent that predates kindReports: a whole view,
	// no run, no bound on its states.
	legacy := []byte{wireVersion, kindResults, 1, 'v', 1, 1, 't', byte(gslb.Up), 5, 0, 0, 2, 'o', 'k'}
	if m, err := decode(legacy); err != nil || fmt.Sprint(m.results) != fmt.Sprint(Results{Vantage: "v", Complete: true,
		Reports: []Report{{Target: "t", State: gslb.Up, Seq: 5, Reason: "ok"}}}) {
		t.Errorf("legacy message: %+v, %v", m.results, err)
	}

	bad := []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "malformed"},
		{"other version", []byte{2, kindResults}, "version 2"},
		{"unknown kind", []byte{wireVersion, 99}, "unknown message kind"},
		{"truncated", msgs[0][:len(msgs[0])-3], "malformed"},
		{"no flags", []byte{wireVersion, kindReports, 1, 'v', 1}, "malformed"},
		{"huge count", []byte{wireVersion, kindResults, 1, 'v', 0xff, 0xff, 0x03}, "malformed"},
		{"bad state", []byte{wireVersion, kindResults, 1, 'v', 1, 1, 't', 9, 0, 0, 0, 0}, "state 9"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decode(tt.msg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeResults(Results{Vantage: "v", Reports: []Report{{Target: "t", State: gslb.Up}}}, 0)[0])
	f.Add(encodePlan(Plan{Origin: "o", Generation: 2, Body: []byte("[]")}))
	f.Add(encodeFull([][]byte{encodeOverrides(Overrides{Version: 1, Origin: "o"})}))
	f.Add(encodeBye("b"))
	f.Add(encodeLoad(LoadReport{Forwarder: "f", Region: "r", Listeners: []ListenerLoad{webLoad}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decode(b) // must not panic
	})
}

// TestHealthFeedsEngine: votes become the health map's states, and the
// vantages' round-trip times its per-vantage and median RTTs.
func TestHealthFeedsEngine(t *testing.T) {
	dns := start(t, "dns", Meta{Role: RoleDNS})
	paris := start(t, "paris", Meta{Role: RoleProbe, Lat: 48.85, Lon: 2.35}, dns.Addr())
	tokyo := start(t, "tokyo", Meta{Role: RoleProbe, Lat: 35.68, Lon: 139.69}, dns.Addr())
	testkit.Eventually(t, "both vantages known", func() bool { return len(dns.alive(RoleProbe)) == 2 })
	send := func(v *Node, rtt time.Duration) {
		v.SendResults(Results{Vantage: v.Name(), Complete: true, Reports: []Report{{Target: "eu-west/192.0.2.1", State: gslb.Up, Seq: 1, RTT: rtt}}})
	}
	send(paris, 5*time.Millisecond)
	send(tokyo, 200*time.Millisecond)
	hm := gslb.NewHealthMap()
	h := NewHealth(dns, hm.Store, testLog(t))
	testkit.Eventually(t, "both results", func() bool {
		h.Apply(time.Now())
		v, _ := dns.table.Verdict("eu-west/192.0.2.1")
		return v.Up == 2
	})
	if hm.State("eu-west/192.0.2.1") != gslb.Up {
		t.Fatalf("state %v", hm.State("eu-west/192.0.2.1"))
	}
	if d, ok := hm.RTT("eu-west"); !ok || d != 200*time.Millisecond {
		// The median of two is the upper one.
		t.Errorf("median RTT %v %v", d, ok)
	}
	for _, tt := range []struct {
		lat, lon float64
		want     time.Duration
	}{{51.5, -0.1, 5 * time.Millisecond}, {37.5, 127, 200 * time.Millisecond}} {
		if d, ok := hm.NearestRTTs(tt.lat, tt.lon)["eu-west"]; !ok || d != tt.want {
			t.Errorf("from (%v, %v): RTT %v %v, want %v", tt.lat, tt.lon, d, ok, tt.want)
		}
	}
}
