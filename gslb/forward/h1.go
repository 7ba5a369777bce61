package forward

import (
	"bytes"
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
)

// The HTTP/1.1 fast path.
//
// net/http's server and ReverseProxy cost about 70 µs of CPU per proxied
// request here, three times HAProxy's: ~100 allocations, header maps, a
// background read per request and hand-offs between the server's
// goroutine and the transport's read and write loops. Most requests a
// regional front end sees are plain: a GET, or a small POST, on a
// keep-alive connection to a route that only picks a backend. For those,
// one goroutine per client connection reads the head (and a body that
// fits its buffer) in place, writes it to a keep-alive backend
// connection, and copies the answer back, framing and all, as HAProxy
// does.
//
// The fast path takes a strict subset of HTTP/1.1 and hands anything else
// to net/http, with the bytes it has read, for the rest of the
// connection: chunked or large request bodies, methods other than GET,
// HEAD, OPTIONS, DELETE, POST, PUT and PATCH, upgrades, Expect, h2c,
// HTTP/1.0, heads past h1HeadMax, anything it would have to judge
// malformed, and routes that rate-limit, answer themselves, or send to
// pools of HTTPS backends. net/http stays the reference for what those
// get. TestFastPathMatchesNetHTTP holds the two to the same answers and
// the same requests at the backends.

// h1HeadMax is the client's read buffer: the largest request head, with
// its body, that the fast path reads; a larger one goes to net/http,
// which applies max_header_bytes and max_body_bytes.
const h1HeadMax = 8 << 10

// errFallback says the fast path leaves the connection to net/http.
var errFallback = errors.New("left to net/http")

// h1Reader is a connection's read buffer, parsed in place.
type h1Reader struct {
	conn net.Conn
	buf  []byte
	r, w int
}

func (b *h1Reader) buffered() []byte { return b.buf[b.r:b.w] }

// compact moves what is buffered to the buffer's front.
func (b *h1Reader) compact() {
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
}
func (b *h1Reader) consume(n int) { b.r += n }

