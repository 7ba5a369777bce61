package checks

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/probes"
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
	hm := gslb.NewHealthMap()
	e, err := gslb.New([]*gslb.Record{rec}, hm, gslb.Options{UnknownIsUp: false})
	if err != nil {
		t.Fatal(err)
	}
	hm.OnPublish(e.Refresh) // as the DNS node wires it
	r := New(hm.Store, slog.New(slog.DiscardHandler))
	spec := func(id health.TargetID, addr string) probes.CheckSpec {
		return probes.CheckSpec{Target: id, Type: "tcp", Addr: addr, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 1, Fall: 2}
	}
	// away's check address is always refused: a port just closed.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := closed.Addr().String()
	closed.Close()
	if err := r.Update([]probes.CheckSpec{spec("home/192.0.2.1", ln.Addr().String()), spec("away/192.0.2.2", deadAddr)}); err != nil {
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
	if rtt, ok := hm.RTT("home"); !ok || rtt <= 0 {
		t.Errorf("no smoothed RTT for home: %v %v", rtt, ok)
	}
	ln.Close()
	// Both down now: failing open, from the first pool.
	waitFor(gslb.Opened, "home")
	if got := hm.State("home/192.0.2.1"); got != gslb.Down {
		t.Fatalf("home target %s after its listener closed", got)
	}
}

// TestHTTPCheckFromSpec builds an HTTP check from a configuration's spec
// and runs it against a real server: status and body decide.
func TestHTTPCheckFromSpec(t *testing.T) {
	clients := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clients <- r.RemoteAddr
		if r.URL.Path != "/health" || r.Host != "app.example.test" {
			http.Error(w, "wrong request", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, "status: ready, version 7")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	second := netip.MustParseAddr("127.0.0.2")
	for _, tt := range []struct {
		name string
		spec probes.CheckSpec
		ok   bool
	}{
		{"path, host and body match", probes.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", Body: "ready"}, true},
		{"body does not match", probes.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", Body: "draining"}, false},
		{"wrong path is a 404", probes.CheckSpec{Type: "http", Addr: addr, Path: "/", Host: "app.example.test"}, false},
		{"404 accepted when expected", probes.CheckSpec{Type: "http", Addr: addr, Path: "/", Host: "app.example.test", Expect: []int{404}}, true},
		{"body regexp matches", probes.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", BodyRegexp: `version \d+$`}, true},
		{"body regexp does not match", probes.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", BodyRegexp: `^version`}, false},
		{"method", probes.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", Method: http.MethodHead, Expect: []int{204}}, true},
		{"from a source address", probes.CheckSpec{Type: "http", Addr: addr, Path: "/health", Host: "app.example.test", Source: second}, true},
	} {
		if tt.spec.Source.IsValid() && !canBind(tt.spec.Source) {
			t.Logf("%s: skipped, this host has no %s", tt.name, tt.spec.Source)
			continue
		}
		for len(clients) > 0 {
			<-clients
		}
		ck, err := probes.NewChecker(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res := ck.Check(ctx)
		cancel()
		if res.OK != tt.ok {
			t.Errorf("%s: ok=%v (%s), want %v", tt.name, res.OK, res.Reason, tt.ok)
		}
		if tt.spec.Source.IsValid() {
			if from := netip.MustParseAddrPort(<-clients).Addr(); from != tt.spec.Source {
				t.Errorf("%s: the server saw the check from %s, want %s", tt.name, from, tt.spec.Source)
			}
		}
	}
}

// canBind reports whether the host has addr: 127.0.0.0/8 is all local on
// Linux, only 127.0.0.1 elsewhere.
func canBind(addr netip.Addr) bool {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestHTTPSCheckFromSpecPEM: PEM contents in a spec are used in place of
// the file paths, which need not exist on this host.
func TestHTTPSCheckFromSpecPEM(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are on purpose
	srv.StartTLS()
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	addr := srv.Listener.Addr().String()
	missing := filepath.Join(t.TempDir(), "not-on-this-host.pem")
	for _, tt := range []struct {
		name string
		spec probes.CheckSpec
		ok   bool
	}{
		{"system roots do not know the test CA", probes.CheckSpec{Type: "https", Addr: addr, Host: "example.com"}, false},
		{"CA PEM", probes.CheckSpec{Type: "https", Addr: addr, Host: "example.com", CAPEM: caPEM}, true},
		{"CA PEM over a path from elsewhere", probes.CheckSpec{Type: "https", Addr: addr, Host: "example.com", CAFile: missing, CAPEM: caPEM}, true},
	} {
		ck, err := probes.NewChecker(tt.spec)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res := ck.Check(ctx)
		cancel()
		if res.OK != tt.ok {
			t.Errorf("%s: ok=%v (%s), want %v", tt.name, res.OK, res.Reason, tt.ok)
		}
	}
	if _, err := probes.NewChecker(probes.CheckSpec{Type: "https", Addr: addr, CAFile: missing}); !errors.Is(err, probes.ErrInvalidCheck) {
		t.Errorf("a CA file that is not there, without PEM: %v, want ErrInvalidCheck", err)
	}
}

// TestDNSCheckFromSpec builds DNS checks from a configuration's spec and
// runs them against a real nameserver: rcode and answer decide.
func TestDNSCheckFromSpec(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		if q.Question[0].Name != "app.example.test." {
			r.Rcode = dns.RcodeNameError
		} else if q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("app.example.test. 30 IN A 192.0.2.1")
			r.Answer = append(r.Answer, rr)
		}
		w.WriteMsg(r)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); <-done }()

	addr := pc.LocalAddr().String()
	for _, tt := range []struct {
		name   string
		spec   probes.CheckSpec
		ok     bool
		reason string
	}{
		{"answer", probes.CheckSpec{Type: "dns", Addr: addr, QueryName: "app.example.test.", QueryType: dns.TypeA, Answer: "192.0.2.1"}, true, "rcode NOERROR"},
		{"another answer", probes.CheckSpec{Type: "dns", Addr: addr, QueryName: "app.example.test.", QueryType: dns.TypeA, Answer: "192.0.2.2"}, false, "no answer 192.0.2.2 (got 192.0.2.1)"},
		{"NXDOMAIN", probes.CheckSpec{Type: "dns", Addr: addr, QueryName: "gone.example.test.", QueryType: dns.TypeA}, false, "rcode NXDOMAIN, want NOERROR"},
		{"NXDOMAIN expected", probes.CheckSpec{Type: "dns", Addr: addr, QueryName: "gone.example.test.", QueryType: dns.TypeA, Rcode: dns.RcodeNameError}, true, "rcode NXDOMAIN"},
	} {
		ck, err := probes.NewChecker(tt.spec)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res := ck.Check(ctx)
		cancel()
		if res.OK != tt.ok || res.Reason != tt.reason {
			t.Errorf("%s: ok=%v (%s), want %v (%s)", tt.name, res.OK, res.Reason, tt.ok, tt.reason)
		}
	}
}
