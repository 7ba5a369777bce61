package canary

import (
	"testing"
	"time"
)

// The benchmarks use the real clock: reading it is part of Observe's cost.

func BenchmarkObserve(b *testing.B) {
	g, err := New(Config{Baseline: "v1", Canary: "v2"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			g.Observe("v2", 200, time.Duration(i)*time.Microsecond)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				g.Observe([]string{"v1", "v2"}[i&1], 200+300*(i&1), time.Duration(i)*time.Microsecond)
				i++
			}
		})
	})
	b.Run("other_pool", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g.Observe("v3", 200, time.Millisecond)
		}
	})
}

func BenchmarkEvaluate(b *testing.B) {
	g, err := New(Config{Baseline: "v1", Canary: "v2"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		g.Observe("v1", 200, time.Duration(i)*time.Microsecond)
		g.Observe("v2", 200, time.Duration(i)*time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Evaluate()
	}
}
