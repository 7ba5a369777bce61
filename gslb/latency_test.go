package gslb

import (
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// TestLatencyFromThePlan: the times a decision orders by are the plan's,
// the nearest vantage's for a located client; a publish that changes only
// times refolds them and keeps the states.
func TestLatencyFromThePlan(t *testing.T) {
	h := NewHealthMap()
	r := world(Latency{}, All{})
	e := newEngine(t, h, r)
	h.OnPublish(e.Refresh)
	ms := time.Millisecond
	h.Update(func(tx *health.Tx) {
		tx.SetRTT("us-east", 40*ms)
		tx.SetRTT("eu-west", 10*ms)
		tx.SetRTT("ap-northeast", 90*ms)
		// Near Paris, us-east is measured fastest: the vantage wins over
		// both the view's times and the distance.
		tx.SetVantageRTTs([]VantageRTT{{Name: "fra", Lat: 50.1, Lon: 8.7, RTT: map[string]time.Duration{"us-east": 5 * ms, "eu-west": 50 * ms}}})
	})
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "us-east" || d.Scope == 0 {
		t.Errorf("paris: %s scope %d, want us-east from the vantage in Frankfurt", d.Pool.Region.Name, d.Scope)
	}
	if d := e.Decide(r, client("192.0.2.1", 32), nil); d.Pool.Region.Name != "eu-west" || d.Scope != 0 {
		t.Errorf("not located: %s scope %d, want eu-west by the view's times, scope 0", d.Pool.Region.Name, d.Scope)
	}
	h.Set("use/192.0.2.1", Down)
	h.Set("use/192.0.2.2", Down)
	states := e.plan.Load().statesAt
	h.SetRTT("eu-west", 11*ms) // times only
	if pl := e.plan.Load(); pl.statesAt != states || pl.rtt.region[1] != float64(11*ms) {
		t.Fatalf("times-only publish: states at %d (was %d), eu-west %v", pl.statesAt, states, pl.rtt.region)
	}
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "eu-west" || d.Outcome != Fallback {
		t.Errorf("us-east down: %s %s, want a fallback to eu-west", d.Pool.Region.Name, d.Outcome)
	}
}

// TestLatencyTakesNoLock: a decision goes on while a writer holds the
// health store, and allocates nothing.
func TestLatencyTakesNoLock(t *testing.T) {
	h := NewHealthMap()
	h.SetRTT("us-east", 30*time.Millisecond)
	h.SetVantageRTTs([]VantageRTT{{Name: "fra", Lat: 50.1, Lon: 8.7, RTT: map[string]time.Duration{"eu-west": time.Millisecond}}})
	r := world(Latency{}, All{})
	e := newEngine(t, h, r)
	holding, release := make(chan struct{}), make(chan struct{})
	go h.Update(func(*health.Tx) { close(holding); <-release })
	<-holding
	decided := make(chan Decision, 1)
	go func() { decided <- e.Decide(r, paris, nil) }()
	select {
	case d := <-decided:
		if d.Pool.Region.Name != "eu-west" {
			t.Errorf("decided %s, want eu-west", d.Pool.Region.Name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a decision waited for the health store's writer")
	}
	close(release)
	var s Scratch
	if n := testing.AllocsPerRun(100, func() { e.Decide(r, paris, &s) }); n != 0 {
		t.Errorf("%v allocations per latency decision", n)
	}
}
