package l7

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/meridian-gslb/meridian/gslb/forward/h1"
)

// h1View is a fast-path request as routing and sticky cookies read it.
type h1View struct {
	q           *h1.Request
	qry         url.Values     // parsed once, if a route asks
	cookies     []*http.Cookie // likewise
	cookiesRead bool
}

func (v *h1View) method() string { return v.q.Method }
func (v *h1View) path() string   { return v.q.Path }

func (v *h1View) hasHeader(name, value string) bool {
	for _, h := range v.q.Headers {
		if strings.EqualFold(h.Name, name) && (value == "*" || h.Value == value) {
			return true
		}
	}
	return false
}

func (v *h1View) header(name string) string {
	for _, h := range v.q.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func (v *h1View) hasQuery(name, value string) bool {
	if v.qry == nil {
		v.qry, _ = url.ParseQuery(v.q.Query)
	}
	vals, ok := v.qry[name]
	return match{name, value}.holds(vals, ok)
}

// cookie reads cookies as net/http does, once per request, when a route
// or a sticky pool asks.
func (v *h1View) cookie(name string) (string, bool) {
	if !v.cookiesRead {
		var lines []string
		for _, h := range v.q.Headers {
			if strings.EqualFold(h.Name, "Cookie") {
				lines = append(lines, h.Value)
			}
		}
		if lines != nil {
			v.cookies = (&http.Request{Header: http.Header{"Cookie": lines}}).Cookies()
		}
		v.cookiesRead = true
	}
	return cookieValue(v.cookies, name)
}

// tlsStateKey is the context key of the TLS state of a connection the
// fast path handed to net/http after its handshake: net/http sees a
// plain connection, and the request gets its TLS state from here.
type tlsStateKey struct{}

// replayConn is a connection handed to net/http: its reads start with
// what the fast path had read.
type replayConn struct {
	net.Conn
	rd  *h1.Reader
	tls *tls.ConnectionState
}

func (c *replayConn) Read(p []byte) (int, error) { return c.rd.Read(p) }

// CloseWrite lets net/http end its side without a reset.
func (c *replayConn) CloseWrite() error { return closeWrite(c.Conn) }

// handoffListener is where net/http accepts the connections the fast path
// hands over.
type handoffListener struct {
	conns  chan net.Conn
	done   chan struct{}
	closed atomic.Bool
	addr   net.Addr
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	if !h.closed.Swap(true) {
		close(h.done)
	}
	return nil
}

func (h *handoffListener) Addr() net.Addr { return h.addr }

// hand gives net/http a connection; false when it has stopped.
func (h *handoffListener) hand(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

// netipPeer returns a connection's peer address.
func netipPeer(c net.Conn) netip.AddrPort {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap
}
