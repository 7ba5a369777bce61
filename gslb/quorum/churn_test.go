package quorum

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
)

// t0 is the churn tests' clock origin; at(s) is s seconds after it.
var t0 = time.Unix(2_000_000, 0)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// obs is one result as a vantage reports it: its state, and when the
// observation backing it was made (window 3 s, as interval 1 s, timeout
// 500 ms and fall 2 give).
type obs struct {
	target health.TargetID
	state  gslb.State
	backed float64
}

// step is one thing that happens to a table, at a time in seconds.
type step struct {
	at       float64
	vantage  string
	boot     uint64
	complete bool
	results  []obs
	gone     bool // the membership lost the vantage
	back     bool // the membership has it again
	periodic bool // the periodic Recompute, instead of the per-message one
}

func up(target health.TargetID, backed float64) obs   { return obs{target, gslb.Up, backed} }
func down(target health.TargetID, backed float64) obs { return obs{target, gslb.Down, backed} }

// whole is a vantage's complete batch of run 1 at s, its states observed
// then.
func whole(s float64, v string, results ...obs) step {
	return step{at: s, vantage: v, boot: 1, complete: true, results: results}
}

func (st step) apply(tb *Table, seq *uint64) []Verdict {
	now := at(st.at)
	switch {
	case st.gone:
		tb.Gone(st.vantage, now)
	case st.back:
		tb.Return(st.vantage)
	case st.vantage != "":
		b := Batch{Vantage: st.vantage, Boot: st.boot, Complete: st.complete}
		for _, o := range st.results {
			*seq++
			b.Results = append(b.Results, TargetResult{o.target, Result{
				State: o.state, Seq: *seq, Seen: now, Backed: at(o.backed), Window: 3 * time.Second, Reason: "checked",
			}})
		}
		tb.MergeBatch(b, now)
	}
	if st.periodic {
		return tb.Recompute(now)
	}
	return tb.RecomputeChanged(now)
}

