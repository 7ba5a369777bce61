package canary

import (
	"math/bits"
	"time"
)

// The latency histogram counts microseconds in log-spaced buckets: below
// histSub one bucket per microsecond, then histSub buckets per power of
// two, so each bucket is at most 1/histSub of its lower bound wide. This
// is HDR histogram's layout cut down to what a p99 comparison needs, and
// finding a bucket is a shift and a bit count instead of a logarithm.
const (
	histSubBits = 3
	histSub     = 1 << histSubBits
	// histMaxExp is the largest power of two of microseconds with
	// buckets of its own (2^36µs is 19 hours); longer latencies share
	// the last bucket.
	histMaxExp = 35
	nHist      = (histMaxExp - histSubBits + 2) * histSub
)

// histIndex returns the bucket counting latency d.
func histIndex(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	v := uint64(d / time.Microsecond)
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v is in [2^e, 2^(e+1))
	i := (e-histSubBits+1)*histSub + int((v>>(e-histSubBits))&(histSub-1))
	return min(i, nHist-1)
}

// histUpper returns the exclusive upper bound of bucket i.
func histUpper(i int) time.Duration {
	if i < histSub {
		return time.Duration(i+1) * time.Microsecond
	}
	g, s := i/histSub, i%histSub
	lower := uint64(histSub+s) << (g - 1)
	return time.Duration(lower+1<<(g-1)) * time.Microsecond
}

// quantile returns the upper bound of the bucket holding the q-quantile
// of hist, whose counts add up to n; zero when n is zero.
func quantile(hist *[nHist]uint64, n uint64, q float64) time.Duration {
	if n == 0 {
		return 0
	}
	// The rank of the q-quantile, counting from 1: for q = 0.99 and 100
	// requests, the 99th.
	rank := uint64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i := range hist {
		seen += hist[i]
		if seen >= rank {
			return histUpper(i)
		}
	}
	return histUpper(nHist - 1)
}
