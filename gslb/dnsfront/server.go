package dnsfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listen configures the sockets of a Server.
type Listen struct {
	Addrs      []string // host:port, each served over UDP and TCP
	UDPSockets int      // SO_REUSEPORT sockets per UDP address (at least 1)
	TCP        TCPLimits
	// UDPPoller serves UDP through Go's netpoller instead of a thread
	// blocked in recvmmsg per socket (Linux; elsewhere the poller always).
	UDPPoller bool
}

// Server owns the listening sockets and the miekg/dns servers reading them.
type Server struct {
	cfg     Listen
	handler *Handler
	log     *slog.Logger

	stopClock chan struct{}

	tcps []*tcpServer // one per address
	udps []*udpServer // UDPSockets per address
	udp  []net.Addr
	tcp  []net.Addr
	done chan error
	wg   sync.WaitGroup
}

// NewServer prepares a server; Start binds it.
func NewServer(cfg Listen, h *Handler, log *slog.Logger) *Server {
	if cfg.UDPSockets < 1 {
		cfg.UDPSockets = 1
	}
	return &Server{cfg: cfg, handler: h, log: log, done: make(chan error, 1)}
}

// Start binds every address over UDP and TCP and starts serving. Port 0
// picks one free port per address, the same for UDP and TCP. On error,
// whatever was bound is closed again.
func (s *Server) Start() error {
	for _, addr := range s.cfg.Addrs {
		if err := s.bind(addr); err != nil {
			s.closeAll()
			return err
		}
	}
	s.stopClock = make(chan struct{})
	go s.handler.runClock(s.stopClock)
	for _, u := range s.udps {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := u.serve(); err != nil {
				select {
				case s.done <- fmt.Errorf("serve udp: %w", err):
				default:
				}
			}
		}()
	}
	for _, t := range s.tcps {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := t.serve(); err != nil {
				select {
				case s.done <- fmt.Errorf("serve tcp: %w", err):
				default:
				}
			}
		}()
	}
	return nil
}

// Done reports a listener that stopped on its own (not through Shutdown).
func (s *Server) Done() <-chan error { return s.done }

// UDPAddrs and TCPAddrs return the bound addresses, one per configured address.
func (s *Server) UDPAddrs() []net.Addr { return s.udp }

// TCPAddrs returns the bound TCP addresses, one per configured address.
func (s *Server) TCPAddrs() []net.Addr { return s.tcp }

// Shutdown stops reading new queries, lets answers in flight finish until ctx
// ends, and closes every socket.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	for _, u := range s.udps {
		if err := u.shutdown(deadline); err != nil {
			errs = append(errs, fmt.Errorf("shutdown udp listener: %w", err))
		}
	}
	for _, t := range s.tcps {
		if err := t.shutdown(deadline); err != nil {
			errs = append(errs, fmt.Errorf("shutdown tcp listener: %w", err))
		}
	}
	s.wg.Wait()
	if s.stopClock != nil {
		close(s.stopClock)
	}
	return errors.Join(errs...)
}

func (s *Server) bind(addr string) error {
	// With port 0 the kernel may hand UDP a port that TCP cannot take; a few
	// attempts find one free for both.
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = 8
	}
	for i := 0; ; i++ {
		err = s.bindPair(host, port)
		if err == nil || i+1 >= attempts {
			return err
		}
	}
}

func (s *Server) bindPair(host, port string) error {
	lc := net.ListenConfig{Control: reusePort}
	ctx := context.Background()
	first, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("listen udp %s: %w", net.JoinHostPort(host, port), err)
	}
	bound := net.JoinHostPort(host, strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port))
	pcs := []net.PacketConn{first}
	closePCs := func() {
		for _, pc := range pcs {
			pc.Close()
		}
	}
	for i := 1; i < s.cfg.UDPSockets; i++ {
		pc, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			closePCs()
			return fmt.Errorf("listen udp %s (socket %d): %w", bound, i+1, err)
		}
		pcs = append(pcs, pc)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", bound)
	if err != nil {
		closePCs()
		return fmt.Errorf("listen tcp %s: %w", bound, err)
	}
	var udps []*udpServer
	for _, pc := range pcs {
		conn := pc.(*net.UDPConn)
		u, err := newUDPServer(conn, s.handler, isWildcard(conn))
		if err == nil && !u.session && !s.cfg.UDPPoller {
			err = u.block()
		}
		if err != nil {
			for _, u := range udps {
				u.close()
			}
			closePCs()
			ln.Close()
			return fmt.Errorf("listen udp %s: %w", bound, err)
		}
		udps = append(udps, u)
	}
	s.udps = append(s.udps, udps...)
	s.tcps = append(s.tcps, newTCPServer(ln, s.handler, s.cfg.TCP))
	s.udp = append(s.udp, first.LocalAddr())
	s.tcp = append(s.tcp, ln.Addr())
	return nil
}

func (s *Server) closeAll() {
	for _, u := range s.udps {
		u.close()
	}
	for _, t := range s.tcps {
		t.ln.Close()
	}
	s.tcps, s.udps, s.udp, s.tcp = nil, nil, nil, nil
}

// reusePort lets several UDP sockets share one address so the kernel spreads
// queries over them, one reader per CPU.
func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
