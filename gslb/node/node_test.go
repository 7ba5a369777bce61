package node

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/internal/runner"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// configWith is a node's configuration serving example.test at addr, on
// any free port, with no admin API.
func configWith(addr string) string {
	return `
[server]
listen = ["127.0.0.1:0"]
shutdown_timeout = "2s"

[admin]
listen = "off"

[[zone]]
name = "example.test"
records = [
  "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300",
  "@ IN NS ns1",
  "ns1 IN A 192.0.2.53",
  "@ IN A ` + addr + `",
]
`
}

func load(path string) (*config.Config, *zones.Set, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	set, err := cfg.LoadZones()
	if err != nil {
		return nil, nil, err
	}
	return cfg, set, nil
}

// testNode is a started node serving the configuration at path, which
// the test rewrites before each reload.
type testNode struct {
	*Node
	path string
}

func startNode(t *testing.T, body string) *testNode {
	t.Helper()
	return startNodeWith(t, body, func() error { return errors.New("no loop") })
}

// startNodeWith starts a node whose admin reloads go to request.
func startNodeWith(t *testing.T, body string, request func() error) *testNode {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meridian.toml")
	tn := &testNode{path: path}
	tn.write(t, body)
	cfg, set, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(context.Background(), cfg, set, Options{
		Path: path, Load: load, Version: "test", Log: slog.New(slog.DiscardHandler),
		Level: new(slog.LevelVar), Registry: prometheus.NewRegistry(),
		RequestReload: request,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(n.Close)
	if err := n.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	tn.Node = n
	return tn
}

func (tn *testNode) write(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(tn.path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// answer asks the node for example.test A, over UDP, and returns the
// address answered.
func (tn *testNode) answer(t *testing.T) string {
	t.Helper()
	udp, _ := tn.Addrs()
	m := new(dns.Msg)
	m.SetQuestion("Example.TEST.", dns.TypeA)
	r, err := dns.Exchange(m, udp[0])
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("reply: %v", r)
	}
	return r.Answer[0].(*dns.A).A.String()
}

func TestReloadServesTheNewConfiguration(t *testing.T) {
	tn := startNode(t, configWith("192.0.2.1"))
	if got := tn.answer(t); got != "192.0.2.1" {
		t.Fatalf("answer = %s, want 192.0.2.1", got)
	}
	tn.write(t, configWith("192.0.2.2"))
	attrs, err := tn.ReloadConfig()
	if err != nil {
		t.Fatalf("ReloadConfig: %v", err)
	}
	if got := tn.answer(t); got != "192.0.2.2" {
		t.Errorf("answer after reload = %s, want 192.0.2.2", got)
	}
	if len(attrs) == 0 || attrs[0] != "zones" {
		t.Errorf("attrs = %v", attrs)
	}
}

// A configuration that does not load or build changes nothing.
func TestFailedReloadKeepsTheOldConfiguration(t *testing.T) {
	tn := startNode(t, configWith("192.0.2.1"))
	old := tn.cfg
	for name, body := range map[string]string{
		"syntax":     "[server\n",
		"bad record": strings.Replace(configWith("192.0.2.2"), "IN A 192.0.2.2", "IN A not-an-address", 1),
	} {
		tn.write(t, body)
		if _, err := tn.ReloadConfig(); err == nil {
			t.Errorf("%s: ReloadConfig succeeded", name)
		}
		if got := tn.answer(t); got != "192.0.2.1" {
			t.Errorf("%s: answer = %s, want the old 192.0.2.1", name, got)
		}
		if tn.cfg != old {
			t.Errorf("%s: the configuration in force changed", name)
		}
	}
}

// A reload whose health switch fails after the handler stored the new
// state serves the previous state again, and keeps the old configuration
// and geo watchers in force.
func TestReloadFailingAfterStoreRestores(t *testing.T) {
	tn := startNode(t, configWith("192.0.2.1"))
	old, oldParts := tn.cfg, tn.parts
	boom := errors.New("health cannot follow")
	var stored string
	tn.switchHealth = func(*Parts) error {
		stored = tn.answer(t) // the new state is serving now
		return boom
	}
	tn.write(t, configWith("192.0.2.2"))
	if _, err := tn.ReloadConfig(); !errors.Is(err, boom) {
		t.Fatalf("ReloadConfig = %v, want %v", err, boom)
	}
	if stored != "192.0.2.2" {
		t.Errorf("answer while switching health = %s, want the new 192.0.2.2", stored)
	}
	if got := tn.answer(t); got != "192.0.2.1" {
		t.Errorf("answer after the failed reload = %s, want the old 192.0.2.1", got)
	}
	if tn.cfg != old || tn.parts != oldParts {
		t.Error("the configuration or the parts in force changed")
	}
	tn.switchHealth = tn.updateHealth
	if _, err := tn.ReloadConfig(); err != nil {
		t.Fatalf("ReloadConfig once health follows: %v", err)
	}
	if got := tn.answer(t); got != "192.0.2.2" {
		t.Errorf("answer = %s, want 192.0.2.2", got)
	}
}

// The admin API's reloads run on the runner's loop, and report their
// result; once the loop has ended they fail at once.
func TestAdminReloadRunsOnTheLoop(t *testing.T) {
	r := runner.New(false)
	defer r.Close()
	tn := startNodeWith(t, configWith("192.0.2.1"), r.Request)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, runner.Loop{
			Reload: tn.ReloadConfig, Reloads: tn.Reloads(), Log: tn.log, FailMsg: "reload failed",
			Failed: tn.Failed(), StopMsg: "listener stopped", Shutdown: tn.Shutdown,
		})
	}()
	tn.write(t, "[server\n")
	if err := tn.Reload(); err == nil {
		t.Error("Reload of a broken file succeeded")
	}
	tn.write(t, configWith("192.0.2.2"))
	if err := tn.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := tn.answer(t); got != "192.0.2.2" {
		t.Errorf("answer = %s, want 192.0.2.2", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := tn.Reload(); !errors.Is(err, runner.ErrStopped) {
		t.Errorf("Reload after the loop = %v, want ErrStopped", err)
	}
}

// TestListenConfig: the server's listener settings reach the DNS front
// end: udp_loop chooses the UDP loop, and udp_sockets 0 means one socket
// per CPU Meridian may use.
func TestListenConfig(t *testing.T) {
	for _, c := range []struct {
		src     string
		poller  bool
		sockets int
	}{
		{"", false, runtime.GOMAXPROCS(0)},
		{"udp_loop = \"poller\"\nudp_sockets = 3\n", true, 3},
		{"udp_loop = \"blocking\"\n", false, runtime.GOMAXPROCS(0)},
	} {
		cfg, err := config.Parse("m.toml", []byte("[server]\n"+c.src+"[[zone]]\nname = \"example.test\"\nrecords = [\"@ IN A 192.0.2.1\"]\n"))
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		if l := listenConfig(cfg); l.UDPPoller != c.poller || l.UDPSockets != c.sockets {
			t.Errorf("%q: UDPPoller %v, UDPSockets %d; want %v, %d", c.src, l.UDPPoller, l.UDPSockets, c.poller, c.sockets)
		}
	}
}
