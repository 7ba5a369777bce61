package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-gslb/meridian/gslb/forward/canary"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/h1"
	"github.com/meridian-gslb/meridian/gslb/forward/l4"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// Route names the forwarder gives itself: requests no route takes go to
// the listener's pool, as route "default", or are answered 404, as route
// "no_route".
const (
	routeDefault = "default"
	routeNone    = "no_route"
)

// httpConfig is an http or https listener's part of the configuration in
// force.
type httpConfig struct {
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

	// The canary guard running for the route, if any; f.mu guards these.
	guard     *canary.Guard
	guardSpec guardSpec
	guardStop context.CancelFunc
}

// routeState returns the state of a route, made on first use. f.mu is
// held.
func (f *Forwarder) routeState(listener, name string) *routeState {
	key := listener + "/" + name
	st := f.routeStates[key]
	if st == nil {
		st = &routeState{listener: listener, name: name}
		f.routeStates[key] = st
	}
	return st
}

// buildHTTPConfig compiles an http listener's routes, with their rate
// limits and canary guards (built here, run once the configuration is in
// force). f.mu is held.
func (f *Forwarder) buildHTTPConfig(cfg *config.Forward, i int, used map[string]bool, limiters map[string]*limiter) (*httpConfig, error) {
	lc := &cfg.Listeners[i]
	hc := &httpConfig{maxBody: lc.MaxBodyBytes, metrics: lc.MetricsOn(), fast: lc.FastPathOn(),
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
		rc := &lc.Routes[j]
		rt := compileRoute(j, rc)
		rt.st = f.routeState(lc.Name, rt.name)
		used[lc.Name+"/"+rt.name] = true
		pct := int32(0)
		if rc.Canary != nil {
			pct = int32(rc.Canary.Percent)
		}
		f.applyCanaryPercent(rt.st, pct)
		rt.handler = f.routeHandler(rt)
		rt.fast = fastRoute(cfg, rt)
		if rc.RateLimit != "" {
			rt.handler = limiters[rc.RateLimit].limit(rt.st, rt.handler)
		}
		if rc.Canary != nil && rc.Canary.Guard != nil {
			rt.guardSpec = guardSpecOf(rt, rc.Canary.Guard)
			if rt.st.guard != nil && rt.st.guardSpec == rt.guardSpec {
				rt.guard = rt.st.guard
			} else {
				g, err := f.newGuard(rt.st, rt.guardSpec)
				if err != nil {
					return nil, cfg.Errorf(fmt.Sprintf("listener[%d].route[%d].canary.guard", i, j), "%v", err)
				}
				rt.guard = g
			}
		}
		routes = append(routes, rt)
		hosts = append(hosts, rc.Host)
	}
	hc.routes = newRouteTable(routes, hosts)
	fb := &route{name: routeNone, pool: lc.Pool}
	if lc.Pool != "" {
		fb.name = routeDefault
	}
	fb.st = f.routeState(lc.Name, fb.name)
	used[lc.Name+"/"+fb.name] = true
	fb.handler = f.routeHandler(fb)
	fb.fast = fastRoute(cfg, fb)
	hc.fallback = fb
	return hc, nil
}

// runGuards starts the canary guards of the configuration now in force
// and stops those it no longer has. f.mu is held.
func (f *Forwarder) runGuards(snap *snapshot) {
	want := map[*routeState]*route{}
	for _, lc := range snap.listeners {
		if lc.http == nil {
			continue
		}
		for _, rt := range lc.http.routes.all {
			if rt.guard != nil {
				want[rt.st] = rt
			}
		}
	}
	for _, st := range f.routeStates {
		rt := want[st]
		if st.guard != nil && (rt == nil || rt.guard != st.guard) {
			st.guardStop()
			st.guard, st.guardStop = nil, nil
		}
		if rt != nil && st.guard == nil {
			ctx, cancel := context.WithCancel(f.ctx)
			st.guard, st.guardSpec, st.guardStop = rt.guard, rt.guardSpec, cancel
			go rt.guard.Run(ctx)
		}
	}
}

// applyCanaryPercent sets a route's canary share from the file, unless
// the admin API set it since the file last said otherwise.
func (f *Forwarder) applyCanaryPercent(st *routeState, fromFile int32) {
	if st.percentSet.Load() {
		if st.percentFrom.Load() == fromFile {
			return
		}
		f.log.Info("reload: the file's canary percent replaces the one set through the admin API",
			"listener", st.listener, "route", st.name, "runtime", st.percent.Load(), "file", fromFile)
		st.percentSet.Store(false)
	}
	st.percent.Store(fromFile)
}

