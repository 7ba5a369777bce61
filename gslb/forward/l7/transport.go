package l7

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// poolHTTP is a pool's L7 settings as the configuration in force has
// them.
type poolHTTP struct {
	scheme             string
	host               string // Host header to backends; "" keeps the client's
	retries            int
	retryStatuses      []int
	retryTimeout       bool
	retryNonIdempotent bool
	budgetRatio        float64
	budgetMin          int
	retryBuffer        int
	sticky             *sticky // nil: none
	transport          *http.Transport
	fast               *h1Transport // the fast path's, for plain http backends; nil for https
	spec               poolSpec
	st                 *poolState // kept across reloads
}

// transportSpec is what a pool's http.Transport is built from: a reload
// that changes none of it keeps the transport and its idle connections.
type transportSpec struct {
	scheme, serverName, caFile string
	ca                         string // the CA file's content
	http2                      bool
	timeout, idle, connect     time.Duration
	maxIdle                    int
}

// errNoBackend is a request no backend of its pool could take.
var errNoBackend = errors.New("no backend available")

// dialError is a failure to connect to a backend: the request never left,
// so any method may be retried on another backend.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// transportSpecOf reads what pc's transport needs from outside the
// configuration (its CA file).
func transportSpecOf(cfg *config.Forward, i int) (transportSpec, error) {
	pc := &cfg.Pools[i]
	h := pc.HTTP
	spec := transportSpec{
		scheme: h.Scheme, serverName: h.ServerName, caFile: h.CAFile, http2: h.HTTP2,
		timeout: h.Timeout.Duration, idle: h.IdleTimeout.Duration, connect: pc.ConnectTimeout.Duration, maxIdle: h.MaxIdle,
	}
	if h.CAFile != "" {
		b, err := os.ReadFile(cfg.ResolvePath(h.CAFile))
		if err != nil {
			return spec, cfg.Errorf(fmt.Sprintf("pool[%d].http.ca_file", i), "%v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return spec, cfg.Errorf(fmt.Sprintf("pool[%d].http.ca_file", i), "no PEM certificate in %s", h.CAFile)
		}
		spec.ca = string(b)
	}
	return spec, nil
}

// newTransport builds a pool's transport: keep-alive connections to each
// backend, no proxy from the environment, no transparent compression
// (the client's Accept-Encoding goes through as it is), and dials that
// say when they fail so the request can go to another backend.
func newTransport(spec transportSpec) *http.Transport {
	dialer := &net.Dialer{Timeout: spec.connect, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err}
			}
			if rs, _ := ctx.Value(stateKey{}).(*reqState); rs != nil {
				if b := rs.try.Load(); b != nil && b.Addr == addr {
					b.State.Connections.Add(1)
					return &countedConn{Conn: c, st: b.State}, nil
				}
			}
			return c, nil
		},
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   spec.maxIdle,
		IdleConnTimeout:       spec.idle,
		ResponseHeaderTimeout: spec.timeout,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   spec.connect,
		DisableCompression:    true,
		ForceAttemptHTTP2:     spec.http2,
	}
	if spec.scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: spec.serverName}
		if spec.ca != "" {
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM([]byte(spec.ca))
			tc.RootCAs = roots
		}
		if !spec.http2 {
			tc.NextProtos = []string{"http/1.1"}
		}
		t.TLSClientConfig = tc
	}
	return t
}

// countedConn counts a backend connection's bytes.
type countedConn struct {
	net.Conn
	st *upstream.BackendState
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.st.Received.Add(uint64(n))
	}
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.st.Sent.Add(uint64(n))
	}
	return n, err
}

// roundTripper is the ReverseProxy's transport: each try picks a backend
// of the request's pool through its balancer (or its sticky pin), sends
// the request there with the pool's transport, and judges the outcome:
// connection failures go to another backend whatever the method;
// retry_statuses answers and timeouts go to another backend when the
// request may be sent again and the pool's retry budget allows. Every
// outcome feeds outlier detection and the circuit breaker.
type roundTripper struct{ p *Proxy }

// tryOutcome says what became of one try.
type tryOutcome uint8

const (
	tryOK      tryOutcome = iota // an answer to pass on
	tryConnect                   // no connection: retry anywhere
	tryTimeout                   // no answer in time
	tryStatus                    // an answer in retry_statuses
	tryError                     // any other failure
	// tryStale is a kept connection that ended before any answer: the
	// backend closed it as the request went out, or died of the request.
	// Not held against the backend, and sent again (a retry like any
	// other) on a new connection, to the same backend when it may.
	tryStale
	tryCancelled // the client went away, or its body could not be read
)

