package dnsfront

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/miekg/dns"
)

// tcpServer serves DNS over TCP (RFC 7766): length-prefixed messages, any
// number per connection in order, each answered by the same packet path
// as UDP. It replaces dns.Server for TCP so that both transports validate
// and answer alike (the raw packet is at hand for the checks only it
// allows) and no reply of miekg/dns's own copies the query's header bits.
//
// It also keeps one client from denying TCP to the others, as Knot and NSD
// do: a cap on connections per client address and per client prefix; at
// the total cap a new connection closes the connection idle longest
// rather than being refused (only when every connection is busy is the
// newcomer closed); the idle timeout shrinks as the table fills (RFC 7766
// section 6.2.3); and a message must arrive whole within the message
// timeout once it has started, so a client that sends a byte a second is
// cut.
type tcpServer struct {
	ln      net.Listener
	h       *Handler
	lim     TCPLimits
	closing atomic.Bool

	mu       sync.Mutex
	conns    map[net.Conn]*tcpConn
	byAddr   map[netip.Addr]int
	byPrefix map[netip.Prefix]int
	wg       sync.WaitGroup
}

// TCPLimits bound what TCP clients may hold.
type TCPLimits struct {
	Idle           time.Duration // idle time before a connection is closed, with the table at most half full
	MessageTimeout time.Duration // time for a message to arrive whole once its first byte has
	MaxConns       int           // connections per listen address
	MaxPerClient   int           // connections per client address
	MaxPerPrefix   int           // connections per client /24 (IPv4) or /56 (IPv6)
	MaxQueries     int           // queries per connection before the server closes it
}

// tcpConn is one connection's entry in the table.
type tcpConn struct {
	c      net.Conn
	client netip.Addr
	port   uint16 // the client's, for dnstap
	prefix netip.Prefix
	// idleSince is when the connection started waiting for a query, in
	// Unix nanoseconds; 0 while a message is read or answered.
	idleSince atomic.Int64
	evicted   atomic.Bool // closed for a newcomer, not by its own idleness
}

func newTCPServer(ln net.Listener, h *Handler, lim TCPLimits) *tcpServer {
	return &tcpServer{ln: ln, h: h, lim: lim, conns: map[net.Conn]*tcpConn{},
		byAddr: map[netip.Addr]int{}, byPrefix: map[netip.Prefix]int{}}
}

// serve accepts until shutdown closes the listener.
func (t *tcpServer) serve() error {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: back off, do not spin.
			t.h.log.Warn("tcp accept", "addr", t.ln.Addr().String(), "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if tc := t.admit(c); tc != nil {
			go t.handle(tc)
		}
	}
}

// admit enters c in the table, or closes it: over its client's caps, or
// with the table full of busy connections.
func (t *tcpServer) admit(c net.Conn) *tcpConn {
	tc := &tcpConn{c: c}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		tc.client, tc.port = a.AddrPort().Addr().Unmap(), a.AddrPort().Port()
	}
	bits := 56
	if tc.client.Is4() {
		bits = 24
	}
	tc.prefix, _ = tc.client.Prefix(bits)
	t.mu.Lock()
	defer t.mu.Unlock()
	reason := ""
	switch {
	case t.closing.Load():
		reason = "shutdown"
	case t.byAddr[tc.client] >= t.lim.MaxPerClient:
		reason = "client_limit"
	case t.byPrefix[tc.prefix] >= t.lim.MaxPerPrefix:
		reason = "prefix_limit"
	case len(t.conns) >= t.lim.MaxConns && !t.evictIdle():
		reason = "full"
	}
	if reason != "" {
		t.h.stats.tcpClosed(reason)
		c.Close()
		return nil
	}
	tc.idleSince.Store(time.Now().UnixNano())
	t.conns[c] = tc
	t.byAddr[tc.client]++
	t.byPrefix[tc.prefix]++
	t.h.stats.tcpOpen.Add(1)
	t.wg.Add(1)
	return tc
}

// evictIdle closes the connection idle longest, if any is idle; its reader
// wakes and leaves the table. Called with t.mu held.
func (t *tcpServer) evictIdle() bool {
	var oldest *tcpConn
	for _, tc := range t.conns {
		since := tc.idleSince.Load()
		if since != 0 && !tc.evicted.Load() && (oldest == nil || since < oldest.idleSince.Load()) {
			oldest = tc
		}
	}
	if oldest == nil {
		return false
	}
	oldest.evicted.Store(true)
	oldest.c.SetReadDeadline(time.Now())
	return true
}

