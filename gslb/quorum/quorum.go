package quorum

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// DefaultStaleAfter is how long a result votes after it was last known
// current, when Options.StaleAfter is 0.
const DefaultStaleAfter = 10 * time.Second

// Result is one vantage's latest verdict on one target.
type Result struct {
	State  health.State // Up or Down; Unknown results are not kept
	Seq    uint64       // the vantage's version of this result: a higher one replaces a lower
	RTT    time.Duration
	Reason string
	// Seen is the local time at which the result was last known to be
	// current: when the vantage last confirmed it, less any delay of its
	// checks. It is local so that clocks of different hosts never meet.
	Seen time.Time
	// Backed is the local time of the newest observation that agrees
	// with State, and Window how long State may stand without one (the
	// check's rise or fall intervals and its timeout). Past it the state
	// was carried, through failures below fall or across a freeze, a
	// restart or a clock jump, not observed, and the result votes no
	// more. A zero Window sets no such bound (agents older than it).
	Backed time.Time
	Window time.Duration
	Streak int // consecutive observations that agree with State
}

// newer reports whether r replaces old.
func (r Result) newer(old Result) bool {
	return r.Seq > old.Seq || r.Seq == old.Seq && r.Seen.After(old.Seen)
}

// backed reports whether r's state rests on an observation young enough.
func (r Result) backed(now time.Time) bool {
	return r.Window <= 0 || now.Sub(r.Backed) <= r.Window
}

// Entry is a Result with whose it is.
type Entry struct {
	Vantage string
	Target  health.TargetID
	Result
}

// TargetResult is one result of a Batch.
type TargetResult struct {
	Target health.TargetID
	Result
}

// Batch is what one message of a vantage brings.
type Batch struct {
	Vantage string
	// Boot names the vantage's run (its start time): a batch of an
	// earlier run is refused, and the first of a later one starts the
	// vantage over, its earlier results dropped and its votes held until
	// it is judged. 0: the sender does not say (older agents).
	Boot uint64
	// Complete says the batch is the vantage's whole view, every target
	// it checks: only then can it be judged a suspect or not, so only
	// then do its votes count.
	Complete bool
	Results  []TargetResult
}

// Options configure a Table.
type Options struct {
	Rule       Rule
	StaleAfter time.Duration // DefaultStaleAfter when 0
}

// Vote is one vantage's part in a target's verdict.
type Vote struct {
	Vantage  string
	State    string
	RTT      time.Duration // smoothed, of its successful checks
	Age      time.Duration // since the result was last known current
	Observed time.Duration // since the observation that backs its state
	Streak   int           // observations in a row that agree with its state
	Reason   string
	// Fresh: heard within StaleAfter and its state backed by a recent
	// observation.
	Fresh   bool
	Suspect bool   // its vantage is suspect: it does not vote
	Status  string // StatusVoting, or why the vote does not count
}

// MarshalJSON writes times in the API's units: milliseconds for round
// trips, seconds for ages.
func (v Vote) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Vantage  string  `json:"vantage"`
		State    string  `json:"state"`
		Status   string  `json:"status"`
		RTT      float64 `json:"rtt_ms,omitempty"`
		Age      float64 `json:"age_s"`
		Observed float64 `json:"observed_s"`
		Streak   int     `json:"streak"`
		Reason   string  `json:"reason,omitempty"`
		Fresh    bool    `json:"fresh"`
		Suspect  bool    `json:"suspect"`
	}{v.Vantage, v.State, v.Status, float64(v.RTT.Microseconds()) / 1000, v.Age.Seconds(), v.Observed.Seconds(),
		v.Streak, v.Reason, v.Fresh, v.Suspect})
}

// Verdict is a target's state as the vantages decide it.
type Verdict struct {
	Target health.TargetID `json:"target"`
	State  health.State    `json:"state"`
	// Up and Down count the votes that decided: fresh, from vantages
	// judged and not suspect.
	Up    int  `json:"votes_up"`
	Down  int  `json:"votes_down"`
	Need  int  `json:"votes_needed_down"` // Down votes that take it out, of those voting
	Stale bool `json:"stale"`             // no vote counts: State is the last verdict
	// Since is the latest transition; Reason says why the target is in
	// its state now (the log has the reason of each transition).
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Votes  []Vote    `json:"vantages"`
	// changed is the reason of the latest transition, which a stale
	// verdict still rests on.
	changed string
}

