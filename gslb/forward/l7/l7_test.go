package l7

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/l4"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// fakeSnapshot is the configuration in force as a forwarder would hold
// it: what Snapshot asks, and nothing else.
type fakeSnapshot struct {
	listeners map[string]*Config
	pools     map[string]*Pool
}

func (s *fakeSnapshot) HTTPListener(name string) *Config { return s.listeners[name] }
func (s *fakeSnapshot) HTTPPool(name string) *Pool       { return s.pools[name] }

// TestProxyWithoutForwarder drives the proxy through its seam alone, as
// the forwarder does (Prepare, NewConfig, NewPool, Bind, Publish), and
// sends it requests on both paths: the fast path and net/http.
func TestProxyWithoutForwarder(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %d", r.URL.Path, n)
	}))
	defer backend.Close()
	src := fmt.Sprintf(`
[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:0"
pool = "app"
[[listener.route]]
name = "api"
path_prefix = "/api/"
strip_prefix = "/api"
pool = "app"
[[pool]]
name = "app"
[pool.check]
type = "none"
[[pool.backend]]
address = %q
`, strings.TrimPrefix(backend.URL, "http://"))
	cfg, err := config.ParseForward(filepath.Join(t.TempDir(), "forward.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, hc, ln := startProxy(t, cfg)
	base := "http://" + ln.Addr().String()
	for _, tc := range []struct {
		path string
		body int
		want string
	}{
		{"/api/items", 0, "/items 0"},        // the fast path
		{"/other", 0, "/other 0"},            // route "default"
		{"/api/big", 64 << 10, "/big 65536"}, // handed to net/http
	} {
		resp, err := http.Post(base+tc.path, "text/plain", strings.NewReader(strings.Repeat("x", tc.body)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != tc.want {
			t.Errorf("%s: %d %q, want 200 %q", tc.path, resp.StatusCode, b, tc.want)
		}
	}
	routes := hc.Routes()
	if len(routes) != 2 || routes[0].Name != "api" || routes[0].Requests["2xx"] != 2 || routes[1].Name != routeDefault || routes[1].Requests["2xx"] != 1 {
		t.Errorf("routes: %+v", routes)
	}
	if hl := ln.(*httpListener); hl.fastRequests.Load() != 2 || hl.handoffs.Load() != 1 {
		t.Errorf("fast path: %d requests and %d handoffs, want 2 and 1", hl.fastRequests.Load(), hl.handoffs.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ln.Stop()
	ln.Wait(ctx)
	p.Close()
}

// startProxy puts cfg (one http listener and one pool) in force on a new
// proxy, as the forwarder's apply does, and serves it.
func startProxy(t *testing.T, cfg *config.Forward) (*Proxy, *Config, l4.Listener) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	var cur atomic.Pointer[fakeSnapshot]
	p := New(Env{Ctx: t.Context(), Log: log, Current: func() Snapshot { return cur.Load() },
		SetCanary: func(string, string, int) error { return nil }})
	prep, err := p.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lc, pc := cfg.Listeners[0], &cfg.Pools[0]
	hc, err := p.NewConfig(prep, 0, l4.NewConfig(lc))
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstream.NewRegistry(log, nil).Build(pc, map[string]bool{}, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := p.NewPool(prep, pc, up)
	ln, err := p.Bind(prep, lc)
	if err != nil {
		t.Fatal(err)
	}
	snap := &fakeSnapshot{listeners: map[string]*Config{lc.Name: hc}, pools: map[string]*Pool{pc.Name: pool}}
	cur.Store(snap)
	up.State.Install(up)
	p.Publish(prep, snap.pools, map[string]l4.Listener{lc.Name: ln})
	go ln.Serve()
	return p, hc, ln
}
