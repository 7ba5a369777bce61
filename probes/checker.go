package probes

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"time"
)

// Checker probes a target once.
type Checker interface {
	// Check probes once; it must return by ctx's deadline.
	Check(ctx context.Context) Result
}

// Equaler is implemented by checkers that can tell whether another checker
// probes the same thing in the same way. A reload builds new Checker values
// from the configuration; Scheduler.Update uses Equal to recognise the
// unchanged ones and keep their state. Checkers without it are compared
// with ==.
type Equaler interface {
	Equal(other Checker) bool
}

// Result is the outcome of one check.
type Result struct {
	OK bool
	// RTT is the time to the decisive answer: the connection for TCP, the
	// response headers for HTTP. For a failure it is how long the check
	// took to fail, so only the RTT of an OK result measures the target.
	RTT    time.Duration
	Reason string // short and human: "connect: connection refused", "status 503"
}

// Errors, wrapped with the check or target they are about.
var (
	ErrInvalidCheck  = errors.New("invalid check")
	ErrInvalidTarget = errors.New("invalid target")
	ErrStarted       = errors.New("scheduler already started")
)

// sameChecker reports whether a and b probe the same thing the same way.
func sameChecker(a, b Checker) (same bool) {
	if e, ok := a.(Equaler); ok {
		return e.Equal(b)
	}
	defer func() {
		// == panics on checkers of an uncomparable type (a struct holding
		// a slice, used as a value): such checkers count as changed, so
		// their targets restart on every Update.
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// failReason turns the error of a failed check into a Result reason.
// phase names the step that was cut short when the error is a timeout.
func failReason(ctx context.Context, err error, phase string) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return phase + ": timeout"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return phase + ": timeout"
	}
	return describe(err)
}

// describe shortens an error from net or net/http to its cause: Go's
// messages repeat the operation and both addresses, which the operator
// already knows from the target.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed by the server"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return se.Error() // "connect: connection refused"
		}
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}
