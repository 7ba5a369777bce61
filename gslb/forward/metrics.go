package forward

import (
	"time"

	"github.com/meridian-gslb/meridian/probes"
	"github.com/prometheus/client_golang/prometheus"
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

	descListenerActive = prometheus.NewDesc("meridian_forward_listener_active_connections",
		"Connections (UDP: flows) open on the listener.", []string{"listener", "protocol"}, nil)
	descListenerConns = prometheus.NewDesc("meridian_forward_listener_connections_total",
		"Connections accepted (UDP: flows started) by the listener.", []string{"listener", "protocol"}, nil)
	descListenerRejected = prometheus.NewDesc("meridian_forward_listener_rejected_total",
		"Connections (UDP: datagrams) turned away, by reason.", []string{"listener", "protocol", "reason"}, nil)
	descListenerDatagrams = prometheus.NewDesc("meridian_forward_listener_datagrams_total",
		"UDP datagrams, from clients and to clients.", []string{"listener", "direction"}, nil)
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
		descListenerActive, descListenerConns, descListenerRejected, descListenerDatagrams,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	f := (*Forwarder)(c)
	snap := f.snap.Load()
	if snap == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	now := time.Now().UnixNano()
	for _, name := range snap.poolNames {
		p := snap.pools[name]
		gauge(descPoolHealthy, float64(p.st.healthy.Load()), name)
		gauge(descPoolMinHealthy, float64(p.minHealthy), name)
		gauge(descPoolPanic, boolFloat(p.st.panicking.Load()), name)
		counter(descPoolRefused, p.st.refused.Load(), name)
		for _, b := range p.backends {
			s := b.st
			gauge(descBackendActive, float64(s.active.Load()), name, b.Addr)
			counter(descBackendConns, s.connections.Load(), name, b.Addr)
			counter(descBackendSent, s.sent.Load(), name, b.Addr)
			counter(descBackendReceived, s.received.Load(), name, b.Addr)
			counter(descBackendConnectErrors, s.connectErrors.Load(), name, b.Addr)
			gauge(descBackendHealthy, boolFloat(probes.State(s.health.Load()) == probes.Up), name, b.Addr)
			counter(descBackendTransitions, s.toUp.Load(), name, b.Addr, "up")
			counter(descBackendTransitions, s.toDown.Load(), name, b.Addr, "down")
			gauge(descBackendEjected, boolFloat(s.ejected.Load()), name, b.Addr)
			counter(descBackendEjections, s.ejections.Load(), name, b.Addr)
			gauge(descBackendDraining, boolFloat(s.draining.Load()), name, b.Addr)
			gauge(descBackendWeight, b.effectiveWeight(now), name, b.Addr)
			gauge(descBackendAvailable, boolFloat(b.Available()), name, b.Addr)
		}
	}
	f.mu.Lock()
	ls := make([]listener, 0, len(f.listeners))
	for _, l := range f.listeners {
		ls = append(ls, l)
	}
	f.mu.Unlock()
	for _, l := range ls {
		l.collect(ch)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
