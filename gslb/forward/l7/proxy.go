package l7

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// stateKey is the context key of a request's reqState.
type stateKey struct{}

// reqState is one request through the L7 proxy: what was decided about it
// and what became of it, from the listener's handler through the route,
// the pool and each try to the access log.
type reqState struct {
	aborted atomic.Bool                      // a drain's timeout or shutdown cut it short
	h1      *h1Conn                          // the fast path's connection, which abort cuts; nil on net/http
	try     atomic.Pointer[upstream.Backend] // the backend of the try under way, for the dialer
	reqVars
}

// reqVars are the parts of a request's state that an abort does not read:
// the fast path starts each request of a connection by resetting them in
// the connection's one reqState, which allocates nothing.
type reqVars struct {
	p       *Proxy
	snap    Snapshot
	hc      *Config
	ctx     context.Context
	cancel  context.CancelFunc
	start   time.Time
	headAt  time.Time      // the fast path: when the answer's head was read
	end     time.Time      // the fast path: when the answer was written
	peer    netip.AddrPort // the connection's peer (or the PROXY header's client)
	client  netip.Addr     // the client, through trusted proxies
	route   *route
	view    requestView // the request, as routing and sticky cookies read it
	metrics bool

	trustedPeer bool
	pool        *Pool
	canary      bool
	mayRetry    bool   // it may go to another backend after reaching one
	path        string // the escaped path the backend gets; "" for the client's
	body        *requestBody
	paced       *pacedBody        // net/http: the body read at its pace; nil without
	key         uint64            // what the pool's hashing balancer, or sticky hashing, hashes
	pin         *upstream.Backend // the backend a sticky cookie named
	stickyHash  bool              // key comes from sticky source_ip or header
	pick        upstream.Request  // what the balancer knows of it, kept here so that it is not allocated

	backend *upstream.Backend // the backend whose answer the client got
	tries   int
	status  int // for 101 and for the client's going away, which no WriteHeader shows
	err     string
}

func stateOf(r *http.Request) *reqState {
	rs, _ := r.Context().Value(stateKey{}).(*reqState)
	return rs
}

// Abort is the drain's and shutdown's way to end the request: its context
// ends, which ends the try, the response's copy, or an upgraded tunnel.
func (rs *reqState) Abort() {
	rs.aborted.Store(true)
	if rs.h1 != nil {
		rs.h1.Abort()
		return
	}
	rs.cancel()
}

// choose picks the backend for the next try: the sticky pin or hash on
// the first, the pool's balancer otherwise, always through the
// availability gate and the circuit breaker. It counts the backend active
// and tracks the request on it; nil when none can take it.
func (rs *reqState) choose(p *Pool, req *upstream.Request) (*upstream.Backend, func(error)) {
	for range upstream.MaxTried {
		var b *upstream.Backend
		var done func(error)
		if rs.tries == 0 && rs.pin != nil && req.Available(rs.pin) && rs.pin.Acquire() {
			var ok bool
			if done, ok = rs.pin.Admit(); ok {
				b = rs.pin
			} else {
				rs.pin.Release()
				req.Avoid(rs.pin)
			}
		}
		if b == nil && rs.stickyHash {
			if b = p.http.sticky.hash.Pick(p.Backends, req); b != nil {
				if !b.Acquire() {
					req.Avoid(b)
					continue
				}
				var ok bool
				if done, ok = b.Admit(); !ok {
					b.Release()
					req.Avoid(b)
					continue
				}
			}
		}
		if b == nil {
			if b, done = p.PickAdmitted(req); b == nil {
				return nil, nil
			}
		}
		if b.State.TrackRequest(rs) {
			return b, done
		}
		// Its drain timed out a moment ago.
		if done != nil {
			done(upstream.ErrTryExcluded)
		}
		b.Release()
		req.Avoid(b)
	}
	return nil, nil
}

// keep makes b the backend whose answer the client gets; it stays counted
// active until the request ends.
func (rs *reqState) keep(b *upstream.Backend) { rs.backend = b }

// drop lets go of a backend a try failed on.
func (rs *reqState) drop(b *upstream.Backend) {
	b.Release()
	b.State.Untrack(rs)
}