// TestChurn holds the quorum rules to members that freeze, resume,
// restart, leave and come back: the verdict after every step must be
// what the vantages observed, never a state carried across a gap nor the
// vote of a vantage not yet judged.
func TestChurn(t *testing.T) {
	healthy := []step{
		whole(0, "a", up("t1", 0), up("t2", 0)),
		whole(0, "b", up("t1", 0), up("t2", 0)),
		whole(0, "c", up("t1", 0), up("t2", 0)),
		{at: 0, periodic: true},
	}
	tests := []struct {
		name  string
		rule  string
		steps []step
		want  string // every verdict the steps changed, in order: "t1 down 0/1"
		final string // vantages' statuses at the end: "a voting, b stale"
	}{{
		name: "a resumed vantage's carried up does not outvote a fresh down",
		steps: append(slices.Clone(healthy),
			whole(3, "a", down("t1", 3), up("t2", 3)),
			step{at: 3.5, periodic: true}, // b and c froze at 0: their evidence is 3.5 s old
			// b and c resume: one failure, below fall, leaves them up,
			// but up rests on what they saw before the freeze.
			whole(6, "b", up("t1", 0), up("t2", 6)),
			whole(6, "c", up("t1", 0), up("t2", 6)),
			step{at: 6.5, periodic: true},
			whole(7, "b", down("t1", 7), up("t2", 7)),
		),
		want:  "t1 down 0/1",
		final: "a stale, b voting, c voting", // c: t2 only

	}, {
		name: "a state carried within its window still votes",
		steps: append(slices.Clone(healthy),
			whole(1, "a", down("t1", 1), up("t2", 1)),
			whole(1, "b", up("t1", 0), up("t2", 1)), // one failure below fall: up, seen 1 s ago
		),
		final: "a voting, b voting, c voting",
	}, {
		name: "a vantage that joins votes only once judged on its whole view",
		rule: "1",
		steps: []step{
			whole(0, "a", up("t1", 0), up("t2", 0)),
			whole(0, "b", up("t1", 0), up("t2", 0)),
			{at: 0, periodic: true},
			{at: 1, vantage: "c", boot: 1, results: []obs{down("t1", 1)}}, // its first check only
			{at: 1.2, vantage: "c", boot: 1, results: []obs{down("t2", 1.2)}},
			whole(1.5, "c", down("t1", 1), down("t2", 1.2)),
		},
		want:  "", // no flap: c's downs never counted
		final: "a voting, b voting, c suspect",
	}, {
		name: "a restarted vantage starts over: no vote before it is judged again",
		rule: "1",
		steps: append(slices.Clone(healthy),
			step{at: 2, vantage: "c", boot: 2, results: []obs{down("t1", 2)}},
			step{at: 2.1, vantage: "c", boot: 1, complete: true, results: []obs{up("t1", 1), up("t2", 1)}}, // the old run's, late
			step{at: 2.2, vantage: "c", boot: 2, complete: true, results: []obs{down("t1", 2), down("t2", 2.2)}},
		),
		final: "a voting, b voting, c suspect",
	}, {
		name: "a vantage that dies stops voting at once and shows as gone",
		steps: append(slices.Clone(healthy),
			whole(1, "a", down("t1", 1), up("t2", 1)),
			whole(1, "b", down("t1", 1), up("t2", 1)),
			step{at: 1.5, vantage: "a", gone: true},
		),
		want:  "t1 down 1/2, t1 up 1/1",
		final: "a gone, b voting, c voting",
	}, {
		name: "a gone vantage is forgotten after a minute",
		steps: append(slices.Clone(healthy),
			step{at: 1, vantage: "a", gone: true},
			step{at: 62, periodic: true},
		),
		final: "b stale, c stale",
	}, {
		name: "a vantage back from the dead waits for its whole view",
		rule: "1",
		steps: append(slices.Clone(healthy),
			step{at: 1, vantage: "c", gone: true},
			step{at: 2, vantage: "c", back: true},
			whole(2, "c", down("t1", 2), up("t2", 2)),
		),
		want:  "t1 down 2/1",
		final: "a voting, b voting, c voting",
	}, {
		name: "a dead world is judged per message too",
		steps: append(slices.Clone(healthy),
			whole(1, "a", down("t1", 1), down("t2", 1)),
			whole(1.1, "b", down("t1", 1.1), down("t2", 1.1)),
		),
		want:  "t1 down 1/2, t2 down 1/2",
		final: "a voting, b voting, c voting",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, err := ParseRule(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			tb := New(Options{Rule: rule})
			var seq uint64
			var changes []string
			for _, st := range tt.steps {
				for _, v := range st.apply(tb, &seq) {
					// The healthy start's own verdicts are not the case's.
					if st.at > 0 {
						changes = append(changes, fmt.Sprintf("%s %s %d/%d", v.Target, v.State, v.Up, v.Down))
					}
				}
			}
			if got := strings.Join(changes, ", "); got != tt.want {
				t.Errorf("verdicts changed: %q, want %q", got, tt.want)
			}
			var statuses []string
			last := tt.steps[len(tt.steps)-1].at
			for _, v := range tb.Vantages(at(last)) {
				statuses = append(statuses, v.Name+" "+v.Status)
			}
			if got := strings.Join(statuses, ", "); got != tt.final {
				t.Errorf("vantages: %q, want %q", got, tt.final)
			}
		})
	}
}

// TestCurrentReason: the reason is that of the votes now, not of the
// latest transition, and names the votes set aside.
func TestCurrentReason(t *testing.T) {
	tb := New(Options{})
	var seq uint64
	for _, st := range []step{
		whole(0, "a", down("t1", 0), up("t2", 0)),
		whole(0, "b", down("t1", 0), up("t2", 0)),
		whole(0, "c", down("t1", 0), up("t2", 0)),
		whole(0, "d", down("t1", 0), up("t2", 0)),
		{at: 0, periodic: true},
		whole(1, "d", up("t1", 1), up("t2", 1)),
		{at: 1, vantage: "c", gone: true},
	} {
		st.apply(tb, &seq)
	}
	v, _ := tb.Verdict("t1")
	if want := "2 of 3 vantages see it down (a: checked; b: checked); not counted: c gone"; v.State != gslb.Down || v.Reason != want {
		t.Errorf("t1 %s: reason %q, want %q", v.State, v.Reason, want)
	}
	tb.Recompute(at(30))
	v, _ = tb.Verdict("t1")
	if want := "no vote counts: the last verdict stands (1 of 1 vantages see it down (a: checked))"; !v.Stale || v.Reason != want {
		t.Errorf("stale t1: reason %q, want %q", v.Reason, want)
	}
	got := map[string]string{}
	for _, vote := range v.Votes {
		got[vote.Vantage] = vote.Status
	}
	if want := map[string]string{"a": "stale", "b": "stale", "c": "gone", "d": "stale"}; !maps.Equal(got, want) {
		t.Errorf("vote statuses %v, want %v", got, want)
	}
}
