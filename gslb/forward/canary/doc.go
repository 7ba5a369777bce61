// Package canary is the forwarder's automatic canary guard: it watches a
// baseline pool and a canary pool and rolls the canary back when it
// serves clearly worse than the baseline.
//
// # API
//
//	g, err := canary.New(canary.Config{
//		Baseline: "web-v1", Canary: "web-v2",
//		Rollback: func(reason string) { /* set the canary's weight to 0 */ },
//	})                                  // validates; errors wrap ErrConfig
//	go g.Run(ctx)                       // evaluates every Interval until ctx ends
//	g.Observe(pool, status, latency)    // from the proxy, once per response
//	st := g.Status()                    // rates, p99s, tripped and why: admin API, metrics
//	g.Reset()                           // re-arm after a new rollout; clears the window
//
// Evaluate runs one evaluation at once (Run calls it on a ticker; tests call
// it with an injected clock).
//
// # What is measured
//
// Each pool's responses are counted over the last Window in ten time
// buckets of Window/10, so data ages out a tenth of the window at a time
// and the window in force covers between nine and ten tenths of Window.
// A bucket holds the requests, the 5xx responses among them and a latency
// histogram. Observe costs a clock read and three atomic adds and never
// allocates; it ignores pools other than the two watched.
//
// The histogram's buckets are log-spaced: eight per power of two of
// microseconds, from 1µs to about 19 hours, so a quantile is known to
// within 12.5%. P99 is reported as the upper bound of the bucket that
// holds the 99th percentile.
//
// # When it trips
//
// Once both pools have at least MinRequests in the window, the canary
// trips the guard when
//
//   - its 5xx rate exceeds the baseline's by more than MaxErrorRateDelta
//     (a fraction: 0.01 is one percentage point), or
//   - its p99 latency exceeds the baseline's times MaxLatencyRatio.
//
// Tripping calls Rollback once, with a reason naming the numbers, logs it
// at Warn and counts it in Status.Trips. The guard then stays tripped,
// evaluating nothing, until Reset.
package canary
