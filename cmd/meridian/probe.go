package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/gslb/cluster"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/probes/agent"
)

// keyEnv holds the cluster key for agents started without a key file.
const keyEnv = "MERIDIAN_CLUSTER_KEY"

// probe runs a probe agent until ctx ends.
func probe(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.String("seeds", "", "comma-separated host:port of cluster members to join through (required)")
	vantage := fs.String("vantage", "", "this vantage's name, unique in the cluster (required)")
	name := fs.String("name", "", "cluster node name (default: the vantage)")
	region := fs.String("region", "", "the region this vantage is in")
	lat := fs.Float64("lat", 0, "latitude of this vantage")
	lon := fs.Float64("lon", 0, "longitude of this vantage")
	bind := fs.String("bind", "0.0.0.0:7946", "host:port for gossip (UDP and TCP)")
	advertise := fs.String("advertise", "", "host:port the others reach this agent at (default: bind)")
	keyFile := fs.String("key-file", "", "file of base64 gossip keys, one per line, the first encrypting (or set "+keyEnv+")")
	insecure := fs.Bool("insecure", false, "allow gossip in clear beyond loopback")
	source := fs.String("source", "", "source address of the checks (default: the system's choice)")
	refresh := fs.Duration("refresh", agent.DefaultRefresh, "how often every result is sent again; keep it well under the DNS nodes' stale_after")
	adminAddr := fs.String("admin", "", "host:port for /healthz, /readyz, /api/v1/results and /metrics (default: off)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "meridian probe: "+format+"\n", args...)
		return 2
	}
	if *seeds == "" || *vantage == "" {
		return fail("-seeds and -vantage are required")
	}
	var keys [][]byte
	switch {
	case *keyFile != "":
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fail("%v", err)
		}
		if keys, err = config.ParseKeys(b); err != nil {
			return fail("%s: %v", *keyFile, err)
		}
	case os.Getenv(keyEnv) != "":
		k, err := config.ParseKey(os.Getenv(keyEnv))
		if err != nil {
			return fail("%s: %v", keyEnv, err)
		}
		keys = [][]byte{k}
	}
	var src netip.Addr
	if *source != "" {
		var err error
		if src, err = netip.ParseAddr(*source); err != nil {
			return fail("-source: %v", err)
		}
	}
	lv := new(slog.LevelVar)
	lv.Set(parseLevel(*level))
	log := newLogger(stderr, *format, lv).With("vantage", *vantage)

	a, err := agent.New(ctx, agent.Config{
		Cluster: cluster.Config{
			Name: *name, Bind: *bind, Advertise: *advertise, Seeds: splitList(*seeds),
			Keys: keys, Insecure: *insecure,
			Meta: cluster.Meta{Vantage: *vantage, Region: *region, Lat: *lat, Lon: *lon, Version: version()},
		},
		Source: src, Refresh: *refresh, Log: log,
	})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if *adminAddr != "" {
		ln, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			log.Error("admin listen", "err", err)
			return 1
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }() // ends with Close below
		defer srv.Close()
		log.Info("agent API", "addr", ln.Addr().String())
	}
	log.Info("probe agent", "version", version(), "addr", a.Node().Addr(), "seeds", *seeds, "source", *source)
	start := time.Now()
	if err := a.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("probe agent stopped", "err", err)
		return 1
	}
	log.Info("stopped", "ran", time.Since(start).Round(time.Second))
	return 0
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
