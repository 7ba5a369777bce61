package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Datagram buffers. A client's datagram is read into one buffer per
// listener; a backend's into one per flow, which bounds the memory a full
// flow table takes (max_flows × udpReplyBuffer). A reply larger than that
// is dropped and counted rather than sent cut short.
const (
	udpRequestBuffer = 64 << 10
	udpReplyBuffer   = 16 << 10
)

// UDPListener proxies datagrams: each client address gets a flow, a
// socket connected to one backend, whose replies go back to the client
// from the listening socket, so that the client sees them come from the
// address it sent to.
type UDPListener struct {
	env         *Env
	lname, at   string
	conn        *net.UDPConn
	wildcard    bool // bound to 0.0.0.0 or ::: replies need each datagram's destination
	closing     atomic.Bool
	flowsTotal  atomic.Uint64
	rejected    [NumRejectReasons]atomic.Uint64
	fromClients atomic.Uint64 // datagrams
	toClients   atomic.Uint64
	mu          sync.Mutex
	flows       map[netip.AddrPort]*udpFlow
	flowsWG     sync.WaitGroup
	closed      chan struct{} // closed when the socket is
	closeOnce   sync.Once
	stopOnce    sync.Once
}

var _ Listener = (*UDPListener)(nil)

func bindUDP(env *Env, lc config.ForwardListener) (Listener, error) {
	addr, err := net.ResolveUDPAddr("udp", lc.Listen)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
	}
	l := &UDPListener{
		env: env, lname: lc.Name, at: lc.Listen, conn: conn,
		flows: map[netip.AddrPort]*udpFlow{}, closed: make(chan struct{}),
	}
	if ap := conn.LocalAddr().(*net.UDPAddr).AddrPort(); ap.Addr().IsUnspecified() {
		l.wildcard = true
		err6 := ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		err4 := ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		if err4 != nil && err6 != nil {
			conn.Close()
			return nil, fmt.Errorf("listener %q: destination addresses: %w", lc.Name, err4)
		}
	}
	return l, nil
}

func (l *UDPListener) Name() string     { return l.lname }
func (l *UDPListener) Addr() net.Addr   { return l.conn.LocalAddr() }
func (l *UDPListener) Protocol() string { return "udp" }
func (l *UDPListener) Listen() string   { return l.at }

// stop takes no new clients; the socket stays open for the flows there are
// (their replies leave from it) and closes once they have ended.
func (l *UDPListener) Stop() {
	l.stopOnce.Do(func() {
		// Under mu, so that no flow is added once Wait may have begun.
		l.mu.Lock()
		l.closing.Store(true)
		l.mu.Unlock()
		go func() {
			l.flowsWG.Wait()
			l.closeSocket()
		}()
	})
}

func (l *UDPListener) closeSocket() {
	l.closeOnce.Do(func() {
		l.conn.Close()
		close(l.closed)
	})
}

func (l *UDPListener) Wait(ctx context.Context) {
	select {
	case <-l.closed:
	case <-ctx.Done():
		l.closeSocket()
	}
}

