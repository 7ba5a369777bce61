package checks

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/miekg/dns"
)

// TestChecksMoveAnswers runs real TCP checks against a listener the test
// opens and closes, and watches the engine's decision follow.
func TestChecksMoveAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	home := &gslb.Region{Name: "home", Lat: 1, Lon: 1}
	away := &gslb.Region{Name: "away", Lat: 50, Lon: 50}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	rec := &gslb.Record{
		Name: "app.example.test.", Type: dns.TypeA, TTL: 30, Regions: gslb.Failover{}, Targets: gslb.All{},
		Pools: []*gslb.Pool{
			{Name: "home", Region: home, MinHealthy: 1, Targets: []gslb.Target{{ID: "home/192.0.2.1", Addr: a, Weight: 1}}},
			{Name: "away", Region: away, MinHealthy: 1, Targets: []gslb.Target{{ID: "away/192.0.2.2", Addr: b, Weight: 1}}},
		},
	}
	health := gslb.NewHealthMap()
	e, err := gslb.New([]*gslb.Record{rec}, health, gslb.Options{UnknownIsUp: false})
	if err != nil {
		t.Fatal(err)
	}
	r := New(health, slog.New(slog.DiscardHandler))
	spec := func(id, addr string) config.CheckSpec {
		return config.CheckSpec{Target: id, Type: "tcp", Addr: addr, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 1, Fall: 2}
	}
	// away's check address is always refused: a port just closed.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := closed.Addr().String()
	closed.Close()
	if err := r.Update([]config.CheckSpec{spec("home/192.0.2.1", ln.Addr().String()), spec("away/192.0.2.2", deadAddr)}, e); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor := func(want gslb.Outcome, region string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			d := e.Decide(rec, &gslb.Client{}, nil)
			if d.Outcome == want && d.Pool != nil && d.Pool.Region.Name == region {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("decision %s from %v, want %s from %s", d.Outcome, d.Pool, want, region)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(gslb.Answered, "home")
	if rtt, ok := health.RTT("home"); !ok || rtt <= 0 {
		t.Errorf("no smoothed RTT for home: %v %v", rtt, ok)
	}
	ln.Close()
	// Both down now: failing open, from the first pool.
	waitFor(gslb.Opened, "home")
	if got := health.State("home/192.0.2.1"); got != gslb.Down {
		t.Fatalf("home target %s after its listener closed", got)
	}
}

// TestHTTPCheckFromSpec builds an HTTP check from a configuration's spec
// and runs it against a real server: status and body decide.
func TestHTTPCheckFromSpec(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.Host != "app.example.test" {
			http.Error(w, "wrong request", http.StatusNotFound)
			return
		}
		io.WriteString(w, "status: ready")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for _, tt := range []struct {
		name string
		spec config.CheckSpec
		ok   bool
	}{
		{"path, host and body match", config.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", Body: "ready"}, true},
		{"body does not match", config.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", Body: "draining"}, false},
		{"wrong path is a 404", config.CheckSpec{Type: "http", Addr: addr, Path: "/", Host: "app.example.test"}, false},
		{"404 accepted when expected", config.CheckSpec{Type: "http", Addr: addr, Path: "/", Host: "app.example.test", Expect: []int{404}}, true},
	} {
		ck, err := Checker(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res := ck.Check(ctx)
		cancel()
		if res.OK != tt.ok {
			t.Errorf("%s: ok=%v (%s), want %v", tt.name, res.OK, res.Reason, tt.ok)
		}
	}
}