// Vantage is what a Table knows of one vantage.
type Vantage struct {
	Name    string
	Targets int           // results held
	Fresh   int           // of which fresh
	Age     time.Duration // of its freshest result
	Suspect bool
	Status  string // StatusVoting, or why its votes do not count
}

// MarshalJSON writes the age in seconds.
func (v Vantage) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string  `json:"name"`
		Status  string  `json:"status"`
		Targets int     `json:"targets"`
		Fresh   int     `json:"fresh"`
		Age     float64 `json:"age_s"`
		Suspect bool    `json:"suspect"`
	}{v.Name, v.Status, v.Targets, v.Fresh, v.Age.Seconds(), v.Suspect})
}

// Table holds every vantage's latest result per target and the verdicts
// computed from them. It is safe for concurrent use.
type Table struct {
	rule  Rule
	stale time.Duration

	mu       sync.Mutex
	results  map[health.TargetID]map[string]Result // target -> vantage -> result
	verdicts map[health.TargetID]*Verdict
	vantages map[string]*vantage
	// dirty holds the targets whose votes changed since they were last
	// decided: a refresh that only confirms a result leaves it clean, so
	// deciding after each message costs what changed, not the table.
	dirty map[health.TargetID]bool
	// judge holds the vantages whose view changed since they were last
	// judged: they are judged before the dirty targets are decided, so
	// that a vantage never votes on a view it was not judged on.
	judge map[string]bool
}

// New returns an empty table.
func New(opts Options) *Table {
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	return &Table{
		rule: opts.Rule, stale: opts.StaleAfter,
		results: map[health.TargetID]map[string]Result{}, verdicts: map[health.TargetID]*Verdict{}, vantages: map[string]*vantage{},
		dirty: map[health.TargetID]bool{}, judge: map[string]bool{},
	}
}

// Merge keeps r as vantage's result for target if it is newer than the one
// held, and reports whether it was. The vantage counts as having sent its
// whole view: this is the path of senders that do not say (and of tests).
func (t *Table) Merge(vantage string, target health.TargetID, r Result) bool {
	return t.MergeBatch(Batch{Vantage: vantage, Complete: true, Results: []TargetResult{{target, r}}}, r.Seen)
}

// MergeBatch keeps each result of b that is newer than the one held, at
// now, and reports whether anything changed.
func (t *Table) MergeBatch(b Batch, now time.Time) bool {
	if b.Vantage == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	vs, ok := t.startRun(b)
	if !ok {
		return false
	}
	changed := false
	for _, tr := range b.Results {
		if t.merge(b.Vantage, tr.Target, tr.Result, now) {
			changed = true
		}
	}
	if b.Complete && !vs.complete {
		vs.complete = true
		t.judge[b.Vantage] = true
		changed = true
	}
	return changed
}

// merge keeps one result; t.mu is held.
func (t *Table) merge(name string, target health.TargetID, r Result, now time.Time) bool {
	if r.State != health.Up && r.State != health.Down || target == "" {
		return false
	}
	byV := t.results[target]
	if byV == nil {
		byV = map[string]Result{}
		t.results[target] = byV
	}
	old, ok := byV[name]
	if ok && !r.newer(old) {
		return false
	}
	if !ok || old.State != r.State {
		t.dirty[target] = true
		t.judge[name] = true // its view changed: judged again before it counts
	} else if t.fresh(old, now) != t.fresh(r, now) {
		t.dirty[target] = true
	}
	byV[name] = r
	return true
}

// Forget drops every result of a vantage at once.
func (t *Table) Forget(vantage string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forget(vantage)
}

func (t *Table) forget(name string) {
	t.dropResults(name)
	delete(t.vantages, name)
	delete(t.judge, name)
}

// dropResults removes a vantage's results; t.mu is held.
func (t *Table) dropResults(name string) {
	for target, byV := range t.results {
		if _, ok := byV[name]; !ok {
			continue
		}
		delete(byV, name)
		t.dirty[target] = true
		if len(byV) == 0 {
			delete(t.results, target)
		}
	}
}

