package l7

import (
	"net"
	"sync/atomic"
	"time"
)

// timedConn is a fast-path connection whose deadlines move on every
// request. Setting a socket's deadline takes the descriptor's lock and
// moves a runtime timer (which can wake the netpoller's thread), and the
// fast path would do it three or four times a request. So a deadline is
// set on the socket only when the one in force has moved past it by more
// than its slack: the socket's deadline is never later than the one in
// force, and a read or write it ends early is tried again, up to the real
// one. Timeouts fire when they did; the socket's deadline moves about once
// per slack instead of once per request.
type timedConn struct {
	net.Conn
	rd, wr deadline
	// cut is set by an abort (a drain's timeout or shutdown), whose past
	// deadline must end the read or write, not be tried past.
	cut atomic.Bool
}

// deadline is one direction's deadline: in force, and on the socket.
type deadline struct {
	want time.Time // in force; zero: none
	set  time.Time // on the socket; zero: none. Never after want.
}

// deadlineSlack is the share of a timeout by which the socket's deadline
// may fall short of the one in force: a timeout of 60 s moves the socket's
// deadline every 7.5 s, and at most one wake-up in its life is early.
const deadlineSlack = 8

// early reports whether a timeout was the socket's early deadline, not the
// one in force.
func (d *deadline) early(now time.Time) bool {
	return !d.set.IsZero() && (d.want.IsZero() || now.Before(d.want))
}

// keep reports whether the socket's deadline may stay for want, which is
// at timeout from now: it is not later, and falls short by less than the
// slack. A slack of 0 keeps only the same deadline.
func (d *deadline) keep(want time.Time, timeout time.Duration, slack bool) bool {
	switch {
	case !slack:
		return d.set.Equal(want)
	case want.IsZero():
		return true // a deadline left on the socket fires early: tried again
	case d.set.IsZero() || d.set.After(want):
		return false
	}
	return want.Sub(d.set) < timeout/deadlineSlack
}

// setRead makes want the read deadline in force (zero for none); timeout
// is how far want is from now, which sets the slack.
func (c *timedConn) setRead(want time.Time, timeout time.Duration) {
	c.rd.want = want
	if !c.rd.keep(want, timeout, true) {
		c.rd.set = want
		_ = c.Conn.SetReadDeadline(want)
	}
}

// setWrite is setRead for writes. Without slack every change is set on
// the socket: a TLS connection whose write times out is broken, so its
// writes cannot be tried again.
func (c *timedConn) setWrite(want time.Time, timeout time.Duration, slack bool) {
	c.wr.want = want
	if !c.wr.keep(want, timeout, slack) {
		c.wr.set = want
		_ = c.Conn.SetWriteDeadline(want)
	}
}

// exactRead sets the read deadline on the socket as it is, for reads
// whose deadline moves with every read (a body at its pace).
func (c *timedConn) exactRead(t time.Time) {
	c.rd.want, c.rd.set = t, t
	_ = c.Conn.SetReadDeadline(t)
}

// forget leaves the socket with the deadlines in force and drops what c
// knows of them, when the connection goes to net/http, which sets its
// own: a timeout is then always final.
func (c *timedConn) forget() {
	if !c.rd.set.Equal(c.rd.want) {
		_ = c.Conn.SetReadDeadline(c.rd.want)
	}
	if !c.wr.set.Equal(c.wr.want) {
		_ = c.Conn.SetWriteDeadline(c.wr.want)
	}
	c.rd, c.wr = deadline{}, deadline{}
}

// abort ends what c reads or writes now and whatever comes after.
func (c *timedConn) abort() {
	c.cut.Store(true)
	_ = c.Conn.SetDeadline(time.Unix(1, 0))
}

// wake ends a read in progress, and the reads after it, for a listener
// that closes: its past deadline is final, as an abort's is.
func (c *timedConn) wake() {
	c.cut.Store(true)
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
}

func (c *timedConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if n > 0 || err == nil || !c.retry(&c.rd, err) {
			return n, err
		}
		_ = c.Conn.SetReadDeadline(c.rd.want)
		c.rd.set = c.rd.want
	}
}

func (c *timedConn) Write(p []byte) (int, error) {
	done := 0
	for {
		n, err := c.Conn.Write(p[done:])
		done += n
		if err == nil || !c.retry(&c.wr, err) {
			return done, err
		}
		_ = c.Conn.SetWriteDeadline(c.wr.want)
		c.wr.set = c.wr.want
	}
}

// retry reports whether err is d's early deadline, to be moved to the one
// in force before the call is made again.
func (c *timedConn) retry(d *deadline, err error) bool {
	return timedOut(err) && !c.cut.Load() && d.early(time.Now())
}

// deadlineAt is now plus d, or zero (no deadline) for d <= 0.
func deadlineAt(now time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return now.Add(d)
}
