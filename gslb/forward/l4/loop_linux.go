//go:build linux

package l4

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/meridian-gslb/meridian/gslb/forward/epoll"
	"golang.org/x/sys/unix"
)

// loopEvents bounds the events one epoll_wait returns.
const loopEvents = 128

// readEvents is what a socket is registered for while its direction
// reads: input, and the peer's FIN, flagged apart so that the loop knows
// the socket will still be readable after a read that took the data.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP

// loops is the event loops of one Env: one per GOMAXPROCS at the first
// hand-off, each copying both directions of its sessions with no
// goroutine per connection, and all stopped when the Env's context ends.
type loops struct {
	once sync.Once
	all  []*loop
	next atomic.Uint32
	wg   sync.WaitGroup // the loops' goroutines
}

// pick returns a loop round robin, starting them on the first call; nil
// when none could be started.
func (ls *loops) pick(env *Env) *loop {
	ls.once.Do(func() { ls.start(env) })
	if len(ls.all) == 0 {
		return nil
	}
	return ls.all[int(ls.next.Add(1))%len(ls.all)]
}

// wait returns once the loops have stopped, after the Env's context
// ended (tests).
func (ls *loops) wait() { ls.wg.Wait() }

func (ls *loops) start(env *Env) {
	for range runtime.GOMAXPROCS(0) {
		lp, err := newLoop(env.Log)
		if err != nil {
			env.Log.Warn("l4 event loop unavailable: proxying with a goroutine per direction", "err", err)
			break
		}
		ls.all = append(ls.all, lp)
		ls.wg.Go(lp.run)
	}
	context.AfterFunc(env.Ctx, func() {
		for _, lp := range ls.all {
			lp.post(loopReq{stop: true})
		}
	})
}

// loop copies the sessions handed to it. Its goroutine waits for the
// loop's epoll descriptor to become readable in Go's netpoller, as for
// any socket, and collects the events with epoll_wait(timeout 0) made
// inside RawConn.Read, so that no thread sits in a system call.
//
// Sockets are registered level-triggered: one read per readiness, and a
// short read needs no second read to find the socket empty, since epoll
// reports it again while bytes (or the FIN) are left. The netpoller
// watches the epoll descriptor edge-triggered; a wake-up cannot be lost,
// because RawConn.Read clears the descriptor's readiness before the
// callback's epoll_wait, and the goroutine parks only when that returned
// nothing: an event after it marks the descriptor ready again. Events
// left ready by the level-triggered registrations raise no new edge, but
// they are found by the next epoll_wait, which comes before any park.
type loop struct {
	log  *slog.Logger
	epfd int
	evfd int // eventfd: other goroutines post requests through it
	ep   *os.File
	rc   syscall.RawConn

	mu      sync.Mutex
	queue   []loopReq
	stopped bool

	// Owned by the loop's goroutine.
	conns   []*loopConn // by slot
	free    []int32
	events  [loopEvents]unix.EpollEvent
	again   bool    // an event of the batch may still be ready: look again before parking
	err     error   // why epoll_wait failed
	scratch *[]byte // what each read fills; kept by a direction whose write fell short
	work    []loopReq
	waitFn  func(uintptr) bool
}

// loopReq is a request posted to a loop: a session to take over, one to
// close, or the loop's end.
type loopReq struct {
	c     *loopConn
	abort bool
	stop  bool
}

func newLoop(log *slog.Logger) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll non-blocking: %w", err)
	}
	lp := &loop{log: log, epfd: epfd, evfd: evfd, ep: os.NewFile(uintptr(epfd), "l4-loop"), scratch: copyBufs.Get().(*[]byte)}
	lp.rc, err = lp.ep.SyscallConn()
	if err != nil {
		lp.ep.Close()
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	lp.waitFn = lp.wait
	return lp, nil
}

// post queues r for the loop and wakes it; false once the loop has
// stopped.
func (lp *loop) post(r loopReq) bool {
	lp.mu.Lock()
	if lp.stopped {
		lp.mu.Unlock()
		return false
	}
	lp.queue = append(lp.queue, r)
	if r.stop {
		lp.stopped = true
	}
	lp.mu.Unlock()
	lp.wake()
	return true
}

