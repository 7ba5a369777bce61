package upstream

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/probes"
)

// Registry holds what outlives a configuration: each pool's PoolState by
// name and each backend's BackendState by ID (pool/address). Build makes
// the pools of a configuration from it; a reload builds them again and
// keeps the state of the pools and backends it still has.
type Registry struct {
	log  *slog.Logger
	rand func(n uint64) uint64 // for p2c; nil uses math/rand/v2

	// mu guards the maps, and is held while a pool is built so that a
	// removed backend's drain cannot forget it as a reload brings it back.
	mu       sync.Mutex
	backends map[string]*BackendState
	pools    map[string]*PoolState
}

// NewRegistry returns an empty registry. rnd returns a uniform number in
// [0, n) for the p2c balancer and must be safe for concurrent use; nil
// uses math/rand/v2.
func NewRegistry(log *slog.Logger, rnd func(n uint64) uint64) *Registry {
	return &Registry{log: log, rand: rnd, backends: map[string]*BackendState{}, pools: map[string]*PoolState{}}
}

// BackendID is a backend's ID, its health check's target ID.
func BackendID(pool, addr string) string { return pool + "/" + addr }

// InitialState is the health pc's backends start with.
func InitialState(pc *config.ForwardPool) probes.State {
	switch pc.InitialState {
	case "down":
		return probes.Down
	case "unknown":
		return probes.Unknown
	}
	return probes.Up
}

// Build builds pool pc, reusing the state of the backends it already had,
// and records their IDs in keep. first says the forwarder is starting:
// backends new to a running forwarder ramp up through slow start from now.
// The pool is in force once its PoolState.Install has run.
func (r *Registry) Build(pc *config.ForwardPool, keep map[string]bool, first bool, now time.Time) (*Pool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.pools[pc.Name]
	if ps == nil {
		ps = &PoolState{Name: pc.Name, log: r.log}
		r.pools[pc.Name] = ps
	}
	p := newPool(pc, ps)
	initial := InitialState(pc)
	for j := range pc.Backends {
		bc := &pc.Backends[j]
		id := BackendID(pc.Name, bc.Address)
		keep[id] = true
		st := r.backendState(pc, bc, ps, initial, first, now)
		if st.SetDrain(drainConfig, bc.Drain, p.DrainTimeout) {
			st.LogDrain(bc.Drain, "config")
		}
		if pc.Breaker.Enabled() {
			if cur := st.Breaker.Load(); cur == nil || cur.cfg != pc.Breaker {
				st.Breaker.Store(newBreaker(pc.Breaker, st, r.log))
			}
		} else {
			st.Breaker.Store(nil)
		}
		p.Backends = append(p.Backends, &Backend{
			Addr: bc.Address, Weight: st.weightFor(*bc.Weight), ConfigWeight: *bc.Weight,
			MaxConns: int64(*bc.MaxConnections), Pool: p, State: st,
		})
	}
	bal, err := newBalancer(pc.Balance, p.Backends, r.rand)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", pc.Name, err)
	}
	p.balancer = bal
	return p, nil
}

// newPool is pc's settings, without backends.
func newPool(pc *config.ForwardPool, ps *PoolState) *Pool {
	p := &Pool{
		Name:            pc.Name,
		Balance:         pc.Balance,
		hashes:          config.Hashing(pc.Balance),
		hashKey:         parseHashKey(pc.HashKey),
		MinHealthy:      pc.MinHealthy,
		PanicMode:       pc.AllUnhealthy == "panic",
		SlowStart:       int64(pc.SlowStart.Duration),
		ConnectTimeout:  pc.ConnectTimeout.Duration,
		ConnectAttempts: pc.ConnectAttempts,
		DrainTimeout:    pc.DrainTimeout.Duration,
		Outlier: OutlierConfig{
			Consecutive: *pc.Outlier.ConsecutiveFailures,
			Base:        pc.Outlier.BaseEjectionTime.Duration,
			Max:         pc.Outlier.MaxEjectionTime.Duration,
			MaxPercent:  *pc.Outlier.MaxEjectionPercent,
		},
		State: ps,
	}
	switch pc.ProxyProtocol {
	case "v1":
		p.ProxyVersion = 1
	case "v2":
		p.ProxyVersion = 2
	}
	return p
}

