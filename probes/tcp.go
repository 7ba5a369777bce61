package probes

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// TCPConfig defines a TCP connect check.
type TCPConfig struct {
	Addr   string     // host:port to connect to
	Source netip.Addr // local address to connect from; zero lets the system choose
}

// TCPChecker passes when a TCP connection to the address is established;
// it closes the connection at once without sending anything. Make one
// with NewTCPChecker; it is safe for concurrent use.
type TCPChecker struct {
	cfg    TCPConfig
	dialer net.Dialer
}

var (
	_ Checker = (*TCPChecker)(nil)
	_ Equaler = (*TCPChecker)(nil)
)

// NewTCPChecker validates cfg and returns its checker.
func NewTCPChecker(cfg TCPConfig) (*TCPChecker, error) {
	if err := checkAddr(cfg.Addr); err != nil {
		return nil, fmt.Errorf("tcp check %q: %w", cfg.Addr, err)
	}
	return &TCPChecker{cfg: cfg, dialer: net.Dialer{LocalAddr: localAddr(cfg.Source)}}, nil
}

// Check connects once.
func (c *TCPChecker) Check(ctx context.Context) Result {
	start := time.Now()
	conn, err := c.dialer.DialContext(ctx, "tcp", c.cfg.Addr)
	rtt := time.Since(start)
	if err != nil {
		return Result{RTT: rtt, Reason: failReason(ctx, err, "connect")}
	}
	conn.Close()
	return Result{OK: true, RTT: rtt, Reason: "connected"}
}

// Equal reports whether other is a TCP check of the same definition.
func (c *TCPChecker) Equal(other Checker) bool {
	o, ok := other.(*TCPChecker)
	return ok && o.cfg == c.cfg
}

// String names the check in logs.
func (c *TCPChecker) String() string { return "tcp " + c.cfg.Addr }

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: address: %w", ErrInvalidCheck, err)
	}
	if host == "" || port == "" {
		return fmt.Errorf("%w: address %q needs a host and a port", ErrInvalidCheck, addr)
	}
	return nil
}

// localAddr is the dialer's source address; nil lets the system choose.
func localAddr(src netip.Addr) net.Addr {
	if !src.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
}
