//go:build linux

package epoll

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a TCP connection on a loop (Pollers.Wrap). It is safe for
// concurrent use as net.Conn is: reads are serialized with reads, writes
// with writes.
type Conn struct {
	p      *poller
	fd     int
	slot   int32
	local  net.Addr
	remote net.Addr

	// refs counts reads, writes and the open connection itself; Close
	// sets closedBit, and the descriptor is closed when the count falls
	// to zero, after the last system call on it has returned.
	refs atomic.Int64
	hup  atomic.Bool // the peer's FIN, a reset or an error: reads never wait again
	r, w dir
}

const closedBit = 1 << 62

// dir is one direction's readiness and deadline.
type dir struct {
	seq     atomic.Uint32 // events seen: a wait ends when it moves
	waiting atomic.Bool
	wake    chan struct{}

	mu sync.Mutex // serializes the direction's calls; guards ready and seen

	// Reads only.
	ready bool   // the last read filled its buffer: more may wait
	seen  uint32 // seq when the last read began: an event since is news

	dmu      sync.Mutex // guards timer
	deadline atomic.Int64
	expired  atomic.Bool
	timer    *time.Timer
}

func newConn(p *poller, fd int, local, remote net.Addr) *Conn {
	c := &Conn{p: p, fd: fd, local: local, remote: remote}
	c.refs.Store(1)
	c.r.wake = make(chan struct{}, 1)
	c.w.wake = make(chan struct{}, 1)
	c.r.ready = true // nothing read yet
	return c
}

// event records readiness reported by the loop.
func (c *Conn) event(ev uint32) {
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.hup.Store(true)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.r.seq.Add(1)
		c.r.signal()
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.w.seq.Add(1)
		c.w.signal()
	}
}

