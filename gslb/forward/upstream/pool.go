package upstream

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a pool as the configuration in force has it. It is immutable:
// a reload builds a new one, and the state that must survive lives in
// its PoolState and the backends' BackendState.
type Pool struct {
	Name     string
	Backends []*Backend
	Balance  string // the balancer's name, as configured
	balancer Balancer
	hashes   bool // the balancer hashes key's result
	hashKey  hashKey

	MinHealthy      int
	PanicMode       bool  // all_unhealthy = "panic"
	SlowStart       int64 // ns
	ConnectTimeout  time.Duration
	ConnectAttempts int
	ProxyVersion    byte // 0: no PROXY header to backends
	DrainTimeout    time.Duration
	Outlier         OutlierConfig

	State *PoolState
}

// PoolState is what a reload keeps of a pool: its health summary and
// counters. mu serialises health recounts, ejections and restores.
type PoolState struct {
	Name      string
	log       *slog.Logger
	Healthy   atomic.Int64 // backends in rotation: healthy and not draining
	Panicking atomic.Bool
	Refused   atomic.Uint64 // connections no backend could take

	mu  sync.Mutex
	cur *Pool // the pool of the configuration in force
}

// Pick chooses a backend for a new connection and counts it as active; nil
// when none is available. Release what it returns.
func (p *Pool) Pick(r *Request) *Backend {
	// A backend that filled up between the balancer's look and acquire
	// is skipped: the next look sees it full.
	for range 3 {
		b := p.balancer.Pick(p.Backends, r)
		if b == nil {
			return nil
		}
		if b.Acquire() {
			return b
		}
		r.Avoid(b)
	}
	return nil
}

// PickAdmitted is pick, past the picked backend's circuit breaker: a
// backend whose breaker refuses is skipped. done, when not nil, must be
// told the outcome (see Backend.admit).
func (p *Pool) PickAdmitted(r *Request) (b *Backend, done func(error)) {
	for range MaxTried {
		if b = p.Pick(r); b == nil {
			return nil, nil
		}
		done, ok := b.Admit()
		if ok {
			return b, done
		}
		b.Release()
		r.Avoid(b)
	}
	return nil, nil
}

// Key is the hash of what the pool's hashing balancer hashes; 0 for the
// others, which do not look at it.
func (p *Pool) Key(src netip.AddrPort, serverName string) uint64 {
	if !p.hashes {
		return 0
	}
	return hashRequest(p.hashKey, src, serverName)
}

// Capacity reports the backends in rotation and whether they reach
// min_healthy.
func (p *Pool) Capacity() (healthy int, ok bool) {
	n := int(p.State.Healthy.Load())
	return n, n >= p.MinHealthy
}

// Refresh recounts the backends in rotation and enters or leaves panic
// mode; called whenever a backend's health, ejection or drain changes.
func (ps *PoolState) Refresh() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.refreshLocked()
}

func (ps *PoolState) refreshLocked() {
	p := ps.cur
	if p == nil {
		return
	}
	n := 0
	for _, b := range p.Backends {
		if b.State.inRotation() {
			n++
		}
	}
	ps.Healthy.Store(int64(n))
	inPanic := p.PanicMode && n == 0 && len(p.Backends) > 0
	if ps.Panicking.Swap(inPanic) != inPanic {
		if inPanic {
			ps.log.Warn("pool in panic mode: no healthy backend, spreading connections over every backend not draining", "pool", ps.Name)
		} else {
			ps.log.Info("pool left panic mode", "pool", ps.Name, "healthy", n)
		}
	}
}
