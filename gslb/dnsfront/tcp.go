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

	"github.com/miekg/dns"
)

// tcpServer serves DNS over TCP (RFC 7766): length-prefixed messages, any
// number per connection in order, each answered by the same packet path
// as UDP. It replaces dns.Server for TCP so that both transports validate
// and answer alike (the raw packet is at hand for the checks only it
// allows) and no reply of miekg/dns's own copies the query's header bits.
type tcpServer struct {
	ln         net.Listener // capped by limitListener
	h          *Handler
	idle       time.Duration
	maxQueries int
	closing    atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newTCPServer(ln net.Listener, h *Handler, idle time.Duration, maxQueries int) *tcpServer {
	return &tcpServer{ln: ln, h: h, idle: idle, maxQueries: maxQueries, conns: map[net.Conn]struct{}{}}
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
		t.mu.Lock()
		if t.closing.Load() {
			t.mu.Unlock()
			c.Close()
			continue
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.handle(c)
	}
}

func (t *tcpServer) handle(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		c.Close()
	}()
	var client netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = a.AddrPort().Addr().Unmap()
	}
	s := t.h.scratch.Get().(*scratch)
	defer t.h.scratch.Put(s)
	r := bufio.NewReaderSize(c, 4096)
	var (
		req  dns.Msg
		size [2]byte
		pkt  = make([]byte, dns.MaxMsgSize)
		out  = make([]byte, 0, 2+dns.MaxMsgSize)
	)
	for n := 0; n < t.maxQueries; n++ {
		c.SetReadDeadline(time.Now().Add(t.idle))
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return // closed, idle, or shut down
		}
		l := int(binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(r, pkt[:l]); err != nil {
			return
		}
		if t.closing.Load() {
			return // shutting down: take no new query
		}
		ans := t.h.answerPacket(s, &req, pkt[:l], client, false)
		if ans == nil {
			continue
		}
		out = binary.BigEndian.AppendUint16(out[:0], uint16(len(ans)))
		out = append(out, ans...)
		c.SetWriteDeadline(time.Now().Add(t.idle))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
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