// idleTimeout is the idle time allowed now: the configured one while the
// table is at most half full, then less in proportion to the room left,
// down to a tenth of it (RFC 7766 section 6.2.3).
func (t *tcpServer) idleTimeout() time.Duration {
	t.mu.Lock()
	n := len(t.conns)
	t.mu.Unlock()
	half := t.lim.MaxConns / 2
	if n <= half || half == 0 {
		return t.lim.Idle
	}
	left := float64(t.lim.MaxConns-n) / float64(t.lim.MaxConns-half)
	return max(time.Duration(float64(t.lim.Idle)*left), t.lim.Idle/10)
}

func (t *tcpServer) handle(tc *tcpConn) {
	c := tc.c
	reason := "client" // the client closed, or broke the framing
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		if t.byAddr[tc.client]--; t.byAddr[tc.client] == 0 {
			delete(t.byAddr, tc.client)
		}
		if t.byPrefix[tc.prefix]--; t.byPrefix[tc.prefix] == 0 {
			delete(t.byPrefix, tc.prefix)
		}
		t.mu.Unlock()
		c.Close()
		t.h.stats.tcpOpen.Add(-1)
		if tc.evicted.Load() {
			reason = "evicted"
		}
		t.h.stats.tcpClosed(reason)
	}()
	s := t.h.scratch.Get().(*scratch)
	defer t.h.scratch.Put(s)
	r := bufio.NewReaderSize(c, 4096)
	var (
		req  dns.Msg
		size [2]byte
		pkt  = make([]byte, dns.MaxMsgSize)
		out  = make([]byte, 0, 2+dns.MaxMsgSize)
	)
	for n := 0; n < t.lim.MaxQueries; n++ {
		l, why := t.readMessage(tc, r, size[:], pkt)
		if why != "" {
			reason = why
			return
		}
		if t.closing.Load() {
			reason = "shutdown"
			return // shutting down: take no new query
		}
		if st := t.h.State(); st.Transfers != nil && xfr.IsTransfer(pkt[:l]) {
			// A zone transfer: many messages, written by the xfr package.
			if err := st.Transfers.ServeTCP(c, pkt[:l], tc.client, t.lim.MessageTimeout); err != nil {
				reason = "write"
				return
			}
			continue
		}
		s.tcpIdle, s.peerPort = t.idleTimeout(), tc.port
		ans := t.h.answerPacket(s, &req, pkt[:l], tc.client, false)
		if ans == nil {
			continue
		}
		out = binary.BigEndian.AppendUint16(out[:0], uint16(len(ans)))
		out = append(out, ans...)
		c.SetWriteDeadline(time.Now().Add(t.lim.MessageTimeout))
		if _, err := c.Write(out); err != nil {
			reason = "write"
			return
		}
	}
	reason = "max_queries"
}

// readMessage waits, idle, for a message's first byte, then reads the
// whole message within the message timeout. It returns the message's
// length, or why the connection ends.
func (t *tcpServer) readMessage(tc *tcpConn, r *bufio.Reader, size, pkt []byte) (int, string) {
	c := tc.c
	tc.idleSince.Store(time.Now().UnixNano())
	c.SetReadDeadline(time.Now().Add(t.idleTimeout()))
	if _, err := r.Peek(1); err != nil {
		return 0, timeoutOr(err, "idle")
	}
	tc.idleSince.Store(0)
	c.SetReadDeadline(time.Now().Add(t.lim.MessageTimeout))
	if _, err := io.ReadFull(r, size); err != nil {
		return 0, timeoutOr(err, "slow")
	}
	l := int(binary.BigEndian.Uint16(size))
	if _, err := io.ReadFull(r, pkt[:l]); err != nil {
		return 0, timeoutOr(err, "slow")
	}
	return l, ""
}

// timeoutOr names a read error: why when it is a timeout, else "client".
func timeoutOr(err error, why string) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return why
	}
	return "client"
}

// shutdown stops accepting and reading: connections waiting for a query
// close at once, an answer being built is still written, and whatever is
// left at the deadline is closed.
func (t *tcpServer) shutdown(deadline time.Time) error {
	t.mu.Lock()
	t.closing.Store(true)
	err := t.ln.Close()
	for c := range t.conns {
		c.SetReadDeadline(time.Now())
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		t.mu.Lock()
		for c := range t.conns {
			c.Close()
		}
		t.mu.Unlock()
		<-done
	}
	return err
}
