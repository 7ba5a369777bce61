package quorum

import (
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// minSuspectTargets is how many targets a vantage must see, all down, to
// be suspected of a bad path: with one target, "every target down" says
// nothing about the vantage.
const minSuspectTargets = 2

// keepGone is how long a vantage the membership lost stays listed, not
// voting, so that operators see what went rather than a silent gap.
const keepGone = time.Minute

// A vote's or a vantage's status: whether it counts, and if not, why.
const (
	StatusVoting  = "voting"
	StatusStale   = "stale"   // not heard within stale_after, or its state not backed by a recent observation
	StatusSuspect = "suspect" // sees every target down that the others see up
	StatusJoining = "joining" // new, restarted or back: not yet judged on its whole view
	StatusGone    = "gone"    // left the cluster or was declared dead
)

// vantage is what the table knows of one vantage beyond its results.
type vantage struct {
	boot     uint64    // its run, from its batches
	complete bool      // it sent its whole view in this run, or since it came back
	judged   bool      // complete and judged since: it votes unless suspect
	suspect  bool      // as of its latest judgement
	gone     time.Time // when the membership lost it; zero while a member
}

// status is why v's votes count or not; fresh is whether the result (or
// any of its results) is.
func (v *vantage) status(fresh bool) string {
	switch {
	case v == nil || !v.gone.IsZero():
		return StatusGone
	case !v.judged:
		return StatusJoining
	case v.suspect:
		return StatusSuspect
	case !fresh:
		return StatusStale
	}
	return StatusVoting
}

// startRun returns the state of b's vantage, started over when b comes
// from a new run, and whether to take b at all; t.mu is held.
func (t *Table) startRun(b Batch) (*vantage, bool) {
	vs := t.vantages[b.Vantage]
	switch {
	case vs == nil:
		vs = &vantage{boot: b.Boot}
		t.vantages[b.Vantage] = vs
	case b.Boot == 0 || b.Boot == vs.boot:
	case b.Boot < vs.boot:
		return nil, false // an earlier run's, passed on late by a peer
	default:
		// Restarted: what its earlier run saw is no evidence of what
		// the new one sees, and the new one votes once judged.
		t.dropResults(b.Vantage)
		*vs = vantage{boot: b.Boot, gone: vs.gone}
	}
	return vs, true
}

// Gone marks a vantage the membership lost (left, or declared dead): it
// stops voting at once, and stays listed as gone for keepGone.
func (t *Table) Gone(name string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	vs := t.vantages[name]
	if vs == nil || !vs.gone.IsZero() {
		return
	}
	vs.gone = now
	t.markTargets(name)
}

// Return marks a vantage the membership has again (a frozen agent that
// resumed, a partition that healed): it votes once it has sent its whole
// view and been judged on it.
func (t *Table) Return(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	vs := t.vantages[name]
	if vs == nil || vs.gone.IsZero() {
		return
	}
	*vs = vantage{boot: vs.boot}
	t.markTargets(name)
}

// markTargets marks every target the vantage reports to be decided
// again; t.mu is held.
func (t *Table) markTargets(name string) {
	for target, byV := range t.results {
		if _, ok := byV[name]; ok {
			t.dirty[target] = true
		}
	}
}

// purgeGone forgets the vantages gone for longer than keepGone; t.mu is
// held.
func (t *Table) purgeGone(now time.Time) {
	for name, vs := range t.vantages {
		if !vs.gone.IsZero() && now.Sub(vs.gone) > keepGone {
			t.forget(name)
		}
	}
}

// judgeChanged judges the vantages whose view changed, and those
// suspect, whose standing depends on the others' views; t.mu is held.
func (t *Table) judgeChanged(now time.Time) {
	for name, vs := range t.vantages {
		if vs.suspect {
			t.judge[name] = true
		}
	}
	for name := range t.judge {
		t.judgeOne(name, now)
	}
	clear(t.judge)
}

// judgeOne decides whether a vantage that sent its whole view is suspect,
// and marks its targets when its standing changed; t.mu is held. A
// healthy vantage costs little: the first fresh up result clears it.
func (t *Table) judgeOne(name string, now time.Time) {
	vs := t.vantages[name]
	if vs == nil || !vs.complete || !vs.gone.IsZero() {
		return
	}
	suspect := t.suspectOf(name, now)
	if vs.judged && suspect == vs.suspect {
		return
	}
	vs.judged, vs.suspect = true, suspect
	t.markTargets(name)
}

// judgeAll judges every vantage that sent its whole view; t.mu is held.
// The targets are all decided after it, so none is marked.
func (t *Table) judgeAll(now time.Time) {
	for name, vs := range t.vantages {
		if vs.complete && vs.gone.IsZero() {
			vs.judged, vs.suspect = true, t.suspectOf(name, now)
		}
	}
}

// suspectOf reports whether a vantage sees every target it checks down
// (two or more) while the other vantages see most of those targets up: a
// bad path from one place, not a dead world. t.mu is held.
func (t *Table) suspectOf(name string, now time.Time) bool {
	seen, othersUp := 0, 0
	for _, byV := range t.results {
		r, ok := byV[name]
		if !ok || !t.fresh(r, now) {
			continue
		}
		if r.State == health.Up {
			return false
		}
		seen++
		if t.othersSeeUp(byV, name, now) {
			othersUp++
		}
	}
	return seen >= minSuspectTargets && 2*othersUp > seen
}

// othersSeeUp reports whether more of the other members' fresh results
// for a target are up than down. Vantages not yet judged count: judging
// several that arrive together (a node's join) must not depend on their
// order.
func (t *Table) othersSeeUp(byV map[string]Result, name string, now time.Time) bool {
	up, down := 0, 0
	for other, r := range byV {
		if vs := t.vantages[other]; other == name || vs == nil || !vs.gone.IsZero() || !t.fresh(r, now) {
			continue
		}
		if r.State == health.Up {
			up++
		} else {
			down++
		}
	}
	return up > down
}
