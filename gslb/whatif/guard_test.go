package whatif

import (
	"slices"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb"
)

func TestGuardsInSimulations(t *testing.T) {
	half := 50.0
	guards := []Guard{
		{Name: "two-regions", Record: "app.example.test", MinRegions: 2},
		{Name: "us-half", Record: "app.example.test", Pool: "us-east", MaxDrainedPercent: &half},
		{Name: "us-east-stays", NeverDrain: "us-east"},
	}
	tests := []struct {
		name     string
		health   []string // targets down in the state in force
		scenario Scenario
		broken   []string // "guard: reason part"
	}{
		{name: "one region out keeps two", scenario: Scenario{Drain: []string{"eu-west"}}},
		{name: "two regions out breaks min_regions", scenario: Scenario{Drain: []string{"eu-west"}, Down: []string{"ap-northeast"}},
			broken: []string{"two-regions: app.example.test A would keep 1 region(s) in rotation (us-east), fewer than 2"}},
		{name: "never_drain", scenario: Scenario{Drain: []string{"us-east"}},
			broken: []string{"us-half: app.example.test A pool us-east would have 100% of its targets drained, more than 50%", "us-east-stays: region us-east is never drained"}},
		{name: "half of the pool is at the limit", scenario: Scenario{Drain: []string{"us-east/192.0.2.100"}}},
		{name: "already broken by health: a change that does not make it worse passes",
			health: []string{"eu-west/198.51.100.100", "ap-northeast/203.0.113.100"}, scenario: Scenario{Drain: []string{"us-east/192.0.2.100"}}},
		{name: "already broken by health: taking the last region out is refused",
			health: []string{"eu-west/198.51.100.100", "ap-northeast/203.0.113.100"}, scenario: Scenario{Down: []string{"us-east"}},
			broken: []string{"two-regions: app.example.test A would keep 0 region(s) in rotation (none)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, idx := fixture(t, gslb.FailOpen)
			h := e.Health().(*gslb.HealthMap)
			for _, id := range tt.health {
				h.Set(id, gslb.Down)
			}
			e.Refresh()
			rep, err := Simulate(e, tt.scenario, TableRows(idx), guards)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range rep.Guards {
				got = append(got, v.Guard+": "+v.Reason)
			}
			if len(got) != len(tt.broken) {
				t.Fatalf("broken = %q, want %q", got, tt.broken)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.broken[i]) {
					t.Errorf("broken[%d] = %q, want it to start %q", i, got[i], tt.broken[i])
				}
			}
		})
	}
}

func TestBroken(t *testing.T) {
	e, _ := fixture(t, gslb.FailOpen)
	guards := []Guard{{Name: "two-regions", Record: "app.example.test", MinRegions: 2}}
	if got := Broken(guards, e); len(got) != 0 {
		t.Fatalf("broken with everything up: %v", got)
	}
	h := e.Health().(*gslb.HealthMap)
	h.Set("eu-west/198.51.100.100", gslb.Down)
	h.Set("ap-northeast/203.0.113.100", gslb.Down)
	e.Refresh()
	got := Broken(guards, e)
	if len(got) != 1 || got[0].Guard != "two-regions" || !strings.Contains(got[0].Reason, "keeps 1 region(s) in rotation (us-east)") {
		t.Fatalf("broken = %v", got)
	}
	if !slices.ContainsFunc(got, func(v Violation) bool { return strings.Contains(v.Error(), `guard "two-regions"`) }) {
		t.Errorf("the error does not name the guard: %v", got[0])
	}
}
