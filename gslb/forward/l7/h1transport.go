package l7

import (
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/epoll"
	"github.com/meridian-gslb/meridian/gslb/forward/h1"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// h1Transport is a pool's keep-alive connections to its backends for the
// fast path, as its http.Transport is for net/http: kept across reloads
// that leave transportSpec alone, closed with its idle connections
// otherwise.
type h1Transport struct {
	spec   transportSpec
	dialer net.Dialer
	polls  *epoll.Pollers // where its connections wait

	mu     sync.Mutex
	idle   map[string][]*h1Backend // by address, most recently used last
	closed bool
	reaper *time.Timer // closes connections idle past spec.idle; nil when none is idle
}

// h1Backend is a connection to a backend.
type h1Backend struct {
	addr   string // as configured: the key of the idle list
	conn   *timedConn
	rd     h1.Reader
	idleAt time.Time

	live liveness // what open asks; nil when the connection cannot be asked
}

// liveness is what open asks of a kept connection. Open reads without
// waiting: nothing to read is an open, idle connection; end of file, an
// error or bytes are not. Quiet says, without a system call, that nothing
// has arrived since the last answer was read to its end. An
// *epoll.Conn is one.
type liveness interface {
	Open() bool
	Quiet() bool
}

// livenessOf returns c's liveness: its own, on an epoll loop; a
// non-blocking read through Go's netpoller otherwise (other systems, or
// a loop that could not start); nil when c has no descriptor.
func livenessOf(c net.Conn) liveness {
	if l, ok := c.(liveness); ok {
		return l
	}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			p := &peekLiveness{raw: raw}
			p.peek = p.peekFD
			return p
		}
	}
	return nil
}

// peekLiveness is a connection's liveness on Go's netpoller: Open's
// non-blocking read, built once per connection so that it allocates
// nothing per request. It cannot tell quiet.
type peekLiveness struct {
	raw   syscall.RawConn
	peek  func(fd uintptr) bool
	one   [1]byte
	alive bool
}

func (p *peekLiveness) Quiet() bool { return false }

func (p *peekLiveness) Open() bool {
	p.alive = false
	if err := p.raw.Read(p.peek); err != nil {
		return false
	}
	return p.alive
}

func (p *peekLiveness) peekFD(fd uintptr) bool {
	n, err := syscall.Read(int(fd), p.one[:])
	p.alive = n < 0 && err == syscall.EAGAIN
	return true
}

// h1BackendBuf is a backend connection's read buffer; response heads
// larger than it grow it, up to h1RespHeadMax.
const (
	h1BackendBuf  = 16 << 10
	h1RespHeadMax = 1 << 20
)

func newH1Transport(spec transportSpec, polls *epoll.Pollers) *h1Transport {
	return &h1Transport{
		spec:   spec,
		polls:  polls,
		dialer: net.Dialer{Timeout: spec.connect, KeepAlive: 30 * time.Second},
		idle:   map[string][]*h1Backend{},
	}
}

// h1FreshIdle is how long a connection may have been idle to carry a
// request that may not be sent twice.
const h1FreshIdle = time.Second

// get returns a kept connection to b that is still open at now, or a new
// one; reused says which. With maxIdle > 0 only a connection idle for
// less than that is taken (the most recently used is tried).
func (t *h1Transport) get(b *upstream.Backend, maxIdle time.Duration, now time.Time) (be *h1Backend, reused bool, err error) {
	for {
		if be = t.idleConn(b.Addr, maxIdle, now); be == nil {
			break
		}
		if be.open(now) {
			return be, true, nil
		}
		be.conn.Close()
	}
	c, err := t.dialer.Dial("tcp", b.Addr)
	if err != nil {
		return nil, false, &dialError{err}
	}
	b.State.Connections.Add(1)
	c = t.polls.Wrap(c)
	tc := &timedConn{Conn: &countedConn{Conn: c, st: b.State}}
	be = &h1Backend{addr: b.Addr, conn: tc, rd: h1.NewReader(tc, h1BackendBuf), live: livenessOf(c)}
	return be, false, nil
}

// idleConn takes the most recently used kept connection to addr, closing
// those idle past spec.idle; nil when there is none (or, with maxIdle,
// none fresh enough).
func (t *h1Transport) idleConn(addr string, maxIdle time.Duration, now time.Time) *h1Backend {
	t.mu.Lock()
	defer t.mu.Unlock()
	for list := t.idle[addr]; len(list) > 0; list = t.idle[addr] {
		be := list[len(list)-1]
		idle := now.Sub(be.idleAt) // below 0 when put back after now: as fresh as can be
		if maxIdle > 0 && idle >= maxIdle && idle < t.spec.idle {
			return nil // kept for a request that may be sent twice
		}
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		if idle < t.spec.idle {
			return be
		}
		be.conn.Close()
	}
	return nil
}

// open reports whether a kept connection is still open: the backend has
// not closed it, reset it or sent anything unasked while it was idle.
// One non-blocking read asks the kernel; net/http's transport learns the
// same from the read it keeps running on every idle connection. Without
// it, a request would go out on a connection its backend closed long
// ago, and fail for nothing.
func (be *h1Backend) open(now time.Time) bool {
	if be.conn.cut.Load() {
		return false // an abort reached it as it was put back
	}
	if be.live == nil {
		return true
	}
	// On a connection used within h1FreshIdle, its epoll loop's
	// readiness stands in for the read: anything the backend sent since
	// the last answer (a FIN, a reset, bytes) is an event, unless it came
	// after the loop's last look, which a stale retry covers as it covers
	// a FIN still on the wire. Older connections, the ones backends close
	// for idleness, are asked.
	if now.Sub(be.idleAt) < h1FreshIdle && be.live.Quiet() {
		return true
	}
	if d := be.conn.rd.set; !d.IsZero() && !d.After(now) {
		be.conn.exactRead(time.Time{}) // a past deadline would fail the netpoller's read before it asks
	}
	return be.live.Open()
}

// put keeps a connection whose answer was read to its end, unless max_idle
// are kept already or the transport is retired.
func (t *h1Transport) put(be *h1Backend, now time.Time) {
	addr := be.addr
	be.idleAt = now
	be.rd.Reset()
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
