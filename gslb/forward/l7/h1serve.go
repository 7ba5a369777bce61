package l7

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/h1"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// h1Conn is a client connection on the fast path.
type h1Conn struct {
	l     *httpListener
	conn  net.Conn  // the client's: TCP, or TLS after the handshake
	tc    timedConn // conn, with its deadlines kept coarse; reads and writes go through it
	tls   *tls.ConnectionState
	sni   string
	peer  netip.AddrPort
	rd    h1.Reader
	req   h1.Request
	view  h1View
	resp  h1.Response
	rs    *reqState // the request in hand: &state
	state reqState  // every request's state in turn
	end   time.Time // when the last answer was written, where the idle timeout runs from
	out   []byte    // the answer, on its way to the client
	reqTo []byte    // the head sent to backends

	idle atomic.Bool               // waiting for a request, none of it read
	be   atomic.Pointer[h1Backend] // the try's backend connection, for aborts

	// This hop's forwarding headers for the last Host, kept: most
	// connections ask for one host.
	fwdHost string
	fwd     [4]string
}

// h1OutSize is the answer's buffer: a head and a small body go out in one
// write.
const h1OutSize = 32 << 10

// serveConn serves one client connection: the TLS handshake on https
// listeners, then requests on the fast path until one needs net/http,
// which then gets the connection.
func (l *httpListener) serveConn(raw net.Conn) {
	c := &h1Conn{l: l, conn: raw}
	if l.tlsConfig != nil {
		tc := tls.Server(raw, l.tlsConfig)
		_ = raw.SetDeadline(time.Now().Add(l.headerTimeout))
		if err := tc.HandshakeContext(l.p.env.Ctx); err != nil {
			l.p.env.Log.Debug("TLS handshake failed", "listener", l.lname, "peer", raw.RemoteAddr().String(), "err", err)
			raw.Close()
			return
		}
		_ = raw.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
			l.handOver(tc) // HTTP/2
			return
		}
		c.conn, c.tls, c.sni = tc, &st, st.ServerName
	}
	if hc := l.p.env.Current().HTTPListener(l.lname); hc == nil || !hc.fast {
		l.handOver(c.conn) // nothing read yet: net/http sees it as it is
		return
	}
	c.peer = netipPeer(raw)
	c.tc.Conn = c.conn
	c.rd = h1.NewReader(&c.tc, h1.HeadMax)
	c.state.h1 = c
	c.out = make([]byte, 0, h1OutSize)
	if !l.track(c, true) {
		c.conn.Close()
		return
	}
	err := c.serve()
	l.track(c, false)
	if errors.Is(err, h1.ErrFallback) {
		c.tc.forget() // net/http's deadlines are its own
		l.handOver(&replayConn{Conn: c.conn, rd: &c.rd, tls: c.tls})
		return
	}
	c.conn.Close()
}

// handOver gives net/http a connection.
func (l *httpListener) handOver(c net.Conn) {
	l.handoffs.Add(1)
	if !l.handoff.hand(c) {
		c.Close()
	}
}

