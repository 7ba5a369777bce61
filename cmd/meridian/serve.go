package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/meridian-gslb/meridian/gslb/node"
	"github.com/meridian-gslb/meridian/internal/runner"
)

// serve runs the DNS server until ctx ends (SIGTERM, SIGINT). SIGHUP reloads
// the configuration and zones; a reload that fails keeps the old data.
func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded quickstart)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r := runner.New(true)
	defer r.Close()

	cfg, set, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(runner.ParseLevel(cfg.Log.Level))
	log := runner.NewLogger(stderr, cfg.Log.Format, level)
	n, err := node.New(ctx, cfg, set, node.Options{
		Path: *path, Load: loadConfig, Version: version(), Log: log, Level: level,
		Registry: runner.NewRegistry(version()), RequestReload: r.Request,
	})
	if err != nil {
		return 1 // logged
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		return 1 // logged
	}
	err = r.Run(ctx, runner.Loop{
		Reload: n.ReloadConfig, Reloads: n.Reloads(), Log: log,
		FailMsg: "reload failed; still serving the previous configuration",
		Failed:  n.Failed(), StopMsg: "listener stopped",
		Shutdown: n.Shutdown,
	})
	if err != nil {
		return 1
	}
	log.Info("stopped")
	return 0
}
