package gslb

import "testing"

// BenchmarkDecide measures one decision per policy over three regions,
// with a reused Scratch as the DNS front uses it.
func BenchmarkDecide(b *testing.B) {
	geo := &Geo{Countries: map[string][]string{"FR": {"eu-west"}}, Default: []string{"us-east"}}
	h := NewHealthMap()
	h.SetRTT("us-east", 30e6)
	h.SetRTT("eu-west", 10e6)
	h.SetRTT("ap-northeast", 90e6)
	for _, bc := range []struct {
		name string
		r    *Record
	}{
		{"failover", world(Failover{}, All{})},
		{"geo", world(geo, All{})},
		{"proximity", world(Proximity{}, All{})},
		{"latency", world(Latency{}, All{})},
		{"weighted_random", world(WeightedPools{}, WeightedTargets{Count: 1})},
		{"weighted_stable", world(WeightedPools{Stable: true}, WeightedTargets{Count: 1, Stable: true})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, h, bc.r)
			var s Scratch
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Decide(bc.r, paris, &s); len(d.Addrs) == 0 {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkDecideLoad sets load = "headroom" beside the same record
// without it: off (no load), full (reports below target: nothing to do
// per query) and shedding (a share of 0.5: one hash of the client's
// subnet per query). Compare the rounds side by side, interleaved.
func BenchmarkDecideLoad(b *testing.B) {
	geo := &Geo{Countries: map[string][]string{"FR": {"eu-west"}}, Default: []string{"us-east"}}
	for _, pc := range []struct {
		name   string
		policy RegionPolicy
	}{{"geo", geo}, {"weighted_stable", WeightedPools{Stable: true}}} {
		for _, mode := range []string{"off", "full", "shedding"} {
			b.Run(pc.name+"/"+mode, func(b *testing.B) {
				h := NewHealthMap()
				r := world(pc.policy, All{})
				r.TTL = 5
				if mode != "off" {
					r.Load = LoadHeadroom
				}
				e := newEngine(b, h, r)
				load := 50.0
				if mode == "shedding" {
					load = 118
				}
				report(e, h, 30, loadOf(r.Pools[0], load, 100, 130), loadOf(r.Pools[1], load, 100, 130), loadOf(r.Pools[2], 0, 100, 130))
				var s Scratch
				b.ReportAllocs()
				for b.Loop() {
					if d := e.Decide(r, paris, &s); len(d.Addrs) == 0 {
						b.Fatal("no answer")
					}
				}
			})
		}
	}
}
