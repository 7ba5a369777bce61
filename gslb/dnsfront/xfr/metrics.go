package xfr

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts transfers and notifies; one is kept for the life of the
// process, across reloads.
type Metrics struct {
	requests *prometheus.CounterVec
	records  *prometheus.CounterVec
	tsig     *prometheus.CounterVec
	notifies *prometheus.CounterVec
}

var _ prometheus.Collector = (*Metrics)(nil)

// NewMetrics makes the transfer and notify counters.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_xfr_requests_total",
			Help: "Zone transfer requests, by zone, request (axfr, ixfr, axfr_udp, ixfr_udp) and result (axfr, ixfr, uptodate, soa, refused, notauth, formerr, error).",
		}, []string{"zone", "request", "result"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_xfr_records_total",
			Help: "Records sent in zone transfers, by zone.",
		}, []string{"zone"}),
		tsig: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_tsig_errors_total",
			Help: "TSIG checks that failed on transfer requests, by error (badkey, badsig, badtime).",
		}, []string{"error"}),
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_notify_total",
			Help: "NOTIFY messages sent to secondaries, by zone and result (acked, failed, gave_up, superseded).",
		}, []string{"zone", "result"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.records.Describe(ch)
	m.tsig.Describe(ch)
	m.notifies.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.records.Collect(ch)
	m.tsig.Collect(ch)
	m.notifies.Collect(ch)
}

func (m *Metrics) request(zone, request, result string) {
	if m != nil {
		m.requests.WithLabelValues(zone, request, result).Inc()
	}
}

func (m *Metrics) sent(zone string, n int) {
	if m != nil {
		m.records.WithLabelValues(zone).Add(float64(n))
	}
}

func (m *Metrics) tsigError(name string) {
	if m != nil {
		m.tsig.WithLabelValues(name).Inc()
	}
}

func (m *Metrics) notify(zone, result string) {
	if m != nil {
		m.notifies.WithLabelValues(zone, result).Inc()
	}
}
