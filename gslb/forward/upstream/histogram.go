package upstream

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are the upper bounds of the latency histograms, in
// seconds: fine below 100 ms, where a proxy's and a healthy backend's
// times are, coarse above.
var latencyBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// latencyBucketNS are latencyBuckets in nanoseconds, compared without
// floating point on the request path.
var latencyBucketNS = func() [len(latencyBuckets)]int64 {
	var out [len(latencyBuckets)]int64
	for i, s := range latencyBuckets {
		out[i] = int64(s * float64(time.Second))
	}
	return out
}()

// Histogram is a latency histogram kept in atomics: observe costs two
// atomic adds, and Prometheus reads it as a const histogram when scraped.
type Histogram struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNS  atomic.Int64
}

func (h *Histogram) Observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(latencyBucketNS) && ns > latencyBucketNS[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(ns)
}

// Metric returns the histogram as Prometheus has it.
func (h *Histogram) Metric(d *prometheus.Desc, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var total uint64
	for i, ub := range latencyBuckets {
		total += h.counts[i].Load()
		buckets[ub] = total
	}
	total += h.counts[len(latencyBuckets)].Load()
	return prometheus.MustNewConstHistogram(d, total, time.Duration(h.sumNS.Load()).Seconds(), buckets, labels...)
}

// Quantile estimates the q quantile (0 to 1) as Prometheus's
// histogram_quantile does, interpolating within the bucket; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	var counts [len(latencyBuckets) + 1]uint64
	var total uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	return quantileOf(counts[:], total, q)
}

func quantileOf(counts []uint64, total uint64, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	lower := 0.0
	for i, c := range counts {
		if i == len(latencyBuckets) {
			return time.Duration(lower * float64(time.Second)) // +Inf: the highest finite bound
		}
		upper := latencyBuckets[i]
		if seen+float64(c) >= rank && c > 0 {
			frac := (rank - seen) / float64(c)
			return time.Duration((lower + (upper-lower)*frac) * float64(time.Second))
		}
		seen += float64(c)
		lower = upper
	}
	return time.Duration(lower * float64(time.Second))
}

// StatusClass is the index of a status in the per-class counters:
// status/100, 0 when there was no answer.
func StatusClass(code int) int {
	if code < 100 || code > 599 {
		return 0
	}
	return code / 100
}

// classNames label the per-class counters.
var ClassNames = [6]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}
