package l7

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/h1"
	"github.com/meridian-gslb/meridian/gslb/forward/l4"
)

// httpListener is an http or https listener. It accepts connections,
// terminates TLS, and serves plain HTTP/1.1 requests on the fast path
// (h1.go); it hands the connection to an http.Server for anything else.
// Both read the configuration in force on every request, so that a
// reload changes routes and pools under established connections and
// upgraded tunnels without closing them.
type httpListener struct {
	p                *Proxy
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

// Bind binds http or https listener lc of the prepared configuration;
// Serve runs it.
func (p *Proxy) Bind(prep *Prepared, lc config.ForwardListener) (l4.Listener, error) {
	ln, err := net.Listen("tcp", lc.Listen)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
	}
	l := &httpListener{
		p: p, lname: lc.Name, proto: lc.Protocol, at: lc.Listen, ln: ln, done: make(chan struct{}),
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
		ErrorLog:          serverErrorLog(p.env.Log, lc.Name),
		Protocols:         &protos,
		ConnContext:       connTLSState,
	}
	if lc.Protocol == "https" {
		l.certs = newCertStore(lc.Name, prep.certs[lc.Name], p.env.Log)
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
	cfg := l.p.env.Current().HTTPListener(l.lname)
	var inner net.Listener = l.ln
	if cfg != nil && cfg.l4.AcceptProxy {
		inner = &proxyproto.Listener{
			Listener: l.ln, ReadHeaderTimeout: cfg.l4.Handshake,
			ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil },
		}
	}
	if l.certs != nil {
		go l.certs.watch(l.p.env.Ctx, l.done)
	}
	ln := &limitListener{Listener: inner, l: l}
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		if err := l.srv.Serve(l.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			l.p.env.Log.Error("http server stopped", "listener", l.lname, "err", err)
		}
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closing.Load() {
				break
			}
			l4.AcceptFailed(l.p.env.Log, l.lname, &delay, err)
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
			c.tc.wake()
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
		if cfg := l.p.env.Current().HTTPListener(l.lname); cfg != nil {
			maxConns = cfg.l4.MaxConns
		}
		if l.active.Add(1) > maxConns {
			l.active.Add(-1)
			l.rejected.Add(1)
			c.Close()
			continue
		}
		l.accepted.Add(1)
		return &limitedConn{Conn: l.p.polls.Wrap(c), l: l}, nil
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
