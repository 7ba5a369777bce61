package forward

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"
)

// h1Transport is a pool's keep-alive connections to its backends for the
// fast path, as its http.Transport is for net/http: kept across reloads
// that leave transportSpec alone, closed with its idle connections
// otherwise.
type h1Transport struct {
	spec   transportSpec
	dialer net.Dialer

	mu     sync.Mutex
	idle   map[string][]*h1Backend // by address, most recently used last
	closed bool
	reaper *time.Timer // closes connections idle past spec.idle; nil when none is idle
}

// h1Backend is a connection to a backend.
type h1Backend struct {
	addr   string // as configured: the key of the idle list
	conn   net.Conn
	rd     h1Reader
	idleAt time.Time
	timed  bool // a read deadline is set
}

// h1BackendBuf is a backend connection's read buffer; response heads
// larger than it grow it, up to h1RespHeadMax.
const (
	h1BackendBuf  = 16 << 10
	h1RespHeadMax = 1 << 20
)

func newH1Transport(spec transportSpec) *h1Transport {
	return &h1Transport{
		spec:   spec,
		dialer: net.Dialer{Timeout: spec.connect, KeepAlive: 30 * time.Second},
		idle:   map[string][]*h1Backend{},
	}
}

// h1FreshIdle is how long a connection may have been idle to carry a
// request that may not be sent twice.
const h1FreshIdle = time.Second

// get returns a kept connection to b, or a new one; reused says which.
// With maxIdle > 0 only a connection idle for less than that is taken
// (the most recently used is tried).
func (t *h1Transport) get(b *Backend, maxIdle time.Duration) (be *h1Backend, reused bool, err error) {
	t.mu.Lock()
	for list := t.idle[b.Addr]; len(list) > 0; list = t.idle[b.Addr] {
		be = list[len(list)-1]
		idle := time.Since(be.idleAt)
		if maxIdle > 0 && idle >= maxIdle && idle < t.spec.idle {
			break // kept for a request that may be sent twice
		}
		list[len(list)-1] = nil
		t.idle[b.Addr] = list[:len(list)-1]
		if idle < t.spec.idle {
			t.mu.Unlock()
			return be, true, nil
		}
		be.conn.Close()
	}
	t.mu.Unlock()
	c, err := t.dialer.Dial("tcp", b.Addr)
	if err != nil {
		return nil, false, &dialError{err}
	}
	b.st.connections.Add(1)
	cc := &countedConn{Conn: c, st: b.st}
	return &h1Backend{addr: b.Addr, conn: cc, rd: h1Reader{conn: cc, buf: make([]byte, h1BackendBuf)}}, false, nil
}

// put keeps a connection whose answer was read to its end, unless max_idle
// are kept already or the transport is retired.
func (t *h1Transport) put(be *h1Backend) {
	addr := be.addr
	be.idleAt = time.Now()
	be.rd.r, be.rd.w = 0, 0
	t.mu.Lock()
	list := t.idle[addr]
	if t.closed || len(list) >= t.spec.maxIdle {
		t.mu.Unlock()
		be.conn.Close()
		return
	}
	t.idle[addr] = append(list, be)
	if t.reaper == nil {
		t.reaper = time.AfterFunc(t.spec.idle, t.reap)
	}
	t.mu.Unlock()
}

// reap closes the connections idle past spec.idle, and comes back while
// some are kept.
func (t *h1Transport) reap() {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := 0
	for addr, list := range t.idle {
		live := list[:0]
		for _, be := range list {
			if time.Since(be.idleAt) >= t.spec.idle {
				be.conn.Close()
			} else {
				live = append(live, be)
			}
		}
		clear(list[len(live):])
		t.idle[addr] = live
		kept += len(live)
	}
	if kept == 0 || t.closed {
		t.reaper = nil
		return
	}
	t.reaper.Reset(t.spec.idle / 2)
}

// close retires the transport: its idle connections close now, those in
// use when their answer has been read.
func (t *h1Transport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, list := range t.idle {
		for _, be := range list {
			be.conn.Close()
		}
	}
	clear(t.idle)
	if t.reaper != nil {
		t.reaper.Stop()
		t.reaper = nil
	}
}