// signal wakes the direction's waiter, if there is one; a token left in
// the channel costs the next wait one more look at its conditions.
func (d *dir) signal() {
	if d.waiting.Load() {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// wait returns when an event came after seq was read as s, or with the
// error that ends the call: the deadline, Close, or the loop's end.
func (c *Conn) wait(d *dir, s uint32, op string) error {
	for {
		if err := c.stop(d, op); err != nil {
			return err
		}
		if d.seq.Load() != s {
			return nil
		}
		d.waiting.Store(true)
		// Look again after announcing the wait: an event (or Close, the
		// deadline, the loop's end) either came before and is seen
		// here, or sees the waiter and signals.
		if d.seq.Load() == s && c.stop(d, op) == nil {
			<-d.wake
		}
		d.waiting.Store(false)
	}
}

// stop is the error that ends a call in direction d now, if any.
func (c *Conn) stop(d *dir, op string) error {
	switch {
	case c.refs.Load()&closedBit != 0:
		return c.opErr(op, net.ErrClosed)
	case d.expired.Load():
		return c.opErr(op, os.ErrDeadlineExceeded)
	case c.p.dead.Load():
		return c.opErr(op, errors.New("epoll loop stopped"))
	}
	return nil
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

func (c *Conn) acquire() bool {
	for {
		n := c.refs.Load()
		if n&closedBit != 0 {
			return false
		}
		if c.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (c *Conn) release() {
	if c.refs.Add(-1) == closedBit {
		unix.Close(c.fd)
		c.p.release(c.slot)
	}
}

// Read reads when the socket was not found empty since the last event,
// and waits for the next event otherwise.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.acquire() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	defer c.release()
	d := &c.r
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(b) == 0 {
		return 0, c.stop(d, "read")
	}
	for {
		if err := c.stop(d, "read"); err != nil {
			return 0, err
		}
		if !d.ready && !c.hup.Load() && d.seq.Load() == d.seen {
			if err := c.wait(d, d.seen, "read"); err != nil {
				return 0, err
			}
		}
		s := d.seq.Load()
		n, err := rawRead(c.fd, b)
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			d.ready, d.seen = false, s
		case err != nil:
			return 0, c.opErr("read", os.NewSyscallError("read", err))
		case n == 0:
			return 0, io.EOF
		default:
			// A short read emptied the socket: what arrives after it
			// is an event after s.
			d.ready, d.seen = n == len(b), s
			return n, nil
		}
	}
}

// Write writes all of b, waiting for room when the socket has none.
func (c *Conn) Write(b []byte) (int, error) {
	if !c.acquire() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	defer c.release()
	d := &c.w
	d.mu.Lock()
	defer d.mu.Unlock()
	done := 0
	for done < len(b) {
		if err := c.stop(d, "write"); err != nil {
			return done, err
		}
		s := d.seq.Load()
		n, err := rawWrite(c.fd, b[done:])
		switch {
		case n > 0:
			done += n
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if err := c.wait(d, s, "write"); err != nil {
				return done, err
			}
		case err != nil:
			return done, c.opErr("write", os.NewSyscallError("write", err))
		default:
			return done, c.opErr("write", io.ErrUnexpectedEOF)
		}
	}
	return done, nil
}

// Quiet reports whether the loop has seen nothing arrive on the
// connection since its last read found the socket empty: no bytes, no
// FIN, no error. It asks no system call, so it does not see what came
// in after the loop's last look, a moment ago under load.
func (c *Conn) Quiet() bool {
	d := &c.r
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.ready && !c.hup.Load() && d.seq.Load() == d.seen && c.refs.Load()&closedBit == 0
}

// Open reports whether an idle connection is still open: nothing to read
// (EAGAIN) is; end of file, an error or bytes are not. It reads at most
// one byte, ignoring deadlines, and is not to run with a Read.
func (c *Conn) Open() bool {
	if !c.acquire() {
		return false
	}
	defer c.release()
	var one [1]byte
	n, err := rawRead(c.fd, one[:])
	return n < 0 && err == unix.EAGAIN
}

// Close closes the connection: calls in progress return net.ErrClosed,
// and the descriptor is closed when the last has.
func (c *Conn) Close() error {
	for {
		n := c.refs.Load()
		if n&closedBit != 0 {
			return c.opErr("close", net.ErrClosed)
		}
		if c.refs.CompareAndSwap(n, n|closedBit) {
			break
		}
	}
	for _, d := range []*dir{&c.r, &c.w} {
		d.signal()
		d.dmu.Lock()
		if d.timer != nil {
			d.timer.Stop()
		}
		d.dmu.Unlock()
	}
	c.release()
	return nil
}

// CloseWrite shuts down the sending side.
func (c *Conn) CloseWrite() error {
	if !c.acquire() {
		return c.opErr("close", net.ErrClosed)
	}
	defer c.release()
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		return c.opErr("close", os.NewSyscallError("shutdown", err))
	}
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error {
	c.r.setDeadline(t)
	c.w.setDeadline(t)
	return nil
}

func (c *Conn) SetReadDeadline(t time.Time) error  { c.r.setDeadline(t); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.w.setDeadline(t); return nil }

// setDeadline sets the direction's deadline: a past one ends calls now,
// a future one arms the direction's timer, the zero time disarms it.
func (d *dir) setDeadline(t time.Time) {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if t.IsZero() {
		d.deadline.Store(0)
		d.expired.Store(false)
		if d.timer != nil {
			d.timer.Stop()
		}
		return
	}
	d.deadline.Store(t.UnixNano())
	wait := time.Until(t)
	if wait <= 0 {
		d.expired.Store(true)
		d.signal()
		return
	}
	d.expired.Store(false)
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.fire)
		return
	}
	d.timer.Reset(wait)
}

// fire ends calls at the deadline, unless it has moved since the timer
// was set.
func (d *dir) fire() {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if at := d.deadline.Load(); at != 0 && time.Now().UnixNano() >= at {
		d.expired.Store(true)
		d.signal()
	}
}

// rawRead and rawWrite are read(2) and write(2) without the runtime's
// system call bookkeeping: the socket is non-blocking, so the call never
// waits, and a goroutine in a marked system call keeps sysmon waking to
// take its processor back (a loopback write that wakes a backend on the
// same CPU can be preempted long enough for it), which costs a thread
// hand-off and context switches per request. The L4 loop calls them the
// same way.
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
