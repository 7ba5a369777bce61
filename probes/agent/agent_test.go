package agent

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/cluster"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/internal/testkit"
	"github.com/meridian-gslb/meridian/probes"
)

var key = bytes.Repeat([]byte{3}, 16)

func fast(c *memberlist.Config) {
	c.ProbeInterval = 100 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
}

// TestAgentFollowsPlanAndReports: an agent joins a DNS node, runs the
// checks of the plan the node publishes, reports their results and a
// change at once, and follows a new plan.
func TestAgentFollowsPlanAndReports(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dns, err := cluster.New(ctx, cluster.Config{Name: "dns", Bind: "127.0.0.1:0", Keys: [][]byte{key}, Meta: cluster.Meta{Role: cluster.RoleDNS}, Tune: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Shutdown()
	if err := dns.Join(ctx); err != nil {
		t.Fatal(err)
	}
	publish := func(gen uint64, specs ...probes.CheckSpec) {
		body, err := probes.EncodePlan(specs)
		if err != nil {
			t.Fatal(err)
		}
		dns.PublishPlan(cluster.Plan{Generation: gen, Body: body})
	}
	http1 := probes.CheckSpec{Target: "eu/192.0.2.1", Type: "http", Addr: addr, Path: "/", Interval: 100 * time.Millisecond, Timeout: 80 * time.Millisecond, Rise: 1, Fall: 1}
	publish(1, http1)

	a, err := New(ctx, Config{
		Cluster: cluster.Config{Bind: "127.0.0.1:0", Seeds: []string{dns.Addr()}, Keys: [][]byte{key},
			Meta: cluster.Meta{Vantage: "v1"}, Tune: fast},
		Refresh: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	verdict := func(target health.TargetID) (gslb.State, int) {
		dns.Table().Recompute(time.Now())
		v, _ := dns.Table().Verdict(target)
		return v.State, v.Up + v.Down
	}
	testkit.Eventually(t, "the target's first result", func() bool { st, n := verdict("eu/192.0.2.1"); return st == gslb.Up && n == 1 })

	// The agent's own endpoints tell its supervisor it is ready, and
	// what it sees.
	api := httptest.NewServer(a.Handler())
	defer api.Close()
	for path, want := range map[string]string{
		"/readyz":         `"ready"`,
		"/api/v1/results": `"target": "eu/192.0.2.1"`,
		"/metrics":        `meridian_agent_targets{state="up"} 1`,
	} {
		resp, err := http.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, want 200 with %s:\n%s", path, resp.Status, want, body)
		}
	}
	failing.Store(true)
	testkit.Eventually(t, "the failure reported", func() bool { st, _ := verdict("eu/192.0.2.1"); return st == gslb.Down })
	v, _ := dns.Table().Verdict("eu/192.0.2.1")
	if len(v.Votes) != 1 || v.Votes[0].Reason != "failed 1 in a row: status 503" {
		t.Errorf("vote %+v", v.Votes)
	}

	// A reload's plan adds a TCP check and drops the HTTP one.
	tcp := probes.CheckSpec{Target: "us/192.0.2.2", Type: "tcp", Addr: addr, Interval: 100 * time.Millisecond, Timeout: 80 * time.Millisecond, Rise: 1, Fall: 1}
	publish(2, tcp)
	testkit.Eventually(t, "the new plan's target", func() bool { st, _ := verdict("us/192.0.2.2"); return st == gslb.Up })
	testkit.Eventually(t, "the agent to drop the old target", func() bool { _, ok := a.Status()["eu/192.0.2.1"]; return !ok })

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestReportsCarryEvidence: what an agent reports says what backs each
// state, so that a DNS node can refuse one carried across a freeze, and
// whether it is the vantage's whole view, so that it can judge it.
func TestReportsCarryEvidence(t *testing.T) {
	a, err := New(t.Context(), Config{Cluster: cluster.Config{Bind: "127.0.0.1:0", Keys: [][]byte{key}, Meta: cluster.Meta{Vantage: "v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.node.Shutdown()
	spec := probes.CheckSpec{Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 2}
	a.specs = map[string]probes.CheckSpec{"t1": spec, "t2": spec}
	h := probes.Hysteresis{Rise: spec.Rise, Fall: spec.Fall}
	t0 := time.Now()
	var st1 probes.Status
	steps := []struct {
		ok       bool
		at       time.Duration
		complete bool // the whole view after this result
		backed   time.Duration
		window   time.Duration
		streak   int
	}{
		{ok: true, at: 0, backed: 0, window: 3 * time.Second, streak: 1},
		// Frozen for 6 s; the first check after it fails: still up, on
		// evidence 6 s old.
		{ok: false, at: 6 * time.Second, backed: 6 * time.Second, window: 3 * time.Second, streak: 0},
		{ok: false, at: 7 * time.Second, backed: 0, window: 4 * time.Second, streak: 2},
	}
	for i, step := range steps {
		now := t0.Add(step.at)
		st1 = h.Next(st1, probes.Result{OK: step.ok}, now)
		a.observe("t1", st1)
		rep := a.report("t1", a.results["t1"], now)
		if rep.Backed != step.backed || rep.Window != step.window || rep.Streak != step.streak {
			t.Errorf("step %d: backed %v window %v streak %d, want %v %v %d", i+1, rep.Backed, rep.Window, rep.Streak, step.backed, step.window, step.streak)
		}
	}
	if rs := a.all(); rs.Complete || rs.Boot == 0 {
		t.Errorf("with t2 unchecked: complete %v, boot %d", rs.Complete, rs.Boot)
	}
	a.observe("t2", h.Next(probes.Status{}, probes.Result{OK: true}, t0))
	if rs := a.all(); !rs.Complete || !a.whole {
		t.Errorf("with every target checked: complete %v, whole view due %v", rs.Complete, a.whole)
	}
}