// track adds c to the listener's fast-path connections, or removes it;
// false when the listener is closing.
func (l *httpListener) track(c *h1Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !add {
		delete(l.conns, c)
		return true
	}
	if l.closing.Load() {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

// serve reads and answers requests until the client closes, the listener
// does, or a request needs net/http (errFallback).
func (c *h1Conn) serve() error {
	l := c.l
	wait := l.headerTimeout // the first request's head is due at once
	c.end = time.Now()
	for {
		if len(c.rd.Buffered()) == 0 {
			c.idle.Store(true)
			if l.closing.Load() {
				return nil
			}
			c.tc.setRead(c.end.Add(wait), wait)
			err := c.rd.Fill()
			c.idle.Store(false)
			if err != nil {
				return err
			}
		}
		wait = l.idleTimeout
		head, err := c.rd.Head(l.headMax, func() { c.tc.setRead(time.Now().Add(l.headerTimeout), l.headerTimeout) })
		if err != nil {
			return err
		}
		snap := l.p.env.Current()
		hc := snap.HTTPListener(l.lname)
		if hc == nil || !hc.fast || !c.req.Parse(bufString(head)) {
			if h1.AmbiguousLength(string(head)) {
				c.refuse(http.StatusBadRequest, "both Content-Length and Transfer-Encoding")
				return nil
			}
			return h1.ErrFallback
		}
		c.view = h1View{q: &c.req}
		rt := hc.routes.find(&c.view, hostName(c.req.Host))
		if rt == nil {
			rt = hc.fallback
		}
		if !rt.fast {
			return h1.ErrFallback
		}
		body, err := c.readBody(len(head), hc)
		if err != nil {
			return err
		}
		if moved := c.rd.Buffered(); len(body) > 0 && &moved[0] != &head[0] {
			// Reading the body moved the head in the buffer: the
			// request's strings are read again where it is now.
			c.req.Parse(bufString(moved[:len(head)]))
			c.view = h1View{q: &c.req}
		}
		c.rd.Consume(len(head) + len(body))
		// body stays where it is in the buffer until the next read,
		// which comes after this request.
		if !c.proxy(snap, hc, rt, body) {
			return nil
		}
	}
}

// readBody reads the request's body, which follows its head of headLen
// bytes, into the buffer, at the listener's pace (body.go): a body too
// slow is answered 408 and its connection closed. Bodies that do not fit
// there, or past max_body_bytes (net/http answers 413), are net/http's
// (errFallback).
func (c *h1Conn) readBody(headLen int, hc *Config) ([]byte, error) {
	n := max(c.req.Length, 0)
	if n == 0 {
		return nil, nil
	}
	if headLen+n > c.rd.Size() || (hc.maxBody > 0 && int64(n) > hc.maxBody) {
		return nil, h1.ErrFallback
	}
	if have := len(c.rd.Buffered()) - headLen; have < n {
		pace := bodyPace{start: time.Now(), timeout: hc.bodyTimeout, rate: hc.minBodyRate, read: int64(have)}
		if pace.timeout <= 0 { // off: the head's timeout, as before there was a pace
			pace.timeout, pace.rate = c.l.headerTimeout, 0
		}
		c.rd.Compact()
		for len(c.rd.Buffered()) < headLen+n {
			c.tc.exactRead(pace.deadline(time.Now()))
			before := len(c.rd.Buffered())
			if err := c.rd.Fill(); err != nil {
				if timedOut(err) {
					c.refuse(http.StatusRequestTimeout, "request body too slow")
				}
				return nil, err
			}
			pace.read += int64(len(c.rd.Buffered()) - before)
		}
	}
	return c.rd.Buffered()[headLen : headLen+n], nil
}

// fastRoute reports whether the fast path can take a route's requests:
// it sends them to pools of plain HTTP backends (its own and its
// canary's), and has no rate limit. Decided when the configuration is
// built, as the snapshot's pools are.
func fastRoute(cfg *config.Forward, rt *route) bool {
	plain := func(pool string) bool {
		for i := range cfg.Pools {
			if cfg.Pools[i].Name == pool {
				return cfg.Pools[i].HTTP.Scheme == "http"
			}
		}
		return false
	}
	return rt.pool != "" && rt.rateLimit == "" && plain(rt.pool) && (rt.canary == "" || plain(rt.canary))
}

// proxy sends the request to the route's pool and the answer back; false
// when the connection is to close after it.
func (c *h1Conn) proxy(snap Snapshot, hc *Config, rt *route, body []byte) bool {
	l := c.l
	l.requests.Add(1)
	defer l.requests.Add(-1)
	q := &c.req
	rs := &c.state
	l.startReq(rs, snap, hc, time.Now(), c.peer, q.ForwardingValues)
	rs.route, rs.view = rt, &c.view
	c.rs = rs
	rs.takePool(rt, c.sni) // rt.fast: its pools are in the snapshot
	p := rs.pool
	rs.path = rt.rewritePath(q.RawPath)
	idem := idempotentBy(q.Method, func(name string) bool { return c.view.hasHeader(name, "*") })
	rs.mayRetry = p.http.mayRetry(idem)
	if len(body) > 0 {
		// Kept whole for any try when it may be retried and fits
		// retry_buffer, as net/http's path keeps bodies; sent once
		// otherwise.
		rs.body = &requestBody{kept: len(body) <= rs.retryBuffer()}
	}
	c.writeRequest(rs, p, body)

	l.fastRequests.Add(1)
	keep, size := c.forward(rs, idem)
	if rs.end.IsZero() { // no answer of a backend's was written
		rs.end = time.Now()
	}
	c.end = rs.end
	l.finish(rs, rs.status, size, rs.end, func() requestLine {
		return requestLine{q.Method, q.Host, q.Target, "HTTP/1.1", q.UserAgent}
	})
	// An aborted request's connection has its deadlines in the past.
	return keep && !q.Close && !l.closing.Load() && !rs.aborted.Load()
}

// writeRequest prepares the head the backends get: the route's path, the
// pool's Host, the client's headers but the hop-by-hop ones, and this
// hop's forwarding headers.
func (c *h1Conn) writeRequest(rs *reqState, p *Pool, body []byte) {
	q := &c.req
	b := append(c.reqTo[:0], q.Method...)
	b = append(b, ' ')
	if rs.path != "" {
		var u url.URL
		setPath(&u, rs.path)
		b = append(b, u.EscapedPath()...)
	} else {
		b = append(b, q.RawPath...)
	}
	if len(q.Target) > len(q.RawPath) { // a query, even an empty one
		b = append(b, q.Target[len(q.RawPath):]...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, cmp.Or(p.http.host, q.Host)...)
	b = append(b, "\r\n"...)
	for _, h := range q.Headers {
		b = appendHeader(b, h.Name, h.Value)
	}
	for i, v := range c.forwarding(rs) {
		b = appendHeader(b, forwardedNames[i], v)
	}
	// net/http sends a length for a body, and for the methods that
	// expect one even when it is empty.
	switch q.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		b = appendLength(b, len(body))
	default:
		if len(body) > 0 {
			b = appendLength(b, len(body))
		}
	}
	b = append(b, "\r\n"...)
	c.reqTo = append(b, body...)
}

func (c *h1Conn) forwarding(rs *reqState) [4]string {
	q := &c.req
	proto := "http"
	if c.tls != nil {
		proto = "https"
	}
	if q.HasForwarding && rs.trustedPeer {
		return forwardedHeaders(rs, q.Host, proto, q.ForwardingValues)
	}
	// Without forwarding headers to carry on, trust makes no difference.
	if c.fwd[0] == "" || c.fwdHost != q.Host {
		host := strings.Clone(q.Host) // q's strings end with the request
		c.fwd = forwardedHeaders(rs, host, proto, q.ForwardingValues)
		c.fwdHost = host
	}
	return c.fwd
}

// clientProto is the client's scheme, as far as trusted proxies vouch
// for it.
func (c *h1Conn) clientProto(rs *reqState) string {
	xfp := ""
	if rs.trustedPeer && c.req.HasForwarding {
		if v := c.req.ForwardingValues("X-Forwarded-Proto"); len(v) > 0 {
			xfp = v[0]
		}
	}
	return clientProto(xfp, c.tls != nil, rs.trustedPeer)
}

func appendLength(b []byte, n int) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "\r\n"...)
}

