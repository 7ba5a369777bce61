package probes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fake is a Checker whose result the test sets.
type fake struct {
	ok       atomic.Bool
	hang     bool          // block until the check's context ends
	linger   time.Duration // then take this long to return
	calls    atomic.Int32
	inflight atomic.Int32
}

func (f *fake) Check(ctx context.Context) Result {
	f.calls.Add(1)
	if f.hang {
		f.inflight.Add(1)
		defer f.inflight.Add(-1)
		<-ctx.Done()
		time.Sleep(f.linger)
		return Result{Reason: "hung"}
	}
	if f.ok.Load() {
		return Result{OK: true, Reason: "fine"}
	}
	return Result{Reason: "broken"}
}

type panicker struct{}

// sliceChecker is a Checker value that == cannot compare.
type sliceChecker struct{ codes []int }

func (c sliceChecker) Check(context.Context) Result { return Result{OK: len(c.codes) > 0} }

func (panicker) Check(context.Context) Result { panic("bug") }

// recorder is a Sink that keeps every Status it is given.
type recorder struct {
	mu     sync.Mutex
	seen   map[string][]Status
	closed bool // Run has returned: no Observe may come
	late   int
}

func newRecorder() *recorder { return &recorder{seen: map[string][]Status{}} }

func (r *recorder) Observe(id string, s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.late++
	}
	r.seen[id] = append(r.seen[id], s)
}

func (r *recorder) all(id string) []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Status(nil), r.seen[id]...)
}

func (r *recorder) close() (late int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.late
}

func noJitter(int64) int64 { return 0 }

// run starts s.Run; the returned function stops it and waits for Run to
// return.
func run(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func mustUpdate(t *testing.T, s *Scheduler, targets ...Target) {
	t.Helper()
	if err := s.Update(targets); err != nil {
		t.Fatal(err)
	}
}

// The scheduler applies the hysteresis to real checks on their schedule:
// the first check at once, then one per interval. synctest's clock makes
// the timing exact.
func TestSchedulerStates(t *testing.T) {
	const P, F = true, false
	tests := []struct {
		name       string
		rise, fall int
		initial    State
		results    []bool
		want       []State
	}{
		{"first result decides: up", 2, 3, Unknown, []bool{P}, []State{Up}},
		{"first result decides: down", 2, 3, Unknown, []bool{F}, []State{Down}},
		{"down after exactly fall failures, up after exactly rise passes", 2, 3, Unknown,
			[]bool{P, F, F, F, P, P, F}, []State{Up, Up, Up, Down, Down, Up, Up}},
		{"initial up keeps the hysteresis", 2, 2, Up, []bool{F, F, P}, []State{Up, Down, Down}},
		{"defaults: rise 2, fall 3", 0, 0, Unknown,
			[]bool{F, P, P, F, F, F}, []State{Down, Down, Up, Up, Up, Down}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const interval = 10 * time.Millisecond
				f, rec := &fake{}, newRecorder()
				s := NewScheduler(Options{Sink: rec, Rand: noJitter})
				mustUpdate(t, s, Target{ID: "a", Checker: f, Interval: interval, Rise: tt.rise, Fall: tt.fall, Initial: tt.initial})
				if got := s.Snapshot()["a"].State; got != tt.initial {
					t.Fatalf("before Run: state %v, want %v", got, tt.initial)
				}
				t0 := time.Now()
				f.ok.Store(tt.results[0])
				stop := run(t, s)
				for i, ok := range tt.results {
					if i > 0 {
						f.ok.Store(ok)
						time.Sleep(interval)
					}
					synctest.Wait()
					seen := rec.all("a")
					if len(seen) != i+1 {
						t.Fatalf("after %v: %d results, want %d", time.Since(t0), len(seen), i+1)
					}
					st := seen[i]
					if st.State != tt.want[i] {
						t.Fatalf("result %d (%v): state %v, want %v", i+1, ok, st.State, tt.want[i])
					}
					if want := t0.Add(time.Duration(i) * interval); !st.Checked.Equal(want) {
						t.Errorf("result %d came at +%v, want +%v", i+1, st.Checked.Sub(t0), want.Sub(t0))
					}
					if snap := s.Snapshot()["a"]; snap != st {
						t.Errorf("snapshot %+v, sink saw %+v", snap, st)
					}
				}
				stop()
			})
		})
	}
}

func TestSchedulerJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		var mu sync.Mutex
		var asked []int64
		offsets := []int64{0, int64(5 * time.Millisecond), int64(10*time.Millisecond) - 1}
		rnd := func(n int64) int64 {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, n)
			return offsets[(len(asked)-1)%len(offsets)]
		}
		f, rec := &fake{}, newRecorder()
		s := NewScheduler(Options{Sink: rec, Rand: rnd})
		mustUpdate(t, s, Target{ID: "a", Checker: f, Interval: interval})
		stop := run(t, s)
		time.Sleep(290 * time.Millisecond) // checks at 0, 100, 195 and 285ms
		stop()

		seen := rec.all("a")
		if len(seen) != 4 {
			t.Fatalf("%d checks, want 4", len(seen))
		}
		for i := 1; i < len(seen); i++ {
			gap := seen[i].Checked.Sub(seen[i-1].Checked)
			if want := interval - time.Duration(offsets[i-1]); gap != want {
				t.Errorf("gap %d: %v, want %v", i, gap, want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, n := range asked {
			if n != int64(interval/10) {
				t.Errorf("Rand asked for [0, %v), want [0, %v)", time.Duration(n), interval/10)
			}
		}
	})
}

func TestDelayWithinBounds(t *testing.T) {
	s := NewScheduler(Options{})
	for _, interval := range []time.Duration{5 * time.Second, 10 * time.Millisecond, 7} {
		lo := interval - interval/10
		for range 10000 {
			if d := s.delay(interval); d > interval || d < lo || (interval >= 10 && d == lo) {
				t.Fatalf("delay(%v) = %v, want in (%v, %v]", interval, d, lo, interval)
			}
		}
	}
}

func TestSchedulerUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 10 * time.Millisecond
		a, b, c, d := &fake{}, &fake{}, &fake{}, &fake{}
		for _, f := range []*fake{a, b, c, d} {
			f.ok.Store(true)
		}
		rec := newRecorder()
		s := NewScheduler(Options{Sink: rec, Rand: noJitter})
		mustUpdate(t, s,
			Target{ID: "a", Checker: a, Interval: interval},
			Target{ID: "b", Checker: b, Interval: interval},
			Target{ID: "d", Checker: d, Interval: interval},
		)
		stop := run(t, s)
		defer stop()
		time.Sleep(2*interval + interval/2) // checks at 0, 10 and 20ms
		synctest.Wait()
		before := s.Snapshot()
		if st := before["a"]; st.State != Up || st.Successes != 3 {
			t.Fatalf("a before Update: %+v", st)
		}
		bCalls := b.calls.Load()

		// Keep a (same definition, Initial aside), drop b, add c, change d.
		mustUpdate(t, s,
			Target{ID: "a", Checker: a, Interval: interval, Initial: Down},
			Target{ID: "c", Checker: c, Interval: interval},
			Target{ID: "d", Checker: d, Interval: 2 * interval},
		)
		snap := s.Snapshot()
		if len(snap) != 3 {
			t.Errorf("snapshot has %d targets, want a, c and d", len(snap))
		}
		if _, ok := snap["b"]; ok {
			t.Error("b is still in the snapshot")
		}
		if snap["a"] != before["a"] {
			t.Errorf("a changed by Update: %+v, was %+v", snap["a"], before["a"])
		}
		if st := snap["d"]; st.State != Unknown || st.Successes != 0 {
			t.Errorf("changed d kept its state: %+v", st)
		}

		synctest.Wait() // new and changed targets check at once; a keeps its schedule
		if n := len(rec.all("c")); n != 1 {
			t.Errorf("c: %d results right after it was added, want 1", n)
		}
		if seen := rec.all("d"); len(seen) != 4 || seen[3].State != Up || seen[3].Successes != 1 {
			t.Errorf("d: %d results, the last %+v; want a fresh first result", len(seen), seen[len(seen)-1])
		}
		if n := len(rec.all("a")); n != 3 {
			t.Errorf("a: %d results right after Update, want 3: it must keep its schedule", n)
		}

		time.Sleep(interval)
		synctest.Wait()
		if st := s.Snapshot()["a"]; st.Successes != 4 || !st.Since.Equal(before["a"].Since) {
			t.Errorf("a after Update: %+v; want its counts to go on", st)
		}
		if n := b.calls.Load(); n != bCalls {
			t.Errorf("b was checked %d times after it was removed", n-bCalls)
		}
		if n := len(rec.all("b")); n != 3 {
			t.Errorf("b: %d results, want the 3 from before its removal", n)
		}
	})
}

