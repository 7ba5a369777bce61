package quorum

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		in   string
		want Rule
		need [3]int // Need(1), Need(4), Need(5)
		err  bool
	}{
		{in: "", want: Rule{}, need: [3]int{1, 3, 3}},
		{in: "majority", want: Rule{}, need: [3]int{1, 3, 3}},
		{in: "2", want: Rule{Count: 2}, need: [3]int{1, 2, 2}},
		{in: "60%", want: Rule{Fraction: 0.6}, need: [3]int{1, 3, 3}},
		{in: "0.5", want: Rule{Fraction: 0.5}, need: [3]int{1, 2, 3}},
		{in: "100%", want: Rule{Fraction: 1}, need: [3]int{1, 4, 5}},
		{in: "0", err: true},
		{in: "1.5", err: true},
		{in: "120%", err: true},
		{in: "most", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRule(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadRule) {
					t.Fatalf("ParseRule(%q) error = %v, want ErrBadRule", tt.in, err)
				}
				return
			}
			if err != nil || r != tt.want {
				t.Fatalf("ParseRule(%q) = %+v, %v; want %+v", tt.in, r, err, tt.want)
			}
			if got := [3]int{r.Need(1), r.Need(4), r.Need(5)}; got != tt.need {
				t.Errorf("Need(1,4,5) = %v, want %v", got, tt.need)
			}
		})
	}
}

// vantages names five vantages, a to e.
var vantages = []string{"a", "b", "c", "d", "e"}

// feed merges one result per vantage for target: states[i] for vantage i,
// '+' up, '-' down, '.' nothing.
func feed(tb *Table, target health.TargetID, states string, seq uint64, seen time.Time) {
	for i, c := range states {
		if c == '.' {
			continue
		}
		st, reason := gslb.Up, "status 200"
		if c == '-' {
			st, reason = gslb.Down, "status 503"
		}
		tb.Merge(vantages[i], target, Result{State: st, Seq: seq, Seen: seen, Reason: reason, RTT: time.Millisecond})
	}
}

func TestVerdicts(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := []struct {
		name    string
		rule    string
		votes   map[health.TargetID]string // target -> states
		want    map[health.TargetID]string // target -> "state up/down"
		suspect string
	}{
		{
			name:  "2 of 5 down stays up",
			votes: map[health.TargetID]string{"t1": "--+++", "t2": "+++++"},
			want:  map[health.TargetID]string{"t1": "up 3/2", "t2": "up 5/0"},
		},
		{
			name:  "3 of 5 down is down",
			votes: map[health.TargetID]string{"t1": "---++", "t2": "+++++"},
			want:  map[health.TargetID]string{"t1": "down 2/3", "t2": "up 5/0"},
		},
		{
			name:  "a tie keeps a target up under a majority",
			votes: map[health.TargetID]string{"t1": "--++.", "t2": "++++."},
			want:  map[health.TargetID]string{"t1": "up 2/2", "t2": "up 4/0"},
		},
		{
			name:  "a count quorum",
			rule:  "2",
			votes: map[health.TargetID]string{"t1": "--+++", "t2": "++-++"},
			want:  map[health.TargetID]string{"t1": "down 3/2", "t2": "up 4/1"},
		},
		{
			name:  "the quorum is capped at the vantages voting",
			rule:  "3",
			votes: map[health.TargetID]string{"t1": "--...", "t2": "++..."},
			want:  map[health.TargetID]string{"t1": "down 0/2", "t2": "up 2/0"},
		},
		{
			name:    "a vantage that sees everything down is suspect and does not vote",
			votes:   map[health.TargetID]string{"t1": "--+++", "t2": "-++++", "t3": "-++++"},
			want:    map[health.TargetID]string{"t1": "up 3/1", "t2": "up 4/0", "t3": "up 4/0"},
			suspect: "a",
		},
		{
			name:  "a dead world is no vantage's fault",
			votes: map[health.TargetID]string{"t1": "-----", "t2": "-----"},
			want:  map[health.TargetID]string{"t1": "down 0/5", "t2": "down 0/5"},
		},
		{
			name:  "one target down everywhere suspects nobody",
			votes: map[health.TargetID]string{"t1": "-----", "t2": "+++++"},
			want:  map[health.TargetID]string{"t1": "down 0/5", "t2": "up 5/0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, err := ParseRule(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			tb := New(Options{Rule: rule})
			for target, states := range tt.votes {
				feed(tb, target, states, 1, now)
			}
			tb.Recompute(now)
			for target, want := range tt.want {
				v, ok := tb.Verdict(target)
				if !ok {
					t.Fatalf("no verdict for %s", target)
				}
				if got := fmt.Sprintf("%s %d/%d", v.State, v.Up, v.Down); got != want {
					t.Errorf("%s: %s, want %s (%s)", target, got, want, v.Reason)
				}
			}
			var suspects []string
			for _, v := range tb.Vantages(now) {
				if v.Suspect {
					suspects = append(suspects, v.Name)
				}
			}
			if got := strings.Join(suspects, ","); got != tt.suspect {
				t.Errorf("suspects = %q, want %q", got, tt.suspect)
			}
		})
	}
}

