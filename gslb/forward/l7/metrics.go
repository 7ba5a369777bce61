package l7

import (
	"maps"
	"slices"

	"github.com/meridian-gslb/meridian/gslb/forward/canary"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
	"github.com/prometheus/client_golang/prometheus"
)

// The L7 proxy's metrics are read from its own counters when scraped, as
// the forwarder's are; the forwarder's collector asks for them.
var (
	routeLabels = []string{"listener", "route"}

	descHTTPActive = prometheus.NewDesc("meridian_forward_http_active_requests",
		"Requests in flight on the http listener, upgraded connections (WebSocket) included.", []string{"listener"}, nil)
	descHTTPFast = prometheus.NewDesc("meridian_forward_http_fast_path_requests_total",
		"Requests the HTTP/1.1 fast path took, without net/http.", []string{"listener"}, nil)
	descHTTPHandoffs = prometheus.NewDesc("meridian_forward_http_handoffs_total",
		"Connections the fast path handed to net/http: HTTP/2, or a request it does not take (a body, an upgrade, a rate-limited route...).", []string{"listener"}, nil)
	descRouteRequests = prometheus.NewDesc("meridian_forward_http_requests_total",
		"Requests answered, by route and status class (none: the client went away first).", []string{"listener", "route", "code"}, nil)
	descRouteDuration = prometheus.NewDesc("meridian_forward_http_request_duration_seconds",
		"Time from a request's headers to the end of its answer, by route.", routeLabels, nil)
	descCanaryPercent = prometheus.NewDesc("meridian_forward_canary_percent",
		"The share of the route's requests its canary pool takes, as set in force.", routeLabels, nil)
	descCanaryRequests = prometheus.NewDesc("meridian_forward_canary_requests_total",
		"Requests of a route with a canary, by the pool they went to: baseline (the route's) or canary.", []string{"listener", "route", "variant"}, nil)
	descPoolRetries = prometheus.NewDesc("meridian_forward_pool_http_retries_total",
		"Tries sent again to another backend, by what failed: connect, timeout, status (retry_statuses), error, or stale (a kept connection that ended before any answer, sent again on a new one).", []string{"pool", "reason"}, nil)
	descPoolBudget = prometheus.NewDesc("meridian_forward_pool_http_retry_budget_exhausted_total",
		"Retries not made because the pool's retry budget was spent.", []string{"pool"}, nil)
	descPoolSticky = prometheus.NewDesc("meridian_forward_pool_sticky_total",
		"Requests of a pool sticky by cookie: hit (went to its backend), assigned (no valid cookie: one was set), moved (its backend could not take it: the cookie was rewritten).", []string{"pool", "result"}, nil)
	descCertReloads = prometheus.NewDesc("meridian_forward_tls_certificate_reloads_total",
		"Reloads of an https listener's certificate files after they changed, by result.", []string{"listener", "result"}, nil)
	descRouteLimited = prometheus.NewDesc("meridian_forward_http_ratelimited_total",
		"Requests the route's rate limit refused (429, or 401/400 for a missing or bad key).", routeLabels, nil)
	descLimitRequests = prometheus.NewDesc("meridian_forward_ratelimit_requests_total",
		"Requests a rate limit policy judged, by result: allowed, limited, missing_key, invalid_token.", []string{"policy", "result"}, nil)
	descLimitKeys = prometheus.NewDesc("meridian_forward_ratelimit_keys",
		"Keys a rate limit policy tracks now.", []string{"policy"}, nil)
	descLimitDropped = prometheus.NewDesc("meridian_forward_ratelimit_keys_dropped_total",
		"Keys a rate limit policy forgot: evicted (past max_keys) or expired (idle past key_ttl).", []string{"policy", "reason"}, nil)
	descGuardRollbacks = prometheus.NewDesc("meridian_forward_canary_rollbacks_total",
		"Times the canary guard rolled the route's canary back.", routeLabels, nil)
	descGuardTripped = prometheus.NewDesc("meridian_forward_canary_guard_tripped",
		"1 from the guard's rollback until the canary's share is raised again.", routeLabels, nil)
	descGuardErrorRate = prometheus.NewDesc("meridian_forward_canary_guard_error_rate",
		"5xx share of each pool's answers over the guard's window.", []string{"listener", "route", "variant"}, nil)
	descGuardP99 = prometheus.NewDesc("meridian_forward_canary_guard_p99_seconds",
		"p99 latency of each pool's answers over the guard's window.", []string{"listener", "route", "variant"}, nil)
	descCertNotAfter = prometheus.NewDesc("meridian_forward_tls_certificate_not_after_seconds",
		"When the certificate in force expires, in Unix seconds.", []string{"listener", "certificate"}, nil)
)