// A target whose definition changes while its check is in flight: the old
// check is cancelled, its result never reaches the sink, and the new
// checker waits for it to return, so checks of one ID never overlap.
func TestSchedulerUpdateCancelsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		old, next := &fake{hang: true, linger: time.Second}, &fake{}
		next.ok.Store(true)
		rec := newRecorder()
		s := NewScheduler(Options{Sink: rec})
		mustUpdate(t, s, Target{ID: "a", Checker: old, Interval: time.Hour, Timeout: time.Hour})
		stop := run(t, s)
		defer stop()
		synctest.Wait()
		if old.inflight.Load() != 1 {
			t.Fatal("the first check is not in flight")
		}
		mustUpdate(t, s, Target{ID: "a", Checker: next, Interval: time.Hour})
		synctest.Wait()
		if next.calls.Load() != 0 {
			t.Error("the new check started while the old one was still in flight")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if old.inflight.Load() != 0 {
			t.Error("the old check is still in flight")
		}
		seen := rec.all("a")
		if len(seen) != 1 || !seen[0].Result.OK {
			t.Errorf("results %+v, want one passing result from the new checker", seen)
		}
	})
}

func TestSchedulerUpdateInvalid(t *testing.T) {
	f := &fake{}
	tests := []struct {
		name string
		t    []Target
	}{
		{"empty ID", []Target{{Checker: f}}},
		{"no checker", []Target{{ID: "a"}}},
		{"duplicate", []Target{{ID: "a", Checker: f}, {ID: "a", Checker: f}}},
		{"negative interval", []Target{{ID: "a", Checker: f, Interval: -time.Second}}},
		{"timeout above interval", []Target{{ID: "a", Checker: f, Interval: time.Second, Timeout: 2 * time.Second}}},
		{"negative fall", []Target{{ID: "a", Checker: f, Fall: -1}}},
		{"bad initial state", []Target{{ID: "a", Checker: f, Initial: 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScheduler(Options{})
			mustUpdate(t, s, Target{ID: "keep", Checker: f})
			if err := s.Update(tt.t); !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("got %v, want ErrInvalidTarget", err)
			}
			if snap := s.Snapshot(); len(snap) != 1 {
				t.Errorf("a failed Update changed the set: %v", snap)
			}
		})
	}
}

func TestTargetDefaults(t *testing.T) {
	f := &fake{}
	tests := []struct {
		in, want Target
	}{
		{Target{ID: "a", Checker: f}, Target{ID: "a", Checker: f, Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3}},
		{Target{ID: "a", Checker: f, Interval: time.Second}, Target{ID: "a", Checker: f, Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 3}},
		{Target{ID: "a", Checker: f, Interval: time.Minute, Timeout: 10 * time.Second, Rise: 1, Fall: 5, Initial: Up},
			Target{ID: "a", Checker: f, Interval: time.Minute, Timeout: 10 * time.Second, Rise: 1, Fall: 5, Initial: Up}},
	}
	for _, tt := range tests {
		got, err := tt.in.withDefaults()
		if err != nil || got != tt.want {
			t.Errorf("%+v: got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// Run returns once the context ends and every check in flight has
// returned; nothing reaches the sink afterwards. synctest fails the test if
// any goroutine is left behind.
func TestSchedulerRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hung, busy := &fake{hang: true, linger: time.Second}, &fake{}
		rec := newRecorder()
		s := NewScheduler(Options{Sink: rec})
		mustUpdate(t, s,
			Target{ID: "hung", Checker: hung, Interval: time.Hour, Timeout: time.Hour},
			Target{ID: "busy", Checker: busy, Interval: 10 * time.Millisecond},
			Target{ID: "panics", Checker: panicker{}, Interval: 10 * time.Millisecond},
		)
		stop := run(t, s)
		time.Sleep(35 * time.Millisecond)
		synctest.Wait()
		if hung.inflight.Load() != 1 {
			t.Fatal("the hanging check is not in flight")
		}
		stop()
		if hung.inflight.Load() != 0 {
			t.Error("Run returned with a check in flight")
		}
		if late := rec.close(); late != 0 {
			t.Errorf("%d results observed after Run returned", late)
		}
		time.Sleep(time.Second)
		if late := rec.close(); late != 0 {
			t.Errorf("%d results observed after Run returned", late)
		}
		if len(rec.all("hung")) != 0 {
			t.Error("the cancelled check was reported")
		}
		if seen := rec.all("panics"); len(seen) == 0 || seen[0].State != Down || seen[0].Result.Reason != "checker panicked" {
			t.Errorf("a panicking checker: %+v", seen)
		}
		if err := s.Run(context.Background()); !errors.Is(err, ErrStarted) {
			t.Errorf("second Run: %v, want ErrStarted", err)
		}
	})
}

// A target that passes, then stops listening, goes down within Fall
// intervals plus a margin, with real sockets and the real clock.
func TestSchedulerDetectsClosedListener(t *testing.T) {
	ln, _ := listen(t)
	c := newTCP(t, TCPConfig{Addr: ln.Addr().String()})
	const interval, fall = 30 * time.Millisecond, 3
	s := NewScheduler(Options{})
	mustUpdate(t, s, Target{ID: "tcp", Checker: c, Interval: interval, Fall: fall})
	stop := run(t, s)
	defer stop()

	waitState(t, s, "tcp", Up, 2*time.Second)
	ln.Close()
	closed := time.Now()
	const margin = 500 * time.Millisecond
	st := waitState(t, s, "tcp", Down, interval*fall+margin)
	t.Logf("down %v after the listener closed: %s", time.Since(closed), st.Reason)
	if want := "failed 3 in a row: connect: connection refused"; st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}
}