// routeHandler is a route's action inside its middleware.
func (f *Forwarder) routeHandler(rt *route) http.Handler {
	if rt.pool == "" {
		return rt.localHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.proxyTo(w, r, rt) })
}

// httpListener is an http or https listener. It accepts connections,
// terminates TLS, and serves plain HTTP/1.1 requests on the fast path
// (h1.go); it hands the connection to an http.Server for anything else.
// Both read the configuration in force on every request, so that a
// reload changes routes and pools under established connections and
// upgraded tunnels without closing them.
type httpListener struct {
	f                *Forwarder
	lname, proto, at string
	ln               net.Listener // the bound socket
	srv              *http.Server
	handoff          *handoffListener // where srv accepts
	certs            *certStore       // https
	tlsConfig        *tls.Config      // https

	// The fast path's timeouts and largest head, fixed at bind time as
	// srv's are.
	headerTimeout, idleTimeout, writeTimeout time.Duration
	headMax                                  int

	mu      sync.Mutex
	conns   map[*h1Conn]struct{} // on the fast path
	closing atomic.Bool

	fastRequests atomic.Uint64 // answered on the fast path
	handoffs     atomic.Uint64 // connections handed to net/http

	active   atomic.Int64 // connections
	accepted atomic.Uint64
	rejected atomic.Uint64 // past max_connections
	requests atomic.Int64  // in flight, upgraded tunnels included

	done     chan struct{} // closed when Serve has returned
	stopOnce sync.Once
}

var _ l4.Listener = (*httpListener)(nil)

// bindHTTP binds an http or https listener; certs are its certificates,
// already loaded.
func (f *Forwarder) bindHTTP(lc config.ForwardListener, certs *certSet) (l4.Listener, error) {
	ln, err := net.Listen("tcp", lc.Listen)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
	}
	l := &httpListener{
		f: f, lname: lc.Name, proto: lc.Protocol, at: lc.Listen, ln: ln, done: make(chan struct{}),
		handoff: newHandoffListener(ln.Addr()), conns: map[*h1Conn]struct{}{},
		headerTimeout: lc.ReadHeaderTimeout.Duration, idleTimeout: lc.IdleTimeout.Duration, writeTimeout: lc.WriteTimeout.Duration,
	}
	if rt := lc.ReadTimeout.Duration; rt > 0 && (l.headerTimeout == 0 || rt < l.headerTimeout) {
		l.headerTimeout = rt
	}
	if l.headerTimeout == 0 {
		l.headerTimeout = config.DefaultReadHeaderTimeout
	}
	if l.idleTimeout == 0 {
		l.idleTimeout = l.headerTimeout
	}
	// A head net/http would refuse never takes the fast path.
	l.headMax = h1.HeadMax
	if m := lc.MaxHeaderBytes; m > 0 && m < l.headMax {
		l.headMax = m
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	if lc.Protocol == "https" {
		protos.SetHTTP2(true)
	} else if lc.H2C {
		protos.SetUnencryptedHTTP2(true)
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: lc.ReadHeaderTimeout.Duration,
		ReadTimeout:       lc.ReadTimeout.Duration,
		WriteTimeout:      lc.WriteTimeout.Duration,
		IdleTimeout:       lc.IdleTimeout.Duration,
		MaxHeaderBytes:    lc.MaxHeaderBytes,
		ErrorLog:          serverErrorLog(f.log, lc.Name),
		Protocols:         &protos,
		ConnContext:       connTLSState,
	}
	if lc.Protocol == "https" {
		l.certs = newCertStore(lc.Name, certs, f.log)
		l.tlsConfig = &tls.Config{
			MinVersion:     tlsVersion(lc.TLSMinVersion),
			GetCertificate: l.certs.get,
			NextProtos:     []string{"h2", "http/1.1"},
		}
		// srv sees the connections after their handshake; this tells it
		// to serve HTTP/2 on those that chose h2.
		l.srv.TLSConfig = l.tlsConfig
	}
	return l, nil
}

func tlsVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func (l *httpListener) Name() string     { return l.lname }
func (l *httpListener) Addr() net.Addr   { return l.ln.Addr() }
func (l *httpListener) Protocol() string { return l.proto }
func (l *httpListener) Listen() string   { return l.at }