// fill reads once more from the connection, moving what is buffered to
// the front first when the buffer's end is reached.
func (b *h1Reader) fill() error {
	if b.r == b.w || b.w == len(b.buf) {
		b.compact()
	}
	if b.w == len(b.buf) {
		return errLineTooLong
	}
	n, err := b.conn.Read(b.buf[b.w:])
	b.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// Read drains the buffer, then reads the connection: net/http reads a
// connection handed to it through this, so it sees every byte.
func (b *h1Reader) Read(p []byte) (int, error) {
	if b.r < b.w {
		n := copy(p, b.buf[b.r:b.w])
		b.r += n
		return n, nil
	}
	return b.conn.Read(p)
}

var errLineTooLong = errors.New("line longer than the buffer")

// head returns the buffered head through its empty line, reading until it
// is complete; onPartial runs once if it takes more than one read. It
// returns errFallback for line ends other than CRLF and heads of max
// bytes or more; the buffer grows up to max.
func (b *h1Reader) head(max int, onPartial func()) (head []byte, err error) {
	for {
		buf := b.buffered()
		if i := bytes.Index(buf, crlfcrlf); i >= 0 {
			if i+4 > max || bytes.Contains(buf[:i+2], lflf) {
				return nil, errFallback
			}
			return buf[:i+4], nil
		}
		if bytes.Contains(buf, lflf) || len(buf) >= max {
			return nil, errFallback
		}
		if len(buf) > 0 && onPartial != nil {
			onPartial()
			onPartial = nil
		}
		b.compact()
		if b.w == len(b.buf) {
			nb := make([]byte, min(2*len(b.buf), max))
			b.w = copy(nb, b.buf[:b.w])
			b.buf = nb
		}
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
}

// line returns the next line, CRLF included, reading until it is
// complete; a line past the buffer is an error.
func (b *h1Reader) line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(b.buffered(), '\n'); i >= 0 {
			l := b.buf[b.r : b.r+i+1]
			b.r += i + 1
			return l, nil
		}
		b.compact()
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
)

// h1Header is a header line of a parsed head.
type h1Header struct{ name, value string }

// h1Request is a request head the fast path takes, parsed in place: every
// string is a piece of head, the one allocation.
type h1Request struct {
	head    string
	method  string
	target  string // path and query, as sent
	rawPath string // escaped, as sent
	upath   string // unescaped, for routing
	query   string // without "?"
	host    string // the Host header
	ua      string
	close   bool       // Connection: close
	length  int        // Content-Length; -1 without one
	headers []h1Header // those the backend gets, and Cookie
	fwd     []h1Header // the client's forwarding headers, which this hop replaces
	xfwd    bool       // forwarding headers came with it
}

// parse reads a head; false when the fast path does not take the
// request. It errs on the side of false: net/http answers what is
// malformed.
func (q *h1Request) parse(head string) bool {
	*q = h1Request{head: head, headers: q.headers[:0], fwd: q.fwd[:0], length: -1}
	line, rest, ok := cutCRLF(head)
	if !ok {
		return false
	}
	method, line, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || version != "HTTP/1.1" {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete,
		http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return false // the unusual is net/http's
	}
	q.method, q.target = method, target
	if !q.parseTarget(target) {
		return false
	}
	hosts := 0
	for {
		line, rest, ok = cutCRLF(rest)
		if !ok {
			return false
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validToken(name) {
			return false
		}
		value = trimOWS(value)
		if !validValue(value) {
			return false
		}
		switch hopKind(name) {
		case hdrKeep:
			if strings.EqualFold(name, "User-Agent") {
				q.ua = value
			}
			q.headers = append(q.headers, h1Header{name, value})
		case hdrHost:
			hosts++
			q.host = value
		case hdrConnection:
			for tok := range strings.SplitSeq(value, ",") {
				switch tok = strings.TrimSpace(tok); {
				case strings.EqualFold(tok, "close"):
					q.close = true
				case strings.EqualFold(tok, "keep-alive"), tok == "":
				default:
					return false // it names headers to drop, or asks to upgrade
				}
			}
		case hdrContentLength:
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || value[0] == '+' || (q.length >= 0 && n != q.length) {
				return false
			}
			q.length = n
		case hdrForwarding:
			q.xfwd = true
			q.fwd = append(q.fwd, h1Header{name, value})
		case hdrDrop:
		case hdrRefuse:
			return false
		}
	}
	return hosts == 1 && validHost(q.host)
}

// parseTarget reads an origin-form target whose escaped path net/url
// would send on unchanged, so that both paths send the backend the same
// bytes.
func (q *h1Request) parseTarget(t string) bool {
	if t == "" || t[0] != '/' {
		return false
	}
	path, query, _ := strings.Cut(t, "?")
	escaped := false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return false
			}
			escaped = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		default:
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < 0x21 || c > 0x7e || c == '#' {
			return false
		}
	}
	q.rawPath, q.upath, q.query = path, path, query
	if escaped {
		u, err := url.PathUnescape(path)
		if err != nil {
			return false
		}
		q.upath = u
	}
	return true
}

// How the fast path treats a request header.
const (
	hdrKeep          = iota // sent on to the backend
	hdrHost                 // sent as the pool's or the client's Host
	hdrConnection           // read, not sent
	hdrContentLength        // read, and sent as the body's length
	hdrForwarding           // replaced by this hop's
	hdrDrop                 // hop-by-hop: not sent
	hdrRefuse               // the fast path leaves the request to net/http
)

