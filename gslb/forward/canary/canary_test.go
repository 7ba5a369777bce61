package canary

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is the injected clock; it moves only when told to, and may be
// read and moved from several goroutines.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1_699_999_200, 0).UnixNano()) // a whole minute
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// traffic is n responses of one pool, errors of them 5xx, the rest 200;
// slow of them take slowLatency, the rest latency.
type traffic struct {
	n, errors   int
	latency     time.Duration
	slow        int
	slowLatency time.Duration
}

func (tr traffic) observe(g *Guard, pool string) {
	for i := range tr.n {
		status, lat := 200, tr.latency
		if i < tr.errors {
			status = 503
		}
		if i >= tr.n-tr.slow {
			lat = tr.slowLatency
		}
		g.Observe(pool, status, lat)
	}
}

type recorder struct {
	mu      sync.Mutex
	reasons []string
}

func (r *recorder) rollback(reason string) {
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.mu.Unlock()
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

func newGuard(t testing.TB, cfg Config) (*Guard, *fakeClock, *recorder) {
	t.Helper()
	clk, rec := newClock(), &recorder{}
	if cfg.Baseline == "" {
		cfg.Baseline, cfg.Canary = "v1", "v2"
	}
	if cfg.Window == 0 {
		cfg.Window = time.Minute
	}
	cfg.Now, cfg.Rollback = clk.Now, rec.rollback
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g, clk, rec
}

func TestEvaluate(t *testing.T) {
	ms := time.Millisecond
	// The baseline: 1% 5xx, p99 100ms (2% of requests take that long).
	base := traffic{n: 1000, errors: 10, latency: 20 * ms, slow: 20, slowLatency: 100 * ms}
	cases := []struct {
		name             string
		cfg              Config
		baseline, canary traffic
		want             string // in the rollback's reason; "" for no rollback
	}{
		{"similar", Config{}, base,
			traffic{n: 200, errors: 3, latency: 22 * ms, slow: 2, slowLatency: 110 * ms}, ""},
		{"5xx excess", Config{}, base,
			traffic{n: 200, errors: 10, latency: 20 * ms, slow: 2, slowLatency: 100 * ms},
			"canary v2 5xx rate 5.00% exceeds baseline v1 1.00% by more than 1.00 points (200 canary requests in 1m0s)"},
		{"5xx within the margin", Config{}, base,
			traffic{n: 200, errors: 3, latency: 20 * ms}, ""},
		{"5xx with a wider margin", Config{MaxErrorRateDelta: 0.05}, base,
			traffic{n: 200, errors: 10, latency: 20 * ms}, ""},
		{"5xx check disabled", Config{MaxErrorRateDelta: -1}, base,
			traffic{n: 200, errors: 100, latency: 20 * ms}, ""},
		{"p99 excess", Config{}, base,
			traffic{n: 200, latency: 20 * ms, slow: 4, slowLatency: 400 * ms}, "p99 latency"},
		{"p50 slower but p99 alike", Config{}, base,
			traffic{n: 200, latency: 60 * ms, slow: 2, slowLatency: 100 * ms}, ""},
		{"p99 within a wider ratio", Config{MaxLatencyRatio: 5}, base,
			traffic{n: 200, latency: 20 * ms, slow: 4, slowLatency: 400 * ms}, ""},
		{"p99 check disabled", Config{MaxLatencyRatio: -1}, base,
			traffic{n: 200, latency: 20 * ms, slow: 100, slowLatency: 10 * time.Second}, ""},
		{"canary below MinRequests", Config{}, base,
			traffic{n: 99, errors: 99, latency: time.Second}, ""},
		{"canary at MinRequests", Config{}, base,
			traffic{n: 100, errors: 100, latency: time.Second}, "5xx rate 100.00%"},
		{"baseline below MinRequests", Config{MinRequests: 50}, traffic{n: 49, latency: 20 * ms},
			traffic{n: 200, errors: 100, latency: time.Second}, ""},
		// The "other pools" cases also get 500 failing, slow responses of
		// a third pool, v3. Counted into the baseline they would hide the
		// canary's excess (a 34% baseline); counted into the canary they
		// would trip a canary that is like the baseline.
		{"other pools not in the baseline", Config{}, base,
			traffic{n: 200, errors: 10, latency: 20 * ms, slow: 2, slowLatency: 100 * ms},
			"canary v2 5xx rate 5.00% exceeds baseline v1 1.00% by more than 1.00 points (200 canary requests in 1m0s)"},
		{"other pools not in the canary", Config{}, base,
			traffic{n: 200, errors: 3, latency: 22 * ms, slow: 2, slowLatency: 110 * ms}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, _, rec := newGuard(t, c.cfg)
			c.baseline.observe(g, "v1")
			c.canary.observe(g, "v2")
			if strings.HasPrefix(c.name, "other pools") {
				traffic{n: 500, errors: 500, latency: time.Second}.observe(g, "v3")
			}
			st := g.Evaluate()
			calls := rec.calls()
			if c.want == "" {
				if st.Tripped || len(calls) != 0 {
					t.Errorf("tripped (%q), want no rollback; status %+v", st.Reason, st)
				}
				return
			}
			if !st.Tripped || len(calls) != 1 || !strings.Contains(calls[0], c.want) || st.Reason != calls[0] {
				t.Errorf("rollbacks %q, status %+v; want one naming %q", calls, st, c.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	g, _, _ := newGuard(t, Config{})
	traffic{n: 1000, errors: 20, latency: 10 * time.Millisecond, slow: 5, slowLatency: time.Second}.observe(g, "v1")
	traffic{n: 100, errors: 0, latency: 10 * time.Millisecond, slow: 50, slowLatency: 30 * time.Millisecond}.observe(g, "v2")
	st := g.Status()
	b, c := st.Baseline, st.Canary
	if b.Pool != "v1" || b.Requests != 1000 || b.Errors != 20 || b.ErrorRate != 0.02 {
		t.Errorf("baseline %+v", b)
	}
	if c.Pool != "v2" || c.Requests != 100 || c.Errors != 0 || c.ErrorRate != 0 {
		t.Errorf("canary %+v", c)
	}
	// 5 of 1000 at 1s: the 99th percentile is still 10ms, reported as
	// the top of its bucket, [9216µs, 10240µs).
	if b.P99 != 10240*time.Microsecond || b.P50 != 10240*time.Microsecond {
		t.Errorf("baseline p50 %v, p99 %v, want 10.24ms", b.P50, b.P99)
	}
	// 30ms falls in [28672µs, 30720µs).
	if c.P99 != 30720*time.Microsecond || c.P50 != 10240*time.Microsecond {
		t.Errorf("canary p50 %v, p99 %v, want 10.24ms and 30.72ms", c.P50, c.P99)
	}
	if st.Window != time.Minute || st.Tripped || st.Evaluations != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestRollbackOnceUntilReset(t *testing.T) {
	g, clk, rec := newGuard(t, Config{})
	bad := func() {
		traffic{n: 200, latency: time.Millisecond}.observe(g, "v1")
		traffic{n: 200, errors: 50, latency: time.Millisecond}.observe(g, "v2")
	}
	bad()
	for range 3 {
		g.Evaluate()
		clk.Advance(time.Second)
	}
	st := g.Status()
	if n := len(rec.calls()); n != 1 || !st.Tripped || st.Trips != 1 || st.Evaluations != 3 {
		t.Fatalf("%d rollbacks, status %+v; want one rollback and the guard tripped", n, st)
	}
	if want := epochPlus(0); !st.TrippedAt.Equal(want) {
		t.Errorf("tripped at %v, want %v", st.TrippedAt, want)
	}

	g.Reset()
	st = g.Status()
	if st.Tripped || st.Reason != "" || st.Canary.Requests != 0 || st.Baseline.Requests != 0 || st.Trips != 1 {
		t.Fatalf("after Reset: %+v, want re-armed with empty windows", st)
	}
	if st := g.Evaluate(); st.Tripped {
		t.Fatalf("tripped again on no data: %+v", st)
	}
	bad()
	if st := g.Evaluate(); !st.Tripped || st.Trips != 2 || len(rec.calls()) != 2 {
		t.Errorf("second rollout: %+v, %d rollbacks; want a second rollback", st, len(rec.calls()))
	}
}

func epochPlus(d time.Duration) time.Time { return newClock().Now().Add(d) }

func TestWindowAgesOut(t *testing.T) {
	g, clk, rec := newGuard(t, Config{Window: 10 * time.Second})
	// A burst of canary errors at 0s, then clean traffic at 5s.
	traffic{n: 200, latency: time.Millisecond}.observe(g, "v1")
	traffic{n: 100, errors: 50, latency: time.Millisecond}.observe(g, "v2")
	clk.Advance(5 * time.Second)
	traffic{n: 200, latency: time.Millisecond}.observe(g, "v1")
	traffic{n: 100, latency: time.Millisecond}.observe(g, "v2")

	steps := []struct {
		at       time.Duration
		requests uint64 // canary requests in the window
		errors   uint64
	}{
		{5 * time.Second, 200, 50},
		{9*time.Second + 999*time.Millisecond, 200, 50},
		{10 * time.Second, 100, 0}, // the 0s bucket is out
		{14*time.Second + 999*time.Millisecond, 100, 0},
		{15 * time.Second, 0, 0},
	}
	at := 5 * time.Second
	for _, s := range steps {
		clk.Advance(s.at - at)
		at = s.at
		c := g.Status().Canary
		if c.Requests != s.requests || c.Errors != s.errors {
			t.Errorf("at %v: canary %d requests, %d errors; want %d, %d", s.at, c.Requests, c.Errors, s.requests, s.errors)
		}
	}

	// Evaluated only once the errors are out of the window, the canary
	// passes.
	clk.Advance(-5 * time.Second)
	if st := g.Evaluate(); st.Tripped || len(rec.calls()) != 0 {
		t.Errorf("tripped on errors older than the window: %+v", st)
	}
}

// TestSlotReuse checks that a slot coming round again starts empty, and
// that an observation older than the slot's bucket is dropped instead of
// landing in it.
func TestSlotReuse(t *testing.T) {
	g, clk, _ := newGuard(t, Config{Window: 10 * time.Second})
	traffic{n: 7, latency: time.Millisecond}.observe(g, "v2")
	clk.Advance(10 * time.Second) // same slot, next lap
	traffic{n: 3, latency: time.Millisecond}.observe(g, "v2")
	if c := g.Status().Canary; c.Requests != 3 {
		t.Errorf("canary %d requests, want the 3 of this lap", c.Requests)
	}
	clk.Advance(-10 * time.Second)
	g.Observe("v2", 500, time.Millisecond)
	clk.Advance(10 * time.Second)
	if c := g.Status().Canary; c.Requests != 3 || c.Errors != 0 {
		t.Errorf("canary %+v, want the late observation dropped", c)
	}
}

func TestObserveConcurrent(t *testing.T) {
	g, _, _ := newGuard(t, Config{Window: 10 * time.Second, MinRequests: 1_000_000})
	const goroutines, each = 4, 5000
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			pool := []string{"v1", "v2"}[i%2]
			for j := range each {
				status := 200
				if j%10 == 0 {
					status = 500
				}
				g.Observe(pool, status, time.Duration(j)*time.Microsecond)
			}
		})
	}
	// Readers and a reset of nothing-yet-tripped run alongside.
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	readers.Go(func() {
		for ctx.Err() == nil {
			g.Evaluate()
			g.Status()
		}
	})
	wg.Wait()
	cancel()
	readers.Wait()
	st := g.Status()
	for _, p := range []PoolStatus{st.Baseline, st.Canary} {
		if p.Requests != goroutines/2*each || p.Errors != goroutines/2*each/10 {
			t.Errorf("%s: %d requests, %d errors; want %d, %d", p.Pool, p.Requests, p.Errors, goroutines/2*each, goroutines/2*each/10)
		}
	}

	// Rotation under load: every goroutine moves the clock a bucket on
	// now and then; nothing may be counted twice or race.
	g2, clk2, _ := newGuard(t, Config{Window: 10 * time.Second})
	var observed atomic.Uint64
	for range goroutines {
		wg.Go(func() {
			for j := range each {
				if j%500 == 0 {
					clk2.Advance(time.Second)
				}
				g2.Observe("v2", 200, time.Millisecond)
				observed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := g2.Status().Canary.Requests; got > observed.Load() || got == 0 {
		t.Errorf("%d requests in the window of %d observed", got, observed.Load())
	}
}

func TestRun(t *testing.T) {
	clk, rec := newClock(), &recorder{}
	g, err := New(Config{Baseline: "v1", Canary: "v2", Window: 10 * time.Second, Interval: time.Millisecond,
		Now: clk.Now, Rollback: rec.rollback})
	if err != nil {
		t.Fatal(err)
	}
	traffic{n: 200, latency: time.Millisecond}.observe(g, "v1")
	traffic{n: 200, errors: 200, latency: time.Millisecond}.observe(g, "v2")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		g.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !g.Status().Tripped {
		if time.Now().After(deadline) {
			t.Fatal("Run did not trip the guard within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := len(rec.calls()); n != 1 {
		t.Errorf("%d rollbacks, want 1", n)
	}
}

func TestRollbackLogged(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	g, err := New(Config{Baseline: "v1", Canary: "v2", Now: clk.Now, Log: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	traffic{n: 200, latency: time.Millisecond}.observe(g, "v1")
	traffic{n: 200, errors: 20, latency: time.Millisecond}.observe(g, "v2")
	if st := g.Evaluate(); !st.Tripped {
		t.Fatalf("not tripped: %+v", st)
	}
	out := buf.String()
	for _, want := range []string{"level=WARN", `msg="canary rolled back"`, "canary=v2", "dry_run=true", "canary_error_rate=0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no baseline", Config{Canary: "v2"}, "baseline"},
		{"no canary", Config{Baseline: "v1"}, "canary"},
		{"same pools", Config{Baseline: "v1", Canary: "v1"}, "must differ"},
		{"tiny window", Config{Baseline: "v1", Canary: "v2", Window: time.Millisecond}, "window"},
		{"negative interval", Config{Baseline: "v1", Canary: "v2", Interval: -time.Second}, "interval"},
		{"error delta above 1", Config{Baseline: "v1", Canary: "v2", MaxErrorRateDelta: 2}, "max_error_rate_delta"},
		{"latency ratio below 1", Config{Baseline: "v1", Canary: "v2", MaxLatencyRatio: 0.5}, "max_latency_ratio"},
		{"both checks off", Config{Baseline: "v1", Canary: "v2", MaxLatencyRatio: -1, MaxErrorRateDelta: -1}, "nothing to guard"},
		{"negative min requests", Config{Baseline: "v1", Canary: "v2", MinRequests: -1}, "min_requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want an ErrConfig naming %q", err, c.want)
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	prev := -1
	for d := time.Duration(0); d < 100*time.Hour; d = d*9/8 + time.Microsecond {
		i := histIndex(d)
		if i < prev || i >= nHist {
			t.Fatalf("histIndex(%v) = %d after %d", d, i, prev)
		}
		prev = i
		up := histUpper(i)
		if i < nHist-1 && (up <= d || float64(up) > float64(d)*1.125+float64(time.Microsecond)) {
			t.Errorf("histIndex(%v) = %d with upper bound %v: not within 12.5%% above", d, i, up)
		}
	}
	if got := histIndex(-time.Second); got != 0 {
		t.Errorf("negative latency in bucket %d, want 0", got)
	}
	if got := histIndex(1000 * time.Hour); got != nHist-1 {
		t.Errorf("1000h in bucket %d, want the last, %d", got, nHist-1)
	}
	// Buckets are contiguous: each one's upper bound is the next one's
	// lower bound, the smallest duration it holds.
	for i := 0; i < nHist-1; i++ {
		if got := histIndex(histUpper(i)); got != i+1 {
			t.Fatalf("histIndex(histUpper(%d) = %v) = %d, want %d", i, histUpper(i), got, i+1)
		}
	}
}

func TestQuantile(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name  string
		obs   map[time.Duration]uint64
		q     float64
		want  time.Duration // a latency in the wanted bucket
		empty bool
	}{
		{"empty", nil, 0.99, 0, true},
		{"one", map[time.Duration]uint64{5 * ms: 1}, 0.99, 5 * ms, false},
		{"1% slow is the p99", map[time.Duration]uint64{10 * ms: 99, time.Second: 1}, 0.99, 10 * ms, false},
		{"2% slow passes the p99", map[time.Duration]uint64{10 * ms: 98, time.Second: 2}, 0.99, time.Second, false},
		{"median", map[time.Duration]uint64{ms: 50, 2 * ms: 50}, 0.5, ms, false},
		{"median past half", map[time.Duration]uint64{ms: 50, 2 * ms: 51}, 0.5, 2 * ms, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h [nHist]uint64
			var n uint64
			for d, k := range c.obs {
				h[histIndex(d)] += k
				n += k
			}
			got := quantile(&h, n, c.q)
			want := time.Duration(0)
			if !c.empty {
				want = histUpper(histIndex(c.want))
			}
			if got != want {
				t.Errorf("quantile %v = %v, want %v", c.q, got, want)
			}
		})
	}
}
