package quorum

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
)

// DefaultStaleAfter is how long a result votes after it was last known
// current, when Options.StaleAfter is 0.
const DefaultStaleAfter = 10 * time.Second

// minSuspectTargets is how many targets a vantage must see, all down, to
// be suspected of a bad path: with one target, "every target down" says
// nothing about the vantage.
const minSuspectTargets = 2

// ErrBadRule is returned for a quorum that is not a count, a fraction or
// "majority".
var ErrBadRule = errors.New("quorum must be \"majority\", a count such as 3, or a share such as 60% or 0.6")

// Rule is how many of the voting vantages must see a target down to take
// it out of the answers: a count, a fraction, or (the zero Rule) a
// majority.
type Rule struct {
	Count    int     // at least this many (capped at the number voting)
	Fraction float64 // at least this share, rounded up; used when Count is 0
}

// ParseRule reads "majority", a count ("3") or a share ("60%", "0.6").
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || strings.EqualFold(s, "majority"):
		return Rule{}, nil
	case strings.HasSuffix(s, "%"):
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || f <= 0 || f > 100 {
			return Rule{}, fmt.Errorf("%q: %w", s, ErrBadRule)
		}
		return Rule{Fraction: f / 100}, nil
	case strings.Contains(s, "."):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1 {
			return Rule{}, fmt.Errorf("%q: %w", s, ErrBadRule)
		}
		return Rule{Fraction: f}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Rule{}, fmt.Errorf("%q: %w", s, ErrBadRule)
	}
	return Rule{Count: n}, nil
}

// Need is how many of n voting vantages must see a target down. It is at
// least 1 and at most n, so that a cluster that lost vantages can still
// take a dead target out.
func (r Rule) Need(n int) int {
	need := n/2 + 1 // a majority: a tie keeps the target up
	switch {
	case r.Count > 0:
		need = r.Count
	case r.Fraction > 0:
		need = int(math.Ceil(r.Fraction*float64(n) - 1e-9))
	}
	return max(1, min(need, n))
}

func (r Rule) String() string {
	switch {
	case r.Count > 0:
		return strconv.Itoa(r.Count)
	case r.Fraction > 0:
		return strconv.FormatFloat(r.Fraction*100, 'f', -1, 64) + "%"
	}
	return "majority"
}

// Result is one vantage's latest verdict on one target.
type Result struct {
	State  gslb.State // Up or Down; Unknown results are not kept
	Seq    uint64     // the vantage's version of this result: a higher one replaces a lower
	RTT    time.Duration
	Reason string
	// Seen is the local time at which the result was last known to be
	// current: when the vantage last confirmed it, less any delay of its
	// checks. It is local so that clocks of different hosts never meet.
	Seen time.Time
}

// newer reports whether r replaces old.
func (r Result) newer(old Result) bool {
	return r.Seq > old.Seq || r.Seq == old.Seq && r.Seen.After(old.Seen)
}

// Entry is a Result with whose it is, as exported for push/pull.
type Entry struct {
	Vantage, Target string
	Result
}

// Options configure a Table.
type Options struct {
	Rule       Rule
	StaleAfter time.Duration // DefaultStaleAfter when 0
}

// Vote is one vantage's part in a target's verdict.
type Vote struct {
	Vantage string
	State   string
	RTT     time.Duration // smoothed, of its successful checks
	Age     time.Duration // since the result was last known current
	Reason  string
	Fresh   bool // younger than StaleAfter: it votes
	Suspect bool // its vantage is suspect: it does not vote
}

// MarshalJSON writes times in the API's units: milliseconds for round
// trips, seconds for ages.
func (v Vote) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Vantage string  `json:"vantage"`
		State   string  `json:"state"`
		RTT     float64 `json:"rtt_ms,omitempty"`
		Age     float64 `json:"age_s"`
		Reason  string  `json:"reason,omitempty"`
		Fresh   bool    `json:"fresh"`
		Suspect bool    `json:"suspect"`
	}{v.Vantage, v.State, float64(v.RTT.Microseconds()) / 1000, v.Age.Seconds(), v.Reason, v.Fresh, v.Suspect})
}

// Verdict is a target's state as the vantages decide it.
type Verdict struct {
	Target string     `json:"target"`
	State  gslb.State `json:"state"`
	// Up and Down count the votes that decided: fresh, from vantages not
	// suspect.
	Up    int  `json:"votes_up"`
	Down  int  `json:"votes_down"`
	Need  int  `json:"votes_needed_down"` // Down votes that take it out, of those voting
	Stale bool `json:"stale"`             // no vote is fresh: State is the last verdict
	// Since and Reason describe the latest transition.
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Votes  []Vote    `json:"vantages"`
}