func appendHeader[T string | []byte](b []byte, name, value T) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// forward runs the request's tries (runTries), then writes the answer:
// the backend's, or the proxy's error. It returns whether the client
// connection can take another request, and the answer's body size.
// idem says whether it may be sent again at all.
func (c *h1Conn) forward(rs *reqState, idem bool) (keep bool, size int64) {
	be, err := runTries(rs,
		func(b *upstream.Backend) (*h1Backend, int, tryOutcome, error) {
			be, outcome, err := c.try(rs, b, idem)
			return be, c.resp.Status, outcome, err
		},
		c.discard)
	return c.answer(rs, be, err)
}

// try sends the request to b once and reads the answer's head; be is the
// connection the body is to be read from, nil when there is no answer.
func (c *h1Conn) try(rs *reqState, b *upstream.Backend, idem bool) (be *h1Backend, outcome tryOutcome, err error) {
	t := rs.pool.http.fast
	c.resp.Status = 0
	start := rs.start // the request's clock read serves its first try
	if rs.tries > 1 {
		start = time.Now()
	}
	// A request that may not be sent twice goes only on a connection
	// used a moment ago, which a backend's idle timeout has not closed.
	maxIdle := time.Duration(0)
	if !idem {
		maxIdle = h1FreshIdle
	}
	be, reused, err := t.get(b, maxIdle, start)
	if err != nil {
		rs.observeTry(b, start, time.Now())
		return nil, tried(b, rs, 0, err), err
	}
	c.be.Store(be)
	if err = c.exchange(rs, be, deadlineAt(start, t.spec.timeout), t.spec.timeout); err == nil {
		rs.headAt = time.Now()
		rs.observeTry(b, start, rs.headAt)
		return be, tried(b, rs, c.resp.Status, nil), nil
	}
	rs.observeTry(b, start, time.Now())
	be.conn.Close()
	c.be.Store(nil)
	switch {
	case rs.aborted.Load():
		return nil, tryCancelled, err
	case reused && errors.Is(err, errNoAnswer):
		// get saw it open: closed just now, or of this request. runTries
		// sends it again, as a retry.
		return nil, tryStale, err
	}
	return nil, tried(b, rs, 0, err), err
}

