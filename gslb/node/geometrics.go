package node

import (
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/geo"
	"github.com/prometheus/client_golang/prometheus"
)

// geoMetrics exports the state of the geo databases serving now. A node
// keeps one across reloads, so its counters only grow.
type geoMetrics struct {
	mu    sync.Mutex
	parts *Parts // serving now

	failures *prometheus.CounterVec // by file
	cut      prometheus.Gauge
	ranges   prometheus.Gauge
}

var (
	geoAgeDesc = prometheus.NewDesc("meridian_geo_database_age_seconds",
		"Time since the geo database serving now was built (its build_epoch), by file and database type.", []string{"file", "type"}, nil)
	geoNetworksDesc = prometheus.NewDesc("meridian_geo_database_networks",
		"Networks (with data) in the geo database serving now, by file.", []string{"file"}, nil)
)

func newGeoMetrics() *geoMetrics {
	return &geoMetrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_geo_reload_failures_total",
			Help: "Replaced geo database files that could not be served (unreadable, or refused for lacking what the records need); the previous data kept serving.",
		}, []string{"file"}),
		cut: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_geo_partition_seconds",
			Help: "How long the last cut of the ECS partitions from the geo index took.",
		}),
		ranges: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_geo_partition_ranges",
			Help: "Ranges in the ECS partitions serving now, all records together: the address space cut where an answer's order changes.",
		}),
	}
}

// serve makes parts the configuration whose databases are reported.
func (m *geoMetrics) serve(parts *Parts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts = parts
}

// reloaded counts a replaced file that failed (a watcher's OnReload).
func (m *geoMetrics) reloaded(path string, err error) {
	if err != nil {
		m.failures.WithLabelValues(path).Inc()
	}
}

// cutDone records a partition cut.
func (m *geoMetrics) cutDone(took time.Duration, ranges int) {
	m.cut.Set(took.Seconds())
	m.ranges.Set(float64(ranges))
}

var _ prometheus.Collector = (*geoMetrics)(nil)

// Describe implements prometheus.Collector.
func (m *geoMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- geoAgeDesc
	ch <- geoNetworksDesc
	m.failures.Describe(ch)
	m.cut.Describe(ch)
	m.ranges.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *geoMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	parts := m.parts
	m.mu.Unlock()
	if parts != nil {
		for _, w := range parts.watchers {
			d, ok := w.Current().(interface{ Info() geo.Info })
			if !ok {
				continue
			}
			info := d.Info()
			ch <- prometheus.MustNewConstMetric(geoAgeDesc, prometheus.GaugeValue, time.Since(info.Built).Seconds(), w.Path(), info.Type)
			ch <- prometheus.MustNewConstMetric(geoNetworksDesc, prometheus.GaugeValue, float64(info.Networks), w.Path())
		}
	}
	m.failures.Collect(ch)
	m.cut.Collect(ch)
	m.ranges.Collect(ch)
}
