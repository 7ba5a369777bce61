package gslb

import (
	"math"
	"testing"
)

// TestSettleLoad: a held load settles where the node's controller would:
// full share up to the target, the smoothstep between target and max
// (within the hysteresis), none from max; target and max come from the
// reports, else are assumed.
func TestSettleLoad(t *testing.T) {
	tests := []struct {
		name     string
		pct      float64
		reported bool // use reports target 100, max 130
		wantGoal float64
	}{
		{"assumed, below target", 50, false, 1},
		{"assumed, at target", 80, false, 1},
		{"assumed, between", 90, false, headroomShare(90, 80, 100)},
		{"assumed, near max", 95, false, headroomShare(95, 80, 100)},
		{"assumed, at max", 100, false, 0},
		{"assumed, far past max", 1000, false, 0},
		{"reported, below target", 70, true, 1},
		{"reported, between", 90, true, headroomShare(0.9*130, 100, 130)},
		{"reported, past max", 150, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealthMap()
			r := world(Failover{}, All{})
			r.Load, r.TTL = LoadHeadroom, 30
			e := newEngine(t, h, r)
			if tc.reported {
				report(e, h, 5, loadOf(r.Pools[0], 10, 100, 130))
			}
			f := e.Fork(nil)
			got := f.SettleLoad(map[string]float64{"us-east": tc.pct})
			if len(got) != 1 || got[0].Key != PoolKey(r, r.Pools[0]) || got[0].Assumed == tc.reported {
				t.Fatalf("settled %+v, want us-east's pool, assumed %v", got, !tc.reported)
			}
			if math.Abs(got[0].Share-tc.wantGoal) > DefaultLoadHysteresis+1e-9 || got[0].Steps >= maxSettleSteps {
				t.Errorf("share %v after %d steps, want %v", got[0].Share, got[0].Steps, tc.wantGoal)
			}
			if pl := f.Loads(r)[0]; pl.Share != got[0].Share {
				t.Errorf("the fork's plan holds share %v, settled %v", pl.Share, got[0].Share)
			}
			if pl := e.Loads(r)[0]; tc.pct > 100 && pl.Share != 1 {
				t.Errorf("settling the fork moved the engine's share to %v", pl.Share)
			}
		})
	}
}