// observeTry records the time to a try's answer, or failure, when the
// listener has metrics.
func (rs *reqState) observeTry(b *upstream.Backend, start, end time.Time) {
	if rs.metrics {
		b.State.TryLatency.Observe(end.Sub(start))
	}
}

// errAborted is a request a drain's timeout or shutdown cut short.
var errAborted = errors.New("aborted by a drain or shutdown")

// errNoAnswer is a connection that ended before any byte of an answer.
var errNoAnswer = errors.New("the backend closed the connection before answering")

// exchange writes the request on be and reads the answer's head into
// c.resp, skipping interim (1xx) answers, by the deadline (timeout from
// now).
func (c *h1Conn) exchange(rs *reqState, be *h1Backend, deadline time.Time, timeout time.Duration) error {
	if rs.body != nil {
		rs.body.read.Store(true) // it may reach the backend now
	}
	if _, err := be.conn.Write(c.reqTo); err != nil {
		return errors.Join(errNoAnswer, err)
	}
	be.conn.setRead(deadline, timeout)
	if rs.aborted.Load() { // before the deadline was set again
		return errAborted
	}
	for first := true; ; first = false {
		head, err := be.rd.Head(h1RespHeadMax, nil)
		switch {
		case errors.Is(err, h1.ErrFallback):
			return errors.New("malformed or oversized response head")
		case err != nil && first && len(be.rd.Buffered()) == 0 && !timedOut(err):
			return errors.Join(errNoAnswer, err)
		case err != nil:
			return err
		}
		if err := c.resp.Parse(head, c.req.Method); err != nil {
			return err
		}
		if c.resp.Status >= 200 {
			return nil
		}
		if c.resp.Status == http.StatusSwitchingProtocols {
			return errors.New("101 Switching Protocols to a request without Upgrade")
		}
		be.rd.Consume(len(head)) // 100 Continue, 103 Early Hints
	}
}

// discard lets go of a failed try's answer: its connection is kept when
// the whole body is already read, closed otherwise.
func (c *h1Conn) discard(be *h1Backend) {
	r := &c.resp
	rest := len(be.rd.Buffered()) - r.HeadLen
	if r.Length >= 0 && !r.Close && int64(rest) == r.Length {
		be.rd.Consume(r.HeadLen + rest)
		c.keepBackend(be, time.Now())
		return
	}
	be.conn.Close()
}

