package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// errBlocked is what a dial to a peer cut off by a Block filter returns.
var errBlocked = errors.New("peer unreachable (blocked)")

// transport is memberlist's own UDP and TCP transport with two additions:
// it counts the bytes that go over the wire, for the bandwidth metric and
// benchmark, and it can cut the node off from chosen peers, so that tests
// partition a cluster of real sockets without touching the host's
// firewall.
type transport struct {
	inner   *memberlist.NetTransport
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	wg      sync.WaitGroup

	sent, received atomic.Uint64
	block          atomic.Pointer[func(addr string) bool]
	// local is the address streams to peers leave from: the bind
	// address, so that peers see this node where it listens (memberlist
	// lets the system choose, which on loopback is 127.0.0.1 whatever
	// the bind). Nil for a wildcard bind.
	local *net.TCPAddr
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

func newTransport(inner *memberlist.NetTransport, bindIP string) *transport {
	t := &transport{
		inner:   inner,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	if ip := net.ParseIP(bindIP); ip != nil && !ip.IsUnspecified() {
		t.local = &net.TCPAddr{IP: ip}
	}
	t.wg.Add(2)
	go t.relayPackets()
	go t.relayStreams()
	return t
}

func (t *transport) blocked(addr string) bool {
	f := t.block.Load()
	return f != nil && (*f)(addr)
}

func (t *transport) relayPackets() {
	defer t.wg.Done()
	for {
		select {
		case p := <-t.inner.PacketCh():
			if t.blocked(p.From.String()) {
				continue
			}
			t.received.Add(uint64(len(p.Buf)))
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *transport) relayStreams() {
	defer t.wg.Done()
	for {
		select {
		case c := <-t.inner.StreamCh():
			if t.blocked(c.RemoteAddr().String()) {
				c.Close()
				continue
			}
			select {
			case t.streams <- &countedConn{Conn: c, t: t}:
			case <-t.done:
				c.Close()
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.blocked(a.Addr) {
		return time.Now(), nil // lost on the way, as a partition loses it
	}
	t.sent.Add(uint64(len(b)))
	return t.inner.WriteToAddress(b, a)
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.blocked(a.Addr) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errBlocked}
	}
	d := net.Dialer{Timeout: timeout, LocalAddr: t.local}
	c, err := d.Dial("tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, t: t}, nil
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streams }

func (t *transport) IngestPacket(conn net.Conn, addr net.Addr, now time.Time, shouldClose bool) error {
	return t.inner.IngestPacket(conn, addr, now, shouldClose)
}

func (t *transport) IngestStream(conn net.Conn) error { return t.inner.IngestStream(conn) }

func (t *transport) Shutdown() error {
	err := t.inner.Shutdown()
	close(t.done)
	t.wg.Wait()
	return err
}

// countedConn counts a stream's bytes both ways.
type countedConn struct {
	net.Conn
	t *transport
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.t.received.Add(uint64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.t.sent.Add(uint64(n))
	return n, err
}

// resolveBind splits a bind address for memberlist, which wants an IP and
// a port apart.
func resolveBind(ctx context.Context, hostport string) (string, int, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "tcp", port)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, p, nil
}
