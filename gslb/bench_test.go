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