func (lp *loop) wake() {
	one := uint64(1)
	unix.Write(lp.evfd, (*[8]byte)(unsafe.Pointer(&one))[:])
}

// wait handles the ready events, collected without blocking, until
// none is left that could go unannounced; false parks the goroutine in
// the netpoller until the epoll descriptor is readable again, true
// returns to run (the loop stops, or epoll_wait failed).
//
// It parks without a last epoll_wait that would find nothing: every
// event it handled was used up (a read shorter than the buffer emptied
// the socket, a write that fell short waits for output), and any new
// readiness wakes the epoll descriptor's waiters, the netpoller among
// them, even for a socket still on the ready list. Only a batch that
// filled the events array or a read that filled the buffer (more may
// wait) make it look again.
func (lp *loop) wait(fd uintptr) bool {
	for {
		n, err := epoll.Collect(fd, lp.events[:])
		switch {
		case err != nil:
			lp.err = err
			return true
		case n == 0:
			return false
		}
		lp.again = n == loopEvents
		if lp.dispatch(n) {
			return true
		}
		if !lp.again {
			return false
		}
	}
}

// dispatch handles n events; true when the loop is to stop.
func (lp *loop) dispatch(n int) (stop bool) {
	posted := false
	for _, ev := range lp.events[:n] {
		if ev.Fd < 0 {
			posted = true
			continue
		}
		if c := lp.conns[ev.Fd]; c != nil {
			c.event(lp, int(ev.Pad), ev.Events)
		}
	}
	return posted && lp.takeRequests()
}

func (lp *loop) run() {
	defer lp.close()
	err := lp.rc.Read(lp.waitFn)
	if err == nil && lp.err != nil {
		err = lp.err
	}
	if err != nil {
		lp.log.Error("l4 event loop stopped", "err", err)
		lp.mu.Lock()
		lp.stopped = true
		lp.mu.Unlock()
		lp.takeRequests()
		for _, c := range lp.conns {
			if c != nil {
				c.close(lp)
			}
		}
	}
}

// takeRequests carries out what other goroutines posted; true when the
// loop is to stop, all its sessions closed.
func (lp *loop) takeRequests() (stop bool) {
	var b [8]byte
	unix.Read(lp.evfd, b[:])
	lp.mu.Lock()
	lp.work, lp.queue = lp.queue, lp.work[:0]
	lp.mu.Unlock()
	for _, r := range lp.work {
		switch {
		case r.stop:
			stop = true
		case r.abort:
			if !r.c.closed {
				r.c.close(lp)
			}
		default:
			lp.add(r.c)
		}
	}
	clear(lp.work)
	if stop {
		for _, c := range lp.conns {
			if c != nil {
				c.close(lp)
			}
		}
	}
	return stop
}

// add registers c's sockets, reading both.
func (lp *loop) add(c *loopConn) {
	if len(lp.free) > 0 {
		c.slot = lp.free[len(lp.free)-1]
		lp.free = lp.free[:len(lp.free)-1]
		lp.conns[c.slot] = c
	} else {
		c.slot = int32(len(lp.conns))
		lp.conns = append(lp.conns, c)
	}
	for side := range 2 {
		ev := unix.EpollEvent{Events: readEvents, Fd: c.slot, Pad: int32(side)}
		if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, c.fd[side], &ev); err != nil {
			lp.log.Warn("l4 event loop: registering a socket failed", "err", err)
			c.close(lp)
			return
		}
		c.mask[side] = readEvents
		c.registered[side] = true
	}
	c.startWatchdog()
}

// close ends the loop: its sessions are closed by then.
func (lp *loop) close() {
	lp.ep.Close()
	unix.Close(lp.evfd)
	copyBufs.Put(lp.scratch)
}

