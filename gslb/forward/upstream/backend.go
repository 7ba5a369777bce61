package upstream

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/probes"
)

// slowStartFloor is the share of its weight a backend gets the moment it
// joins, so that slow start never starves it (Envoy's min_weight_percent).
const slowStartFloor = 0.1

// Backend is one server of a pool as the configuration in force has it:
// address, weight and connection limit, and a pointer to the state that
// outlives configurations. Balancers see backends only through this type
// and ask only Request.Available whether one may take a connection.
type Backend struct {
	Addr     string // host:port
	Weight   int    // in force: the configured weight, or the admin API's
	MaxConns int64  // 0: no limit

	Pool         *Pool
	State        *BackendState
	ConfigWeight int // the weight in the file
}

// BackendState is what a reload keeps of a backend whose pool and address
// are unchanged: health, drains, ejection and counters. Everything read on
// the connection path is atomic; mu guards the rest.
type BackendState struct {
	ID   string // pool/address, the health check's target ID
	Addr string
	Pool *PoolState
	log  *slog.Logger

	Health   atomic.Uint32 // a probes.State
	Ejected  atomic.Bool
	Draining atomic.Bool  // for any drainReason
	joined   atomic.Int64 // unix ns it last (re)joined rotation, where slow start runs from; 0: at full weight
	failures atomic.Int32 // connect failures in a row, for outlier detection

	Active        atomic.Int64
	Connections   atomic.Uint64
	ConnectErrors atomic.Uint64
	Sent          atomic.Uint64 // bytes from clients to the backend
	Received      atomic.Uint64 // bytes from the backend to clients
	ToUp, ToDown  atomic.Uint64 // health transitions
	Ejections     atomic.Uint64

	// L7: requests by status class (index status/100; 0 for none, when
	// the try failed), the time to the response headers of each try, and
	// the circuit breaker, if the pool has one.
	Requests     [6]atomic.Uint64
	TryLatency   Histogram
	Breaker      atomic.Pointer[Breaker]
	BreakerOpens atomic.Uint64 // times the breaker opened

	// A weight set through the admin API (canary and blue-green shifts)
	// replaces the configured one until the file's weight for the backend
	// changes. weightSet says whether there is one; noWeight is set while
	// the weight in force is 0, which takes the backend out of rotation
	// without draining it.
	weightSet  atomic.Bool
	noWeight   atomic.Bool
	runtimeW   atomic.Int64
	weightFrom atomic.Int64 // the configured weight when the runtime one was set

	mu           sync.Mutex
	drains       DrainReason
	drainTimeout time.Duration
	drainTimer   *time.Timer
	drainExpired bool // the drain's timeout has passed: sessions still arriving are closed
	ejectStreak  int  // ejections in a row, which lengthen the next one
	ejectedUntil time.Time
	restoredAt   time.Time
	ejectTimer   *time.Timer
	sessions     map[Session]struct{}
	onDrained    func() // called after the drain timeout closed the sessions of a removed backend
}

// Session is one proxied connection or UDP flow, which a drain's timeout
// or shutdown may have to close.
type Session interface{ Abort() }

// DrainReason says why a backend takes no new connections; several may
// hold at once, and the backend drains while any does.
type DrainReason uint8

const (
	drainConfig   DrainReason = 1 << iota // drain = true in the configuration
	DrainAdmin                            // POST .../drain on the admin API
	drainRemoved                          // gone from the configuration
	DrainShutdown                         // the forwarder is stopping
)