func TestStaleAndForget(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tb := New(Options{StaleAfter: 10 * time.Second})
	feed(tb, "t1", "---++", 1, now)
	if ch := tb.Recompute(now); len(ch) != 1 || ch[0].State != gslb.Down {
		t.Fatalf("first verdict: %+v", ch)
	}
	v, _ := tb.Verdict("t1")
	if !strings.HasPrefix(v.Reason, "3 of 5 vantages see it down (a: status 503; b: status 503; c: status 503)") {
		t.Errorf("reason %q", v.Reason)
	}

	// Vantage a leaves: 2 of 4 down is a tie, and a tie keeps it up.
	tb.Forget("a")
	ch := tb.Recompute(now)
	if len(ch) != 1 || ch[0].State != gslb.Up || ch[0].Up != 2 || ch[0].Down != 2 {
		t.Fatalf("after a left: %+v", ch)
	}

	// d and e confirm later; b and c go quiet and age out: only up votes.
	later := now.Add(11 * time.Second)
	feed(tb, "t1", "...++", 1, later)
	tb.Recompute(later)
	v, _ = tb.Verdict("t1")
	if v.State != gslb.Up || v.Up != 2 || v.Down != 0 || v.Stale {
		t.Fatalf("with b and c stale: %+v", v)
	}
	for _, vote := range v.Votes {
		if fresh := vote.Vantage == "d" || vote.Vantage == "e"; vote.Fresh != fresh {
			t.Errorf("vote %s fresh = %v", vote.Vantage, vote.Fresh)
		}
	}

	// Nobody confirms: the last verdict stays, marked stale.
	much := later.Add(time.Minute)
	if ch := tb.Recompute(much); len(ch) != 0 {
		t.Fatalf("stale votes changed the state: %+v", ch)
	}
	v, _ = tb.Verdict("t1")
	if v.State != gslb.Up || !v.Stale {
		t.Fatalf("with every vote stale: %+v", v)
	}
}

func TestMergeKeepsNewest(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tb := New(Options{})
	tests := []struct {
		r    Result
		want bool
	}{
		{Result{State: gslb.Down, Seq: 5, Seen: now}, true},
		{Result{State: gslb.Up, Seq: 4, Seen: now.Add(time.Second)}, false},  // older version, however recent
		{Result{State: gslb.Down, Seq: 5, Seen: now}, false},                 // a repeat
		{Result{State: gslb.Down, Seq: 5, Seen: now.Add(time.Second)}, true}, // a refresh
		{Result{State: gslb.Up, Seq: 6, Seen: now}, true},
		{Result{State: gslb.Unknown, Seq: 7, Seen: now}, false}, // not a vote
	}
	for i, tt := range tests {
		if got := tb.Merge("a", "t1", tt.r); got != tt.want {
			t.Errorf("merge %d (%+v) = %v, want %v", i, tt.r, got, tt.want)
		}
	}
	e := tb.Entries()
	if len(e) != 1 || e[0].Seq != 6 || e[0].State != gslb.Up {
		t.Fatalf("entries %+v", e)
	}
}

func BenchmarkRecompute(b *testing.B) {
	now := time.Unix(1_000_000, 0)
	tb := New(Options{})
	for i := range 1000 {
		feed(tb, health.TargetID(fmt.Sprintf("r%d/10.0.%d.%d", i%3, i/256, i%256)), "+++-+", 1, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		tb.Recompute(now)
	}
}

func TestRecomputeChanged(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tb := New(Options{})
	feed(tb, "t1", "+++++", 1, now)
	feed(tb, "t2", "+++++", 1, now)
	if ch := tb.RecomputeChanged(now); len(ch) != 2 {
		t.Fatalf("first results: %d changes, want 2", len(ch))
	}
	// A refresh confirms: nothing to decide.
	feed(tb, "t1", "+++++", 1, now.Add(time.Second))
	if ch := tb.RecomputeChanged(now.Add(time.Second)); ch != nil {
		t.Fatalf("a refresh changed %+v", ch)
	}
	// A quorum goes down on t2: only t2 is decided, and it changes.
	feed(tb, "t2", "---..", 2, now.Add(2*time.Second))
	ch := tb.RecomputeChanged(now.Add(2 * time.Second))
	if len(ch) != 1 || ch[0].Target != "t2" || ch[0].State != gslb.Down {
		t.Fatalf("after t2 failed: %+v", ch)
	}
	b, err := json.Marshal(ch[0].Votes[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"vantage":"a","state":"down","status":"voting","rtt_ms":1,"age_s":0,"observed_s":0,"streak":0,"reason":"status 503","fresh":true,"suspect":false}`; string(b) != want {
		t.Errorf("vote JSON %s, want %s", b, want)
	}
}

func TestRetain(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tb := New(Options{})
	feed(tb, "kept", "+++++", 1, now)
	feed(tb, "removed", "-----", 1, now)
	tb.Recompute(now)
	tb.Retain(map[health.TargetID]bool{"kept": true})
	if _, ok := tb.Verdict("removed"); ok {
		t.Error("a removed target still has a verdict")
	}
	if v, ok := tb.Verdict("kept"); !ok || v.State != gslb.Up {
		t.Errorf("the kept target: %+v %v", v, ok)
	}
	if n := len(tb.Entries()); n != 5 {
		t.Errorf("%d results held, want the kept target's 5", n)
	}
	if vs := tb.Vantages(now); len(vs) != 5 || vs[0].Targets != 1 {
		t.Errorf("vantages %+v", vs)
	}
}
