package upstream

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/sony/gobreaker/v2"
)

// Outcomes a breaker is told of. errTryFailed is a failure; errTryExcluded
// (the client went away, say) counts neither way.
var (
	ErrTryFailed   = errors.New("backend failed the request")
	ErrTryExcluded = errors.New("outcome says nothing of the backend")
)

// Breaker is a backend's circuit breaker: gobreaker's state machine, with
// its state mirrored in atomics so that the availability gate, which runs
// for every backend on every pick, reads it without gobreaker's mutex.
type Breaker struct {
	cfg config.ForwardBreaker
	cb  *gobreaker.TwoStepCircuitBreaker[struct{}]

	state     atomic.Int32 // a gobreaker.State
	openUntil atomic.Int64 // unix ns the open state lasts until
}

// newBreaker builds the breaker of backend s; cfg is enabled.
func newBreaker(cfg config.ForwardBreaker, s *BackendState, log *slog.Logger) *Breaker {
	br := &Breaker{cfg: cfg}
	br.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        s.ID,
		MaxRequests: uint32(cfg.Probes),
		Interval:    cfg.Interval.Duration,
		Timeout:     cfg.OpenTime.Duration,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if cfg.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= uint32(cfg.ConsecutiveFailures) {
				return true
			}
			return cfg.FailureRatio > 0 && c.Requests >= uint32(max(cfg.MinRequests, 1)) &&
				float64(c.TotalFailures) >= cfg.FailureRatio*float64(c.Requests)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, ErrTryExcluded) },
		// Runs under gobreaker's lock: atomics, a log line and the pool's
		// recount, which takes only the pool's lock.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			br.state.Store(int32(to))
			switch to {
			case gobreaker.StateOpen:
				br.openUntil.Store(time.Now().Add(cfg.OpenTime.Duration).UnixNano())
				s.BreakerOpens.Add(1)
				log.Warn("circuit breaker open", "pool", s.Pool.Name, "backend", s.Addr, "from", from.String(), "for", cfg.OpenTime.Duration)
				// The capacity count should see the backend back once
				// a probe may go, even if no request comes to send one.
				time.AfterFunc(cfg.OpenTime.Duration, s.Pool.Refresh)
			case gobreaker.StateHalfOpen:
				log.Info("circuit breaker half-open: probing", "pool", s.Pool.Name, "backend", s.Addr, "probes", cfg.Probes)
			case gobreaker.StateClosed:
				log.Info("circuit breaker closed", "pool", s.Pool.Name, "backend", s.Addr)
			}
			s.Pool.Refresh()
		},
	})
	return br
}

// admits reports whether the breaker may let a request through: closed,
// half-open (gobreaker then admits only the probes), or open past its
// time, when the next request becomes the probe.
func (br *Breaker) admits() bool {
	if gobreaker.State(br.state.Load()) != gobreaker.StateOpen {
		return true
	}
	return time.Now().UnixNano() >= br.openUntil.Load()
}

// Admit asks the backend's breaker for a request. ok is false when the
// breaker refuses (open, or half-open with its probes out): pick another
// backend. Otherwise done, nil without a breaker, must be told the
// outcome: nil, errTryFailed or errTryExcluded.
func (b *Backend) Admit() (done func(error), ok bool) {
	br := b.State.Breaker.Load()
	if br == nil {
		return nil, true
	}
	done, err := br.cb.Allow()
	if err != nil {
		return nil, false
	}
	return done, true
}

// StateName is the breaker's state for the admin API and metrics.
func (br *Breaker) StateName() string {
	if br == nil {
		return ""
	}
	return gobreaker.State(br.state.Load()).String()
}

// State is the breaker's state, read without gobreaker's lock.
func (br *Breaker) State() gobreaker.State { return gobreaker.State(br.state.Load()) }