func (r DrainReason) Names() []string {
	var out []string
	for _, n := range []struct {
		r    DrainReason
		name string
	}{{drainConfig, "config"}, {DrainAdmin, "admin"}, {drainRemoved, "removed"}, {DrainShutdown, "shutdown"}} {
		if r&n.r != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func newBackendState(id, addr string, ps *PoolState, health probes.State, log *slog.Logger) *BackendState {
	s := &BackendState{ID: id, Addr: addr, Pool: ps, log: log, sessions: map[Session]struct{}{}}
	s.Health.Store(uint32(health))
	return s
}

// Available is the availability gate: the backend is not draining, has
// room under its connection limit, and is healthy and not ejected, unless
// its pool is in panic mode, where health is ignored.
func (b *Backend) Available() bool {
	s := b.State
	if s.Draining.Load() || s.noWeight.Load() {
		return false
	}
	if b.MaxConns > 0 && s.Active.Load() >= b.MaxConns {
		return false
	}
	if s.Pool.Panicking.Load() {
		return true
	}
	return s.healthy()
}

// healthy reports whether active and passive health both pass: the checks
// say up, outlier detection has not ejected it, and its circuit breaker,
// if any, is not open.
func (s *BackendState) healthy() bool {
	if probes.State(s.Health.Load()) != probes.Up || s.Ejected.Load() {
		return false
	}
	br := s.Breaker.Load()
	return br == nil || br.admits()
}

// inRotation is what the capacity count and panic mode go by: healthy and
// taking new connections.
func (s *BackendState) inRotation() bool {
	return s.healthy() && !s.Draining.Load() && !s.noWeight.Load()
}

// EffectiveWeight is the weight the balancers use at time now (unix ns):
// during slow start it ramps from slowStartFloor of the weight to all of it.
func (b *Backend) EffectiveWeight(now int64) float64 {
	w := float64(b.Weight)
	ramp := b.Pool.SlowStart
	if ramp <= 0 {
		return w
	}
	joined := b.State.joined.Load()
	if joined == 0 || now-joined >= ramp || now < joined {
		return w
	}
	return w * max(slowStartFloor, float64(now-joined)/float64(ramp))
}

// Acquire counts a new connection, unless the backend is at its limit; the
// check in Available is a hint that a race can beat, this is the rule.
func (b *Backend) Acquire() bool {
	s := b.State
	if b.MaxConns <= 0 {
		s.Active.Add(1)
		return true
	}
	for {
		n := s.Active.Load()
		if n >= b.MaxConns {
			return false
		}
		if s.Active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (b *Backend) Release() { b.State.Active.Add(-1) }

// Track registers a session so that a drain can close it; false means the
// backend's drain has already timed out, and the caller must close it.
func (s *BackendState) Track(x Session) bool {
	if !s.TrackRequest(x) {
		return false
	}
	s.Connections.Add(1)
	return true
}

// TrackRequest registers an HTTP request as track does a connection,
// without counting a connection: the L7 proxy counts those as it dials.
func (s *BackendState) TrackRequest(x Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drainExpired {
		return false
	}
	s.sessions[x] = struct{}{}
	return true
}

func (s *BackendState) Untrack(x Session) {
	s.mu.Lock()
	delete(s.sessions, x)
	s.mu.Unlock()
}

// SetDrain turns one reason for draining on or off. When the backend
// starts draining, its established sessions get timeout to finish before
// they are closed; when it stops, the clock stops too. It reports whether
// the backend's draining changed.
func (s *BackendState) SetDrain(r DrainReason, on bool, timeout time.Duration) bool {
	s.mu.Lock()
	was := s.drains != 0
	if on {
		s.drains |= r
	} else {
		s.drains &^= r
	}
	now := s.drains != 0
	s.drainTimeout = timeout
	switch {
	case now && !was:
		s.Draining.Store(true)
		s.drainTimer = time.AfterFunc(timeout, s.drainTimedOut)
	case !now && was:
		s.Draining.Store(false)
		s.drainExpired = false
		if s.drainTimer != nil {
			s.drainTimer.Stop()
			s.drainTimer = nil
		}
	}
	s.mu.Unlock()
	return now != was
}

// drainTimedOut closes the sessions a drain left open.
func (s *BackendState) drainTimedOut() {
	s.mu.Lock()
	if s.drains == 0 {
		s.mu.Unlock()
		return // undrained while the timer fired
	}
	s.drainExpired = true
	open := make([]Session, 0, len(s.sessions))
	for x := range s.sessions {
		open = append(open, x)
	}
	done := s.onDrained
	s.mu.Unlock()
	if len(open) > 0 {
		s.log.Info("drain timeout: closing established connections", "pool", s.Pool.Name, "backend", s.Addr, "connections", len(open))
	}
	for _, x := range open {
		x.Abort()
	}
	if done != nil {
		done()
	}
}

// timeout returns the drain timeout of the backend's pool as last applied.
func (s *BackendState) DrainTimeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drainTimeout
}

// DrainReasons returns why the backend drains, if it does.
func (s *BackendState) DrainReasons() DrainReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drains
}

// AbortAll closes every session at once, for a shutdown whose time is up.
func (s *BackendState) AbortAll() {
	s.mu.Lock()
	open := make([]Session, 0, len(s.sessions))
	for x := range s.sessions {
		open = append(open, x)
	}
	s.mu.Unlock()
	for _, x := range open {
		x.Abort()
	}
}

// SetHealth records a change of the active checks' verdict and reports
// whether there was one.
func (s *BackendState) SetHealth(to probes.State, now time.Time) bool {
	from := probes.State(s.Health.Swap(uint32(to)))
	if from == to {
		return false
	}
	switch to {
	case probes.Up:
		s.ToUp.Add(1)
		s.joined.Store(now.UnixNano())
	case probes.Down:
		s.ToDown.Add(1)
	}
	return true
}