// retryReasons label the retries by outcome.
var retryReasons = map[tryOutcome]string{tryConnect: "connect", tryTimeout: "timeout", tryStatus: "status", tryError: "error", tryStale: "stale"}

// Describe sends the descriptions of the L7 proxy's metrics.
func Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descHTTPActive, descHTTPFast, descHTTPHandoffs, descRouteRequests, descRouteDuration, descCanaryPercent, descCanaryRequests,
		descPoolRetries, descPoolBudget, descPoolSticky, descCertReloads, descCertNotAfter,
		descRouteLimited, descLimitRequests, descLimitKeys, descLimitDropped,
		descGuardRollbacks, descGuardTripped, descGuardErrorRate, descGuardP99,
	} {
		ch <- d
	}
}

// Collect sends the metrics of the rate limit policies in force.
func (p *Proxy) Collect(ch chan<- prometheus.Metric) {
	m := p.limiters.Load()
	if m == nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(*m)) {
		(*m)[name].collect(ch, name)
	}
}

// Collect sends the pool's L7 metrics: retries, the retry budget, sticky
// sessions. Its backends' are the forwarder's to send.
func (pl *Pool) Collect(ch chan<- prometheus.Metric) {
	m, name, st := emitter{ch}, pl.Name, pl.http.st
	for outcome, reason := range retryReasons {
		m.counter(descPoolRetries, st.retries[outcome].Load(), name, reason)
	}
	m.counter(descPoolBudget, st.budgetExhausted.Load(), name)
	if s := pl.http.sticky; s != nil && s.mode == stickyCookie {
		m.counter(descPoolSticky, st.sticky.hits.Load(), name, "hit")
		m.counter(descPoolSticky, st.sticky.assigned.Load(), name, "assigned")
		m.counter(descPoolSticky, st.sticky.moved.Load(), name, "moved")
	}
}

// Collect sends the metrics of the listener's routes, the one that takes
// what no route does included.
func (c *Config) Collect(ch chan<- prometheus.Metric) {
	m := emitter{ch}
	for _, rt := range append(slices.Clip(c.routes.all), c.fallback) {
		m.route(c.name, rt)
	}
}

// route writes a route's metrics, with its canary and guard.
func (m emitter) route(lname string, rt *route) {
	st := rt.st
	for class, n := range upstream.ClassNames {
		m.counter(descRouteRequests, st.requests[class].Load(), lname, rt.name, n)
	}
	m.ch <- st.latency.Metric(descRouteDuration, lname, rt.name)
	if rt.rateLimit != "" {
		m.counter(descRouteLimited, st.limited.Load(), lname, rt.name)
	}
	if g := rt.guard; g != nil {
		gs := g.Status()
		m.counter(descGuardRollbacks, gs.Trips, lname, rt.name)
		m.gauge(descGuardTripped, boolFloat(gs.Tripped), lname, rt.name)
		for variant, ps := range map[string]canary.PoolStatus{"baseline": gs.Baseline, "canary": gs.Canary} {
			m.gauge(descGuardErrorRate, ps.ErrorRate, lname, rt.name, variant)
			m.gauge(descGuardP99, ps.P99.Seconds(), lname, rt.name, variant)
		}
	}
	if rt.canary != "" {
		m.gauge(descCanaryPercent, float64(st.percent.Load()), lname, rt.name)
		m.counter(descCanaryRequests, st.split[0].Load(), lname, rt.name, "baseline")
		m.counter(descCanaryRequests, st.split[1].Load(), lname, rt.name, "canary")
	}
}

// emitter writes const metrics to a Collect channel.
type emitter struct{ ch chan<- prometheus.Metric }

func (m emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	m.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (m emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	m.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