// answer writes the answer to the client: the backend's on be, or the
// proxy's for err.
func (c *h1Conn) answer(rs *reqState, be *h1Backend, err error) (keep bool, size int64) {
	p, hc := rs.pool, rs.hc
	c.be.Store(be) // a drain's abort cuts the body's copy too
	defer c.be.Store(nil)
	if wt := c.l.writeTimeout; wt > 0 {
		now := rs.headAt // the head just read, unless tries came after it
		if be == nil || rs.tries > 1 {
			now = time.Now()
		}
		// A TLS connection whose write timed out is broken: its
		// deadline cannot fire early to be tried again.
		c.tc.setWrite(now.Add(wt), wt, c.tls == nil)
		if rs.aborted.Load() { // before the deadline was set again
			c.tc.abort()
		}
	}
	if be == nil {
		return c.answerError(rs, hc, err)
	}
	r := &c.resp
	rs.status = r.Status
	closeAfter := r.Length == h1.LengthUntilClose || c.req.Close || c.l.closing.Load()
	b := append(c.out[:0], "HTTP/1.1 "...)
	b = append(b, r.StatusLine...)
	b = append(b, "\r\n"...)
	for _, h := range r.Headers {
		if !h.Drop && (len(hc.headers) == 0 || !overridden(hc, h.Name)) {
			b = appendHeader(b, h.Name, h.Value)
		}
	}
	for _, kv := range hc.headers {
		b = appendHeader(b, kv[0], kv[1])
	}
	if rs.pool.http.sticky != nil {
		if v := rs.stickyCookie(rs.backend, c.clientProto(rs) == "https"); v != "" {
			b = appendHeader(b, "Set-Cookie", v)
		}
	}
	if closeAfter {
		b = append(b, "Connection: close\r\n"...)
	}
	c.out = append(b, "\r\n"...)
	be.rd.Consume(r.HeadLen)
	size, err = c.relayBody(be, r)
	if err != nil {
		be.conn.Close()
		if errors.Is(err, errClientWrite) {
			rs.status, rs.err = statusClientClosed, "client went away"
		} else {
			rs.err = "copying the answer: " + err.Error()
			rs.p.env.Log.Debug("backend answer cut short", "pool", p.Name, "backend", rs.backend.Addr, "err", err)
		}
		return false, size
	}
	rs.end = time.Now()
	if r.Close || len(be.rd.Buffered()) > 0 {
		be.conn.Close() // or it answered more than was asked
	} else {
		c.keepBackend(be, rs.end)
	}
	return !closeAfter, size
}

// keepBackend gives a backend connection back to its pool at now, after
// which an abort must not reach it.
func (c *h1Conn) keepBackend(be *h1Backend, now time.Time) {
	c.be.Store(nil)
	c.rs.pool.http.fast.put(be, now)
}

// errClientWrite is a write to the client that failed: it went away.
var errClientWrite = errors.New("writing to the client")

// relayBody copies the answer's body as the backend framed it.
func (c *h1Conn) relayBody(be *h1Backend, r *h1.Response) (int64, error) {
	switch r.Length {
	case h1.LengthChunked:
		return c.relayChunked(be)
	case h1.LengthUntilClose:
		n, err := c.relay(be, -1)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if err == nil {
			err = c.flush()
		}
		return n, err
	}
	n, err := c.relay(be, r.Length)
	if err == nil {
		err = c.flush()
	}
	return n, err
}

// relay copies n bytes of the body (all of them when n < 0) from the
// backend to the client, writing what it has whenever it must wait.
func (c *h1Conn) relay(be *h1Backend, n int64) (int64, error) {
	var done int64
	for n < 0 || done < n {
		if len(be.rd.Buffered()) == 0 {
			if err := c.flush(); err != nil {
				return done, err
			}
			if !be.conn.rd.want.IsZero() {
				// The try's timeout is for the head; a body takes
				// as long as it takes.
				be.conn.setRead(time.Time{}, 0)
				if c.rs.aborted.Load() {
					return done, errAborted
				}
			}
			if err := be.rd.Fill(); err != nil {
				if n >= 0 && errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return done, err
			}
		}
		chunk := be.rd.Buffered()
		if n >= 0 && int64(len(chunk)) > n-done {
			chunk = chunk[:n-done]
		}
		if err := c.write(chunk); err != nil {
			return done, err
		}
		be.rd.Consume(len(chunk))
		done += int64(len(chunk))
	}
	return done, nil
}