// Retain forgets every target keep does not hold: after a reload removed
// them, their votes and verdicts would otherwise stay for ever, in memory
// and in the metrics.
func (t *Table) Retain(keep map[health.TargetID]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for target := range t.results {
		if !keep[target] {
			delete(t.results, target)
		}
	}
	for target := range t.verdicts {
		if !keep[target] {
			delete(t.verdicts, target)
		}
	}
	for target := range t.dirty {
		if !keep[target] {
			delete(t.dirty, target)
		}
	}
}

// Entries returns the results of the vantages still members, for the
// round-trip times.
func (t *Table) Entries() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Entry
	for target, byV := range t.results {
		for v, r := range byV {
			if vs := t.vantages[v]; vs != nil && vs.gone.IsZero() {
				out = append(out, Entry{Vantage: v, Target: target, Result: r})
			}
		}
	}
	return out
}

// Batches returns what the table holds of each vantage still a member,
// as batches a peer merges in a full-state exchange: complete when the
// vantage sent its whole view in its current run.
func (t *Table) Batches() []Batch {
	t.mu.Lock()
	defer t.mu.Unlock()
	by := map[string]*Batch{}
	for name, vs := range t.vantages {
		if vs.gone.IsZero() {
			by[name] = &Batch{Vantage: name, Boot: vs.boot, Complete: vs.complete}
		}
	}
	for target, byV := range t.results {
		for name, r := range byV {
			if b := by[name]; b != nil {
				b.Results = append(b.Results, TargetResult{Target: target, Result: r})
			}
		}
	}
	out := make([]Batch, 0, len(by))
	for _, b := range by {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Batch) int { return strings.Compare(a.Vantage, b.Vantage) })
	return out
}

// Recompute decides every target's state at now, suspects and ageing
// included, and returns the verdicts that changed state. Call it
// periodically, since results age without any message arriving.
func (t *Table) Recompute(now time.Time) []Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.purgeGone(now)
	t.judgeAll(now)
	clear(t.dirty)
	clear(t.judge)
	return t.decideAll(now, t.results)
}

// RecomputeChanged judges the vantages whose view changed and decides
// the targets whose votes changed since they were last decided: what to
// call after each message, cheaply.
func (t *Table) RecomputeChanged(now time.Time) []Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.judge) > 0 {
		t.judgeChanged(now)
	}
	if len(t.dirty) == 0 {
		return nil
	}
	some := make(map[health.TargetID]map[string]Result, len(t.dirty))
	for target := range t.dirty {
		some[target] = t.results[target] // nil for a target no vantage reports any more
	}
	clear(t.dirty)
	return t.decideAll(now, some)
}

// decideAll decides the targets of results; t.mu is held.
func (t *Table) decideAll(now time.Time, results map[health.TargetID]map[string]Result) []Verdict {
	var changed []Verdict
	for target, byV := range results {
		v := t.verdicts[target]
		if v == nil {
			if byV == nil {
				continue
			}
			v = &Verdict{Target: target}
			t.verdicts[target] = v
		}
		if t.decide(v, byV, now) {
			changed = append(changed, t.copyOf(v))
		}
	}
	slices.SortFunc(changed, func(a, b Verdict) int { return cmp.Compare(a.Target, b.Target) })
	return changed
}

// fresh reports whether r may vote at now, as far as its age goes: heard
// within StaleAfter, and its state backed by a recent observation.
func (t *Table) fresh(r Result, now time.Time) bool {
	return now.Sub(r.Seen) <= t.stale && r.backed(now)
}

// voteOf is r as vantage name's vote at now; t.mu is held.
func (t *Table) voteOf(name string, r Result, now time.Time) Vote {
	vote := Vote{
		Vantage: name, State: r.State.String(), RTT: r.RTT, Age: max(now.Sub(r.Seen), 0), Streak: r.Streak,
		Reason: r.Reason, Fresh: t.fresh(r, now),
	}
	vote.Observed = vote.Age
	if !r.Backed.IsZero() {
		vote.Observed = max(now.Sub(r.Backed), 0)
	}
	vote.Status = t.vantages[name].status(vote.Fresh)
	vote.Suspect = vote.Status == StatusSuspect
	return vote
}

