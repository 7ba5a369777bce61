package l7

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/canary"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/epoll"
	"github.com/meridian-gslb/meridian/gslb/forward/l4"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// Env is what the proxy needs of the forwarder that runs it.
type Env struct {
	// Ctx ends when the forwarder has stopped: certificate watches,
	// canary guards and TLS handshakes stop with it.
	Ctx context.Context
	Log *slog.Logger
	// Current returns the configuration in force, read once per request
	// (on the fast path, once per request and when a connection starts)
	// so that a request's listener, route and pools agree.
	Current func() Snapshot
	// SetCanary sets a route's canary share as the admin API does; a
	// canary guard's rollback calls it with 0.
	SetCanary func(listener, route string, percent int) error
}

// Snapshot is the configuration in force as the proxy reads it.
type Snapshot interface {
	// HTTPListener returns an http or https listener's settings; nil
	// when a reload has just removed it.
	HTTPListener(name string) *Config
	// HTTPPool returns the pool of that name with its L7 side; nil when
	// there is none.
	HTTPPool(name string) *Pool
}

// Proxy is the L7 proxy: what its listeners and pools share and what
// outlives a reload (routes' canary shares, guards and counters, pools'
// retry budgets and transports, rate limiters, the access log).
//
// The forwarder calls Prepare, NewConfig, NewPool, Bind and Publish in
// that order for each configuration, and Config.SetCanary, under one lock
// of its own, which guards the state kept across reloads.
type Proxy struct {
	env       Env
	rp        *httputil.ReverseProxy // every request of the net/http side
	accessLog atomic.Pointer[accessLog]
	limiters  atomic.Pointer[map[string]*limiter] // in force, by policy

	polls *epoll.Pollers // where fast-path connections wait

	routes    map[string]*routeState // by listener/route
	pools     map[string]*poolState  // by pool
	published bool
}

// New returns the L7 proxy of a forwarder; Publish puts a configuration
// in force.
func New(env Env) *Proxy {
	p := &Proxy{env: env, polls: epoll.New(env.Ctx, env.Log), routes: map[string]*routeState{}, pools: map[string]*poolState{}}
	p.rp = p.newReverseProxy()
	return p
}

// Route names the forwarder gives itself: requests no route takes go to
// the listener's pool, as route "default", or are answered 404, as route
// "no_route".
const (
	routeDefault = "default"
	routeNone    = "no_route"
)

// Config is an http or https listener's part of the configuration in
// force: its routes and request settings. It is immutable: a reload
// builds a new one.
type Config struct {
	name     string
	l4       *l4.Config // what every listener has
	log      *slog.Logger
	routes   *routeTable
	fallback *route // the listener's pool, or the 404 of no route
	trusted  trustList
	maxBody  int64
	// A request body's pace (body.go); readTimeout is read_timeout.
	bodyTimeout, readTimeout time.Duration
	minBodyRate              int64
	headers                  [][2]string // response_headers, canonical names
	metrics                  bool
	fast                     bool // plain HTTP/1.1 requests take the fast path (h1.go)
}

// routeState is what a reload keeps of a route, keyed by listener and
// route name: its canary share as the admin API last set it, and its
// counters.
type routeState struct {
	listener, name string

	percent    atomic.Int32 // the canary's share in force
	percentSet atomic.Bool  // set through the admin API
	// percentFrom is the file's percent when the admin API set it: a
	// reload keeps the runtime share until the file's changes.
	percentFrom atomic.Int32
	splitN      atomic.Uint64    // requests split between the pools so far
	split       [2]atomic.Uint64 // requests to the route's pool and to the canary's

	requests [6]atomic.Uint64 // by status class
	latency  upstream.Histogram
	limited  atomic.Uint64 // refused by the route's rate limit

	// The canary guard running for the route, if any; the forwarder's
	// lock guards these.
	guard     *canary.Guard
	guardSpec guardSpec
	guardStop context.CancelFunc
}

// routeState returns the state of a route, made on first use.
func (p *Proxy) routeState(listener, name string) *routeState {
	key := listener + "/" + name
	st := p.routes[key]
	if st == nil {
		st = &routeState{listener: listener, name: name}
		p.routes[key] = st
	}
	return st
}

// NewConfig compiles the routes of listener i of the prepared
// configuration, an http or https one, with their rate limits and canary
// guards (built here, run once Publish puts the configuration in force).
// l4c is its L4 settings, which the listener reads too.
func (p *Proxy) NewConfig(prep *Prepared, i int, l4c *l4.Config) (*Config, error) {
	cfg := prep.cfg
	lc := &cfg.Listeners[i]
	hc := &Config{name: lc.Name, l4: l4c, log: p.env.Log, maxBody: lc.MaxBodyBytes, metrics: lc.MetricsOn(), fast: lc.FastPathOn(),
		bodyTimeout: lc.BodyTimeout.Duration, readTimeout: lc.ReadTimeout.Duration, minBodyRate: lc.BodyRate()}
	for _, tp := range lc.TrustedProxies {
		p, _ := config.ParsePrefixOrAddr(tp) // validated
		hc.trusted = append(hc.trusted, p)
	}
	for _, name := range slices.Sorted(maps.Keys(lc.ResponseHeaders)) {
		hc.headers = append(hc.headers, [2]string{http.CanonicalHeaderKey(name), lc.ResponseHeaders[name]})
	}
	routes := make([]*route, 0, len(lc.Routes))
	hosts := make([][]string, 0, len(lc.Routes))
	for j := range lc.Routes {
		rt, err := p.newRoute(prep, lc, j)
		if err != nil {
			return nil, cfg.Errorf(fmt.Sprintf("listener[%d].route[%d].canary.guard", i, j), "%v", err)
		}
		routes = append(routes, rt)
		hosts = append(hosts, lc.Routes[j].Host)
	}
	hc.routes = newRouteTable(routes, hosts)
	fb := &route{name: routeNone, pool: lc.Pool}
	if lc.Pool != "" {
		fb.name = routeDefault
	}
	fb.st = p.routeState(lc.Name, fb.name)
	fb.handler = p.routeHandler(fb)
	fb.fast = fastRoute(cfg, fb)
	hc.fallback = fb
	prep.configs = append(prep.configs, hc)
	return hc, nil
}

