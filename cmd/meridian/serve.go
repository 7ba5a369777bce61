package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/checks"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/dnsfront"
	"github.com/meridian-gslb/meridian/internal/runner"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
	// SIGHUP is caught before anything is bound, so a reload sent the
	// moment the server is up never kills it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, set, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(runner.ParseLevel(cfg.Log.Level))
	log := runner.NewLogger(stderr, cfg.Log.Format, level)
	source := cfg.Path
	if cfg.FS != nil {
		source += " (embedded quickstart)"
	}

	n := &node{path: *path, health: gslb.NewHealthMap(), level: level, log: log, reloadReq: make(chan chan error), stopped: make(chan struct{})}
	n.checks = checks.New(n.health.Store, log)
	geoMetrics := newGeoMetrics()
	n.parts = &gslbParts{metrics: geoMetrics} // nothing to reuse yet, but the metrics
	parts, err := buildGSLB(cfg, set, n.health, log, n.parts)
	if err != nil {
		log.Error("configuration", "err", err)
		return 1
	}
	logWarnings(log, parts)
	if cfg.Cluster.Enabled() {
		if n.member, err = newMember(ctx, cfg.Cluster, n.health.Store, log); err != nil {
			log.Error("cluster", "err", err)
			return 1
		}
		defer n.member.leave()
	}
	registry := prometheus.NewRegistry()
	n.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_reloads_total", Help: "Configuration reloads, by result.",
	}, []string{"result"})
	if n.admin, err = newAdmin(cfg, n, log, registry, n.publishOverrides); err != nil {
		log.Error("admin", "err", err)
		return 1
	}
	n.applyOverrides(parts)
	n.handler, err = dnsfront.NewHandler(dnsState(cfg, set, parts, nil), log)
	if err != nil {
		log.Error("prepare zones", "err", err)
		return 1
	}
	// Health metrics come from this node's checks, or in a cluster from
	// the vantages' votes, under the same names.
	var healthMetrics prometheus.Collector = n.checks
	if n.member != nil {
		healthMetrics = n.member.health
	}
	registry.MustRegister(n.handler, healthMetrics, n.reloads, geoMetrics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meridian_build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": version()},
		}, func() float64 { return 1 }))
	if n.admin != nil {
		registry.MustRegister(n.admin.Collector())
	}
	checkCtx, stopChecks := context.WithCancel(context.Background())
	defer stopChecks()
	if err := n.updateHealth(parts); err != nil {
		log.Error("health checks", "err", err)
		return 1
	}
	checksDone := make(chan error, 1)
	go func() { checksDone <- n.checks.Run(checkCtx) }()
	n.follow(parts)
	defer n.stopGeo()

	if n.member != nil {
		// Joined before the listeners open, so that the first answers
		// use the cluster's health and overrides.
		n.member.join(ctx)
		n.member.takeOverrides(n)
		if n.admin != nil {
			n.member.publish(n.admin.Overrides())
		}
		go n.member.run(checkCtx, n)
	}
	srv := dnsfront.NewServer(listenConfig(cfg), n.handler, log)
	if err := srv.Start(); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if n.admin != nil {
		if err := n.admin.Start(); err != nil {
			log.Error("start", "err", err)
			shutdown(srv, cfg, log)
			return 1
		}
		defer n.admin.Shutdown(context.Background())
		log.Info("admin API", "addr", n.admin.Addr().String(), "changes", cfg.Admin.TokenFile != "", "state_file", cfg.Admin.StateFile)
	}
	// Deferred after the admin server's shutdown, so it runs first: a
	// reload asked for over HTTP as serve stops is told so at once.
	defer close(n.stopped)
	n.ready.Store(true)
	log.Info("serving", "version", version(), "config", source,
		"udp", addrStrings(srv.UDPAddrs()), "tcp", addrStrings(srv.TCPAddrs()),
		"zones", zoneSummary(set), "dynamic_records", len(cfg.Records), "checks", len(parts.checks))

	for {
		select {
		case <-hup:
			cfg = n.reload(cfg)
		case reply := <-n.reloadReq:
			cfg = n.reload(cfg)
			reply <- n.reloadErr
		case err := <-srv.Done():
			log.Error("listener stopped", "err", err)
			shutdown(srv, cfg, log)
			return 1
		case <-ctx.Done():
			log.Info("shutting down", "grace", cfg.Server.ShutdownTimeout.String())
			err := shutdown(srv, cfg, log)
			stopChecks()
			<-checksDone
			if err != nil {
				return 1
			}
			log.Info("stopped")
			return 0
		}
	}
}

