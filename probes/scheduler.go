package probes

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"
)

// Target defaults, applied to a Target's zero fields.
const (
	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 2 * time.Second // or the interval, when that is shorter
	DefaultRise     = 2
	DefaultFall     = 3
)

// jitterDivisor bounds the random offset of each check to interval/10, so
// that targets added together drift apart instead of firing in the same
// millisecond for ever.
const jitterDivisor = 10

// Target is one thing to check, and how often.
type Target struct {
	ID       string // unique within the set
	Checker  Checker
	Interval time.Duration // between the starts of two checks; DefaultInterval when 0
	Timeout  time.Duration // per check, at most Interval; DefaultTimeout (capped at Interval) when 0
	Rise     int           // consecutive successes to come Up; DefaultRise when 0
	Fall     int           // consecutive failures to go Down; DefaultFall when 0
	// Initial is the state before the first result. With Unknown the first
	// result decides; with Up or Down (a state learned elsewhere, or an
	// operator's assumption) the target needs Fall failures or Rise
	// successes to leave it.
	Initial State
}

// withDefaults validates t and fills in its zero fields.
func (t Target) withDefaults() (Target, error) {
	bad := func(format string, args ...any) (Target, error) {
		return t, fmt.Errorf("target %q: %w: %s", t.ID, ErrInvalidTarget, fmt.Sprintf(format, args...))
	}
	switch {
	case t.ID == "":
		return bad("empty ID")
	case t.Checker == nil:
		return bad("no checker")
	case t.Interval < 0 || t.Timeout < 0:
		return bad("negative interval or timeout")
	case t.Rise < 0 || t.Fall < 0:
		return bad("negative rise or fall")
	case t.Initial > Down:
		return bad("initial state %d", t.Initial)
	}
	if t.Interval == 0 {
		t.Interval = DefaultInterval
	}
	if t.Timeout == 0 {
		t.Timeout = min(DefaultTimeout, t.Interval)
	}
	if t.Timeout > t.Interval {
		// Checks of one target never overlap, so a longer timeout would
		// silently stretch the interval.
		return bad("timeout %v is longer than the interval %v", t.Timeout, t.Interval)
	}
	if t.Rise == 0 {
		t.Rise = DefaultRise
	}
	if t.Fall == 0 {
		t.Fall = DefaultFall
	}
	return t, nil
}

// sameCheck reports whether t and u define the same check, so that an
// Update keeps the target's state and schedule. Initial does not count: it
// only matters to a target that starts.
func (t Target) sameCheck(u Target) bool {
	return t.ID == u.ID && t.Interval == u.Interval && t.Timeout == u.Timeout &&
		t.Rise == u.Rise && t.Fall == u.Fall && sameChecker(t.Checker, u.Checker)
}

