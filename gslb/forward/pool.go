package forward

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// Pool is a pool of the configuration in force as the proxies use it: the
// upstream pool (backends, balancer, health; package upstream) and its L7
// settings. It is immutable: a reload builds a new one.
type Pool struct {
	*upstream.Pool
	http poolHTTP
}

// poolL7State is what a reload keeps of a pool's L7 side: the retry budget
// and what it allowed and refused, what sticky sessions did, and the
// transport to the backends, kept with its idle connections while a
// reload leaves its settings alone.
type poolL7State struct {
	budget          retryBudget
	retries         retryCounts // by the outcome retried
	budgetExhausted atomic.Uint64
	sticky          stickyCounts

	mu        sync.Mutex // guards the transports, which a reload swaps
	transport *http.Transport
	fast      *h1Transport
	tspec     transportSpec
}

// close closes the pool's transports' idle connections, for a pool that
// is gone or a forwarder that stops; requests in flight on them finish.
func (ls *poolL7State) close() {
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
func (ls *poolL7State) install(p *Pool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if old := ls.transport; old != nil && old != p.http.transport {
		old.CloseIdleConnections() // requests in flight on it finish
	}
	if old := ls.fast; old != nil && old != p.http.fast {
		old.close()
	}
	ls.transport, ls.fast, ls.tspec = p.http.transport, p.http.fast, p.http.tspec
}
