package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/gslb/cluster"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/internal/adminhttp"
	"github.com/meridian-gslb/meridian/internal/runner"
	"github.com/meridian-gslb/meridian/probes/agent"
)

// keyEnv holds the cluster key for agents started without a key file.
const keyEnv = "MERIDIAN_CLUSTER_KEY"

// probeFlags are meridian probe's flags.
type probeFlags struct {
	seeds, vantage, name, region *string
	lat, lon                     *float64
	bind, advertise, keyFile     *string
	insecure                     *bool
	source                       *string
	refresh                      *time.Duration
	adminAddr, level, format     *string
}

func newProbeFlags(fs *flag.FlagSet) *probeFlags {
	return &probeFlags{
		seeds:     fs.String("seeds", "", "comma-separated host:port of cluster members to join through (required)"),
		vantage:   fs.String("vantage", "", "this vantage's name, unique in the cluster (required)"),
		name:      fs.String("name", "", "cluster node name (default: the vantage)"),
		region:    fs.String("region", "", "the region this vantage is in"),
		lat:       fs.Float64("lat", 0, "latitude of this vantage"),
		lon:       fs.Float64("lon", 0, "longitude of this vantage"),
		bind:      fs.String("bind", "0.0.0.0:7946", "host:port for gossip (UDP and TCP)"),
		advertise: fs.String("advertise", "", "host:port the others reach this agent at (default: bind)"),
		keyFile:   fs.String("key-file", "", "file of base64 gossip keys, one per line, the first encrypting (or set "+keyEnv+")"),
		insecure:  fs.Bool("insecure", false, "allow gossip in clear beyond loopback"),
		source:    fs.String("source", "", "source address of the checks (default: the system's choice)"),
		refresh:   fs.Duration("refresh", agent.DefaultRefresh, "how often every result is sent again; keep it well under the DNS nodes' stale_after"),
		adminAddr: fs.String("admin", "", "host:port for /healthz, /readyz, /api/v1/results and /metrics (default: off)"),
		level:     fs.String("log-level", "info", "debug, info, warn or error"),
		format:    fs.String("log-format", "text", "text or json"),
	}
}

// probe runs a probe agent until ctx ends.
func probe(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := newProbeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := f.config()
	if err != nil {
		fmt.Fprintf(stderr, "meridian probe: %v\n", err)
		return 2
	}
	lv := new(slog.LevelVar)
	lv.Set(runner.ParseLevel(*f.level))
	log := runner.NewLogger(stderr, *f.format, lv).With("vantage", *f.vantage)
	cfg.Log = log

	a, err := agent.New(ctx, cfg)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if *f.adminAddr != "" {
		closeAPI, err := serveAgentAPI(*f.adminAddr, a, log)
		if err != nil {
			log.Error("admin listen", "err", err)
			return 1
		}
		defer closeAPI()
	}
	log.Info("probe agent", "version", version(), "addr", a.Node().Addr(), "seeds", *f.seeds, "source", *f.source)
	start := time.Now()
	if err := runAgent(ctx, a, log); err != nil {
		return 1
	}
	log.Info("stopped", "ran", time.Since(start).Round(time.Second))
	return 0
}

// runAgent runs a until ctx ends, or until it stops by itself.
func runAgent(ctx context.Context, a *agent.Agent, log *slog.Logger) error {
	failed, ranOut := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(ranOut)
		if err := a.Run(ctx); ctx.Err() == nil {
			failed <- err
		}
	}()
	r := runner.New(false)
	defer r.Close()
	return r.Run(ctx, runner.Loop{
		Failed: failed, StopMsg: "probe agent stopped", Log: log,
		Shutdown: func() error { <-ranOut; return nil },
	})
}

// config is the agent's configuration from the flags, but its logger.
func (f *probeFlags) config() (agent.Config, error) {
	if *f.seeds == "" || *f.vantage == "" {
		return agent.Config{}, fmt.Errorf("-seeds and -vantage are required")
	}
	keys, err := f.keys()
	if err != nil {
		return agent.Config{}, err
	}
	var src netip.Addr
	if *f.source != "" {
		if src, err = netip.ParseAddr(*f.source); err != nil {
			return agent.Config{}, fmt.Errorf("-source: %v", err)
		}
	}
	return agent.Config{
		Cluster: cluster.Config{
			Name: *f.name, Bind: *f.bind, Advertise: *f.advertise, Seeds: splitList(*f.seeds),
			Keys: keys, Insecure: *f.insecure,
			Meta: cluster.Meta{Vantage: *f.vantage, Region: *f.region, Lat: *f.lat, Lon: *f.lon, Version: version()},
		},
		Source: src, Refresh: *f.refresh,
	}, nil
}

// keys reads the gossip keys from -key-file, or from $MERIDIAN_CLUSTER_KEY.
func (f *probeFlags) keys() ([][]byte, error) {
	switch {
	case *f.keyFile != "":
		b, err := os.ReadFile(*f.keyFile)
		if err != nil {
			return nil, err
		}
		keys, err := config.ParseKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", *f.keyFile, err)
		}
		return keys, nil
	case os.Getenv(keyEnv) != "":
		k, err := config.ParseKey(os.Getenv(keyEnv))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", keyEnv, err)
		}
		return [][]byte{k}, nil
	}
	return nil, nil
}

// serveAgentAPI serves the agent's HTTP API on addr until the returned
// func is called.
func serveAgentAPI(addr string, a *agent.Agent, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := adminhttp.NewServer(a.Handler(), log)
	go func() { _ = srv.Serve(ln) }() // ends with Close
	log.Info("agent API", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