// Vantage is what a Table knows of one vantage.
type Vantage struct {
	Name    string
	Targets int           // results held
	Fresh   int           // of which fresh
	Age     time.Duration // of its freshest result
	Suspect bool
}

// MarshalJSON writes the age in seconds.
func (v Vantage) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string  `json:"name"`
		Targets int     `json:"targets"`
		Fresh   int     `json:"fresh"`
		Age     float64 `json:"age_s"`
		Suspect bool    `json:"suspect"`
	}{v.Name, v.Targets, v.Fresh, v.Age.Seconds(), v.Suspect})
}

// Table holds every vantage's latest result per target and the verdicts
// computed from them. It is safe for concurrent use.
type Table struct {
	rule  Rule
	stale time.Duration

	mu       sync.Mutex
	results  map[string]map[string]Result // target -> vantage -> result
	verdicts map[string]*Verdict
	suspects map[string]bool
	// dirty holds the targets whose votes changed since they were last
	// decided: a refresh that only confirms a result leaves it clean, so
	// deciding after each message costs what changed, not the table.
	dirty map[string]bool
}

// New returns an empty table.
func New(opts Options) *Table {
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	return &Table{
		rule: opts.Rule, stale: opts.StaleAfter,
		results: map[string]map[string]Result{}, verdicts: map[string]*Verdict{}, suspects: map[string]bool{},
		dirty: map[string]bool{},
	}
}

// Merge keeps r as vantage's result for target if it is newer than the one
// held, and reports whether it was.
func (t *Table) Merge(vantage, target string, r Result) bool {
	if r.State != gslb.Up && r.State != gslb.Down || vantage == "" || target == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	byV := t.results[target]
	if byV == nil {
		byV = map[string]Result{}
		t.results[target] = byV
	}
	old, ok := byV[vantage]
	if ok && !r.newer(old) {
		return false
	}
	if !ok || old.State != r.State || r.Seen.Sub(old.Seen) > t.stale {
		t.dirty[target] = true
	}
	byV[vantage] = r
	return true
}

// Forget drops every result of a vantage, which then stops voting at once:
// for a vantage that left the cluster or was declared dead.
func (t *Table) Forget(vantage string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for target, byV := range t.results {
		if _, ok := byV[vantage]; !ok {
			continue
		}
		delete(byV, vantage)
		t.dirty[target] = true
		if len(byV) == 0 {
			delete(t.results, target)
		}
	}
	delete(t.suspects, vantage)
}

// Retain forgets every target keep does not hold: after a reload removed
// them, their votes and verdicts would otherwise stay for ever, in memory
// and in the metrics.
func (t *Table) Retain(keep map[string]bool) {
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

// Entries returns every result held, for a peer's full-state exchange.
func (t *Table) Entries() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Entry
	for target, byV := range t.results {
		for v, r := range byV {
			out = append(out, Entry{Vantage: v, Target: target, Result: r})
		}
	}
	return out
}

// Recompute decides every target's state at now, suspects and ageing
// included, and returns the verdicts that changed state. Call it
// periodically, since results age without any message arriving.
func (t *Table) Recompute(now time.Time) []Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.suspects = t.findSuspects(now)
	clear(t.dirty)
	return t.decideAll(now, t.results)
}

// RecomputeChanged decides only the targets whose votes changed since
// they were last decided, with the suspects of the latest Recompute: what
// to call after each message, cheaply.
func (t *Table) RecomputeChanged(now time.Time) []Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dirty) == 0 {
		return nil
	}
	some := make(map[string]map[string]Result, len(t.dirty))
	for target := range t.dirty {
		some[target] = t.results[target] // nil for a target no vantage reports any more
	}
	clear(t.dirty)
	return t.decideAll(now, some)
}

// decideAll decides the targets of results; t.mu is held.
func (t *Table) decideAll(now time.Time, results map[string]map[string]Result) []Verdict {
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
	slices.SortFunc(changed, func(a, b Verdict) int { return strings.Compare(a.Target, b.Target) })
	return changed
}

func (t *Table) fresh(r Result, now time.Time) bool { return now.Sub(r.Seen) <= t.stale }