// serve reads clients' datagrams until the socket closes.
func (l *UDPListener) Serve() {
	buf := make([]byte, udpRequestBuffer)
	for {
		var (
			n       int
			client  netip.AddrPort
			session *dns.SessionUDP
			err     error
		)
		if l.wildcard {
			n, session, err = dns.ReadFromSessionUDP(l.conn, buf)
			if err == nil {
				client = session.RemoteAddr().(*net.UDPAddr).AddrPort()
			}
		} else {
			n, client, err = l.conn.ReadFromUDPAddrPort(buf)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.fromClients.Add(1)
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		l.forward(client, session, buf[:n])
	}
}

// forward sends a client's datagram to its flow's backend. A flow that
// ended a moment ago (idle, or its backend refused) gets a successor, once.
func (l *UDPListener) forward(client netip.AddrPort, session *dns.SessionUDP, dgram []byte) {
	for range 2 {
		fl := l.flow(client, session)
		if fl == nil {
			return
		}
		fl.last.Store(time.Now().UnixNano())
		_, err := fl.conn.Write(dgram)
		if err == nil {
			fl.b.State.Sent.Add(uint64(len(dgram)))
			return
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			fl.b.ConnectFailed(time.Now())
		}
		fl.Abort()
		fl.end() // out of the table now, so the retry starts a new flow
	}
}

// flow returns the client's flow, starting one if there is none and the
// table has room; nil drops the datagram. Only serve's goroutine adds
// flows, so the backend is dialled outside the lock.
func (l *UDPListener) flow(client netip.AddrPort, session *dns.SessionUDP) *udpFlow {
	l.mu.Lock()
	fl := l.flows[client]
	n := len(l.flows)
	l.mu.Unlock()
	if fl != nil {
		if session != nil {
			fl.session.Store(session) // the client may have moved to another of our addresses
		}
		return fl
	}
	if l.closing.Load() {
		return nil
	}
	snap := l.env.Current()
	cfg := snap.Listener(l.lname)
	if cfg == nil {
		return nil
	}
	if n >= cfg.MaxFlows {
		l.rejected[RejectMaxFlows].Add(1)
		return nil
	}
	p := snap.Pool(cfg.Pool)
	if p == nil {
		l.rejected[RejectNoRoute].Add(1)
		return nil
	}
	req := &upstream.Request{Key: p.Key(client, ""), Now: time.Now().UnixNano()}
	for range p.ConnectAttempts {
		b := p.Pick(req)
		if b == nil {
			break
		}
		conn, err := dialUDP(l.env.Ctx, b.Addr, p.ConnectTimeout)
		if err != nil {
			b.Release()
			b.ConnectFailed(time.Now())
			req.Avoid(b)
			continue
		}
		fl := &udpFlow{l: l, client: client, b: b, conn: conn, idle: cfg.Idle}
		fl.last.Store(time.Now().UnixNano()) // before replies reads it
		if session != nil {
			fl.session.Store(session)
		}
		if !b.State.Track(fl) {
			conn.Close()
			b.Release()
			return nil
		}
		l.mu.Lock()
		if l.closing.Load() {
			l.mu.Unlock()
			b.State.Untrack(fl)
			conn.Close()
			b.Release()
			return nil
		}
		l.flows[client] = fl
		l.flowsWG.Add(1)
		l.mu.Unlock()
		l.flowsTotal.Add(1)
		go fl.replies()
		return fl
	}
	p.State.Refused.Add(1)
	l.rejected[RejectNoBackend].Add(1)
	return nil
}

func dialUDP(ctx context.Context, addr string, timeout time.Duration) (*net.UDPConn, error) {
	d := net.Dialer{Timeout: timeout} // resolving a name is all that can take time
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// udpFlow is one client's traffic to its backend.
type udpFlow struct {
	l       *UDPListener
	client  netip.AddrPort
	session atomic.Pointer[dns.SessionUDP] // wildcard listeners: where replies leave from
	b       *upstream.Backend
	conn    *net.UDPConn // connected to the backend
	idle    time.Duration
	last    atomic.Int64 // unix ns of the latest datagram either way
	once    sync.Once
}

// Abort closes the flow's socket, which ends its reply loop.
func (fl *udpFlow) Abort() { fl.conn.Close() }

// replies sends the backend's datagrams to the client until the flow has
// been idle for its timeout or the backend refuses it.
func (fl *udpFlow) replies() {
	l := fl.l
	defer l.flowsWG.Done()
	defer fl.end()
	buf := make([]byte, udpReplyBuffer)
	answered := false
	for {
		fl.conn.SetReadDeadline(time.Unix(0, fl.last.Load()).Add(fl.idle))
		n, _, flags, _, err := fl.conn.ReadMsgUDPAddrPort(buf, nil)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				if time.Since(time.Unix(0, fl.last.Load())) < fl.idle {
					continue // the client spoke since the deadline was set
				}
			case errors.Is(err, syscall.ECONNREFUSED):
				// ICMP port unreachable: nothing listens there.
				fl.b.ConnectFailed(time.Now())
			}
			return
		}
		if !answered {
			answered = true
			fl.b.ConnectOK()
		}
		fl.last.Store(time.Now().UnixNano())
		if flags&syscall.MSG_TRUNC != 0 {
			l.rejected[RejectTooLarge].Add(1)
			continue
		}
		fl.b.State.Received.Add(uint64(n))
		if s := fl.session.Load(); s != nil {
			_, err = dns.WriteToSessionUDP(l.conn, buf[:n], s)
		} else {
			_, err = l.conn.WriteToUDPAddrPort(buf[:n], fl.client)
		}
		if err == nil {
			l.toClients.Add(1)
		}
	}
}

// end removes the flow from the table and its backend.
func (fl *udpFlow) end() {
	fl.once.Do(func() {
		l := fl.l
		l.mu.Lock()
		if l.flows[fl.client] == fl {
			delete(l.flows, fl.client)
		}
		l.mu.Unlock()
		fl.conn.Close()
		fl.b.State.Untrack(fl)
		fl.b.Release()
	})
}

func (l *UDPListener) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	n := len(l.flows)
	l.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(DescListenerActive, prometheus.GaugeValue, float64(n), l.lname, "udp")
	ch <- prometheus.MustNewConstMetric(DescListenerConns, prometheus.CounterValue, float64(l.flowsTotal.Load()), l.lname, "udp")
	for _, r := range []RejectReason{RejectNoRoute, RejectNoBackend, RejectMaxFlows, RejectTooLarge} {
		ch <- prometheus.MustNewConstMetric(DescListenerRejected, prometheus.CounterValue, float64(l.rejected[r].Load()), l.lname, "udp", RejectNames[r])
	}
	ch <- prometheus.MustNewConstMetric(DescListenerDatagrams, prometheus.CounterValue, float64(l.fromClients.Load()), l.lname, "from_clients")
	ch <- prometheus.MustNewConstMetric(DescListenerDatagrams, prometheus.CounterValue, float64(l.toClients.Load()), l.lname, "to_clients")
}