func (t roundTripper) RoundTrip(out *http.Request) (*http.Response, error) {
	rs := out.Context().Value(stateKey{}).(*reqState)
	return runTries(rs,
		func(b *upstream.Backend) (*http.Response, int, tryOutcome, error) {
			resp, outcome, err := t.try(out, rs, b)
			if resp == nil {
				return nil, 0, outcome, err
			}
			return resp, resp.StatusCode, outcome, err
		},
		func(resp *http.Response) {
			// Drain a little so that the connection can be reused,
			// then let it go.
			_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
			resp.Body.Close()
		})
}

// runTries runs a request's tries on its pool, for both paths: each try
// picks a backend (the sticky pin, or the balancer, through the
// availability gate and the breaker), try sends the request there and
// says what came of it, and retryAfter decides whether another backend
// gets it. A failed try's answer waits while the next backend is picked:
// when there is none, it is what the client gets; otherwise discard lets
// it go. It returns the answer to pass on (the zero A with an error when
// there is none), and keeps its backend in rs.
func runTries[A comparable](rs *reqState, try func(*upstream.Backend) (A, int, tryOutcome, error), discard func(A)) (A, error) {
	p := rs.pool
	now := rs.start.UnixNano()
	p.http.st.budget.request(now)
	rs.pick = upstream.Request{Key: rs.key, Now: now}
	req := &rs.pick
	var (
		zero, pending A
		pendingErr    error
		pendingB      *upstream.Backend
		n             tryCounts
	)
	for range upstream.MaxTried {
		b, done := rs.choose(p, req)
		if b == nil {
			break
		}
		if pendingB != nil {
			if pending != zero {
				discard(pending)
			}
			rs.drop(pendingB)
			pending, pendingErr, pendingB = zero, nil, nil
		}
		rs.tries++
		answer, status, outcome, err := try(b)
		judge(done, outcome, status)
		if !rs.retryAfter(p, outcome, &n) {
			rs.keep(b)
			return answer, err
		}
		pending, pendingErr, pendingB = answer, err, b
		if outcome != tryStale {
			req.Avoid(b)
		}
	}
	if pendingB != nil {
		rs.keep(pendingB)
		return pending, pendingErr
	}
	p.State.Refused.Add(1)
	return zero, errNoBackend
}

// mayRetry says whether a request may go to another backend after it
// reached one: the pool retries, and the request is idempotent or the
// pool retries those that are not too.
func (h *poolHTTP) mayRetry(idempotent bool) bool {
	return h.retries > 0 && (h.retryNonIdempotent || idempotent)
}

// judge tells the circuit breaker (done, when it has one) how a try
// went: a cancelled try counts neither way.
func judge(done func(error), outcome tryOutcome, status int) {
	switch {
	case done == nil:
	case outcome == tryCancelled, outcome == tryStale:
		done(upstream.ErrTryExcluded)
	case outcome == tryOK && status < 500:
		done(nil)
	default:
		done(upstream.ErrTryFailed)
	}
}

// tryCounts are a request's tries so far that failed to connect, and its
// retries after an answer or a timeout.
type tryCounts struct{ connects, retries int }

// retryAfter decides whether a try's outcome sends the request to
// another backend, and counts the retry: a connection failure goes on
// while connect_attempts allow and the body can be sent again; a timeout
// (when retry_timeout), a retry_statuses answer or another failure goes on
// when the request may be retried, its body can be sent again, retries
// are left and the pool's budget allows.
func (rs *reqState) retryAfter(p *Pool, outcome tryOutcome, n *tryCounts) bool {
	h := p.http
	switch outcome {
	case tryConnect:
		n.connects++
		if n.connects < p.ConnectAttempts && rs.bodyReplayable(false) {
			p.http.st.retries[tryConnect].Add(1)
			return true
		}
	case tryTimeout, tryStatus, tryError, tryStale:
		if !rs.mayRetry || n.retries >= h.retries || !rs.bodyReplayable(true) || (outcome == tryTimeout && !h.retryTimeout) {
			return false
		}
		if !p.http.st.budget.spend(time.Now().UnixNano(), h.budgetRatio, h.budgetMin) {
			p.http.st.budgetExhausted.Add(1)
			return false
		}
		n.retries++
		p.http.st.retries[outcome].Add(1)
		return true
	}
	return false
}

