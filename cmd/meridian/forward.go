package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	fwd "github.com/meridian-gslb/meridian/gslb/forward"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// forwardShutdownGrace is how long shutdown waits past the longest
// drain_timeout for connections the drain has closed to be gone.
const forwardShutdownGrace = 5 * time.Second

// forward runs the bundled forwarder until ctx ends (SIGTERM, SIGINT), then
// drains. SIGHUP reloads the configuration; a reload that fails keeps the
// old one.
func forward(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "forwarder configuration file (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: meridian forward -config FILE")
		return 2
	}
	// Caught before anything is bound, so that a reload sent the moment
	// the forwarder is up never kills it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, err := config.LoadForward(*path)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Log.Level))
	log := newLogger(stderr, cfg.Log.Format, level)

	registry := prometheus.NewRegistry()
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_forward_reloads_total", Help: "Configuration reloads, by result.",
	}, []string{"result"})
	f := fwd.New(fwd.Options{Log: log, Metrics: registry})
	registry.MustRegister(f.Collector(), reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meridian_build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": version()},
		}, func() float64 { return 1 }))
	if err := f.Start(cfg); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	log.Info("forwarding", "version", version(), "config", cfg.Path, "pools", len(cfg.Pools), "listeners", len(cfg.Listeners))

	for {
		select {
		case <-hup:
			next, err := config.LoadForward(*path)
			if err == nil {
				err = f.Reload(next)
			}
			if err != nil {
				reloads.WithLabelValues("failure").Inc()
				log.Error("reload failed; still forwarding with the previous configuration", "err", err)
				continue
			}
			if next.Log.Format != cfg.Log.Format {
				log.Warn("reload: log.format changed; it applies at the next restart")
			}
			cfg = next
			level.Set(parseLevel(cfg.Log.Level))
			reloads.WithLabelValues("success").Inc()
			log.Info("reloaded", "pools", len(cfg.Pools), "listeners", len(cfg.Listeners))
		case <-ctx.Done():
			grace := f.DrainTimeout()
			log.Info("shutting down: draining", "drain_timeout", grace.String())
			sctx, cancel := context.WithTimeout(context.Background(), grace+forwardShutdownGrace)
			err := f.Shutdown(sctx)
			cancel()
			if err != nil {
				log.Error("shutdown", "err", err)
				return 1
			}
			log.Info("stopped")
			return 0
		}
	}
}

// printErrors prints each of a joined error's parts on a line of its own.
func printErrors(w io.Writer, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			fmt.Fprintln(w, e)
		}
		return
	}
	fmt.Fprintln(w, err)
}