// newRoute compiles route j of listener lc with its state, middleware
// and guard; an error is the guard's.
func (p *Proxy) newRoute(prep *Prepared, lc *config.ForwardListener, j int) (*route, error) {
	rc := &lc.Routes[j]
	rt := compileRoute(j, rc)
	rt.st = p.routeState(lc.Name, rt.name)
	if rc.Canary != nil {
		rt.filePercent = int32(rc.Canary.Percent)
	}
	p.applyCanaryPercent(rt.st, rt.filePercent)
	rt.handler = p.routeHandler(rt)
	rt.fast = fastRoute(prep.cfg, rt)
	if rc.RateLimit != "" {
		rt.handler = prep.limiters[rc.RateLimit].limit(rt.st, rt.handler)
	}
	if rc.Canary != nil && rc.Canary.Guard != nil {
		rt.guardSpec = guardSpecOf(rt, rc.Canary.Guard)
		if rt.st.guard != nil && rt.st.guardSpec == rt.guardSpec {
			rt.guard = rt.st.guard
		} else {
			g, err := p.newGuard(rt.st, rt.guardSpec)
			if err != nil {
				return nil, err
			}
			rt.guard = g
		}
	}
	return rt, nil
}

// applyCanaryPercent sets a route's canary share from the file, unless
// the admin API set it since the file last said otherwise.
func (p *Proxy) applyCanaryPercent(st *routeState, fromFile int32) {
	if st.percentSet.Load() {
		if st.percentFrom.Load() == fromFile {
			return
		}
		p.env.Log.Info("reload: the file's canary percent replaces the one set through the admin API",
			"listener", st.listener, "route", st.name, "runtime", st.percent.Load(), "file", fromFile)
		st.percentSet.Store(false)
	}
	st.percent.Store(fromFile)
}

// routeHandler is a route's action inside its middleware.
func (p *Proxy) routeHandler(rt *route) http.Handler {
	if rt.pool == "" {
		return rt.localHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.proxyTo(w, r, rt) })
}

// Publish puts the L7 side of the prepared configuration in force, once
// the forwarder has published its snapshot: pools' transports replace
// those before (those of pools gone are closed), canary guards start and
// stop, routes gone are forgotten, https listeners (among listeners, those
// in force) get their certificates, and the access log is swapped.
func (p *Proxy) Publish(prep *Prepared, pools map[string]*Pool, listeners map[string]l4.Listener) {
	for _, pl := range pools {
		pl.http.st.install(pl)
	}
	for name, ps := range p.pools {
		if pools[name] == nil {
			ps.close()
		}
	}
	used := p.runGuards(prep.configs)
	for key := range p.routes {
		if !used[key] {
			delete(p.routes, key)
		}
	}
	p.limiters.Store(&prep.limiters)
	for i := range prep.cfg.Listeners {
		lc := &prep.cfg.Listeners[i]
		if hl, ok := listeners[lc.Name].(*httpListener); ok && hl.certs != nil {
			hl.certs.set(prep.certs[lc.Name], lc.CertificateReload.Duration)
		}
	}
	p.swapAccessLog(prep.accessLog)
	p.published = true
}

// runGuards starts the canary guards of configs, now in force, and stops
// those they no longer have. It returns the listener/route keys of their
// routes.
func (p *Proxy) runGuards(configs []*Config) map[string]bool {
	used := map[string]bool{}
	want := map[*routeState]*route{}
	for _, hc := range configs {
		for _, rt := range append(slices.Clip(hc.routes.all), hc.fallback) {
			used[hc.name+"/"+rt.name] = true
			if rt.guard != nil {
				want[rt.st] = rt
			}
		}
	}
	for _, st := range p.routes {
		rt := want[st]
		if st.guard != nil && (rt == nil || rt.guard != st.guard) {
			st.guardStop()
			st.guard, st.guardStop = nil, nil
		}
		if rt != nil && st.guard == nil {
			ctx, cancel := context.WithCancel(p.env.Ctx)
			st.guard, st.guardSpec, st.guardStop = rt.guard, rt.guardSpec, cancel
			go rt.guard.Run(ctx)
		}
	}
	return used
}

// swapAccessLog puts al in force, closing the one before unless al keeps
// its file.
func (p *Proxy) swapAccessLog(al *accessLog) {
	if old := p.accessLog.Swap(al); old != nil || al != nil {
		old.close(al)
		if p.published && old.String() != al.String() {
			p.env.Log.Info("access log", "log", al.String())
		}
	}
}

// Close closes the pools' transports' idle connections and the access
// log, for a forwarder that has stopped.
func (p *Proxy) Close() {
	for _, ps := range p.pools {
		ps.close()
	}
	p.accessLog.Swap(nil).close(nil)
}
