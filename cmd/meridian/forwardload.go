package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/meridian-gslb/meridian/gslb/cluster"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/prometheus/client_golang/prometheus"
)

// forwardLeaveTimeout bounds the goodbye to the cluster at shutdown.
const forwardLeaveTimeout = 2 * time.Second

// loadMember is a forwarder's membership of the DNS nodes' cluster: it
// joins with role forwarder and reports its listeners' load.
type loadMember struct {
	node   *cluster.Node
	rep    *cluster.Reporter
	cfg    config.ForwardCluster // in force: changes apply at the next restart
	cancel context.CancelFunc
	log    *slog.Logger
}

// startLoadReports joins the cluster of cfg's [cluster] (in the
// background: the forwarder forwards whether or not a DNS node answers)
// and reports every report_interval; nil without [cluster].
func startLoadReports(ctx context.Context, cfg *config.Forward, gather prometheus.Gatherer, log *slog.Logger) (*loadMember, error) {
	cc := cfg.Cluster
	if !cc.Enabled() {
		return nil, nil
	}
	node, err := cluster.New(ctx, cluster.Config{
		Name: cc.Name, Bind: cc.Bind, Advertise: cc.Advertise, Seeds: cc.Seeds, Keys: cc.Keys, Insecure: cc.Insecure,
		Meta: cluster.Meta{Role: cluster.RoleForwarder, Region: cc.Region, Version: version()},
		Log:  log.With("component", "cluster"),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &loadMember{node: node, cfg: cc, cancel: cancel, log: log}
	m.rep = cluster.NewReporter(node, cc.Region, gather, cc.ReportInterval.Duration, loadListeners(cfg))
	go func() {
		if err := node.Join(ctx); err != nil {
			log.Warn("no DNS node answered; load is not reported", "err", err)
			return
		}
		m.rep.Run(ctx)
	}()
	log.Info("reporting load to the cluster", "name", cc.Name, "region", cc.Region, "bind", cc.Bind,
		"listeners", len(loadListeners(cfg)))
	return m, nil
}

// loadListeners are the listeners with target_load and max_load.
func loadListeners(cfg *config.Forward) []cluster.LoadListener {
	backends := map[string]int{}
	for _, p := range cfg.Pools {
		backends[p.Name] = len(p.Backends)
	}
	var out []cluster.LoadListener
	for _, l := range cfg.Listeners {
		if !l.Reports() {
			continue
		}
		ll := cluster.LoadListener{Name: l.Name, VIPs: l.VIPAddrs, Unit: health.UnitRPS, Target: *l.TargetLoad, Max: *l.MaxLoad, HTTP: l.IsHTTP()}
		if l.LoadUnit == "connections" {
			ll.Unit = health.UnitConnections
		}
		for _, r := range l.Routes {
			if r.Pool != "" && !slices.Contains(ll.Pools, r.Pool) {
				ll.Pools = append(ll.Pools, r.Pool)
			}
		}
		if l.Pool != "" && !slices.Contains(ll.Pools, l.Pool) {
			ll.Pools = append(ll.Pools, l.Pool)
		}
		for _, p := range ll.Pools {
			ll.Backends += backends[p]
		}
		out = append(out, ll)
	}
	return out
}

// reload takes a reloaded configuration's listeners; [cluster] itself
// applies at the next restart.
func (m *loadMember) reload(next *config.Forward) {
	if m == nil {
		return
	}
	if !slices.Equal(next.Cluster.Seeds, m.cfg.Seeds) || next.Cluster.Bind != m.cfg.Bind || next.Cluster.Region != m.cfg.Region ||
		next.Cluster.Name != m.cfg.Name || next.Cluster.KeyFile != m.cfg.KeyFile {
		m.log.Warn("reload: [cluster] changed; it applies at the next restart")
	}
	m.rep.SetListeners(loadListeners(next))
}

// stop says goodbye to the cluster: the DNS nodes forget the reports at
// once rather than when they go stale.
func (m *loadMember) stop() {
	if m == nil {
		return
	}
	m.cancel()
	if err := m.node.Leave(forwardLeaveTimeout); err != nil {
		m.log.Debug("leave the cluster", "err", err)
	}
}
