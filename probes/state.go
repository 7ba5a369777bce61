package probes

import (
	"fmt"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// State is a target's health as its checks see it: health.State, the one
// state type of checks, vantages and engine, named here for the probes'
// other callers (the forwarder).
type State = health.State

// Target states.
const (
	Unknown = health.Unknown // no result yet
	Up      = health.Up
	Down    = health.Down
)

// Status is what is known of one target after its latest result.
type Status struct {
	State   State
	Result  Result    // the latest result
	Checked time.Time // when Result came in; zero before the first
	// Consecutive results of the same kind, the latest included; one of
	// the two is always 0.
	Successes, Failures int
	Since               time.Time // when State last changed; zero if it never has
	// Backed is when the newest result that agrees with State came in:
	// what the state rests on. During a run of results against it
	// (fewer than Fall failures while Up), it stays at the last one for
	// it, so that a state carried across a gap is not taken for a fresh
	// observation.
	Backed  time.Time
	Reason  string // why State last changed: "failed 3 in a row: status 503"
	Changed bool   // the latest result changed State
}

// Hysteresis is the rule that turns results into a State: from Unknown the
// first result decides at once, so a restarted node is not blind for
// Rise × interval; after that it takes Fall consecutive failures to go Down
// and Rise consecutive successes to come Up. This is HAProxy's initial
// state split by the first result: a first failure takes the target down
// at once (HAProxy's default "init-state up"), a first success brings it
// up at once (its "init-state down"); before it, the target is Unknown and
// a vantage does not vote for it.
type Hysteresis struct {
	Rise, Fall int // values below 1 count as 1
}

// Next returns s updated by the result r, which came in at now.
func (h Hysteresis) Next(s Status, r Result, now time.Time) Status {
	s.Result, s.Checked, s.Changed = r, now, false
	if r.OK {
		s.Successes, s.Failures = s.Successes+1, 0
	} else {
		s.Successes, s.Failures = 0, s.Failures+1
	}
	to, reason := s.State, ""
	switch {
	case s.State == Unknown:
		to, reason = Down, "first check: "+resultReason(r)
		if r.OK {
			to = Up
		}
	case s.State == Down && r.OK && s.Successes >= max(h.Rise, 1):
		to, reason = Up, fmt.Sprintf("passed %d in a row: %s", s.Successes, resultReason(r))
	case s.State == Up && !r.OK && s.Failures >= max(h.Fall, 1):
		to, reason = Down, fmt.Sprintf("failed %d in a row: %s", s.Failures, resultReason(r))
	}
	if to != s.State {
		s.State, s.Since, s.Reason, s.Changed = to, now, reason, true
	}
	if r.OK == (s.State == Up) {
		s.Backed = now
	}
	return s
}

// Streak is the number of consecutive results, the latest included, that
// agree with State: 0 while the latest disagree (within Rise or Fall).
func (s Status) Streak() int {
	switch s.State {
	case Up:
		return s.Successes
	case Down:
		return s.Failures
	}
	return 0
}

func resultReason(r Result) string {
	switch {
	case r.Reason != "":
		return r.Reason
	case r.OK:
		return "passed"
	}
	return "failed"
}