// handOff gives s's two sockets to a loop, which copies from then on and
// calls end when both are closed. False leaves s as it was, to be copied
// by goroutines: no loop, or the loops have stopped.
func (s *tcpSession) handOff(env *Env, sent, received *atomic.Uint64, end func()) bool {
	if env.goroutineCopy {
		return false
	}
	lp := env.loops.pick(env)
	if lp == nil {
		return false
	}
	cfd, err := epoll.DupFD(s.client)
	if err != nil {
		return false
	}
	bfd, err := epoll.DupFD(s.backend)
	if err != nil {
		unix.Close(cfd)
		return false
	}
	c := &loopConn{lp: lp, fd: [2]int{cfd, bfd}, count: [2]*atomic.Uint64{sent, received}, idle: s.idle, end: end}
	s.abortMu.Lock()
	defer s.abortMu.Unlock()
	if s.aborted {
		unix.Close(cfd)
		unix.Close(bfd)
		return false
	}
	lp.mu.Lock()
	if lp.stopped {
		lp.mu.Unlock()
		unix.Close(cfd)
		unix.Close(bfd)
		return false
	}
	// Closing the Go sides takes them out of the netpoller's epoll; the
	// duplicates share their file descriptions, non-blocking.
	s.client.Close()
	s.backend.Close()
	lp.queue = append(lp.queue, loopReq{c: c})
	lp.mu.Unlock()
	lp.wake()
	s.lc = c
	return true
}

// loopConn is a session a loop copies. Side 0 is the client, 1 the
// backend; direction i reads fd[i] and writes fd[1-i].
type loopConn struct {
	lp         *loop
	fd         [2]int
	dir        [2]direction
	mask       [2]uint32 // the events each socket is registered for
	registered [2]bool
	hup        [2]bool
	slot       int32
	closed     bool              // by the loop
	count      [2]*atomic.Uint64 // the backend's Sent and Received
	end        func()            // the session's own end: untrack, release, count down
	idle       time.Duration
	moved      atomic.Bool  // bytes moved since the watchdog last looked
	quiet      atomic.Int32 // the watchdog's looks in a row that found none
	done       atomic.Bool  // closed, for the watchdog
	watchdog   *time.Timer
	aborted    atomic.Bool
}

// direction is one direction's bytes in hand.
type direction struct {
	bp     *[]byte // read and not yet all written
	off, n int
	eof    bool // its source's FIN came
	shut   bool // and was passed on
}

func (d *direction) reading() bool { return !d.eof && d.bp == nil }

// event handles the events of side i's socket.
func (c *loopConn) event(lp *loop, i int, ev uint32) {
	if ev&unix.EPOLLERR != 0 {
		c.close(lp)
		return
	}
	if ev&unix.EPOLLOUT != 0 && c.dir[1-i].bp != nil && !c.flush(lp, 1-i) {
		return
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		// The peer's FIN came before the read: after a short read the
		// socket stays readable (its end), with no new wake-up.
		lp.again = true
	}
	if ev&(readEvents|unix.EPOLLHUP) != 0 && c.dir[i].reading() && !c.pull(lp, i) {
		return
	}
	if c.dir[0].shut && c.dir[1].shut {
		c.close(lp)
		return
	}
	if ev&unix.EPOLLHUP != 0 {
		c.hup[i] = true
	}
	c.watch(lp, 0)
	c.watch(lp, 1)
}

// pull reads once from side i and writes what came to the other side;
// false when it closed the session.
func (c *loopConn) pull(lp *loop, i int) bool {
	d := &c.dir[i]
	b := *lp.scratch
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(c.fd[i]), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return true
	case e != 0:
		c.close(lp)
		return false
	case n == 0:
		d.eof = true
		return c.passFIN(lp, i)
	}
	c.count[i].Add(uint64(n))
	if !c.moved.Load() {
		c.moved.Store(true)
	}
	w, ok := write(c.fd[1-i], b[:n])
	if !ok {
		c.close(lp)
		return false
	}
	if int(n) == len(b) {
		lp.again = true // more may be waiting
	}
	if w < int(n) {
		d.bp, d.off, d.n = lp.scratch, w, int(n)
		lp.scratch = copyBufs.Get().(*[]byte)
	}
	return true
}