// bodyReplayable reports whether another try can send the body: always
// after a connection failure (nothing was read) unless a try already read
// a streamed body, and after a try that reached a backend only when the
// body was kept whole.
func (rs *reqState) bodyReplayable(reached bool) bool {
	if rs.body == nil {
		return true
	}
	if reached {
		return rs.body.kept
	}
	return rs.body.kept || !rs.body.read.Load()
}

// newReverseProxy builds the proxy's one ReverseProxy: the request's
// state, in its context, says where it goes.
func (p *Proxy) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      roundTripper{p},
		ModifyResponse: modifyResponse,
		ErrorHandler:   p.proxyError,
		BufferPool:     copyBuffers{},
		// Failed tries go through proxyError; what is left (an answer
		// cut short while copied, an upgrade gone wrong) is debug.
		ErrorLog: slog.NewLogLogger(p.env.Log.Handler(), slog.LevelDebug),
	}
}

// rewrite prepares the request to the backend: the path the route
// rewrites, the Host header, and the forwarding headers. The backend's
// address is the try's to set.
func rewrite(pr *httputil.ProxyRequest) {
	rs := stateOf(pr.In)
	out := pr.Out
	out.URL.Scheme = rs.pool.http.scheme
	if rs.path != "" {
		setPath(out.URL, rs.path)
	}
	if h := rs.pool.http.host; h != "" {
		out.Host = h
	}
	setForwarded(pr, rs)
}

// modifyResponse records the answer and pins the client to the backend
// that gave it, when the pool is sticky by cookie and the client was not
// pinned there already.
func modifyResponse(resp *http.Response) error {
	rs := stateOf(resp.Request)
	rs.status = resp.StatusCode
	r := resp.Request
	if v := rs.stickyCookie(rs.backend, clientProto(r.Header.Get("X-Forwarded-Proto"), r.TLS != nil, rs.trustedPeer) == "https"); v != "" {
		resp.Header.Add("Set-Cookie", v)
	}
	return nil
}

// proxyError answers a request the proxy could not: 503 when no backend
// was available, 413 for a body past max_body_bytes, 504 when the backend
// did not answer in time, 502 for any other failure. A client that went
// away gets nothing and is logged as 499, as nginx does.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	rs := stateOf(r)
	code := gatewayStatus(err)
	var tooLarge *http.MaxBytesError
	switch {
	case rs.bodyExpired():
		code = http.StatusRequestTimeout
		w.Header().Set("Connection", "close")
	case code == http.StatusServiceUnavailable: // no backend
	case errors.As(err, &tooLarge):
		code = http.StatusRequestEntityTooLarge
	case rs.ctx.Err() != nil && !rs.aborted.Load():
		rs.status, rs.err = statusClientClosed, "client went away"
		return
	case rs.body != nil && rs.body.failed.Load():
		code = http.StatusBadRequest // the client's body was cut short
	}
	rs.err = err.Error()
	plain(w, code, http.StatusText(code))
}

