package node

import (
	"context"
	"log/slog"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/checks"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/dnsfront"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// New builds the node for cfg: the engine and geo index, the cluster
// member, the admin API, the handler, and registers the metrics. Nothing
// listens and no check runs until Start. It logs why it failed.
func New(ctx context.Context, cfg *config.Config, set *zones.Set, opts Options) (*Node, error) {
	n := &Node{opts: opts, log: opts.Log, cfg: cfg, set: set, health: gslb.NewHealthMap()}
	n.switchHealth = n.updateHealth
	n.guards = newGuardWatch(n.log, cfg.Guards, func() *gslb.Engine {
		if n.handler == nil {
			return nil
		}
		return n.Engine()
	})
	n.checks = checks.New(n.health.Store, n.log)
	geoMetrics := newGeoMetrics()
	n.parts = &Parts{metrics: geoMetrics} // nothing to reuse yet, but the metrics
	n.xfr.metrics = xfr.NewMetrics()
	n.xfr.notifier = xfr.NewNotifier(n.xfr.metrics, n.log)
	set, hist, changes, table, err := n.loadTransfers(cfg, set)
	if err != nil {
		n.log.Error("configuration", "err", err)
		return nil, err
	}
	n.set, n.xfr.history, n.xfr.pending = set, hist, changes
	parts, err := Build(cfg, set, n.health, n.log, n.parts)
	if err != nil {
		n.log.Error("configuration", "err", err)
		return nil, err
	}
	parts.transfers = table
	logWarnings(n.log, parts)
	if err := n.prepare(ctx, parts, geoMetrics); err != nil {
		n.Close()
		return nil, err
	}
	n.pending = parts
	return n, nil
}

// prepare makes the cluster member, the admin API and the handler, and
// registers the metrics.
func (n *Node) prepare(ctx context.Context, parts *Parts, geoMetrics *geoMetrics) error {
	cfg, log := n.cfg, n.log
	var err error
	if cfg.Cluster.Enabled() {
		if n.member, err = newMember(ctx, cfg.Cluster, n.health.Store, n.opts.Version, log); err != nil {
			log.Error("cluster", "err", err)
			return err
		}
	}
	n.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_reloads_total", Help: "Configuration reloads, by result.",
	}, []string{"result"})
	if n.admin, err = newAdmin(cfg, n, log, n.opts.Registry, n.publishOverrides); err != nil {
		log.Error("admin", "err", err)
		return err
	}
	n.applyOverrides(parts)
	if n.tap, err = newTap(cfg, n.opts.Version, log); err != nil {
		log.Error("dnstap", "err", err)
		return err
	}
	st := DNSState(cfg, n.set, parts, nil, n.opts.Version)
	st.Dnstap = n.tap
	n.handler, err = dnsfront.NewHandler(st, log)
	if err != nil {
		log.Error("prepare zones", "err", err)
		return err
	}
	// Health metrics come from this node's checks, or in a cluster from
	// the vantages' votes, under the same names.
	var healthMetrics prometheus.Collector = n.checks
	if n.member != nil {
		healthMetrics = n.member.health
	}
	n.opts.Registry.MustRegister(n.handler, healthMetrics, n.reloads, geoMetrics, n.xfr.metrics, dnssecMetrics{n}, n.guards)
	if n.admin != nil {
		n.opts.Registry.MustRegister(n.admin.Collector())
	}
	return nil
}

// Start runs the checks and the geo watchers, joins the cluster, and opens
// the DNS listeners and the admin API. It logs why it failed; Close
// undoes what it did.
func (n *Node) Start(ctx context.Context) error {
	cfg, log, parts := n.cfg, n.log, n.pending
	n.pending = nil
	checkCtx, stopChecks := context.WithCancel(context.Background())
	n.stopChecks = stopChecks
	if err := n.switchHealth(parts); err != nil {
		log.Error("health checks", "err", err)
		return err
	}
	n.checksDone = make(chan error, 1)
	go func() { n.checksDone <- n.checks.Run(checkCtx) }()
	n.follow(parts)
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
	n.srv = dnsfront.NewServer(listenConfig(cfg), n.handler, log)
	if err := n.srv.Start(); err != nil {
		log.Error("start", "err", err)
		return err
	}
	n.srvUp = true
	if err := n.startAdmin(); err != nil {
		return err
	}
	n.ready.Store(true)
	n.logServing(parts)
	n.notify(cfg, n.xfr.pending) // the secondaries may have missed changes while we were down
	n.xfr.pending = nil
	return nil
}

// startAdmin starts the admin API, when there is one.
func (n *Node) startAdmin() error {
	if n.admin == nil {
		return nil
	}
	if err := n.admin.Start(); err != nil {
		n.log.Error("start", "err", err)
		return err
	}
	n.adminUp = true
	a := n.cfg.Admin
	n.log.Info("admin API", "addr", n.admin.Addr().String(), "changes", a.TokenFile != "", "state_file", a.StateFile)
	return nil
}

// logServing says the node is up, and with what.
func (n *Node) logServing(parts *Parts) {
	cfg := n.cfg
	source := cfg.Path
	if cfg.FS != nil {
		source += " (embedded quickstart)"
	}
	udp, tcp := n.Addrs()
	n.log.Info("serving", "version", n.opts.Version, "config", source, "udp", udp, "tcp", tcp,
		"zones", zoneSummary(n.set), "dynamic_records", len(cfg.Records), "checks", len(parts.checks))
	n.set = nil
}

// Shutdown stops the listeners, within server.shutdown_timeout, and the
// checks; it returns the listeners' error.
func (n *Node) Shutdown() error {
	n.log.Info("shutting down", "grace", n.cfg.Server.ShutdownTimeout.String())
	err := n.shutdownServer()
	n.stopChecks()
	<-n.checksDone
	if n.tap != nil {
		n.tap.Close() // what the answers queued is written first
	}
	return err
}

// Close releases what New and Start made, in this order: the listeners
// when Shutdown has not stopped them, the admin API, the geo watchers,
// the checks, the cluster (leaving it).
func (n *Node) Close() {
	if n.srvUp {
		_ = n.shutdownServer() // logged
	}
	if n.adminUp {
		_ = n.admin.Shutdown(context.Background())
	}
	if n.stopGeo != nil {
		n.stopGeo()
	}
	if n.stopChecks != nil {
		n.stopChecks()
	}
	if n.member != nil {
		n.member.leave()
	}
	if n.xfr.notifier != nil {
		n.xfr.notifier.Close()
	}
	if n.tap != nil {
		n.tap.Close()
	}
}

func (n *Node) shutdownServer() error {
	n.srvUp = false
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Server.ShutdownTimeout.Duration)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		n.log.Error("shutdown", "err", err)
		return err
	}
	return nil
}

// logWarnings logs what meridian check warns of in a configuration that
// is now serving.
func logWarnings(log *slog.Logger, parts *Parts) {
	for _, w := range parts.warnings {
		log.Warn("configuration", "warning", w.Error())
	}
}
