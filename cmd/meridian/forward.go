package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	fwd "github.com/meridian-gslb/meridian/gslb/forward"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/internal/runner"
	"github.com/prometheus/client_golang/prometheus"
)

// forwardShutdownGrace is how long shutdown waits past the longest
// drain_timeout for connections the drain has closed to be gone.
const forwardShutdownGrace = 5 * time.Second

// forward runs the bundled forwarder until ctx ends (SIGTERM, SIGINT), then
// drains. SIGHUP reloads the configuration; a reload that fails keeps the
// old one.
func forward(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "forwarder configuration file (required)")
	checkOnly := fs.Bool("check", false, "validate the file, list every error, and exit (0 valid, 1 not)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: meridian forward -config FILE [-check]")
		return 2
	}
	if *checkOnly {
		return checkForward(*path, stdout, stderr)
	}
	r := runner.New(true)
	defer r.Close()

	cfg, err := config.LoadForward(*path)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(runner.ParseLevel(cfg.Log.Level))
	log := runner.NewLogger(stderr, cfg.Log.Format, level)
	runner.RouteStdLog(log)

	registry := runner.NewRegistry(version())
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_forward_reloads_total", Help: "Configuration reloads, by result.",
	}, []string{"result"})
	f := fwd.New(fwd.Options{Log: log, Metrics: registry})
	registry.MustRegister(f.Collector(), reloads)
	if err := f.Start(cfg); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	log.Info("forwarding", "version", version(), "config", cfg.Path, "pools", len(cfg.Pools), "listeners", len(cfg.Listeners))
	lm, err := startLoadReports(ctx, cfg, registry, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer lm.stop()

	rl := &forwardReload{f: f, path: *path, cfg: cfg, level: level, log: log, load: lm}
	err = r.Run(ctx, runner.Loop{
		Reload: rl.reload, Reloads: reloads, Log: log,
		FailMsg:  "reload failed; still forwarding with the previous configuration",
		Shutdown: func() error { return drain(f, log) },
	})
	if err != nil {
		return 1
	}
	log.Info("stopped")
	return 0
}

// forwardReload reloads a running forwarder.
type forwardReload struct {
	f     *fwd.Forwarder
	path  string
	cfg   *config.Forward // in force
	level *slog.LevelVar
	log   *slog.Logger
	load  *loadMember // nil without [cluster]
}

// reload loads the configuration again and hands it to the forwarder,
// which keeps the old one when it fails.
func (rl *forwardReload) reload() ([]any, error) {
	next, err := config.LoadForward(rl.path)
	if err == nil {
		err = rl.f.Reload(next)
	}
	if err != nil {
		return nil, err
	}
	if next.Log.Format != rl.cfg.Log.Format {
		rl.log.Warn("reload: log.format changed; it applies at the next restart")
	}
	rl.cfg = next
	rl.load.reload(next)
	rl.level.Set(runner.ParseLevel(next.Log.Level))
	return []any{"pools", len(next.Pools), "listeners", len(next.Listeners)}, nil
}

// drain shuts the forwarder down, giving connections the longest
// drain_timeout and forwardShutdownGrace to go.
func drain(f *fwd.Forwarder, log *slog.Logger) error {
	grace := f.DrainTimeout()
	log.Info("shutting down: draining", "drain_timeout", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace+forwardShutdownGrace)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return err
	}
	return nil
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