// Body lengths besides a count of bytes.
const (
	lengthChunked    = -1
	lengthUntilClose = -2
)

// h1Response is an answer's head, parsed in place in the backend
// connection's buffer.
type h1Response struct {
	headLen    int
	status     int
	statusLine []byte // "200 OK": the code and reason, as sent
	headers    []h1RespHeader
	length     int64 // of the body, or lengthChunked, lengthUntilClose
	close      bool  // the backend closes the connection after it
}

type h1RespHeader struct {
	name, value []byte
	drop        bool // it stays with this hop
}

var errBadResponse = errors.New("malformed response head")

// How the fast path treats a header of an answer.
const (
	respKeep = iota
	respContentLength
	respTransferEncoding
	respConnection
	respHop // hop-by-hop: dropped
)

// responseHeaders are the answer's headers the fast path does not simply
// pass on.
var responseHeaders = []headerKind{
	{"Content-Length", respContentLength}, {"Transfer-Encoding", respTransferEncoding}, {"Connection", respConnection},
	{"Keep-Alive", respHop}, {"Proxy-Connection", respHop}, {"Proxy-Authenticate", respHop},
	{"Proxy-Authorization", respHop}, {"TE", respHop}, {"Upgrade", respHop},
}

func respKind(name []byte) int { return kindOf(responseHeaders, name, respKeep) }

// parse reads an answer's head to a request of method. Headers that stay
// with this hop are marked: the hop-by-hop ones, those the Connection
// header names, and Content-Length beside chunked framing.
// Transfer-Encoding goes on: the body is relayed as it is framed.
func (r *h1Response) parse(head []byte, method string) error {
	*r = h1Response{headLen: len(head), headers: r.headers[:0], length: lengthUntilClose}
	line, rest, ok := bytes.Cut(head, crlf)
	if !ok || len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errBadResponse
	}
	http10 := line[7] == '0'
	r.close = http10
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errBadResponse
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || (len(line) > 12 && line[12] != ' ') {
		return errBadResponse
	}
	r.status, r.statusLine = code, line[9:]
	length, chunked, named := int64(-1), false, false
	for {
		line, rest, ok = bytes.Cut(rest, crlf)
		if !ok {
			return errBadResponse
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.IndexByte(line[:colon], ' ') >= 0 || bytes.IndexByte(line[:colon], '\t') >= 0 {
			return errBadResponse
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		h := h1RespHeader{name: name, value: value}
		switch respKind(name) {
		case respContentLength:
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return errBadResponse
			}
			length = n
		case respTransferEncoding:
			if !bytes.EqualFold(value, []byte("chunked")) {
				return errors.New("unsupported Transfer-Encoding " + strconv.Quote(string(value)))
			}
			chunked = true
		case respConnection:
			h.drop = true
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				switch tok = bytes.TrimSpace(tok); {
				case bytes.EqualFold(tok, []byte("close")):
					r.close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					if http10 {
						r.close = false
					}
				case len(tok) > 0:
					named = true
				}
			}
		case respHop:
			h.drop = true
		}
		r.headers = append(r.headers, h)
	}
	switch {
	case method == "HEAD" || code < 200 || code == 204 || code == 304:
		r.length = 0
	case chunked:
		r.length = lengthChunked
	case length >= 0:
		r.length = length
	default:
		r.close = true
	}
	if chunked || named {
		for i := range r.headers {
			h := &r.headers[i]
			if chunked && respKind(h.name) == respContentLength || named && r.namedByConnection(h.name) {
				h.drop = true
			}
		}
	}
	return nil
}

// namedByConnection reports whether a Connection header (any of them)
// names a header.
func (r *h1Response) namedByConnection(name []byte) bool {
	for _, h := range r.headers {
		if respKind(h.name) != respConnection {
			continue
		}
		for tok := range bytes.SplitSeq(h.value, []byte(",")) {
			if bytes.EqualFold(bytes.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}
