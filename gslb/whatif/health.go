package whatif

import (
	"time"

	"github.com/meridian-gslb/meridian/gslb"
)

// forced is a health view with some targets' states forced over a base
// view's (nil: every target unknown). Both sides of a simulation read
// one, the state in force with nothing forced, so they are decided alike:
// the plan folds a region's round-trip times, not a cluster's vantages.
type forced struct {
	base   gslb.HealthView
	states map[string]gslb.State
}

var _ gslb.HealthView = forced{}

// State implements gslb.HealthView.
func (f forced) State(target string) gslb.State {
	if st, ok := f.states[target]; ok {
		return st
	}
	if f.base == nil {
		return gslb.Unknown
	}
	return f.base.State(target)
}

// RTT implements gslb.HealthView.
func (f forced) RTT(region string) (time.Duration, bool) {
	if f.base == nil {
		return 0, false
	}
	return f.base.RTT(region)
}