// try sends the request to b once.
func (t roundTripper) try(out *http.Request, rs *reqState, b *upstream.Backend) (*http.Response, tryOutcome, error) {
	h := rs.pool.http
	o := new(http.Request)
	*o = *out
	u := *out.URL
	u.Scheme, u.Host = h.scheme, b.Addr
	o.URL = &u
	if rs.body != nil {
		body, _ := rs.body.reader() // replayability was checked before this try
		o.Body = body
		if rs.body.kept {
			o.ContentLength = int64(len(rs.body.buf))
			o.GetBody = func() (io.ReadCloser, error) { rc, _ := rs.body.reader(); return rc, nil }
		} else {
			o.GetBody = nil
		}
	}
	if !h.spec.transport.http2 {
		noResend(o)
	}
	var reused bool
	o = o.WithContext(httptrace.WithClientTrace(o.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	rs.try.Store(b)
	start := time.Now()
	resp, err := h.transport.RoundTrip(o)
	if rs.metrics {
		b.State.TryLatency.Observe(time.Since(start))
	}
	if err != nil {
		var de *dialError
		switch {
		case rs.ctx.Err() != nil || (rs.body != nil && rs.body.failed.Load()):
			return nil, tryCancelled, err // nothing to hold against the backend
		case reused && !timedOut(err) && !errors.As(err, &de):
			return nil, tryStale, err
		}
		return nil, tried(b, rs, 0, err), err
	}
	return resp, tried(b, rs, resp.StatusCode, nil), nil
}

// tried counts a try on b and judges it, for both paths: a failure to
// connect or to get an answer (err), or an answer with status. Failures
// and 5xx answers feed outlier detection; it returns what came of the
// try for retryAfter. A try the client's side cut short (tryCancelled) is
// the caller's to see first.
func tried(b *upstream.Backend, rs *reqState, status int, err error) tryOutcome {
	log := rs.p.env.Log
	if err != nil {
		b.State.Requests[0].Add(1)
		var de *dialError
		switch {
		case errors.As(err, &de):
			b.ConnectFailed(time.Now())
			log.Debug("connect failed", "pool", b.Pool.Name, "backend", b.Addr, "err", err)
			return tryConnect
		case timedOut(err):
			b.Failed(time.Now())
			log.Debug("backend timed out", "pool", b.Pool.Name, "backend", b.Addr, "err", err)
			return tryTimeout
		}
		b.Failed(time.Now())
		log.Debug("backend request failed", "pool", b.Pool.Name, "backend", b.Addr, "err", err)
		return tryError
	}
	b.State.Requests[upstream.StatusClass(status)].Add(1)
	if status >= 500 {
		b.Failed(time.Now())
	} else {
		b.ConnectOK()
	}
	if slices.Contains(rs.pool.http.retryStatuses, status) {
		return tryStatus
	}
	return tryOK
}

// noResend keeps an HTTP/1 transport from sending o again by itself when
// a kept connection fails before an answer: it does so as long as it has
// kept connections for a request it may replay (a GET, HEAD, OPTIONS or
// TRACE without a body, or one with GetBody), so that a request its backend dies of would reach it once
// per kept connection. runTries sends it again instead, within retries.
// A request without a body gets one that is empty and not http.NoBody,
// whose "identity" coding tells the transport to send no length and no
// chunks (as Request.Write documents) rather than probe it.
func noResend(o *http.Request) {
	switch {
	case o.Body != nil && o.Body != http.NoBody:
		o.GetBody = nil
	case o.Method == http.MethodGet, o.Method == http.MethodHead, o.Method == http.MethodOptions, o.Method == http.MethodTrace:
		// The methods it replays without a body; the others it sends
		// with Content-Length: 0, which an empty body would lose.
		o.Body, o.TransferEncoding = emptyBody{}, identity
	}
}

var identity = []string{"identity"}

// emptyBody is a request body with nothing in it. WriteTo spares the
// transport's io.Copy the 32 KiB buffer it would make to read it.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error)         { return 0, io.EOF }
func (emptyBody) WriteTo(io.Writer) (int64, error) { return 0, nil }
func (emptyBody) Close() error                     { return nil }

func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// retryCounts are a pool's retries by the outcome that caused them, and
// the retries the budget refused.
type retryCounts [tryCancelled + 1]atomic.Uint64