// decide updates v from the votes of byV and reports whether its state
// changed.
func (t *Table) decide(v *Verdict, byV map[string]Result, now time.Time) bool {
	v.Up, v.Down, v.Votes = 0, 0, v.Votes[:0]
	for name, r := range byV {
		vote := t.voteOf(name, r, now)
		v.Votes = append(v.Votes, vote)
		switch {
		case vote.Status != StatusVoting:
		case r.State == health.Up:
			v.Up++
		default:
			v.Down++
		}
	}
	n := v.Up + v.Down
	v.Stale = n == 0
	if v.Stale {
		v.Need = 0
		return false // keeps its last state
	}
	v.Need = t.rule.Need(n)
	state := health.Up
	if v.Down >= v.Need {
		state = health.Down
	}
	if state == v.State {
		return false
	}
	// Sorted only now: the order matters to the reason and to readers,
	// who get copies through copyOf, and sorting each time would cost
	// most of a recompute.
	sortVotes(v.Votes)
	v.State, v.Since = state, now
	v.changed = reasonOf(v)
	return true
}

func sortVotes(votes []Vote) {
	slices.SortFunc(votes, func(a, b Vote) int { return strings.Compare(a.Vantage, b.Vantage) })
}

// reasonOf says why v is in its state, from its votes (sorted): those
// that count, and those set aside and why.
func reasonOf(v *Verdict) string {
	var down, aside []string
	for _, vote := range v.Votes {
		switch {
		case vote.Status != StatusVoting:
			aside = append(aside, vote.Vantage+" "+vote.Status)
		case vote.State == "down":
			down = append(down, vote.Vantage+": "+vote.Reason)
		}
	}
	n := v.Up + v.Down
	var s string
	switch {
	case v.Stale:
		s = "no vote counts: the last verdict stands (" + v.changed + ")"
	case v.State == health.Down:
		s = fmt.Sprintf("%d of %d vantages see it down (%s)", v.Down, n, strings.Join(down, "; "))
	case len(down) > 0:
		s = fmt.Sprintf("%d of %d vantages see it up (down: %s)", v.Up, n, strings.Join(down, "; "))
	default:
		s = fmt.Sprintf("%d of %d vantages see it up", v.Up, n)
	}
	if len(aside) > 0 && !v.Stale {
		s += "; not counted: " + strings.Join(aside, ", ")
	}
	return s
}

// copyOf is v for a reader, its reason the current one; t.mu is held.
func (t *Table) copyOf(v *Verdict) Verdict {
	c := *v
	c.Votes = slices.Clone(v.Votes)
	sortVotes(c.Votes)
	c.Reason = reasonOf(&c)
	return c
}

// Verdict returns a target's verdict as of the latest Recompute.
func (t *Table) Verdict(target health.TargetID) (Verdict, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.verdicts[target]
	if !ok {
		return Verdict{}, false
	}
	return t.copyOf(v), true
}

// Verdicts returns every target's verdict as of the latest Recompute,
// sorted by target.
func (t *Table) Verdicts() []Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Verdict, 0, len(t.verdicts))
	for _, v := range t.verdicts {
		out = append(out, t.copyOf(v))
	}
	slices.SortFunc(out, func(a, b Verdict) int { return cmp.Compare(a.Target, b.Target) })
	return out
}

// Vantages summarises the vantages known, sorted by name.
func (t *Table) Vantages(now time.Time) []Vantage {
	t.mu.Lock()
	defer t.mu.Unlock()
	by := map[string]*Vantage{}
	for name := range t.vantages {
		by[name] = &Vantage{Name: name, Age: time.Duration(math.MaxInt64)}
	}
	for _, byV := range t.results {
		for name, r := range byV {
			v := by[name]
			if v == nil {
				continue // every merge records its vantage: this is not reached
			}
			v.Targets++
			if t.fresh(r, now) {
				v.Fresh++
			}
			v.Age = min(v.Age, max(now.Sub(r.Seen), 0))
		}
	}
	out := make([]Vantage, 0, len(by))
	for name, v := range by {
		if v.Targets == 0 {
			v.Age = 0
		}
		v.Status = t.vantages[name].status(v.Fresh > 0)
		v.Suspect = v.Status == StatusSuspect
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b Vantage) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Rule returns the table's quorum rule.
func (t *Table) Rule() Rule { return t.rule }
