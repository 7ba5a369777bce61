package probes

import (
	"testing"
	"time"
)

func TestHysteresis(t *testing.T) {
	const (
		U = Unknown
		P = true  // a passing result
		F = false // a failing one
	)
	tests := []struct {
		name       string
		rise, fall int
		initial    State
		results    []bool
		want       []State // after each result
	}{
		{"first pass decides at once", 2, 3, U, []bool{P}, []State{Up}},
		{"first failure decides at once", 2, 3, U, []bool{F}, []State{Down}},
		{"down after exactly fall failures", 2, 3, U, []bool{P, F, F, F, F}, []State{Up, Up, Up, Down, Down}},
		{"up after exactly rise passes", 2, 3, U, []bool{F, P, P, P}, []State{Down, Down, Up, Up}},
		{"a pass resets the failures", 2, 3, U, []bool{P, F, F, P, F, F, F}, []State{Up, Up, Up, Up, Up, Up, Down}},
		{"a failure resets the passes", 3, 1, U, []bool{F, P, P, F, P, P, P}, []State{Down, Down, Down, Down, Down, Down, Up}},
		{"initial up needs fall failures", 2, 2, Up, []bool{F, F}, []State{Up, Down}},
		{"initial down needs rise passes", 2, 2, Down, []bool{P, P}, []State{Down, Up}},
		{"rise and fall of 1 follow every result", 1, 1, U, []bool{P, F, P, F}, []State{Up, Down, Up, Down}},
		{"zero counts as 1", 0, 0, Up, []bool{F, P}, []State{Down, Up}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hysteresis{Rise: tt.rise, Fall: tt.fall}
			s := Status{State: tt.initial}
			t0 := time.Unix(1000, 0)
			for i, ok := range tt.results {
				prev := s
				now := t0.Add(time.Duration(i) * time.Second)
				s = h.Next(s, Result{OK: ok}, now)
				if s.State != tt.want[i] {
					t.Fatalf("after result %d (%v): state %v, want %v", i+1, ok, s.State, tt.want[i])
				}
				if s.Changed != (s.State != prev.State) {
					t.Errorf("after result %d: Changed %v going %v to %v", i+1, s.Changed, prev.State, s.State)
				}
				if s.Changed && (!s.Since.Equal(now) || s.Reason == "") {
					t.Errorf("after result %d: changed with Since %v reason %q", i+1, s.Since, s.Reason)
				}
				if !s.Changed && (s.Since != prev.Since || s.Reason != prev.Reason) {
					t.Errorf("after result %d: Since or Reason moved without a change", i+1)
				}
				if !s.Checked.Equal(now) || s.Result.OK != ok {
					t.Errorf("after result %d: Checked %v Result %+v", i+1, s.Checked, s.Result)
				}
				if (ok && (s.Failures != 0 || s.Successes != prev.Successes+1)) || (!ok && (s.Successes != 0 || s.Failures != prev.Failures+1)) {
					t.Errorf("after result %d (%v): %d successes, %d failures", i+1, ok, s.Successes, s.Failures)
				}
			}
		})
	}
}

func TestHysteresisReason(t *testing.T) {
	h := Hysteresis{Rise: 2, Fall: 2}
	var s Status
	steps := []struct {
		r    Result
		want string
	}{
		{Result{OK: true, Reason: "status 200"}, "first check: status 200"},
		{Result{Reason: "status 503"}, "first check: status 200"},
		{Result{Reason: "connect: connection refused"}, "failed 2 in a row: connect: connection refused"},
		{Result{OK: true}, "failed 2 in a row: connect: connection refused"},
		{Result{OK: true}, "passed 2 in a row: passed"},
	}
	for i, st := range steps {
		s = h.Next(s, st.r, time.Now())
		if s.Reason != st.want {
			t.Errorf("step %d: reason %q, want %q", i+1, s.Reason, st.want)
		}
	}
}

// TestHysteresisBacked: Backed is the newest result that agrees with the
// state, so that an Up carried through failures below Fall (or across a
// gap) shows how old the evidence for it is.
func TestHysteresisBacked(t *testing.T) {
	const (
		P = true
		F = false
	)
	tests := []struct {
		name       string
		rise, fall int
		results    []bool
		backed     []int // after each result: the index of the result backing the state
		streak     []int
	}{
		{"every pass backs up", 2, 2, []bool{P, P, P}, []int{0, 1, 2}, []int{1, 2, 3}},
		{"failures below fall leave up on the last pass", 2, 3, []bool{P, F, F, F}, []int{0, 0, 0, 3}, []int{1, 0, 0, 3}},
		{"passes below rise leave down on the last failure", 2, 2, []bool{F, P, P}, []int{0, 0, 2}, []int{1, 0, 2}},
		{"a failure after a pass within rise backs down again", 3, 1, []bool{F, P, F}, []int{0, 0, 2}, []int{1, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hysteresis{Rise: tt.rise, Fall: tt.fall}
			var s Status
			t0 := time.Unix(1000, 0)
			for i, ok := range tt.results {
				s = h.Next(s, Result{OK: ok}, t0.Add(time.Duration(i)*time.Second))
				if want := t0.Add(time.Duration(tt.backed[i]) * time.Second); !s.Backed.Equal(want) {
					t.Errorf("after result %d: %v backed by result %d, want %d", i+1, s.State, int(s.Backed.Sub(t0)/time.Second), tt.backed[i])
				}
				if s.Streak() != tt.streak[i] {
					t.Errorf("after result %d: streak %d, want %d", i+1, s.Streak(), tt.streak[i])
				}
			}
		})
	}
}