// Sink receives every result. Observe is called from the scheduler's
// goroutines: in order for one target, concurrently for different targets.
// It should return quickly, since the target's next check waits for it.
type Sink interface {
	Observe(id string, s Status)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(id string, s Status)

// Observe calls f.
func (f SinkFunc) Observe(id string, s Status) { f(id, s) }

// Options configure a Scheduler.
type Options struct {
	Sink Sink // nil: results are kept for Snapshot only
	// Logger gets checker panics; nil discards. State changes are the
	// sink's to log, since it knows what they mean for the answers.
	Logger *slog.Logger
	// Rand returns a uniform random number in [0, n), for jitter. It must
	// be safe for concurrent use. Nil uses math/rand/v2.
	Rand func(n int64) int64
}

// Scheduler runs the checks of a set of targets and keeps their Status.
type Scheduler struct {
	sink Sink
	log  *slog.Logger
	rand func(int64) int64

	mu      sync.Mutex
	targets map[string]*runner
	ctx     context.Context // Run's; nil until Run starts
	stopped bool            // Run is returning: start no more goroutines
	wg      sync.WaitGroup
}

// runner is one target's schedule and state.
type runner struct {
	t      Target
	status Status             // guarded by Scheduler.mu
	cancel context.CancelFunc // nil until started
	done   chan struct{}      // closed when its goroutine has returned
	// prev is the done channel of the runner this one replaced, when that
	// one was running: the new one waits for it so that Observe calls for
	// one ID never interleave.
	prev <-chan struct{}
}

// NewScheduler returns a scheduler with no targets; Update sets them and
// Run runs them.
func NewScheduler(opts Options) *Scheduler {
	s := &Scheduler{sink: opts.Sink, log: opts.Logger, rand: opts.Rand, targets: map[string]*runner{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rand == nil {
		s.rand = rand.Int64N
	}
	return s
}

// Update replaces the set of targets. New targets start with their first
// check at once; removed ones stop; a target whose ID and check definition
// are unchanged keeps its state and schedule. A target whose definition
// changed starts afresh from its Initial state, since results of the old
// check say nothing about the new one. On error nothing changes.
// Update may be called before Run, to set the targets Run starts with, and
// at any time while it runs.
//
// A removed target's check in flight is cancelled and its result dropped,
// though one Observe already under way may finish after Update returns.
func (s *Scheduler) Update(targets []Target) error {
	next := make(map[string]*runner, len(targets))
	for _, t := range targets {
		t, err := t.withDefaults()
		if err != nil {
			return err
		}
		if _, dup := next[t.ID]; dup {
			return fmt.Errorf("target %q: %w: listed twice", t.ID, ErrInvalidTarget)
		}
		next[t.ID] = &runner{t: t, status: Status{State: t.Initial}, done: make(chan struct{})}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range next {
		old, ok := s.targets[id]
		switch {
		case !ok:
		case old.t.sameCheck(r.t):
			next[id] = old
		case old.cancel != nil:
			r.prev = old.done
		}
	}
	for id, old := range s.targets {
		if next[id] != old && old.cancel != nil {
			old.cancel()
		}
	}
	s.targets = next
	if s.ctx != nil && !s.stopped {
		for _, r := range next {
			if r.cancel == nil {
				s.start(r)
			}
		}
	}
	return nil
}

// Snapshot returns every target's current Status by ID.
func (s *Scheduler) Snapshot() map[string]Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Status, len(s.targets))
	for id, r := range s.targets {
		out[id] = r.status
	}
	return out
}

// Run checks the targets until ctx is done, then returns once every check
// in flight has returned and no Observe call is under way. A Scheduler
// runs once: a second Run returns ErrStarted.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ctx != nil {
		s.mu.Unlock()
		return ErrStarted
	}
	s.ctx = ctx
	for _, r := range s.targets {
		s.start(r)
	}
	s.mu.Unlock()

	<-ctx.Done()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// start runs r's goroutine; s.mu must be held.
func (s *Scheduler) start(r *runner) {
	ctx, cancel := context.WithCancel(s.ctx)
	r.cancel = cancel
	s.wg.Go(func() {
		defer close(r.done)
		defer cancel()
		s.loop(ctx, r)
	})
}

func (s *Scheduler) loop(ctx context.Context, r *runner) {
	if r.prev != nil {
		// Already cancelled, so it returns as soon as its check does.
		<-r.prev
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		res := s.check(ctx, r.t)
		if ctx.Err() != nil {
			// Stopped or removed mid-check: the failure is ours, not
			// the target's.
			return
		}
		if took := time.Since(start); stalled(took, r.t) {
			// The check outlived its own timeout by a whole interval:
			// this process was stopped (SIGSTOP, a paused VM), and the
			// result, a timeout most likely, observed the stall, not
			// the target. The next check starts at once.
			s.log.Debug("check result dropped: the process stalled", "target", r.t.ID, "took", took)
		} else {
			s.record(r, res)
		}
		timer.Reset(max(s.delay(r.t.Interval)-time.Since(start), 0))
	}
}

// stalled reports whether a check that took took could only have been
// held up by this process rather than by the target, whose check ends at
// its timeout.
func stalled(took time.Duration, t Target) bool { return took > t.Timeout+t.Interval }

// check runs one check under the target's timeout.
func (s *Scheduler) check(ctx context.Context, t Target) (res Result) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	defer func() {
		// A bug in one checker must not take the node down with it.
		if v := recover(); v != nil {
			s.log.Error("checker panicked", "target", t.ID, "panic", v, "stack", string(debug.Stack()))
			res = Result{Reason: "checker panicked"}
		}
	}()
	return t.Checker.Check(ctx)
}

func (s *Scheduler) record(r *runner, res Result) {
	s.mu.Lock()
	st := Hysteresis{Rise: r.t.Rise, Fall: r.t.Fall}.Next(r.status, res, time.Now())
	r.status = st
	s.mu.Unlock()
	if s.sink != nil {
		s.sink.Observe(r.t.ID, st)
	}
}

// delay is the time from one check's start to the next: the interval less
// a random offset of up to a tenth of it. Shortening rather than
// lengthening keeps the time to detect a failure within Fall × Interval
// (plus the checks' own time).
func (s *Scheduler) delay(interval time.Duration) time.Duration {
	spread := int64(interval / jitterDivisor)
	if spread <= 0 {
		return interval
	}
	return interval - time.Duration(s.rand(spread))
}
