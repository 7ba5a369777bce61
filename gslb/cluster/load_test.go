package cluster

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/internal/testkit"
)

func loadReport(listeners ...ListenerLoad) LoadReport {
	return LoadReport{Region: "eu-west", Listeners: listeners}
}

var webLoad = ListenerLoad{Listener: "web", VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
	Unit: health.UnitRPS, Load: 120.5, Target: 100, Max: 130, Active: 12, Rate: 120.5, P99: 35 * time.Millisecond, BackendsUp: 2, BackendsAll: 3}

func TestLoadWire(t *testing.T) {
	r := loadReport(webLoad, ListenerLoad{Listener: "tcp", Unit: health.UnitConnections, Load: 3, Target: 10, Max: 20, Active: 3})
	r.Forwarder = "fwd-1"
	m, err := decode(encodeLoad(r))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.load) != fmt.Sprint(r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", m.load, r)
	}
	good := encodeLoad(r)
	bad := []struct {
		name string
		msg  []byte
	}{
		{"truncated", good[:len(good)-2]},
		{"huge listener count", []byte{wireVersion, kindLoad, 1, 'f', 1, 'r', 0xff, 0xff, 0x03}},
		{"huge vip count", []byte{wireVersion, kindLoad, 1, 'f', 1, 'r', 1, 1, 'l', 3, 'r', 'p', 's', 0xff, 0x01}},
		{"bad vip", []byte{wireVersion, kindLoad, 1, 'f', 1, 'r', 1, 1, 'l', 3, 'r', 'p', 's', 1, 3, 1, 2, 3}},
	}
	for _, tt := range bad {
		if _, err := decode(tt.msg); err == nil {
			t.Errorf("%s: decoded", tt.name)
		}
	}
	// What one forwarder sends a DNS node each second, before
	// memberlist's framing and encryption: docs/load.md quotes it.
	t.Logf("one listener with two VIPs: %d bytes", len(encodeLoad(loadReport(webLoad))))
}

// TestLoadReports: a forwarder's report reaches the DNS node, is stamped
// with the DNS node's clock, goes stale and is then not published, and
// its absurd listeners are dropped while its sound ones count.
func TestLoadReports(t *testing.T) {
	dns := start(t, "dns", Meta{Role: RoleDNS})
	fwd := start(t, "fwd-eu", Meta{Role: RoleForwarder, Region: "eu-west"}, dns.Addr())
	testkit.Eventually(t, "the forwarder to be a member", func() bool { return len(fwd.alive(RoleDNS)) == 1 })
	nan := ListenerLoad{Listener: "nan", Unit: health.UnitRPS, Load: math.NaN(), Target: 1, Max: 2}
	inverted := ListenerLoad{Listener: "inverted", Unit: health.UnitRPS, Load: 1, Target: 20, Max: 10}
	negative := ListenerLoad{Listener: "negative", Unit: health.UnitConnections, Load: -1, Target: 1, Max: 2}
	fwd.SendLoad(loadReport(webLoad, nan, inverted, negative))
	testkit.Eventually(t, "the report", func() bool { return len(dns.Loads(time.Now(), 0)) == 1 })
	got := dns.Loads(time.Now(), 0)[0]
	if got.Forwarder != "fwd-eu" || got.Region != "eu-west" || len(got.Listeners) != 1 || got.Listeners[0].Listener != "web" || got.Stale {
		t.Fatalf("held %+v, want fwd-eu's web listener alone, fresh", got)
	}

	store := health.NewStore()
	h := NewHealth(dns, store, testLog(t))
	h.apply(time.Now(), true)
	loads := store.Snapshot().Loads()
	if len(loads) != 1 || loads[0].Load != 120.5 || loads[0].Region != "eu-west" || len(loads[0].VIPs) != 2 {
		t.Fatalf("published %+v", loads)
	}
	// Stale by the DNS node's clock: not published, region unreported.
	h.apply(time.Now().Add(DefaultLoadStaleAfter+time.Second), true)
	if loads := store.Snapshot().Loads(); len(loads) != 0 {
		t.Fatalf("a stale report was published: %+v", loads)
	}
	if held := dns.Loads(time.Now().Add(DefaultLoadStaleAfter+time.Second), 0); len(held) != 1 || !held[0].Stale {
		t.Fatalf("held %+v, want one stale report", held)
	}
	// A forwarder that leaves is forgotten at once.
	if err := fwd.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the report forgotten", func() bool { return len(dns.Loads(time.Now(), 0)) == 0 })
}

// TestLoadNeedsKey: a forwarder without the cluster's key can neither
// join nor get a report read: memberlist drops what it cannot decrypt.
// The same packet from a node with the key is read, so the test can fail.
func TestLoadNeedsKey(t *testing.T) {
	dns := start(t, "dns", Meta{Role: RoleDNS})
	host, port, _ := net.SplitHostPort(dns.Addr())
	p, _ := strconv.Atoi(port)
	to := &memberlist.Node{Name: "dns", Addr: net.ParseIP(host), Port: uint16(p)}
	send := func(name string, key []byte) *Node {
		n, err := New(context.Background(), Config{Name: name, Bind: "127.0.0.1:0", Keys: [][]byte{key},
			Meta: Meta{Role: RoleForwarder, Region: "eu-west"}, Tune: fast, Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		r := loadReport(webLoad)
		r.Forwarder = name
		for range 5 {
			if err := n.ml.SendBestEffort(to, encodeLoad(r)); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	intruder := send("intruder", bytes.Repeat([]byte{9}, 32))
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	intruder.cfg.Seeds = []string{dns.Addr()}
	if err := intruder.Join(ctx); err == nil {
		t.Fatal("a forwarder with another key joined")
	}
	send("keyed", testKey)
	testkit.Eventually(t, "the keyed report", func() bool { return len(dns.Loads(time.Now(), 0)) > 0 })
	for _, f := range dns.Loads(time.Now(), 0) {
		if f.Forwarder == "intruder" {
			t.Fatal("the DNS node read a report sent without the cluster's key")
		}
	}
}

// TestLoadBandwidth measures what a forwarder reporting once a second
// costs on the wire (memberlist's failure detection included), for
// docs/load.md.
func TestLoadBandwidth(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 5 s")
	}
	dns := startWith(t, "dns", Meta{Role: RoleDNS}, nil)
	fwd := startWith(t, "fwd", Meta{Role: RoleForwarder, Region: "eu-west"}, nil, dns.Addr())
	testkit.Eventually(t, "membership", func() bool { return len(fwd.alive(RoleDNS)) == 1 })
	sent0, recv0 := fwd.Bytes()
	const seconds = 5
	for range seconds {
		fwd.SendLoad(loadReport(webLoad))
		time.Sleep(time.Second)
	}
	sent, recv := fwd.Bytes()
	perSecond := float64(sent-sent0+recv-recv0) / seconds
	t.Logf("forwarder with one listener, one DNS node, LAN timers: %.0f bytes/s sent and received", perSecond)
	if perSecond <= 0 {
		t.Fatal("no bytes counted")
	}
	if !strings.Contains(fmt.Sprint(dns.Loads(time.Now(), 0)), "fwd") {
		t.Fatal("the reports did not arrive")
	}
}

// startWith starts a node with memberlist's LAN timers (tune nil) or
// tuned ones.
func startWith(t *testing.T, name string, meta Meta, tune func(*memberlist.Config), seeds ...string) *Node {
	t.Helper()
	n, err := New(context.Background(), Config{Name: name, Bind: "127.0.0.1:0", Seeds: seeds, Keys: [][]byte{testKey},
		Meta: meta, Log: testLog(t), Tune: tune})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Join(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}
