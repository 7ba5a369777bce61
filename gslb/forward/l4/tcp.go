package l4

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/sni"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
)

// statsTick bounds how long a busy connection's byte counts and activity
// go unreported: copies return this often to say how far they got.
const statsTick = 10 * time.Second

// Config is a listener's part of the configuration in force, as far as
// accepting and proxying connections goes; L7 listeners have more.
type Config struct {
	Name, Protocol string
	Pool           string // the pool, or for tls the pool of unrouted names
	MaxConns       int64
	MaxFlows       int
	Idle           time.Duration
	Handshake      time.Duration
	AcceptProxy    bool
	exact          map[string]string // SNI -> pool
	wildcard       map[string]string // "example.com" for *.example.com -> pool
}

// NewConfig builds lc's Config.
func NewConfig(lc config.ForwardListener) *Config {
	c := &Config{
		Name: lc.Name, Protocol: lc.Protocol, Pool: lc.Pool,
		MaxConns: int64(lc.MaxConnections), MaxFlows: lc.MaxFlows,
		Idle: lc.IdleTimeout.Duration, Handshake: lc.HandshakeTimeout.Duration,
		AcceptProxy: lc.AcceptProxyProtocol,
		exact:       map[string]string{}, wildcard: map[string]string{},
	}
	for _, r := range lc.Routes {
		if lc.Protocol != "tls" {
			break
		}
		for _, name := range r.SNI {
			if rest, ok := strings.CutPrefix(name, "*."); ok {
				c.wildcard[rest] = r.Pool
			} else {
				c.exact[name] = r.Pool
			}
		}
	}
	return c
}

// route returns the pool for a TLS server name: an exact route, else a
// wildcard one for the name's parent (a wildcard stands for one label, as
// in certificates), else the listener's pool.
func (c *Config) Route(serverName string) string {
	if serverName != "" {
		if p, ok := c.exact[serverName]; ok {
			return p
		}
		if _, parent, ok := strings.Cut(serverName, "."); ok {
			if p, ok := c.wildcard[parent]; ok {
				return p
			}
		}
	}
	return c.Pool
}

// RejectReason is why a listener turned a client away.
type RejectReason uint8

const (
	RejectMaxConns    RejectReason = iota // listener.max_connections reached
	RejectProxyHeader                     // no valid PROXY header where one is required
	RejectClientHello                     // no valid TLS ClientHello on a tls listener
	RejectNoRoute                         // no pool for the server name
	RejectNoBackend                       // no backend available, or none could be reached
	RejectMaxFlows                        // listener.max_flows reached (udp)
	RejectTooLarge                        // a backend's datagram over the reply buffer (udp)
	NumRejectReasons
)

var RejectNames = [NumRejectReasons]string{"max_connections", "proxy_protocol", "client_hello", "no_route", "no_backend", "max_flows", "too_large"}

// Env is what the listeners need of the forwarder.
type Env struct {
	Ctx context.Context // dials stop when it ends
	Log *slog.Logger
	// Current returns the configuration in force, read once per
	// connection (UDP: per new flow) so that its listener and pools agree.
	Current func() Snapshot

	loops         loops // the TCP copy's event loops, started at the first session, stopped with Ctx
	goroutineCopy bool  // copy with a goroutine per direction, as where there is no loop (tests)
}

// Snapshot is the configuration in force as the listeners read it.
type Snapshot interface {
	// Listener returns the listener's settings; nil when a reload has
	// just removed it.
	Listener(name string) *Config
	// Pool returns the pool of that name; nil when there is none.
	Pool(name string) *upstream.Pool
}

// Listener is a running TCP, TLS (by SNI) or UDP listener.
type Listener interface {
	Addr() net.Addr
	Protocol() string
	Name() string
	Listen() string // the configured address, which decides whether a reload keeps it
	Serve()
	// Stop ends accepting; established connections carry on.
	Stop()
	// Wait returns once every connection has ended or ctx is done.
	Wait(ctx context.Context)
	Collect(ch chan<- prometheus.Metric)
}

// TCPListener accepts TCP connections and proxies each to a backend.
type TCPListener struct {
	env              *Env
	lname, proto, at string
	ln               *net.TCPListener

	active   atomic.Int64
	accepted atomic.Uint64
	rejected [NumRejectReasons]atomic.Uint64

	sessions sync.WaitGroup
	done     chan struct{} // closed when the accept loop has returned
}

var _ Listener = (*TCPListener)(nil)

// Bind binds lc's address: a UDPListener for a udp listener, a
// TCPListener for tcp and tls ones. Serve runs it.
func Bind(env *Env, lc config.ForwardListener) (Listener, error) {
	if lc.Protocol == "udp" {
		return bindUDP(env, lc)
	}
	ln, err := net.Listen("tcp", lc.Listen)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
	}
	return &TCPListener{env: env, lname: lc.Name, proto: lc.Protocol, at: lc.Listen, ln: ln.(*net.TCPListener), done: make(chan struct{})}, nil
}