// node is what serve keeps between reloads.
type node struct {
	path    string
	handler *dnsfront.Handler
	health  *gslb.HealthMap // kept across reloads: unchanged targets keep their state
	checks  *checks.Runner
	level   *slog.LevelVar
	log     *slog.Logger
	stopGeo context.CancelFunc
	parts   *gslbParts    // serving now: a reload reuses its unchanged geo databases
	admin   *admin.Server // nil when admin.listen is "off"
	ready   atomic.Bool   // listeners up: /readyz
	reloads *prometheus.CounterVec
	member  *member // nil without a cluster

	reloadReq chan chan error // reloads asked for through the admin API
	reloadErr error           // the latest reload's failure, or nil
	stopped   chan struct{}   // closed when serve's loop has ended
}

// Reload runs a reload on serve's loop, as SIGHUP does, and reports its
// result (admin.Source).
func (n *node) Reload() error {
	reply := make(chan error, 1)
	select {
	case n.reloadReq <- reply:
	case <-n.stopped:
		return errors.New("the server is shutting down")
	case <-time.After(30 * time.Second):
		return errors.New("the server is busy; try again")
	}
	return <-reply
}

// updateHealth points health at a new configuration: its checks run here,
// or, in a cluster, its plan goes to the vantages. When it fails it has
// changed nothing.
func (n *node) updateHealth(parts *gslbParts) error {
	var err error
	if n.member != nil {
		err = n.member.update(parts.checks)
	} else {
		err = n.checks.Update(parts.checks)
	}
	if err != nil {
		return err
	}
	// Every publish of the health store (states and round-trip times)
	// reaches the serving engine's plan from now on; and what was
	// published while the engine was built.
	n.health.OnPublish(parts.engine.Refresh)
	parts.engine.Refresh()
	return nil
}

// publishOverrides shares a change made through this node's admin API.
func (n *node) publishOverrides(o admin.Overrides) {
	if n.member != nil {
		n.member.publish(o)
	}
}

// applyOverrides puts the operator's persisted drains on a new engine
// before it serves.
func (n *node) applyOverrides(parts *gslbParts) {
	if n.admin != nil {
		n.admin.Apply(parts.engine)
	}
}

// The admin API reads the running server through these (admin.Source).
func (n *node) Engine() *gslb.Engine             { return n.handler.State().GSLB }
func (n *node) Zones() *zones.Set                { return n.handler.State().Zones }
func (n *node) Checks() map[string]probes.Status { return n.checks.Snapshot() }
func (n *node) Ready() bool {
	return n.ready.Load() && (n.member == nil || n.member.node.Joined())
}
func (n *node) Client(p netip.Prefix, ecs bool) gslb.Client {
	st := n.handler.State()
	if ecs {
		p = st.CapECS(p)
	}
	return st.ClientFor(p)
}

