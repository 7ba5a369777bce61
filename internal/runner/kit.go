package runner

import (
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewLogger returns a logger writing to w as text, or as JSON when format
// is "json", at level (which a reload may change).
func NewLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// RouteStdLog sends what the standard library writes through the log
// package's default logger (net/http's transport logs an unsolicited
// answer on an idle connection so, with no field to redirect it) to l, at
// warn level, so that a JSON log stays JSON lines. The default logger is
// the process's, so this is done once, when a command starts, before
// anything runs that could log.
func RouteStdLog(l *slog.Logger) {
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(slog.NewLogLogger(l.Handler(), slog.LevelWarn).Writer())
}

// ParseLevel reads debug, info, warn or error (any case); anything else is
// info.
func ParseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// NewRegistry returns a metrics registry holding what every command
// exports: the Go runtime's and the process's metrics, and
// meridian_build_info with the version as a label.
func NewRegistry(version string) *prometheus.Registry {
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meridian_build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }))
	return registry
}