func (l *TCPListener) Name() string     { return l.lname }
func (l *TCPListener) Addr() net.Addr   { return l.ln.Addr() }
func (l *TCPListener) Protocol() string { return l.proto }
func (l *TCPListener) Listen() string   { return l.at }
func (l *TCPListener) Stop()            { l.ln.Close() }

func (l *TCPListener) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		<-l.done
		l.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// AcceptFailed waits after a failed accept (out of file descriptors or
// the like) for some to be freed rather than spin, as net/http does:
// 5 ms, doubling up to 1 s while accepts keep failing.
func AcceptFailed(log *slog.Logger, listener string, backoff *time.Duration, err error) {
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	log.Warn("accept failed", "listener", listener, "err", err, "retry_in", *backoff)
	time.Sleep(*backoff)
}

// serve accepts until stop.
func (l *TCPListener) Serve() {
	defer close(l.done)
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			AcceptFailed(l.env.Log, l.lname, &backoff, err)
			continue
		}
		backoff = 0
		snap := l.env.Current()
		cfg := snap.Listener(l.lname)
		if cfg == nil { // removed by a reload a moment ago
			c.Close()
			continue
		}
		if l.active.Add(1) > cfg.MaxConns {
			l.active.Add(-1)
			l.rejected[RejectMaxConns].Add(1)
			c.Close()
			continue
		}
		l.accepted.Add(1)
		l.sessions.Add(1)
		go l.handle(c, snap, cfg)
	}
}

// handle proxies c; once an event loop has taken the session over, the
// loop ends it.
func (l *TCPListener) handle(c *net.TCPConn, snap Snapshot, cfg *Config) {
	if !l.open(c, snap, cfg) {
		l.end(c)
	}
}

// end closes c and counts its session out.
func (l *TCPListener) end(c *net.TCPConn) {
	c.Close()
	l.active.Add(-1)
	l.sessions.Done()
}

// open reads what must be read before a backend is chosen (a PROXY
// header, a ClientHello), then proxies, by the configuration that was in
// force when the connection came: its listener and pools agree. True
// when an event loop has taken the session over.
func (l *TCPListener) open(c *net.TCPConn, snap Snapshot, cfg *Config) (handedOff bool) {
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	dst := c.LocalAddr().(*net.TCPAddr).AddrPort()
	// prelude holds bytes read from the client that the backend must
	// still get, in front of the rest of the stream.
	var prelude []byte
	handshake := cfg.AcceptProxy || cfg.Protocol == "tls"
	if handshake {
		c.SetReadDeadline(time.Now().Add(cfg.Handshake))
	}
	if cfg.AcceptProxy {
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		if err != nil {
			l.reject(RejectProxyHeader, src, err)
			return false
		}
		if h.Command.IsProxy() {
			if s, d, ok := h.TCPAddrs(); ok {
				src, dst = s.AddrPort(), d.AddrPort()
			}
		}
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			prelude = bytes.Clone(b)
		}
	}
	var serverName string
	if cfg.Protocol == "tls" {
		pr := bytes.NewReader(prelude)
		name, hello, err := sni.Read(io.MultiReader(pr, c), 0)
		if err != nil {
			l.reject(RejectClientHello, src, err)
			return false
		}
		serverName = name
		prelude = append(hello, prelude[len(prelude)-pr.Len():]...)
	}
	if handshake {
		c.SetReadDeadline(time.Time{})
	}
	p := snap.Pool(cfg.Route(serverName))
	if p == nil {
		l.reject(RejectNoRoute, src, fmt.Errorf("no pool for server name %q", serverName))
		return false
	}
	return l.proxy(c, p, cfg, src, dst, serverName, prelude)
}

// proxy connects to a backend of p, trying another when one fails, and
// copies both ways until both sides are done, or hands the copy to an
// event loop (true).
func (l *TCPListener) proxy(c *net.TCPConn, p *upstream.Pool, cfg *Config, src, dst netip.AddrPort, serverName string, prelude []byte) bool {
	req := &upstream.Request{Key: p.Key(src, serverName), Now: time.Now().UnixNano()}
	for range p.ConnectAttempts {
		b, done := p.PickAdmitted(req)
		if b == nil {
			break
		}
		bc, err := dialTCP(l.env.Ctx, b.Addr, p.ConnectTimeout)
		if err != nil {
			b.Release()
			b.ConnectFailed(time.Now())
			if done != nil {
				done(upstream.ErrTryFailed)
			}
			req.Avoid(b)
			l.env.Log.Debug("connect failed", "pool", p.Name, "backend", b.Addr, "err", err)
			continue
		}
		b.ConnectOK()
		if done != nil {
			done(nil)
		}
		s := &tcpSession{client: c, backend: bc, idle: cfg.Idle}
		return s.run(l, b, proxyHeader(p.ProxyVersion, src, dst), prelude)
	}
	p.State.Refused.Add(1)
	l.reject(RejectNoBackend, src, fmt.Errorf("pool %q: no backend available", p.Name))
	return false
}

func (l *TCPListener) reject(r RejectReason, client netip.AddrPort, err error) {
	l.rejected[r].Add(1)
	l.env.Log.Debug("connection refused", "listener", l.lname, "client", client.String(), "reason", RejectNames[r], "err", err)
}

