package l7

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// Pool is a pool of the configuration in force as the proxies use it: the
// upstream pool (backends, balancer, health; package upstream), which the
// L4 proxy uses alone, and its L7 side (retries, sticky sessions, the
// transports to its backends). It is immutable: a reload builds a new one.
type Pool struct {
	*upstream.Pool
	http poolHTTP
}

// poolState is what a reload keeps of a pool's L7 side: the retry budget
// and what it allowed and refused, what sticky sessions did, and the
// transport to the backends, kept with its idle connections while a
// reload leaves its settings alone.
type poolState struct {
	budget          retryBudget
	retries         retryCounts // by the outcome retried
	budgetExhausted atomic.Uint64
	sticky          stickyCounts

	mu        sync.Mutex // guards the transports, which a reload swaps
	transport *http.Transport
	fast      *h1Transport
	spec      transportSpec
}

// close closes the pool's transports' idle connections, for a pool that
// is gone or a forwarder that stops; requests in flight on them finish.
func (ls *poolState) close() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if t := ls.transport; t != nil {
		t.CloseIdleConnections()
		ls.transport = nil
	}
	if t := ls.fast; t != nil {
		t.close()
		ls.fast = nil
	}
}

// install makes the transports of p those in force, closing the idle
// connections of those it replaces.
func (ls *poolState) install(p *Pool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if old := ls.transport; old != nil && old != p.http.transport {
		old.CloseIdleConnections() // requests in flight on it finish
	}
	if old := ls.fast; old != nil && old != p.http.fast {
		old.close()
	}
	ls.transport, ls.fast, ls.spec = p.http.transport, p.http.fast, p.http.spec.transport
}

// NewPool builds the L7 side of pool pc of the prepared configuration
// around up, its upstream side. It keeps the pool's transports while
// their settings are unchanged.
func (p *Proxy) NewPool(prep *Prepared, pc *config.ForwardPool, up *upstream.Pool) *Pool {
	return p.newPool(pc, up, prep.pools[pc.Name])
}

// RebuildPool builds pool pc again around up, as old was built: for a
// change of weights, which rebuilds the pool's balancer.
func (p *Proxy) RebuildPool(pc *config.ForwardPool, up *upstream.Pool, old *Pool) *Pool {
	return p.newPool(pc, up, old.http.spec)
}

func (p *Proxy) newPool(pc *config.ForwardPool, up *upstream.Pool, spec poolSpec) *Pool {
	ls := p.pools[pc.Name]
	if ls == nil {
		ls = &poolState{}
		p.pools[pc.Name] = ls
	}
	h := pc.HTTP
	pl := &Pool{Pool: up, http: poolHTTP{
		scheme: h.Scheme, host: h.Host, retries: *h.Retries, retryStatuses: h.RetryStatuses,
		retryTimeout: h.RetryTimeout, retryNonIdempotent: h.RetryNonIdempotent,
		budgetRatio: *h.RetryBudget, budgetMin: *h.RetryBudgetMin, retryBuffer: *h.RetryBuffer,
		spec: spec, st: ls,
	}}
	ls.mu.Lock()
	if ls.transport != nil && ls.spec == spec.transport {
		pl.http.transport, pl.http.fast = ls.transport, ls.fast
	}
	ls.mu.Unlock()
	if pl.http.transport == nil {
		pl.http.transport = newTransport(spec.transport)
		if spec.transport.scheme == "http" {
			pl.http.fast = newH1Transport(spec.transport, p.polls)
		}
	}
	pl.http.sticky = newSticky(pc.Sticky, pc.Name, up.Backends, spec.stickyKey)
	return pl
}
