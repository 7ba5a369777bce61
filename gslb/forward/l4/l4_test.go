package l4

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// snapshot is a fixed configuration in force.
type snapshot struct {
	listeners map[string]*Config
	pools     map[string]*upstream.Pool
}

func (s *snapshot) Listener(name string) *Config    { return s.listeners[name] }
func (s *snapshot) Pool(name string) *upstream.Pool { return s.pools[name] }

// testConfig parses src, a forwarder configuration, and builds its pools
// and listener settings the way the forwarder does.
func testConfig(t *testing.T, src string) (*config.Forward, *snapshot) {
	t.Helper()
	cfg, err := config.ParseForward("test.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	reg := upstream.NewRegistry(slog.New(slog.DiscardHandler), nil)
	snap := &snapshot{listeners: map[string]*Config{}, pools: map[string]*upstream.Pool{}}
	for i := range cfg.Pools {
		p, err := reg.Build(&cfg.Pools[i], map[string]bool{}, true, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		p.State.Install(p)
		snap.pools[p.Name] = p
	}
	for _, lc := range cfg.Listeners {
		snap.listeners[lc.Name] = NewConfig(lc)
	}
	return cfg, snap
}

// echoBackend answers each line it reads with its name and the line.
func echoBackend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "%s %s", name, line)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// The TCP listener proxies a connection to its pool's backend and back,
// reading pools and settings through the Snapshot alone.
func TestTCPListenerProxies(t *testing.T) {
	backend := echoBackend(t, "a")
	cfg, snap := testConfig(t, fmt.Sprintf(`[[pool]]
name = "web"
[pool.check]
type = "none"
[[pool.backend]]
address = %q
[[listener]]
name = "web"
listen = "127.0.0.1:0"
pool = "web"
`, backend))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := &Env{Ctx: ctx, Log: slog.New(slog.DiscardHandler), Current: func() Snapshot { return snap }}
	l, err := Bind(env, cfg.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve()
	defer func() {
		l.Stop()
		waitCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Wait(waitCtx)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "hello\n")
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if got != "a hello\n" {
		t.Errorf("answer = %q, want %q", got, "a hello\n")
	}
	if b := snap.pools["web"].Backends[0]; b.State.Connections.Load() != 1 {
		t.Errorf("backend connections = %d, want 1", b.State.Connections.Load())
	}
}

// SNI routes: an exact name, a wildcard for one label, else the
// listener's pool.
func TestConfigRoute(t *testing.T) {
	c := NewConfig(config.ForwardListener{Name: "tls", Protocol: "tls", Pool: "default", Routes: []config.ForwardRoute{
		{SNI: []string{"api.example.com"}, Pool: "api"},
		{SNI: []string{"*.example.com"}, Pool: "wild"},
	}})
	for name, want := range map[string]string{
		"api.example.com":   "api",
		"www.example.com":   "wild",
		"a.b.example.com":   "default",
		"example.com":       "default",
		"":                  "default",
		"other.example.org": "default",
	} {
		if got := c.Route(name); got != want {
			t.Errorf("Route(%q) = %q, want %q", name, got, want)
		}
	}
}