// relayChunked copies a chunked body, chunk lines and trailers included.
func (c *h1Conn) relayChunked(be *h1Backend) (int64, error) {
	var size int64
	for {
		line, err := c.relayLine(be)
		if err != nil {
			return size, err
		}
		hexSize, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, perr := strconv.ParseInt(string(bytes.TrimSpace(hexSize)), 16, 64)
		if perr != nil || n < 0 {
			return size, errors.New("bad chunk size")
		}
		if n == 0 {
			for { // trailers, then the empty line
				line, err := c.relayLine(be)
				if err != nil {
					return size, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return size, c.flush()
				}
			}
		}
		m, err := c.relay(be, n+2) // the data and its CRLF
		size += min(m, n)
		if err != nil {
			return size, err
		}
	}
}

// relayLine copies one line of the chunked framing.
func (c *h1Conn) relayLine(be *h1Backend) ([]byte, error) {
	if bytes.IndexByte(be.rd.Buffered(), '\n') < 0 {
		if err := c.flush(); err != nil {
			return nil, err
		}
	}
	line, err := be.rd.Line()
	if err != nil {
		return nil, err
	}
	return line, c.write(line)
}

// write adds p to the answer, writing out first when it would not fit.
func (c *h1Conn) write(p []byte) error {
	if len(c.out)+len(p) > cap(c.out) {
		if err := c.flush(); err != nil {
			return err
		}
		if len(p) >= cap(c.out)/2 {
			if _, err := c.tc.Write(p); err != nil {
				return errors.Join(errClientWrite, err)
			}
			return nil
		}
	}
	c.out = append(c.out, p...)
	return nil
}

func (c *h1Conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.tc.Write(c.out)
	c.out = c.out[:0]
	if err != nil {
		return errors.Join(errClientWrite, err)
	}
	return nil
}

// answerError answers a request no backend answered (gatewayStatus), as
// proxyError does for net/http.
func (c *h1Conn) answerError(rs *reqState, hc *Config, err error) (bool, int64) {
	code := gatewayStatus(err)
	rs.status, rs.err = code, err.Error()
	if rs.aborted.Load() {
		return false, 0
	}
	closeAfter := c.req.Close || c.l.closing.Load()
	size, err := c.writePlain(code, hc.headers, closeAfter, c.req.Method != http.MethodHead)
	if err != nil {
		rs.status = statusClientClosed
		return false, 0
	}
	return !closeAfter, size
}

// refuse answers a request the proxy will not serve (400, 408) and says
// the connection closes after it, as nothing after the request can be
// trusted to start where it seems to.
func (c *h1Conn) refuse(code int, why string) {
	c.l.p.env.Log.Debug("request refused", "listener", c.l.lname, "peer", c.conn.RemoteAddr().String(), "status", code, "reason", why)
	c.tc.setWrite(time.Now().Add(c.l.headerTimeout), c.l.headerTimeout, false)
	_, _ = c.writePlain(code, nil, true, true) // the connection closes either way
}

// writePlain writes a short text answer with the listener's response
// headers; body is false for HEAD. It returns the body's size.
func (c *h1Conn) writePlain(code int, headers [][2]string, closeAfter, body bool) (int64, error) {
	text := http.StatusText(code) + "\n"
	b := append(c.out[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)), 10)
	b = append(b, "\r\n"...)
	for _, kv := range headers {
		b = appendHeader(b, kv[0], kv[1])
	}
	if closeAfter {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if body {
		b = append(b, text...)
	}
	c.out = b
	return int64(len(text)), c.flush()
}

// overridden reports whether the listener's response_headers replace a
// header of the backend's.
func overridden(hc *Config, name []byte) bool {
	for _, kv := range hc.headers {
		if strings.EqualFold(kv[0], string(name)) {
			return true
		}
	}
	return false
}

// Abort cuts the request short: a drain's timeout or shutdown.
func (c *h1Conn) Abort() {
	c.tc.abort()
	if be := c.be.Load(); be != nil {
		be.conn.abort()
	}
}

// bufString is b as a string without a copy: the fast path parses a
// request's head where it was read, and its strings live as long as the
// request, until the buffer is read into again. Anything kept longer is
// cloned (the forwarding headers kept per connection).
func bufString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