// follow starts watching the geo databases of parts, stopping the
// previous configuration's watchers.
func (n *node) follow(parts *gslbParts) {
	if n.stopGeo != nil {
		n.stopGeo()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopGeo = cancel
	n.parts = parts
	if parts.metrics != nil {
		parts.metrics.serve(parts)
	}
	parts.watch(ctx)
}

// reload loads the configuration again and publishes it, or logs why not
// and keeps serving the old one. It returns the configuration in force.
func (n *node) reload(old *config.Config) *config.Config {
	log := n.log
	fail := func(err error) *config.Config {
		n.reloadErr = err
		n.reloads.WithLabelValues("failure").Inc()
		log.Error("reload failed; still serving the previous configuration", "err", err)
		return old
	}
	cfg, set, err := loadConfig(n.path)
	if err != nil {
		return fail(err)
	}
	parts, err := buildGSLB(cfg, set, n.health, log, n.parts)
	if err != nil {
		return fail(err)
	}
	// Health follows the new engine only once it serves: were the
	// checks or the cluster switched first and Store failed, the old
	// engine would go on serving with nothing refreshing it. The drains
	// go on the new engine alone, before it serves.
	n.applyOverrides(parts)
	prev := n.handler.State()
	if err := n.handler.Store(dnsState(cfg, set, parts, prev)); err != nil {
		return fail(err)
	}
	if err := n.updateHealth(parts); err != nil {
		// updateHealth changed nothing: serve the old state again, as a
		// copy since queries still read prev.
		restore := *prev
		if rerr := n.handler.Store(&restore); rerr != nil {
			log.Error("reload: the previous configuration could not be served again", "err", rerr)
		}
		return fail(err)
	}
	if clusterChanged(old.Cluster, cfg.Cluster) {
		log.Warn("reload: cluster settings other than the keys changed; they apply at the next restart")
	}
	if n.member != nil && len(cfg.Cluster.Keys) > 0 && !slices.EqualFunc(cfg.Cluster.Keys, old.Cluster.Keys, bytes.Equal) {
		if err := n.member.node.SetKeys(cfg.Cluster.Keys); err != nil {
			log.Error("reload: cluster keys not changed", "err", err)
		} else {
			log.Info("reload: cluster keys changed", "keys", len(cfg.Cluster.Keys))
		}
	}
	if cfg.Admin != old.Admin {
		log.Warn("reload: admin settings changed; they apply at the next restart")
	}
	n.follow(parts)
	logWarnings(log, parts)
	n.level.Set(runner.ParseLevel(cfg.Log.Level))
	if listenConfigChanged(old, cfg) {
		log.Warn("reload: listener settings (server.listen, udp_sockets, tcp_*) changed; they apply at the next restart")
	}
	if cfg.Log.Format != old.Log.Format {
		log.Warn("reload: log.format changed; it applies at the next restart")
	}
	n.reloadErr = nil
	n.reloads.WithLabelValues("success").Inc()
	log.Info("reloaded", "zones", zoneSummary(set), "dynamic_records", len(cfg.Records), "checks", len(parts.checks))
	return cfg
}

// logWarnings logs what meridian check warns of in a configuration that
// is now serving.
func logWarnings(log *slog.Logger, parts *gslbParts) {
	for _, w := range parts.warnings {
		log.Warn("configuration", "warning", w.Error())
	}
}

func shutdown(srv *dnsfront.Server, cfg *config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.Duration)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return err
	}
	return nil
}

func listenConfig(cfg *config.Config) dnsfront.Listen {
	n := cfg.Server.UDPSockets
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s := cfg.Server
	return dnsfront.Listen{
		Addrs:      s.Listen,
		UDPSockets: n,
		TCP: dnsfront.TCPLimits{
			Idle: s.TCPIdleTimeout.Duration, MessageTimeout: s.TCPMessageTimeout.Duration,
			MaxConns: s.TCPMaxConnections, MaxPerClient: s.TCPMaxPerClient, MaxPerPrefix: s.TCPMaxPerPrefix,
			MaxQueries: s.TCPMaxQueries,
		},
	}
}

func clusterChanged(a, b config.Cluster) bool {
	return a.Name != b.Name || a.Bind != b.Bind || a.Advertise != b.Advertise || !slices.Equal(a.Seeds, b.Seeds) ||
		a.Insecure != b.Insecure || a.Rule != b.Rule || a.StaleAfter != b.StaleAfter
}

func listenConfigChanged(a, b *config.Config) bool {
	x, y := a.Server, b.Server
	return !slices.Equal(x.Listen, y.Listen) || x.UDPSockets != y.UDPSockets ||
		x.TCPIdleTimeout != y.TCPIdleTimeout || x.TCPMaxConnections != y.TCPMaxConnections ||
		x.TCPMaxQueries != y.TCPMaxQueries || x.TCPMaxPerClient != y.TCPMaxPerClient ||
		x.TCPMaxPerPrefix != y.TCPMaxPerPrefix || x.TCPMessageTimeout != y.TCPMessageTimeout
}

func zoneSummary(set *zones.Set) string {
	var parts []string
	for _, z := range set.Zones() {
		parts = append(parts, fmt.Sprintf("%s@%d", z.Origin(), z.Serial()))
	}
	return strings.Join(parts, ",")
}

func addrStrings[T fmt.Stringer](addrs []T) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