// flush writes direction i's bytes in hand; false when it closed the
// session.
func (c *loopConn) flush(lp *loop, i int) bool {
	d := &c.dir[i]
	w, ok := write(c.fd[1-i], (*d.bp)[d.off:d.n])
	if !ok {
		c.close(lp)
		return false
	}
	if d.off += w; d.off < d.n {
		return true
	}
	copyBufs.Put(d.bp)
	d.bp = nil
	if d.eof {
		return c.passFIN(lp, i)
	}
	return true
}

// passFIN half-closes the other side once direction i's bytes are all
// written.
func (c *loopConn) passFIN(lp *loop, i int) bool {
	d := &c.dir[i]
	if d.bp != nil || d.shut {
		return true
	}
	d.shut = true
	if err := unix.Shutdown(c.fd[1-i], unix.SHUT_WR); err != nil {
		c.close(lp)
		return false
	}
	return true
}

// write writes b to fd until it is all written or the socket is full;
// false on an error (the peer gone).
func write(fd int, b []byte) (int, bool) {
	off := 0
	for off < len(b) {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[off])), uintptr(len(b)-off))
		switch e {
		case 0:
			off += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return off, true
		default:
			return off, false
		}
	}
	return off, true
}

// watch registers side i's socket for what its directions wait for:
// input while its direction reads, output while the other one has bytes
// for it. A socket that reported a hang-up and waits for nothing leaves
// the epoll set, since level-triggered epoll would report it on every
// wait.
func (c *loopConn) watch(lp *loop, i int) {
	var want uint32
	if c.dir[i].reading() {
		want |= readEvents
	}
	if c.dir[1-i].bp != nil {
		want |= unix.EPOLLOUT
	}
	op := 0
	switch {
	case want == 0 && c.hup[i]:
		if c.registered[i] {
			op = unix.EPOLL_CTL_DEL
		}
	case !c.registered[i]:
		op = unix.EPOLL_CTL_ADD
	case want != c.mask[i]:
		op = unix.EPOLL_CTL_MOD
	}
	if op == 0 {
		return
	}
	ev := unix.EpollEvent{Events: want, Fd: c.slot, Pad: int32(i)}
	if err := unix.EpollCtl(lp.epfd, op, c.fd[i], &ev); err != nil {
		c.close(lp)
		return
	}
	if want&^c.mask[i] != 0 {
		// A socket already ready, and still on epoll's ready list
		// from an earlier report, raises no wake-up when its mask
		// grows: look again before parking.
		lp.again = true
	}
	c.mask[i], c.registered[i] = want, op != unix.EPOLL_CTL_DEL
}

// close closes both sockets and ends the session.
func (c *loopConn) close(lp *loop) {
	if c.closed {
		return
	}
	c.closed = true
	c.done.Store(true)
	c.aborted.Store(true) // nothing more to ask
	if c.watchdog != nil {
		c.watchdog.Stop()
	}
	unix.Close(c.fd[0]) // leaves the epoll set: no other descriptor shares its file
	unix.Close(c.fd[1])
	for i := range c.dir {
		if c.dir[i].bp != nil {
			copyBufs.Put(c.dir[i].bp)
			c.dir[i].bp = nil
		}
	}
	if lp.conns[c.slot] == c {
		lp.conns[c.slot] = nil
		lp.free = append(lp.free, c.slot)
	}
	c.end()
}

// abort asks the loop to close c, from any goroutine.
func (c *loopConn) abort() {
	if !c.aborted.Swap(true) {
		c.lp.post(loopReq{c: c, abort: true})
	}
}

// startWatchdog closes c after idle with no byte either way: it looks
// every half of idle and closes at the second look in a row that found
// nothing, so after between 1 and 1.5 times idle.
func (c *loopConn) startWatchdog() {
	// Armed once assigned, so that checkIdle always finds it.
	c.watchdog = time.AfterFunc(time.Hour, c.checkIdle)
	c.watchdog.Reset(c.idle / 2)
}

func (c *loopConn) checkIdle() {
	if c.done.Load() {
		return
	}
	if c.moved.Swap(false) {
		c.quiet.Store(0)
	} else if c.quiet.Add(1) >= 2 {
		c.abort()
		return
	}
	c.watchdog.Reset(c.idle / 2)
}
