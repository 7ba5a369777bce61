package forward

import (
	"maps"
	"slices"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/l4"
	"github.com/meridian-gslb/meridian/gslb/forward/l7"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Metrics are read from the forwarder's own counters when scraped, so the
// connection path pays an atomic add and no Prometheus bookkeeping.
var (
	backendLabels = []string{"pool", "backend"}

	descBackendActive = prometheus.NewDesc("meridian_forward_backend_active_connections",
		"Connections (UDP: flows) open to the backend.", backendLabels, nil)
	descBackendConns = prometheus.NewDesc("meridian_forward_backend_connections_total",
		"Connections (UDP: flows) proxied to the backend.", backendLabels, nil)
	descBackendSent = prometheus.NewDesc("meridian_forward_backend_sent_bytes_total",
		"Bytes from clients forwarded to the backend.", backendLabels, nil)
	descBackendReceived = prometheus.NewDesc("meridian_forward_backend_received_bytes_total",
		"Bytes from the backend forwarded to clients.", backendLabels, nil)
	descBackendConnectErrors = prometheus.NewDesc("meridian_forward_backend_connect_errors_total",
		"Failed connections to the backend (UDP: ICMP port unreachable).", backendLabels, nil)
	descBackendHealthy = prometheus.NewDesc("meridian_forward_backend_healthy",
		"1 when the backend's active checks pass, 0 when they fail or have not answered yet.", backendLabels, nil)
	descBackendTransitions = prometheus.NewDesc("meridian_forward_backend_health_transitions_total",
		"Changes of the backend's active health, by the state changed to.", []string{"pool", "backend", "to"}, nil)
	descBackendEjected = prometheus.NewDesc("meridian_forward_backend_ejected",
		"1 while outlier detection keeps the backend out of rotation.", backendLabels, nil)
	descBackendEjections = prometheus.NewDesc("meridian_forward_backend_ejections_total",
		"Times outlier detection ejected the backend.", backendLabels, nil)
	descBackendDraining = prometheus.NewDesc("meridian_forward_backend_draining",
		"1 while the backend takes no new connections (config, admin API or shutdown).", backendLabels, nil)
	descBackendWeight = prometheus.NewDesc("meridian_forward_backend_effective_weight",
		"The backend's weight as the balancers use it now: lower during slow start.", backendLabels, nil)
	descBackendAvailable = prometheus.NewDesc("meridian_forward_backend_available",
		"1 when the backend may take a new connection now.", backendLabels, nil)

	descPoolHealthy = prometheus.NewDesc("meridian_forward_pool_healthy_backends",
		"Backends in rotation: healthy, not ejected, not draining.", []string{"pool"}, nil)
	descPoolMinHealthy = prometheus.NewDesc("meridian_forward_pool_min_healthy",
		"The healthy backends the capacity endpoint needs to answer 200.", []string{"pool"}, nil)
	descPoolPanic = prometheus.NewDesc("meridian_forward_pool_panic",
		"1 while the pool has no healthy backend and spreads connections over all of them (all_unhealthy = panic).", []string{"pool"}, nil)
	descPoolRefused = prometheus.NewDesc("meridian_forward_pool_refused_connections_total",
		"Connections (UDP: new flows) refused because no backend of the pool was available or reachable.", []string{"pool"}, nil)

	// The backends' side of the L7 proxy (package l7 has the rest).
	descBackendHTTP = prometheus.NewDesc("meridian_forward_backend_http_requests_total",
		"HTTP tries sent to the backend, by status class of its answer (none: no answer).", []string{"pool", "backend", "code"}, nil)
	descBackendHTTPDuration = prometheus.NewDesc("meridian_forward_backend_http_response_seconds",
		"Time from sending a try to the backend's response headers.", backendLabels, nil)
	descBackendBreaker = prometheus.NewDesc("meridian_forward_backend_breaker_state",
		"The backend's circuit breaker: 0 closed, 1 half-open (probing), 2 open. Absent without a breaker.", backendLabels, nil)
	descBackendBreakerOpens = prometheus.NewDesc("meridian_forward_backend_breaker_opens_total",
		"Times the backend's circuit breaker opened.", backendLabels, nil)
)

// Collector returns the forwarder's metrics, to register where Options'
// Metrics gathers from.
func (f *Forwarder) Collector() prometheus.Collector { return (*collector)(f) }

type collector Forwarder

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descBackendActive, descBackendConns, descBackendSent, descBackendReceived, descBackendConnectErrors,
		descBackendHealthy, descBackendTransitions, descBackendEjected, descBackendEjections, descBackendDraining,
		descBackendWeight, descBackendAvailable,
		descPoolHealthy, descPoolMinHealthy, descPoolPanic, descPoolRefused,
		l4.DescListenerActive, l4.DescListenerConns, l4.DescListenerRejected, l4.DescListenerDatagrams,
		descBackendHTTP, descBackendHTTPDuration, descBackendBreaker, descBackendBreakerOpens,
	} {
		ch <- d
	}
	l7.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	f := (*Forwarder)(c)
	snap := f.snap.Load()
	if snap == nil {
		return
	}
	m := emitter{ch}
	now := time.Now().UnixNano()
	for _, name := range snap.poolNames {
		m.pool(name, snap.pools[name], now)
	}
	f.l7.Collect(ch)
	for _, lname := range slices.Sorted(maps.Keys(snap.listeners)) {
		if hc := snap.listeners[lname].http; hc != nil {
			hc.Collect(ch)
		}
	}
	f.mu.Lock()
	ls := make([]l4.Listener, 0, len(f.listeners))
	for _, l := range f.listeners {
		ls = append(ls, l)
	}
	f.mu.Unlock()
	for _, l := range ls {
		l.Collect(ch)
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

// pool writes a pool's metrics and its backends'.
func (m emitter) pool(name string, p *l7.Pool, now int64) {
	m.gauge(descPoolHealthy, float64(p.State.Healthy.Load()), name)
	m.gauge(descPoolMinHealthy, float64(p.MinHealthy), name)
	m.gauge(descPoolPanic, boolFloat(p.State.Panicking.Load()), name)
	m.counter(descPoolRefused, p.State.Refused.Load(), name)
	for _, b := range p.Backends {
		m.backend(name, b, now)
	}
	p.Collect(m.ch)
}

// backend writes one backend's metrics.
func (m emitter) backend(pool string, b *upstream.Backend, now int64) {
	s := b.State
	m.gauge(descBackendActive, float64(s.Active.Load()), pool, b.Addr)
	m.counter(descBackendConns, s.Connections.Load(), pool, b.Addr)
	m.counter(descBackendSent, s.Sent.Load(), pool, b.Addr)
	m.counter(descBackendReceived, s.Received.Load(), pool, b.Addr)
	m.counter(descBackendConnectErrors, s.ConnectErrors.Load(), pool, b.Addr)
	m.gauge(descBackendHealthy, boolFloat(probes.State(s.Health.Load()) == probes.Up), pool, b.Addr)
	m.counter(descBackendTransitions, s.ToUp.Load(), pool, b.Addr, "up")
	m.counter(descBackendTransitions, s.ToDown.Load(), pool, b.Addr, "down")
	m.gauge(descBackendEjected, boolFloat(s.Ejected.Load()), pool, b.Addr)
	m.counter(descBackendEjections, s.Ejections.Load(), pool, b.Addr)
	m.gauge(descBackendDraining, boolFloat(s.Draining.Load()), pool, b.Addr)
	m.gauge(descBackendWeight, b.EffectiveWeight(now), pool, b.Addr)
	m.gauge(descBackendAvailable, boolFloat(b.Available()), pool, b.Addr)
	for class, n := range upstream.ClassNames {
		m.counter(descBackendHTTP, s.Requests[class].Load(), pool, b.Addr, n)
	}
	m.ch <- s.TryLatency.Metric(descBackendHTTPDuration, pool, b.Addr)
	if br := s.Breaker.Load(); br != nil {
		m.gauge(descBackendBreaker, breakerGauge(br), pool, b.Addr)
		m.counter(descBackendBreakerOpens, s.BreakerOpens.Load(), pool, b.Addr)
	}
}

// breakerGauge is the breaker's state as its metric has it.
func breakerGauge(br *upstream.Breaker) float64 {
	switch br.State() {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