// decide updates v from the votes of byV and reports whether its state
// changed.
func (t *Table) decide(v *Verdict, byV map[string]Result, now time.Time) bool {
	v.Up, v.Down, v.Votes = 0, 0, v.Votes[:0]
	for name, r := range byV {
		vote := Vote{
			Vantage: name, State: r.State.String(), RTT: r.RTT, Age: max(now.Sub(r.Seen), 0),
			Reason: r.Reason, Fresh: t.fresh(r, now), Suspect: t.suspects[name],
		}
		v.Votes = append(v.Votes, vote)
		if !vote.Fresh || vote.Suspect {
			continue
		}
		if r.State == gslb.Up {
			v.Up++
		} else {
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
	state := gslb.Up
	if v.Down >= v.Need {
		state = gslb.Down
	}
	if state == v.State {
		return false
	}
	// Sorted only now: the order matters to the reason and to readers,
	// who get copies through copyOf, and sorting each time would cost
	// most of a recompute.
	slices.SortFunc(v.Votes, func(a, b Vote) int { return strings.Compare(a.Vantage, b.Vantage) })
	reason := fmt.Sprintf("%d of %d vantages see it up", v.Up, n)
	if state == gslb.Down {
		var downReasons []string
		for _, vote := range v.Votes {
			if vote.Fresh && !vote.Suspect && vote.State == "down" {
				downReasons = append(downReasons, vote.Vantage+": "+vote.Reason)
			}
		}
		reason = fmt.Sprintf("%d of %d vantages see it down (%s)", v.Down, n, strings.Join(downReasons, "; "))
	}
	v.State, v.Since, v.Reason = state, now, reason
	return true
}

// findSuspects returns the vantages that see every target they check down
// while the other vantages see most of those targets up: a bad path from
// one place, not a dead world. t.mu is held.
func (t *Table) findSuspects(now time.Time) map[string]bool {
	type tally struct{ seen, othersUp int }
	all := map[string]*tally{} // vantages whose fresh results are all down
	mixed := map[string]bool{}
	for _, byV := range t.results {
		for name, r := range byV {
			if !t.fresh(r, now) {
				continue
			}
			if r.State == gslb.Up {
				mixed[name] = true
				continue
			}
			if all[name] == nil {
				all[name] = &tally{}
			}
		}
	}
	for name := range mixed {
		delete(all, name)
	}
	if len(all) == 0 {
		return map[string]bool{}
	}
	for _, byV := range t.results {
		up, down := 0, 0
		for _, r := range byV {
			if !t.fresh(r, now) {
				continue
			}
			if r.State == gslb.Up {
				up++
			} else {
				down++
			}
		}
		for name, tl := range all {
			r, ok := byV[name]
			if !ok || !t.fresh(r, now) {
				continue
			}
			tl.seen++
			// The others: every fresh vote but this vantage's own down.
			if up > down-1 && up > 0 {
				tl.othersUp++
			}
		}
	}
	out := map[string]bool{}
	for name, tl := range all {
		if tl.seen >= minSuspectTargets && 2*tl.othersUp > tl.seen {
			out[name] = true
		}
	}
	return out
}

func (t *Table) copyOf(v *Verdict) Verdict {
	c := *v
	c.Votes = slices.Clone(v.Votes)
	slices.SortFunc(c.Votes, func(a, b Vote) int { return strings.Compare(a.Vantage, b.Vantage) })
	return c
}

// Verdict returns a target's verdict as of the latest Recompute.
func (t *Table) Verdict(target string) (Verdict, bool) {
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
	slices.SortFunc(out, func(a, b Verdict) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// Vantages summarises the vantages with results held, sorted by name.
func (t *Table) Vantages(now time.Time) []Vantage {
	t.mu.Lock()
	defer t.mu.Unlock()
	by := map[string]*Vantage{}
	for _, byV := range t.results {
		for name, r := range byV {
			v := by[name]
			if v == nil {
				v = &Vantage{Name: name, Age: time.Duration(math.MaxInt64), Suspect: t.suspects[name]}
				by[name] = v
			}
			v.Targets++
			if t.fresh(r, now) {
				v.Fresh++
			}
			v.Age = min(v.Age, max(now.Sub(r.Seen), 0))
		}
	}
	out := make([]Vantage, 0, len(by))
	for _, v := range by {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b Vantage) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Rule returns the table's quorum rule.
func (t *Table) Rule() Rule { return t.rule }
