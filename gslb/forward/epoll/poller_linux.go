//go:build linux

package epoll

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxEvents bounds the events one epoll_wait returns.
const maxEvents = 128

// connEvents is what a Conn is registered for: edge-triggered input,
// output and the peer's FIN, so that every readiness is one event.
const connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// Pollers is the loops connections are moved onto: GOMAXPROCS of them,
// started by the first Wrap and stopped when the context given to New
// ends.
type Pollers struct {
	ctx  context.Context
	log  *slog.Logger
	once sync.Once
	all  []*poller
	next atomic.Uint32
}

// New returns the loops of a process part that ends with ctx.
func New(ctx context.Context, log *slog.Logger) *Pollers {
	return &Pollers{ctx: ctx, log: log}
}

// Wrap moves c onto a loop and returns the *Conn that replaces it; c
// itself when it is not a *net.TCPConn, or no loop runs (then it keeps
// Go's netpoller). A nil *Pollers runs none.
func (ps *Pollers) Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || ps == nil {
		return c
	}
	p := ps.pick()
	if p == nil {
		return c
	}
	conn, err := p.adopt(tc)
	if err != nil {
		ps.log.Debug("epoll: keeping a connection on the netpoller", "err", err)
		return c
	}
	return conn
}

func (ps *Pollers) pick() *poller {
	ps.once.Do(ps.start)
	if len(ps.all) == 0 {
		return nil
	}
	return ps.all[int(ps.next.Add(1))%len(ps.all)]
}

func (ps *Pollers) start() {
	for range runtime.GOMAXPROCS(0) {
		p, err := newPoller()
		if err != nil {
			ps.log.Warn("epoll loop unavailable: connections wait in Go's netpoller", "err", err)
			break
		}
		ps.all = append(ps.all, p)
		go p.run(ps.log)
	}
	context.AfterFunc(ps.ctx, func() {
		for _, p := range ps.all {
			p.ep.Close() // ends run's wait
		}
	})
}

// poller is one loop: an epoll descriptor whose readiness its goroutine
// waits for in Go's netpoller, as for any socket, collecting the events
// with epoll_wait(timeout 0) so that no thread sits in a system call.
type poller struct {
	epfd int
	ep   *os.File
	rc   syscall.RawConn

	mu    sync.Mutex
	slots atomic.Pointer[[]*chunk] // grown under mu; chunks never move
	free  []int32                  // under mu
	dead  atomic.Bool              // run has ended: waits fail

	events [maxEvents]unix.EpollEvent // run's
	err    error                      // run's: why epoll_wait failed
	waitFn func(uintptr) bool
}

// chunk is a block of slots: a Conn's slot is its index in the
// poller's table, which is the event's data.
type chunk [256]atomic.Pointer[Conn]

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll non-blocking: %w", err)
	}
	p := &poller{epfd: epfd, ep: os.NewFile(uintptr(epfd), "epoll")}
	if p.rc, err = p.ep.SyscallConn(); err != nil {
		p.ep.Close()
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	p.slots.Store(&[]*chunk{})
	p.waitFn = p.wait
	return p, nil
}

// run dispatches events until the epoll descriptor is closed; then every
// connection's waits fail.
func (p *poller) run(log *slog.Logger) {
	// Read ends with an error when the descriptor is closed, and
	// without one when wait gave up on epoll_wait's.
	failed := p.rc.Read(p.waitFn) == nil
	p.dead.Store(true)
	p.each(func(c *Conn) { c.r.signal(); c.w.signal() })
	if failed {
		log.Error("epoll loop stopped", "err", p.err)
	}
}

// wait handles ready events until epoll_wait finds none; false parks the
// goroutine until the descriptor is readable again. Registrations are
// edge-triggered, so an event is reported once: a batch short of
// maxEvents leaves nothing behind, and new readiness wakes the
// netpoller's wait on the descriptor.
func (p *poller) wait(fd uintptr) bool {
	for {
		n, err := Collect(fd, p.events[:])
		switch {
		case err != nil:
			p.err = err
			return true
		case n == 0:
			return false
		}
		for _, ev := range p.events[:n] {
			if c := p.slot(ev.Fd); c != nil {
				c.event(ev.Events)
			}
		}
		if n < maxEvents {
			return false
		}
	}
}

func (p *poller) slot(i int32) *Conn {
	chunks := *p.slots.Load()
	if k := int(i) / len(chunk{}); k < len(chunks) {
		return chunks[k][int(i)%len(chunk{})].Load()
	}
	return nil
}

// adopt moves tc onto the loop: its descriptor duplicated (the same
// non-blocking socket), registered, and tc closed, which takes the
// socket out of the netpoller.
func (p *poller) adopt(tc *net.TCPConn) (*Conn, error) {
	fd, err := DupFD(tc)
	if err != nil {
		return nil, err
	}
	c := newConn(p, fd, tc.LocalAddr(), tc.RemoteAddr())
	c.slot = p.take(c)
	ev := unix.EpollEvent{Events: connEvents, Fd: c.slot}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.release(c.slot)
		unix.Close(fd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	tc.Close()
	return c, nil
}

// take gives c a slot.
func (p *poller) take(c *Conn) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var i int32
	if n := len(p.free); n > 0 {
		i, p.free = p.free[n-1], p.free[:n-1]
	} else {
		chunks := *p.slots.Load()
		i = int32(len(chunks) * len(chunk{}))
		grown := append(chunks[:len(chunks):len(chunks)], new(chunk))
		p.slots.Store(&grown)
		for j := len(chunk{}) - 1; j > 0; j-- {
			p.free = append(p.free, i+int32(j))
		}
	}
	p.at(i).Store(c)
	return i
}

// release frees slot i once its descriptor is closed: an event still in
// a batch finds the slot empty, or its next Conn, which takes it as a
// spurious wake-up.
func (p *poller) release(i int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at(i).Store(nil)
	p.free = append(p.free, i)
}

func (p *poller) at(i int32) *atomic.Pointer[Conn] {
	chunks := *p.slots.Load()
	return &chunks[int(i)/len(chunk{})][int(i)%len(chunk{})]
}

func (p *poller) each(f func(*Conn)) {
	for _, ch := range *p.slots.Load() {
		for i := range ch {
			if c := ch[i].Load(); c != nil {
				f(c)
			}
		}
	}
}

// Collect is epoll_wait with a zero timeout, tried again when a signal
// interrupts it, for a loop that waits for its epoll descriptor in the
// netpoller and collects inside RawConn.Read. A raw system call: it
// never blocks.
func Collect(epfd uintptr, events []unix.EpollEvent) (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}

// DupFD duplicates c's descriptor (close-on-exec), which shares its file
// description: the socket, non-blocking.
func DupFD(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	return fd, nil
}
