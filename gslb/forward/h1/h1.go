package h1

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// HeadMax is the client's read buffer: the largest request head, with
// its body, that the fast path reads; a larger one goes to net/http,
// which applies max_header_bytes and max_body_bytes.
const HeadMax = 8 << 10

// ErrFallback says the fast path leaves the connection to net/http.
var ErrFallback = errors.New("left to net/http")

// Reader is a connection's read buffer, parsed in place.
type Reader struct {
	conn net.Conn
	buf  []byte
	r, w int
}

// Buffered is what is read and not consumed yet.
func (b *Reader) Buffered() []byte { return b.buf[b.r:b.w] }

// Compact moves what is buffered to the buffer's front.
func (b *Reader) Compact() {
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
}
func (b *Reader) Consume(n int) { b.r += n }

// Fill reads once more from the connection, moving what is buffered to
// the front first when the buffer's end is reached.
func (b *Reader) Fill() error {
	if b.r == b.w || b.w == len(b.buf) {
		b.Compact()
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
func (b *Reader) Read(p []byte) (int, error) {
	if b.r < b.w {
		n := copy(p, b.buf[b.r:b.w])
		b.r += n
		return n, nil
	}
	return b.conn.Read(p)
}

var errLineTooLong = errors.New("line longer than the buffer")

// Head returns the buffered Head through its empty line, reading until it
// is complete; onPartial runs once if it takes more than one read. It
// returns errFallback for line ends other than CRLF and heads of max
// bytes or more; the buffer grows up to max.
func (b *Reader) Head(max int, onPartial func()) (head []byte, err error) {
	for {
		buf := b.Buffered()
		if i := bytes.Index(buf, crlfcrlf); i >= 0 {
			if i+4 > max || bytes.Contains(buf[:i+2], lflf) {
				return nil, ErrFallback
			}
			return buf[:i+4], nil
		}
		if bytes.Contains(buf, lflf) || len(buf) >= max {
			return nil, ErrFallback
		}
		if len(buf) > 0 && onPartial != nil {
			onPartial()
			onPartial = nil
		}
		b.Compact()
		if b.w == len(b.buf) {
			nb := make([]byte, min(2*len(b.buf), max))
			b.w = copy(nb, b.buf[:b.w])
			b.buf = nb
		}
		if err := b.Fill(); err != nil {
			return nil, err
		}
	}
}

// Line returns the next Line, CRLF included, reading until it is
// complete; a Line past the buffer is an error.
func (b *Reader) Line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(b.Buffered(), '\n'); i >= 0 {
			l := b.buf[b.r : b.r+i+1]
			b.r += i + 1
			return l, nil
		}
		b.Compact()
		if err := b.Fill(); err != nil {
			return nil, err
		}
	}
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
)

// Header is a header line of a parsed head.
type Header struct{ Name, Value string }

// Request is a request head the fast path takes, parsed in place: every
// string is a piece of head, the one allocation.
type Request struct {
	Head          string
	Method        string
	Target        string // path and query, as sent
	RawPath       string // escaped, as sent
	Path          string // unescaped, for routing
	Query         string // without "?"
	Host          string // the Host header
	UserAgent     string
	Close         bool     // Connection: close
	Length        int      // Content-Length; -1 without one
	Headers       []Header // those the backend gets, and Cookie
	Forwarding    []Header // the client's forwarding headers, which this hop replaces
	HasForwarding bool     // forwarding headers came with it
}

// Parse reads a head; false when the fast path does not take the
// request. It errs on the side of false: net/http answers what is
// malformed.
func (q *Request) Parse(head string) bool {
	*q = Request{Head: head, Headers: q.Headers[:0], Forwarding: q.Forwarding[:0], Length: -1}
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
	q.Method, q.Target = method, target
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
		if !ok || !ValidToken(name) {
			return false
		}
		value = trimOWS(value)
		if !validValue(value) {
			return false
		}
		switch hopKind(name) {
		case hdrKeep:
			if strings.EqualFold(name, "User-Agent") {
				q.UserAgent = value
			}
			q.Headers = append(q.Headers, Header{name, value})
		case hdrHost:
			hosts++
			q.Host = value
		case hdrConnection:
			for tok := range strings.SplitSeq(value, ",") {
				switch tok = strings.TrimSpace(tok); {
				case strings.EqualFold(tok, "close"):
					q.Close = true
				case strings.EqualFold(tok, "keep-alive"), tok == "":
				default:
					return false // it names headers to drop, or asks to upgrade
				}
			}
		case hdrContentLength:
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || value[0] == '+' || (q.Length >= 0 && n != q.Length) {
				return false
			}
			q.Length = n
		case hdrForwarding:
			q.HasForwarding = true
			q.Forwarding = append(q.Forwarding, Header{name, value})
		case hdrDrop:
		case hdrRefuse:
			return false
		}
	}
	return hosts == 1 && validHost(q.Host)
}

// parseTarget reads an origin-form target whose escaped path net/url
// would send on unchanged, so that both paths send the backend the same
// bytes.
func (q *Request) parseTarget(t string) bool {
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
	q.RawPath, q.Path, q.Query = path, path, query
	if escaped {
		u, err := url.PathUnescape(path)
		if err != nil {
			return false
		}
		q.Path = u
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

// ValidToken reports whether s is an RFC 9110 token, as header names are.
func ValidToken(s string) bool {
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

// ForwardingValues returns the values the client sent of a forwarding
// header (X-Forwarded-*, Forwarded), for a trusted peer's.
func (q *Request) ForwardingValues(name string) []string {
	var vals []string
	for _, h := range q.Forwarding {
		if strings.EqualFold(h.Name, name) {
			vals = append(vals, h.Value)
		}
	}
	return vals
}

// NewReader returns a read buffer of size bytes for conn.
func NewReader(conn net.Conn, size int) Reader { return Reader{conn: conn, buf: make([]byte, size)} }

// Size is the buffer's size: the most a head and its body can take.
func (b *Reader) Size() int { return len(b.buf) }

// Reset empties the buffer, for a connection that is idle again.
func (b *Reader) Reset() { b.r, b.w = 0, 0 }

// AmbiguousLength reports whether a request head frames its body twice,
// with both Content-Length and Transfer-Encoding. RFC 9112, section 6.3:
// the two may be read differently by the hops of the way (request
// smuggling), so the server rejects such a request or closes the
// connection after it. Lines are split as net/http's reader splits them
// (at LF, a CR before it dropped), so that no header it would read is
// missed.
func AmbiguousLength(head string) bool {
	_, rest, _ := strings.Cut(head, "\n") // the request line
	var length, coding bool
	for line := range strings.SplitSeq(rest, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		name, _, _ := strings.Cut(line, ":")
		switch kindOf(requestHeaders, name, hdrKeep) {
		case hdrContentLength:
			length = true
		case hdrRefuse:
			coding = coding || len(name) == len("Transfer-Encoding") && equalFoldASCII("Transfer-Encoding", name)
		}
	}
	return length && coding
}