// requestHeaders are the request headers the fast path does not simply
// pass on.
var requestHeaders = []headerKind{
	{"Host", hdrHost}, {"Connection", hdrConnection}, {"Content-Length", hdrContentLength},
	{"X-Forwarded-For", hdrForwarding}, {"X-Forwarded-Proto", hdrForwarding},
	{"X-Forwarded-Host", hdrForwarding}, {"Forwarded", hdrForwarding},
	{"Keep-Alive", hdrDrop}, {"Proxy-Connection", hdrDrop}, {"Proxy-Authorization", hdrDrop}, {"Trailer", hdrDrop},
	{"TE", hdrRefuse}, {"Expect", hdrRefuse}, {"Upgrade", hdrRefuse}, {"HTTP2-Settings", hdrRefuse},
	{"Transfer-Encoding", hdrRefuse},
}

func hopKind(name string) int { return kindOf(requestHeaders, name, hdrKeep) }

// headerKind says how one header is treated.
type headerKind struct {
	name string
	kind int
}

// kindOf looks a header name up in a table, case-insensitively; def when
// it is not there. Header names are ASCII tokens.
func kindOf[T string | []byte](table []headerKind, name T, def int) int {
	for _, k := range table {
		if len(k.name) == len(name) && equalFoldASCII(k.name, name) {
			return k.kind
		}
	}
	return def
}

func equalFoldASCII[T string | []byte](a string, b T) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func cutCRLF(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	return s[:i-1], s[i+1:], true
}

// trimOWS trims a header value's optional whitespace (spaces and tabs),
// without the cutset tables strings.Trim builds on every call.
func trimOWS[T string | []byte](v T) T {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// validToken reports whether s is an RFC 9110 token, as header names are.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validValue reports whether s is a header value without control
// characters (tab allowed).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts the Host headers the fast path takes: names, IPv4
// and bracketed IPv6 addresses, with a port.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// h1View is a fast-path request as routing and sticky cookies read it.
type h1View struct {
	q           *h1Request
	qry         url.Values     // parsed once, if a route asks
	cookies     []*http.Cookie // likewise
	cookiesRead bool
}

func (v *h1View) method() string { return v.q.method }
func (v *h1View) path() string   { return v.q.upath }

func (v *h1View) hasHeader(name, value string) bool {
	for _, h := range v.q.headers {
		if strings.EqualFold(h.name, name) && (value == "*" || h.value == value) {
			return true
		}
	}
	return false
}

func (v *h1View) header(name string) string {
	for _, h := range v.q.headers {
		if strings.EqualFold(h.name, name) {
			return h.value
		}
	}
	return ""
}

func (v *h1View) hasQuery(name, value string) bool {
	if v.qry == nil {
		v.qry, _ = url.ParseQuery(v.q.query)
	}
	vals, ok := v.qry[name]
	return match{name, value}.holds(vals, ok)
}

// cookie reads cookies as net/http does, once per request, when a route
// or a sticky pool asks.
func (v *h1View) cookie(name string) (string, bool) {
	if !v.cookiesRead {
		var lines []string
		for _, h := range v.q.headers {
			if strings.EqualFold(h.name, "Cookie") {
				lines = append(lines, h.value)
			}
		}
		if lines != nil {
			v.cookies = (&http.Request{Header: http.Header{"Cookie": lines}}).Cookies()
		}
		v.cookiesRead = true
	}
	return cookieValue(v.cookies, name)
}

// forwardingValues returns the values the client sent of a forwarding
// header (X-Forwarded-*, Forwarded), for a trusted peer's.
func (q *h1Request) forwardingValues(name string) []string {
	var vals []string
	for _, h := range q.fwd {
		if strings.EqualFold(h.name, name) {
			vals = append(vals, h.value)
		}
	}
	return vals
}

// tlsStateKey is the context key of the TLS state of a connection the
// fast path handed to net/http after its handshake: net/http sees a
// plain connection, and the request gets its TLS state from here.
type tlsStateKey struct{}

// replayConn is a connection handed to net/http: its reads start with
// what the fast path had read.
type replayConn struct {
	net.Conn
	rd  *h1Reader
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
