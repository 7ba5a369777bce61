package gslb

import (
	"testing"
	"time"
)

// BenchmarkLatencyDecision measures one latency decision as the DNS front
// makes it (a reused Scratch), with the times of one view for every client
// and with those of the vantage nearest the client; the parallel cases
// show what a lock shared by every query would cost.
func BenchmarkLatencyDecision(b *testing.B) {
	ms := time.Millisecond
	for _, bc := range []struct {
		name     string
		vantages []VantageRTT
	}{
		{"one_view", nil},
		{"nearest_vantage", []VantageRTT{
			{Name: "fra", Lat: 50.1, Lon: 8.7, RTT: map[string]time.Duration{"us-east": 90 * ms, "eu-west": 5 * ms, "ap-northeast": 240 * ms}},
			{Name: "osa", Lat: 34.7, Lon: 135.5, RTT: map[string]time.Duration{"us-east": 150 * ms, "eu-west": 230 * ms, "ap-northeast": 8 * ms}},
			{Name: "iad", Lat: 38.9, Lon: -77.4, RTT: map[string]time.Duration{"us-east": 2 * ms, "eu-west": 80 * ms, "ap-northeast": 160 * ms}},
		}},
	} {
		h := NewHealthMap()
		h.SetRTT("us-east", 30*ms)
		h.SetRTT("eu-west", 10*ms)
		h.SetRTT("ap-northeast", 90*ms)
		h.SetVantageRTTs(bc.vantages)
		r := world(Latency{}, All{})
		e := newEngine(b, h, r)
		e.Refresh()
		b.Run(bc.name, func(b *testing.B) {
			var s Scratch
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Decide(r, paris, &s); d.Pool.Region.Name != "eu-west" {
					b.Fatalf("answered from %s", d.Pool.Region.Name)
				}
			}
		})
		b.Run(bc.name+"_parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var s Scratch
				for pb.Next() {
					if d := e.Decide(r, paris, &s); d.Pool.Region.Name != "eu-west" {
						b.Errorf("answered from %s", d.Pool.Region.Name)
						return
					}
				}
			})
		})
	}
}