// backendState returns the state of backend bc of pool pc: the one kept
// from the configuration before, or a new one. r.mu is held.
func (r *Registry) backendState(pc *config.ForwardPool, bc *config.ForwardBackend, ps *PoolState, initial probes.State, first bool, now time.Time) *BackendState {
	id := BackendID(pc.Name, bc.Address)
	st := r.backends[id]
	switch {
	case st == nil:
		st = newBackendState(id, bc.Address, ps, initial, r.log)
		if !first {
			// Joining a pool that carries traffic: ramp up.
			st.joined.Store(now.UnixNano())
		}
		r.backends[id] = st
		r.log.Info("backend added", "pool", pc.Name, "backend", bc.Address, "weight", *bc.Weight, "health", initial.String())
	case st.DrainReasons()&drainRemoved != 0:
		st.mu.Lock()
		st.onDrained = nil
		st.mu.Unlock()
		st.SetDrain(drainRemoved, false, pc.DrainTimeout.Duration)
		r.log.Info("backend added", "pool", pc.Name, "backend", bc.Address, "weight", *bc.Weight, "health", probes.State(st.Health.Load()).String())
	}
	if pc.Check.Type == "none" {
		// Nothing checks it: passive health alone takes it out.
		st.Health.Store(uint32(probes.Up))
	}
	return st
}

// Retire drains the backends whose IDs keep does not hold, gone from the
// configuration, and forgets each once its drain timeout has closed what
// was left.
func (r *Registry) Retire(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, st := range r.backends {
		if keep[id] || st.DrainReasons()&drainRemoved != 0 {
			continue
		}
		r.log.Info("backend removed", "pool", st.Pool.Name, "backend", st.Addr, "active", st.Active.Load())
		r.retire(id, st)
	}
}

// retire drains one removed backend. r.mu is held.
func (r *Registry) retire(id string, st *BackendState) {
	timeout := st.DrainTimeout()
	st.mu.Lock()
	st.onDrained = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.backends[id] == st && st.DrainReasons()&drainRemoved != 0 {
			delete(r.backends, id)
		}
	}
	// A backend whose drain (from the file or the admin API) timed out
	// already gets no new timer: its sessions are closed, and it goes now.
	expired := st.drains != 0 && st.drainExpired
	st.mu.Unlock()
	st.SetDrain(drainRemoved, true, timeout)
	if expired {
		delete(r.backends, id) // r.mu is held
	}
}

// Backend returns the state of backend id, nil if there is none.
func (r *Registry) Backend(id string) *BackendState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backends[id]
}

// BackendStates returns the state of every backend, removed ones still
// draining included.
func (r *Registry) BackendStates() []*BackendState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*BackendState, 0, len(r.backends))
	for _, st := range r.backends {
		out = append(out, st)
	}
	return out
}

// PoolStates returns the state of every pool ever built, by name.
func (r *Registry) PoolStates() map[string]*PoolState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*PoolState, len(r.pools))
	for name, ps := range r.pools {
		out[name] = ps
	}
	return out
}

// Install puts p in force as the pool of its state, and recounts it.
func (ps *PoolState) Install(p *Pool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.cur = p
	ps.refreshLocked()
}

// Uninstall takes the pool out of force, gone from the configuration, and
// reports whether it was in force.
func (ps *PoolState) Uninstall() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	was := ps.cur != nil
	ps.cur = nil
	return was
}

// LogDrain logs that the backend started or stopped draining, by is who
// asked, and recounts its pool.
func (s *BackendState) LogDrain(on bool, by string) {
	if on {
		s.log.Info("backend draining", "pool", s.Pool.Name, "backend", s.Addr, "by", by, "active", s.Active.Load(), "drain_timeout", s.DrainTimeout())
	} else {
		s.log.Info("backend undrained", "pool", s.Pool.Name, "backend", s.Addr, "by", by)
	}
	s.Pool.Refresh()
}

// DrainExpired reports whether the backend's drain has timed out, so that
// sessions still arriving are closed.
func (s *BackendState) DrainExpired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drainExpired
}

// Ejection reports whether outlier detection has the backend out, and
// until when.
func (s *BackendState) Ejection() (until time.Time, ejected bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.Ejected.Load() {
		return time.Time{}, false
	}
	return s.ejectedUntil, true
}