func dialTCP(ctx context.Context, addr string, timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// proxyHeader is the PROXY protocol header that tells a backend who the
// client is, or nil when the pool sends none.
func proxyHeader(version byte, src, dst netip.AddrPort) []byte {
	if version == 0 {
		return nil
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst))
	b, err := h.Format()
	if err != nil {
		// Addresses of two families: the header says LOCAL (unknown
		// client) rather than lie.
		b, _ = proxyproto.HeaderProxyFromAddrs(version, nil, nil).Format()
	}
	return b
}

// tcpSession is one proxied connection. Both sides stay *net.TCPConn, so
// that copyConn can make raw socket calls on them and hand bulk transfers
// to splice(2), until an event loop takes them over (handOff).
type tcpSession struct {
	client, backend *net.TCPConn
	idle            time.Duration
	last            atomic.Int64 // unix ns of the latest bytes either way

	mu       sync.Mutex
	watchdog *time.Timer
	once     sync.Once

	abortMu sync.Mutex
	aborted bool
	lc      *loopConn // the event loop's session, once handed off
}

// Abort closes both sides, which ends both copies, or asks the event loop
// that copies them to.
func (s *tcpSession) Abort() {
	s.abortMu.Lock()
	s.aborted = true
	lc := s.lc
	s.abortMu.Unlock()
	if lc != nil {
		lc.abort()
		return
	}
	s.once.Do(func() {
		s.client.Close()
		s.backend.Close()
	})
}

// run writes the PROXY header and the prelude to the backend, then copies
// both ways: through an event loop if one takes the session (true, and
// the loop ends it), else with a goroutine per direction.
func (s *tcpSession) run(l *TCPListener, b *upstream.Backend, header, prelude []byte) (handedOff bool) {
	if !b.State.Track(s) {
		b.Release()
		s.Abort()
		return false
	}
	if first := append(header, prelude...); len(first) > 0 {
		s.backend.SetWriteDeadline(time.Now().Add(max(s.idle, time.Second)))
		n, err := s.backend.Write(first)
		b.State.Sent.Add(uint64(max(n-len(header), 0))) // the client's bytes only
		s.backend.SetWriteDeadline(time.Time{})
		if err != nil {
			s.finish(b)
			return false
		}
	}
	end := func() { // the loop has closed both sides
		b.State.Untrack(s)
		b.Release()
		l.active.Add(-1)
		l.sessions.Done()
	}
	if s.handOff(l.env, &b.State.Sent, &b.State.Received, end) {
		return true
	}
	s.copy(b)
	s.finish(b)
	return false
}

// finish closes both sides and gives the backend back.
func (s *tcpSession) finish(b *upstream.Backend) {
	s.Abort()
	b.State.Untrack(s)
	b.Release()
}

// copy copies both ways, a goroutine per direction, until both are done.
func (s *tcpSession) copy(b *upstream.Backend) {
	s.last.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.watchdog = time.AfterFunc(s.idle, s.checkIdle)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.watchdog.Stop()
		s.mu.Unlock()
	}()
	tick := min(s.idle/2, statsTick)
	var wg sync.WaitGroup
	wg.Go(func() { s.pipe(s.backend, s.client, &b.State.Sent, tick) })
	s.pipe(s.client, s.backend, &b.State.Received, tick)
	wg.Wait()
}

// pipe copies src to dst until src's end. A clean end (the peer's FIN) is
// passed on as a half-close, so the other direction carries on until its
// own end; any error closes both sides. The read deadline only makes the
// copy return now and then to count its bytes; idleness is the
// watchdog's to judge.
func (s *tcpSession) pipe(dst, src *net.TCPConn, count *atomic.Uint64, tick time.Duration) {
	for {
		src.SetReadDeadline(time.Now().Add(tick))
		n, err := copyConn(dst, src)
		if n > 0 {
			count.Add(uint64(n))
			s.last.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil:
			dst.CloseWrite()
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			// A read deadline: nothing is lost, copy on. Writes have
			// no deadline, since a timed-out splice drops what it
			// holds; a stalled write is the watchdog's.
		default:
			s.Abort()
			return
		}
	}
}

// checkIdle closes the session when no byte has moved either way for the
// idle timeout, and otherwise looks again when it could next be idle.
func (s *tcpSession) checkIdle() {
	quiet := time.Since(time.Unix(0, s.last.Load()))
	if quiet >= s.idle {
		s.Abort()
		return
	}
	s.mu.Lock()
	s.watchdog.Reset(s.idle - quiet)
	s.mu.Unlock()
}

func (l *TCPListener) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(DescListenerActive, prometheus.GaugeValue, float64(l.active.Load()), l.lname, l.proto)
	ch <- prometheus.MustNewConstMetric(DescListenerConns, prometheus.CounterValue, float64(l.accepted.Load()), l.lname, l.proto)
	for r := range NumRejectReasons {
		if r == RejectMaxFlows || r == RejectTooLarge {
			continue
		}
		ch <- prometheus.MustNewConstMetric(DescListenerRejected, prometheus.CounterValue, float64(l.rejected[r].Load()), l.lname, l.proto, RejectNames[r])
	}
}