// gatewayStatus is the answer, on both paths, to a request no backend
// answered: 503 when none could take it, 504 when one did not answer in
// time, 502 for any other failure.
func gatewayStatus(err error) int {
	switch {
	case errors.Is(err, errNoBackend):
		return http.StatusServiceUnavailable
	case timedOut(err):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// statusClientClosed is nginx's code for a request whose client left
// before the answer: logged, never sent.
const statusClientClosed = 499

// plain writes a short text answer.
func plain(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// copyBuffers recycles the buffers ReverseProxy copies answers through.
type copyBuffers struct{}

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *bufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { bufferPool.Put(&b) }

// responseWriter records the status and size of the answer for metrics
// and the access log, and sets the listener's response headers on every
// answer, proxied or not. Unwrap lets http.ResponseController reach the
// connection, for flushes and upgrades.
type responseWriter struct {
	http.ResponseWriter
	headers [][2]string
	status  int
	bytes   int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		h := w.ResponseWriter.Header()
		for _, kv := range w.headers {
			h.Set(kv[0], kv[1])
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveHTTP is every request of an http or https listener: find the
// route, run it, then count and log what happened.
func (l *httpListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	snap := l.p.env.Current()
	hc := snap.HTTPListener(l.lname)
	if hc == nil {
		// The listener left the configuration: this connection is
		// one of the last.
		w.Header().Set("Connection", "close")
		plain(w, http.StatusServiceUnavailable, "listener closed")
		return
	}
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http reads the body by its Transfer-Encoding and drops a
		// Content-Length sent with it before a handler can see it: RFC
		// 9112, section 6.3, then has the connection close after the
		// answer, so that a request smuggled behind the body is never
		// served. The fast path refuses such a request (400) itself.
		w.Header().Set("Connection", "close")
	}
	if r.TLS == nil && l.tlsConfig != nil {
		// A connection the fast path handed over after its handshake.
		r.TLS, _ = r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	}
	l.requests.Add(1)
	defer l.requests.Add(-1)

	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	rs := l.newReqState(snap, hc, start, peer, r.Header.Values)
	rw := &responseWriter{ResponseWriter: w, headers: hc.headers}
	view := &stdRequest{r: r}
	rt := hc.routes.find(view, requestHost(r))
	if rt == nil {
		rt = hc.fallback
	}
	rs.route = rt
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), stateKey{}, rs))
	rs.ctx, rs.cancel = ctx, cancel
	defer func() {
		cancel()
		status := rw.status
		if status == 0 { // an upgrade, or a client that went away
			status = rs.status
		}
		l.finish(rs, status, rw.bytes, time.Now(), func() requestLine {
			return requestLine{r.Method, r.Host, r.URL.RequestURI(), r.Proto, r.UserAgent()}
		})
	}()
	rs.view = view
	rt.handler.ServeHTTP(rw, r.WithContext(ctx))
}

// newReqState starts a request's state on either path: its peer, whether
// the peer is a trusted proxy, and the client behind it as the forwarding
// headers (read by in) vouch for it.
func (l *httpListener) newReqState(snap Snapshot, hc *Config, start time.Time, peer netip.AddrPort, in func(string) []string) *reqState {
	rs := new(reqState)
	l.startReq(rs, snap, hc, start, peer, in)
	return rs
}

// startReq is newReqState in rs, which the fast path keeps per
// connection: an abort of its last request that comes late may still
// read it.
func (l *httpListener) startReq(rs *reqState, snap Snapshot, hc *Config, start time.Time, peer netip.AddrPort, in func(string) []string) {
	rs.aborted.Store(false)
	rs.try.Store(nil)
	rs.reqVars = reqVars{p: l.p, snap: snap, hc: hc, start: start, peer: peer, metrics: hc.metrics}
	rs.trustedPeer = len(hc.trusted) > 0 && hc.trusted.trusts(peer.Addr())
	rs.client = peer.Addr().Unmap()
	if rs.trustedPeer {
		rs.client = clientAddr(peer.Addr(), in, hc.trusted)
	}
}

// finish lets go of the backend, then counts and logs the request, whose
// answer had status and a body of size bytes and ended at end; line
// describes it, if the access log asks. It runs even when the answer's
// copy panicked (http.ErrAbortHandler).
func (l *httpListener) finish(rs *reqState, status int, size int64, end time.Time, line func() requestLine) {
	if b := rs.backend; b != nil {
		rs.drop(b)
	}
	elapsed := end.Sub(rs.start)
	if rs.metrics {
		st := rs.route.st
		st.requests[upstream.StatusClass(status)].Add(1)
		st.latency.Observe(elapsed)
	}
	// The guard judges answers: not tunnels, whose time is their life,
	// nor requests whose client left.
	if g := rs.route.guard; g != nil && rs.pool != nil && status != http.StatusSwitchingProtocols && status != statusClientClosed {
		g.Observe(rs.pool.Name, status, elapsed)
	}
	if al := l.p.accessLog.Load(); al != nil && al.sampled() {
		al.write(l.lname, rs, line(), status, size, elapsed)
	}
}

// proxyTo is the action of a route with a pool: choose the pool (the
// canary's or the route's), what pins the client, the body the tries
// send, the path; then ReverseProxy does the rest.
func (p *Proxy) proxyTo(w http.ResponseWriter, r *http.Request, rt *route) {
	rs := stateOf(r)
	var sni string
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	if !rs.takePool(rt, sni) {
		plain(w, http.StatusServiceUnavailable, "no such pool")
		return
	}
	pl := rs.pool
	paceBody(w, r, rs)
	if max := rs.hc.maxBody; max > 0 {
		if r.ContentLength > max {
			plain(w, http.StatusRequestEntityTooLarge, http.StatusText(http.StatusRequestEntityTooLarge))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
	rs.mayRetry = pl.http.mayRetry(idempotent(r)) && r.Header.Get("Upgrade") == ""
	// A body up to retry_buffer is read whole before a backend is chosen
	// (HAProxy's http-buffer-request), retried or not, so that a slow
	// client holds no backend while it sends it.
	body, err := newRequestBody(r, pl.http.retryBuffer)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			plain(w, http.StatusRequestEntityTooLarge, http.StatusText(http.StatusRequestEntityTooLarge))
			return
		}
		rs.err = "reading the request body: " + err.Error()
		if rs.bodyExpired() {
			w.Header().Set("Connection", "close")
			plain(w, http.StatusRequestTimeout, http.StatusText(http.StatusRequestTimeout))
			return
		}
		plain(w, http.StatusBadRequest, "incomplete request body")
		return
	}
	rs.body = body
	rs.path = rt.rewritePath(r.URL.EscapedPath())
	p.rp.ServeHTTP(w, r)
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// takePool sets the pool the request goes to (the route's, or its
// canary's share), counts the split, and reads what the pool's balancer
// hashes (sni is the TLS server name) or its sticky sessions pin; false
// when the route's pool is missing.
func (rs *reqState) takePool(rt *route, sni string) bool {
	p, canary := rt.choosePool(rs.snap, rs.view)
	if p == nil {
		return false
	}
	rs.pool, rs.canary = p, canary
	if rs.metrics && rt.canary != "" {
		rt.st.split[boolIndex(canary)].Add(1)
	}
	rs.key = p.Key(netip.AddrPortFrom(rs.client, rs.peer.Port()), sni)
	rs.applySticky(p)
	return true
}

// retryBuffer is how much of the request's body is kept for another
// try: retry_buffer when the request may be retried, nothing otherwise.
func (rs *reqState) retryBuffer() int {
	if rs.mayRetry {
		return rs.pool.http.retryBuffer
	}
	return 0
}

// applySticky reads what pins the request in p's sticky pool, if it has
// one: the backend its cookie names, or the hash of its address or
// header that the pool's rendezvous hashing picks by.
func (rs *reqState) applySticky(p *Pool) {
	s := p.http.sticky
	switch {
	case s == nil:
	case s.mode == stickyCookie:
		rs.pin = s.pinned(rs.view)
	default:
		if k, ok := s.hashKey(rs.view, rs); ok {
			rs.key, rs.stickyHash = k, true
		}
	}
}

// choosePool returns the pool a request of the route goes to, and
// whether it is the canary's. The canary takes its percent of requests,
// spread evenly (request n goes to the canary when n×percent/100 passes a
// whole number); a client whose sticky cookie pins it in either pool
// stays there while the canary has a share, so that a session sees one
// version.
func (rt *route) choosePool(snap Snapshot, r requestView) (*Pool, bool) {
	base := snap.HTTPPool(rt.pool)
	if rt.canary == "" {
		return base, false
	}
	can := snap.HTTPPool(rt.canary)
	pct := int64(rt.st.percent.Load())
	switch {
	case pct <= 0 || can == nil:
		return base, false
	case pct >= 100:
		return can, true
	}
	if s := can.http.sticky; s != nil && s.mode == stickyCookie && s.pinned(r) != nil {
		return can, true
	}
	if s := base.http.sticky; s != nil && s.mode == stickyCookie && s.pinned(r) != nil {
		return base, false
	}
	n := int64(rt.st.splitN.Add(1))
	if n*pct/100 != (n-1)*pct/100 {
		return can, true
	}
	return base, false
}

// localHandler is the action of a route that answers itself.
func (rt *route) localHandler() http.Handler {
	switch {
	case rt.redirect != "":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, rt.redirectURL(r, requestHost(r)), rt.code)
		})
	case rt.respond != nil:
		rs := rt.respond
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", rs.ContentType)
			w.WriteHeader(rs.Status)
			io.WriteString(w, rs.Body)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusNotFound, "no route")
	})
}

// serverErrorLog turns the http.Server's error log (TLS handshake
// failures, malformed requests) into debug logs.
func serverErrorLog(l *slog.Logger, listener string) *log.Logger {
	return slog.NewLogLogger(l.With("listener", listener).Handler(), slog.LevelDebug)
}
