package canary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("invalid canary guard config")

// Defaults, applied by New to zero fields.
const (
	DefaultWindow            = time.Minute
	DefaultMaxErrorRateDelta = 0.01
	DefaultMaxLatencyRatio   = 1.5
	DefaultMinRequests       = 100
)

// slots is the number of time buckets the window is cut into.
const slots = 10

// Config configures a Guard. New applies the defaults named in each
// field's comment and validates it.
type Config struct {
	// Baseline and Canary name the two pools compared, as Observe is
	// given them. Both are required and must differ.
	Baseline, Canary string
	// Window is the span compared, at least 10ms. Default 1m.
	Window time.Duration
	// Interval is the time between evaluations in Run. Default Window/10.
	Interval time.Duration
	// MaxErrorRateDelta is how far, as a fraction of requests, the
	// canary's 5xx rate may exceed the baseline's: 0.01 is one
	// percentage point. Default 0.01; negative disables the check.
	MaxErrorRateDelta float64
	// MaxLatencyRatio is how many times the baseline's p99 latency the
	// canary's may reach. Default 1.5; at least 1; negative disables the
	// check.
	MaxLatencyRatio float64
	// MinRequests is the requests each pool needs in the window before
	// the guard judges: fewer say too little to act on. Default 100.
	MinRequests int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives the rollback; nil discards it.
	Log *slog.Logger
	// Rollback is called once when the guard trips, with the reason, from
	// the goroutine that ran Evaluate. It should shift the traffic back
	// and return. nil only logs and counts: a dry run.
	Rollback func(reason string)
}