// serve runs the server until stop.
func (l *httpListener) Serve() {
	defer close(l.done)
	cfg := l.f.snap.Load().listeners[l.lname]
	var inner net.Listener = l.ln
	if cfg != nil && cfg.AcceptProxy {
		inner = &proxyproto.Listener{
			Listener: l.ln, ReadHeaderTimeout: cfg.Handshake,
			ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil },
		}
	}
	if l.certs != nil {
		go l.certs.watch(l.f.ctx, l.done)
	}
	ln := &limitListener{Listener: inner, l: l}
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		if err := l.srv.Serve(l.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			l.f.log.Error("http server stopped", "listener", l.lname, "err", err)
		}
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closing.Load() {
				break
			}
			l4.AcceptFailed(l.f.log, l.lname, &delay, err)
			continue
		}
		delay = 0
		go l.serveConn(c)
	}
	<-srvDone
}

// connTLSState gives the requests of a connection the fast path handed
// over after its TLS handshake that connection's TLS state (which
// ServeHTTP puts in Request.TLS).
func connTLSState(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*replayConn); ok && rc.tls != nil {
		return context.WithValue(ctx, tlsStateKey{}, rc.tls)
	}
	return ctx
}

// stop closes the socket and lets the connections finish their requests:
// idle keep-alive connections close, HTTP/2 ones are told to go away, and
// upgraded tunnels carry on until they end or their backend's drain
// closes them.
func (l *httpListener) Stop() {
	l.stopOnce.Do(func() {
		l.closing.Store(true)
		l.ln.Close()
		l.wakeIdle()
		go func() {
			_ = l.srv.Shutdown(context.Background()) // returns once the last request has
		}()
	})
}

// wait returns once every connection and request has ended, or ctx has;
// then it closes what is left.
func (l *httpListener) Wait(ctx context.Context) {
	if err := l.srv.Shutdown(ctx); err != nil {
		l.srv.Close()
	}
	// The fast path's connections close after the request in hand.
	tick0 := time.NewTicker(5 * time.Millisecond)
	defer tick0.Stop()
	for l.fastConns() > 0 {
		l.wakeIdle()
		select {
		case <-ctx.Done():
			l.closeFast()
			return
		case <-tick0.C:
		}
	}
	// Shutdown does not wait for hijacked connections: the upgraded
	// tunnels are the requests still in flight.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for l.requests.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// wakeIdle ends the waits of fast-path connections between requests, so
// that they see the listener closing.
func (l *httpListener) wakeIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.idle.Load() {
			_ = c.conn.SetReadDeadline(time.Unix(1, 0))
		}
	}
}

func (l *httpListener) fastConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// closeFast closes the fast path's connections, requests in hand or not.
func (l *httpListener) closeFast() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.conn.Close()
	}
}

func (l *httpListener) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(l4.DescListenerActive, prometheus.GaugeValue, float64(l.active.Load()), l.lname, l.proto)
	ch <- prometheus.MustNewConstMetric(l4.DescListenerConns, prometheus.CounterValue, float64(l.accepted.Load()), l.lname, l.proto)
	ch <- prometheus.MustNewConstMetric(l4.DescListenerRejected, prometheus.CounterValue, float64(l.rejected.Load()), l.lname, l.proto, l4.RejectNames[l4.RejectMaxConns])
	ch <- prometheus.MustNewConstMetric(descHTTPActive, prometheus.GaugeValue, float64(l.requests.Load()), l.lname)
	ch <- prometheus.MustNewConstMetric(descHTTPFast, prometheus.CounterValue, float64(l.fastRequests.Load()), l.lname)
	ch <- prometheus.MustNewConstMetric(descHTTPHandoffs, prometheus.CounterValue, float64(l.handoffs.Load()), l.lname)
	if l.certs != nil {
		l.certs.collect(ch)
	}
}

// limitListener applies the listener's max_connections and counts
// connections.
type limitListener struct {
	net.Listener
	l *httpListener
}

func (ll *limitListener) Accept() (net.Conn, error) {
	l := ll.l
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		maxConns := int64(config.DefaultListenerMaxConns)
		if cfg := l.f.snap.Load().listeners[l.lname]; cfg != nil {
			maxConns = cfg.MaxConns
		}
		if l.active.Add(1) > maxConns {
			l.active.Add(-1)
			l.rejected.Add(1)
			c.Close()
			continue
		}
		l.accepted.Add(1)
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// limitedConn gives its place back when closed.
type limitedConn struct {
	net.Conn
	l      *httpListener
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if !c.closed.Swap(true) {
		c.l.active.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite lets the server end its side of the connection without a
// reset, as it does on a *net.TCPConn.
func (c *limitedConn) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite ends c's sending side when it has one (TCP does).
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
