// Package runner is the lifecycle the long-running commands share (meridian
// serve, forward and probe): their logger, their metrics registry, and the
// loop that reloads on SIGHUP or on request and shuts down when its context
// ends (SIGTERM, SIGINT). It knows nothing of what it runs.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// busyTimeout is how long Request waits for the loop to take a reload.
const busyTimeout = 30 * time.Second

// Errors Request returns when the loop does not take the reload.
var (
	ErrStopped = errors.New("the server is shutting down")
	ErrBusy    = errors.New("the server is busy; try again")
	// ErrFailed wraps what Run returns when the service stopped by itself.
	ErrFailed = errors.New("stopped by itself")
)

// Loop is what Run runs: how to reload, how to stop, and what to watch.
type Loop struct {
	// Reload loads the configuration again and puts it in force, or
	// changes nothing and says why. attrs go on the "reloaded" entry.
	// Nil: the command does not reload.
	Reload func() (attrs []any, err error)
	// Failed reports that the service stopped by itself (a listener
	// died): Run logs StopMsg and returns the error
	// wrapped in ErrFailed without calling Shutdown; the caller cleans up.
	Failed <-chan error
	// StopMsg is logged when the service stops by itself.
	StopMsg string
	// Shutdown stops the service, within its grace, when ctx ends.
	Shutdown func() error
	// Reloads counts reloads by result ("success", "failure"); may be nil.
	Reloads *prometheus.CounterVec
	// FailMsg is logged when a reload fails.
	FailMsg string
	Log     *slog.Logger
}

// Runner runs one Loop. Make it with New before anything is bound, so a
// SIGHUP sent the moment the service is up reloads it rather than kill it.
type Runner struct {
	hup      chan os.Signal // nil: SIGHUP keeps its default action
	requests chan chan error
	stopped  chan struct{}
	stopOnce sync.Once
}

// New returns a runner catching SIGHUP from now on when reload is set.
// Close stops catching it.
func New(reload bool) *Runner {
	r := &Runner{requests: make(chan chan error), stopped: make(chan struct{})}
	if reload {
		r.hup = make(chan os.Signal, 1)
		signal.Notify(r.hup, syscall.SIGHUP)
	}
	return r
}

// Close stops catching SIGHUP and fails the reloads requested from now on.
func (r *Runner) Close() {
	if r.hup != nil {
		signal.Stop(r.hup)
	}
	r.stop()
}

func (r *Runner) stop() { r.stopOnce.Do(func() { close(r.stopped) }) }

// Request runs a reload on the loop, as SIGHUP does, and returns its
// result (for an admin API). It fails at once once the loop has ended.
func (r *Runner) Request() error {
	reply := make(chan error, 1)
	select {
	case r.requests <- reply:
	case <-r.stopped:
		return ErrStopped
	case <-time.After(busyTimeout):
		return ErrBusy
	}
	return <-reply
}

// Run serves l until ctx ends, then shuts it down and returns Shutdown's
// error; or until the service stops by itself (ErrFailed).
func (r *Runner) Run(ctx context.Context, l Loop) error {
	defer r.stop() // before the caller's deferred shutdowns: requests fail at once
	for {
		select {
		case <-r.hup:
			_ = r.reload(l)
		case reply := <-r.requests:
			reply <- r.reload(l)
		case err := <-l.Failed:
			l.Log.Error(l.StopMsg, "err", err)
			return fmt.Errorf("%w: %w", ErrFailed, err)
		case <-ctx.Done():
			return l.Shutdown()
		}
	}
}

// reload runs one reload, counting and logging its result.
func (r *Runner) reload(l Loop) error {
	if l.Reload == nil {
		return errors.New("reloads are not supported")
	}
	attrs, err := l.Reload()
	result := "success"
	if err != nil {
		result = "failure"
	}
	if l.Reloads != nil {
		l.Reloads.WithLabelValues(result).Inc()
	}
	if err != nil {
		l.Log.Error(l.FailMsg, "err", err)
		return err
	}
	l.Log.Info("reloaded", attrs...)
	return nil
}