// PoolStatus is one pool's numbers over the window.
type PoolStatus struct {
	Pool      string        `json:"pool"`
	Requests  uint64        `json:"requests"`
	Errors    uint64        `json:"errors_5xx"`
	ErrorRate float64       `json:"error_rate"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
}

// Status is the guard's state, for the admin API and metrics.
type Status struct {
	Baseline PoolStatus    `json:"baseline"`
	Canary   PoolStatus    `json:"canary"`
	Window   time.Duration `json:"window_ns"`
	// Tripped is true from a rollback until Reset; Reason and TrippedAt
	// say why and when.
	Tripped   bool      `json:"tripped"`
	Reason    string    `json:"reason,omitempty"`
	TrippedAt time.Time `json:"tripped_at,omitzero"`
	// Trips counts the rollbacks since New; Evaluations the evaluations.
	Trips       uint64 `json:"trips"`
	Evaluations uint64 `json:"evaluations"`
}

// Guard compares a canary pool with its baseline. It is safe for
// concurrent use.
type Guard struct {
	baseline, canary string
	width            int64 // a time bucket, in nanoseconds
	window           time.Duration
	interval         time.Duration
	maxErrDelta      float64
	maxLatRatio      float64
	minRequests      uint64
	now              func() time.Time
	log              *slog.Logger
	rollback         func(string)

	pools [2]series // baseline, canary

	tripped            atomic.Bool
	trips, evaluations atomic.Uint64

	mu        sync.Mutex // guards reason and trippedAt
	reason    string
	trippedAt time.Time
}

// series is one pool's time buckets, a ring indexed by bucket number.
type series struct {
	// mu serializes turning a slot over to a new bucket; adding to a
	// slot takes no lock.
	mu    sync.Mutex
	slots [slots]slot
}

type slot struct {
	// epoch is the bucket number (time / width) the counts belong to;
	// -1 when the slot holds nothing.
	epoch    atomic.Int64
	requests atomic.Uint64
	errors   atomic.Uint64
	hist     [nHist]atomic.Uint64
}

// New validates cfg and returns its Guard.
func New(cfg Config) (*Guard, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Guard{
		baseline:    cfg.Baseline,
		canary:      cfg.Canary,
		width:       int64(cfg.Window / slots),
		window:      cfg.Window,
		interval:    cfg.Interval,
		maxErrDelta: cfg.MaxErrorRateDelta,
		maxLatRatio: cfg.MaxLatencyRatio,
		minRequests: uint64(cfg.MinRequests),
		now:         cfg.Now,
		log:         cfg.Log,
		rollback:    cfg.Rollback,
	}
	for i := range g.pools {
		g.pools[i].clear()
	}
	return g, nil
}

func (c *Config) setDefaults() {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Interval == 0 {
		c.Interval = c.Window / slots
	}
	if c.MaxErrorRateDelta == 0 {
		c.MaxErrorRateDelta = DefaultMaxErrorRateDelta
	}
	if c.MaxLatencyRatio == 0 {
		c.MaxLatencyRatio = DefaultMaxLatencyRatio
	}
	if c.MinRequests == 0 {
		c.MinRequests = DefaultMinRequests
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Baseline == "":
		return bad("baseline: required")
	case c.Canary == "":
		return bad("canary: required")
	case c.Baseline == c.Canary:
		return bad("canary %q: must differ from baseline", c.Canary)
	case c.Window < slots*time.Millisecond:
		return bad("window %v: must be at least %v", c.Window, slots*time.Millisecond)
	case c.Interval <= 0:
		return bad("interval %v: must be positive", c.Interval)
	case c.MaxErrorRateDelta > 1:
		return bad("max_error_rate_delta %v: a fraction of requests, at most 1", c.MaxErrorRateDelta)
	case c.MaxLatencyRatio > 0 && c.MaxLatencyRatio < 1:
		return bad("max_latency_ratio %v: must be at least 1 (or negative to disable)", c.MaxLatencyRatio)
	case c.MaxErrorRateDelta < 0 && c.MaxLatencyRatio < 0:
		return bad("max_error_rate_delta and max_latency_ratio: both disabled, nothing to guard")
	case c.MinRequests < 1:
		return bad("min_requests %d: must be at least 1", c.MinRequests)
	}
	return nil
}

// Observe counts one response of pool: its status and how long it took.
// Pools other than the baseline and the canary are ignored. It never
// allocates and takes no lock except, once per pool and time bucket, to
// start the bucket.
func (g *Guard) Observe(pool string, status int, latency time.Duration) {
	var s *series
	switch pool {
	case g.baseline:
		s = &g.pools[0]
	case g.canary:
		s = &g.pools[1]
	default:
		return
	}
	idx := g.now().UnixNano() / g.width
	sl := &s.slots[idx%slots]
	if sl.epoch.Load() != idx && !s.rotate(sl, idx) {
		return
	}
	sl.requests.Add(1)
	if status >= 500 && status <= 599 {
		sl.errors.Add(1)
	}
	sl.hist[histIndex(latency)].Add(1)
}

// rotate turns sl over to bucket idx. It returns false when sl already
// holds a later bucket: the observation is older than the window.
func (s *series) rotate(sl *slot, idx int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cur := sl.epoch.Load(); {
	case cur == idx:
		return true
	case cur > idx:
		return false
	}
	// Zero before publishing the new epoch, so that an observer that
	// sees the epoch adds to clean counts. One that checked the old
	// epoch just before may still land in the new bucket: an
	// observation moved by one bucket, never lost.
	sl.zero()
	sl.epoch.Store(idx)
	return true
}

func (sl *slot) zero() {
	sl.requests.Store(0)
	sl.errors.Store(0)
	for i := range sl.hist {
		sl.hist[i].Store(0)
	}
}

// clear empties every slot.
func (s *series) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.slots {
		s.slots[i].epoch.Store(-1)
		s.slots[i].zero()
	}
}

// snapshot sums the buckets inside the window that ends in bucket idx.
func (s *series) snapshot(name string, idx int64) PoolStatus {
	var hist [nHist]uint64
	ps := PoolStatus{Pool: name}
	for i := range s.slots {
		sl := &s.slots[i]
		if e := sl.epoch.Load(); e <= idx-slots || e > idx {
			continue
		}
		ps.Requests += sl.requests.Load()
		ps.Errors += sl.errors.Load()
		for j := range hist {
			hist[j] += sl.hist[j].Load()
		}
	}
	if ps.Requests > 0 {
		// The counters are read one by one while observers add, so
		// they may disagree by a request or two; the histogram's own
		// sum is the one its quantiles must use.
		var n uint64
		for _, c := range hist {
			n += c
		}
		ps.Errors = min(ps.Errors, ps.Requests)
		ps.ErrorRate = float64(ps.Errors) / float64(ps.Requests)
		ps.P50 = quantile(&hist, n, 0.50)
		ps.P99 = quantile(&hist, n, 0.99)
	}
	return ps
}

// Status returns both pools' numbers over the window ending now, and the
// guard's state.
func (g *Guard) Status() Status {
	return g.status(g.now())
}

func (g *Guard) status(now time.Time) Status {
	idx := now.UnixNano() / g.width
	st := Status{
		Baseline:    g.pools[0].snapshot(g.baseline, idx),
		Canary:      g.pools[1].snapshot(g.canary, idx),
		Window:      g.window,
		Tripped:     g.tripped.Load(),
		Trips:       g.trips.Load(),
		Evaluations: g.evaluations.Load(),
	}
	if st.Tripped {
		g.mu.Lock()
		st.Reason, st.TrippedAt = g.reason, g.trippedAt
		g.mu.Unlock()
	}
	return st
}

// Evaluate compares the pools once and rolls the canary back if it is
// worse than allowed. It returns the status it judged.
func (g *Guard) Evaluate() Status {
	now := g.now()
	g.evaluations.Add(1)
	st := g.status(now)
	if st.Tripped {
		return st
	}
	reason := g.judge(st)
	if reason == "" || !g.tripped.CompareAndSwap(false, true) {
		return st
	}
	g.mu.Lock()
	g.reason, g.trippedAt = reason, now
	g.mu.Unlock()
	g.trips.Add(1)
	st.Tripped, st.Reason, st.TrippedAt, st.Trips = true, reason, now, g.trips.Load()
	g.log.Warn("canary rolled back",
		"baseline", g.baseline, "canary", g.canary, "reason", reason,
		"baseline_requests", st.Baseline.Requests, "canary_requests", st.Canary.Requests,
		"baseline_error_rate", st.Baseline.ErrorRate, "canary_error_rate", st.Canary.ErrorRate,
		"baseline_p99", st.Baseline.P99, "canary_p99", st.Canary.P99,
		"dry_run", g.rollback == nil)
	if g.rollback != nil {
		g.rollback(reason)
	}
	return st
}

// judge returns why the canary should be rolled back, or "".
func (g *Guard) judge(st Status) string {
	b, c := st.Baseline, st.Canary
	if b.Requests < g.minRequests || c.Requests < g.minRequests {
		return ""
	}
	if g.maxErrDelta >= 0 && c.ErrorRate > b.ErrorRate+g.maxErrDelta {
		return fmt.Sprintf("canary %s 5xx rate %.2f%% exceeds baseline %s %.2f%% by more than %.2f points (%d canary requests in %v)",
			c.Pool, 100*c.ErrorRate, b.Pool, 100*b.ErrorRate, 100*g.maxErrDelta, c.Requests, g.window)
	}
	if g.maxLatRatio > 0 && float64(c.P99) > float64(b.P99)*g.maxLatRatio {
		return fmt.Sprintf("canary %s p99 latency %v exceeds %v× baseline %s p99 %v (%d canary requests in %v)",
			c.Pool, c.P99, g.maxLatRatio, b.Pool, b.P99, c.Requests, g.window)
	}
	return ""
}

// Reset re-arms a tripped guard and empties both pools' windows, so that
// the next rollout is judged on its own traffic only.
func (g *Guard) Reset() {
	for i := range g.pools {
		g.pools[i].clear()
	}
	g.mu.Lock()
	g.reason, g.trippedAt = "", time.Time{}
	g.mu.Unlock()
	g.tripped.Store(false)
}

// Run evaluates every Interval until ctx is done.
func (g *Guard) Run(ctx context.Context) {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Evaluate()
		}
	}
}
