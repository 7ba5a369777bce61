package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/zones"

	"github.com/meridian-gslb/meridian/gslb/node"
	"github.com/meridian-gslb/meridian/internal/runner"
)

// serve runs the DNS server until ctx ends (SIGTERM, SIGINT). SIGHUP reloads
// the configuration and zones; a reload that fails keeps the old data.
func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded quickstart)")
	tokenFile := fs.String("admin-token-file", "", "the admin API's bearer token, in place of admin.token_file (make run makes one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	load, err := withTokenFile(loadConfig, *tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: -admin-token-file: %v\n", err)
		return 2
	}
	r := runner.New(true)
	defer r.Close()

	cfg, set, err := load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(runner.ParseLevel(cfg.Log.Level))
	log := runner.NewLogger(stderr, cfg.Log.Format, level)
	n, err := node.New(ctx, cfg, set, node.Options{
		Path: *path, Load: load, Version: version(), Log: log, Level: level,
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

// withTokenFile wraps load so that every configuration it reads, at start
// and at each reload, takes its admin token from file (made absolute
// here, as the working folder is where the flag was typed) in place of
// admin.token_file. This lets make run enable the console's changes on
// the quickstart without a secret in the repository; "" changes nothing.
func withTokenFile(load func(string) (*config.Config, *zones.Set, error), file string) (func(string) (*config.Config, *zones.Set, error), error) {
	if file == "" {
		return load, nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	// Said here, the error names the flag and not admin.token_file.
	if _, err := os.Stat(abs); err != nil {
		return nil, err
	}
	return func(path string) (*config.Config, *zones.Set, error) {
		cfg, set, err := load(path)
		if err == nil {
			cfg.Admin.TokenFile = abs
		}
		return cfg, set, err
	}, nil
}