func waitState(t *testing.T, s *Scheduler, id string, want State, within time.Duration) Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := s.Snapshot()[id]
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %v after %v, want %v (last result %+v)", id, st.State, within, want, st.Result)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Real checkers under the real clock leave no goroutine behind.
func TestSchedulerNoLeaks(t *testing.T) {
	ln, _ := listen(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	before := runtime.NumGoroutine()

	s := NewScheduler(Options{})
	var targets []Target
	for i := range 5 {
		targets = append(targets,
			Target{ID: fmt.Sprint("tcp", i), Checker: newTCP(t, TCPConfig{Addr: ln.Addr().String()}), Interval: 10 * time.Millisecond},
			Target{ID: fmt.Sprint("http", i), Checker: mustHTTP(t, HTTPConfig{Addr: hostOf(srv)}), Interval: 10 * time.Millisecond},
			Target{ID: fmt.Sprint("refused", i), Checker: newTCP(t, TCPConfig{Addr: closedPort(t)}), Interval: 10 * time.Millisecond},
		)
	}
	mustUpdate(t, s, targets...)
	stop := run(t, s)
	for _, tg := range targets {
		waitState(t, s, tg.ID, map[bool]State{true: Down, false: Up}[tg.ID[0] == 'r'], 2*time.Second)
	}
	stop()

	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Run returned, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sameChecker falls back to == and survives uncomparable checkers.
func TestSameChecker(t *testing.T) {
	f, g := &fake{}, &fake{}
	tests := []struct {
		a, b Checker
		want bool
	}{
		{f, f, true},
		{f, g, false},
		{panicker{}, panicker{}, true},
		{sliceChecker{}, sliceChecker{}, false},
	}
	for i, tt := range tests {
		if got := sameChecker(tt.a, tt.b); got != tt.want {
			t.Errorf("%d: got %v, want %v", i, got, tt.want)
		}
	}
}

// staller is a Checker whose first check takes as long as a process
// frozen mid-check would see it take, then fails; later checks pass.
type staller struct {
	stall time.Duration
	calls atomic.Int32
}

func (c *staller) Check(ctx context.Context) Result {
	if c.calls.Add(1) == 1 {
		time.Sleep(c.stall)
		return Result{Reason: "i/o timeout"}
	}
	return Result{OK: true}
}

// TestSchedulerDropsStalledChecks: a check that outlives its timeout by
// a whole interval saw this process stall, not the target fail; its
// result is dropped and the next check runs at once.
func TestSchedulerDropsStalledChecks(t *testing.T) {
	tests := []struct {
		name  string
		stall time.Duration
		want  []bool // the results observed, in order
	}{
		{"a slow check within its schedule counts", 300 * time.Millisecond, []bool{false, true}},
		{"a check held across a freeze is dropped", 5 * time.Second, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, rec := &staller{stall: tt.stall}, newRecorder()
				s := NewScheduler(Options{Sink: rec, Rand: func(int64) int64 { return 0 }})
				mustUpdate(t, s, Target{ID: "a", Checker: c, Interval: time.Second, Timeout: 500 * time.Millisecond})
				stop := run(t, s)
				time.Sleep(tt.stall + 1500*time.Millisecond)
				stop()
				var got []bool
				for _, st := range rec.all("a") {
					got = append(got, st.Result.OK)
				}
				if fmt.Sprint(got[:min(len(got), 2)]) != fmt.Sprint(tt.want) {
					t.Errorf("results %v, want %v first", got, tt.want)
				}
			})
		})
	}
}
