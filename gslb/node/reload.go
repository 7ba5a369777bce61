package node

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"

	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/dnsfront"
	"github.com/meridian-gslb/meridian/internal/runner"
	"github.com/meridian-gslb/meridian/zones"
)

// ReloadConfig loads the configuration again and puts it in force, or
// changes nothing and returns why: the old configuration keeps serving.
// It returns what the caller logs with "reloaded". It runs on the
// caller's loop, never beside itself.
func (n *Node) ReloadConfig() ([]any, error) {
	cfg, set, err := n.opts.Load(n.opts.Path)
	if err != nil {
		return nil, err
	}
	set, hist, changes, table, err := n.loadTransfers(cfg, set)
	if err != nil {
		return nil, err
	}
	parts, err := Build(cfg, set, n.health, n.log, n.parts)
	if err != nil {
		return nil, err
	}
	parts.transfers = table
	if err := n.swap(cfg, set, parts); err != nil {
		return nil, err
	}
	old := n.cfg
	n.cfg = cfg
	n.xfr.history = hist
	n.guards.set(cfg.Guards)
	n.settle(old, cfg, parts)
	n.notify(cfg, changes)
	return []any{"zones", zoneSummary(set), "dynamic_records", len(cfg.Records), "checks", len(parts.checks)}, nil
}

// swap serves parts: the handler's state first, then health. Health
// follows the new engine only once it serves: were the checks or the
// cluster switched first and Store failed, the old engine would go on
// serving with nothing refreshing it. When health cannot follow, the
// previous state serves again. The drains go on the new engine alone,
// before it serves.
func (n *Node) swap(cfg *config.Config, set *zones.Set, parts *Parts) error {
	n.applyOverrides(parts)
	prev := n.handler.State()
	if err := n.handler.Store(DNSState(cfg, set, parts, prev, n.opts.Version)); err != nil {
		return err
	}
	if err := n.switchHealth(parts); err != nil {
		// switchHealth changed nothing: serve the old state again, as a
		// copy since queries still read prev.
		restore := *prev
		if rerr := n.handler.Store(&restore); rerr != nil {
			n.log.Error("reload: the previous configuration could not be served again", "err", rerr)
		}
		return err
	}
	return nil
}

// settle finishes a reload that serves: the cluster keys, the geo
// watchers, the log level; and warns of what applies only at the next
// restart.
func (n *Node) settle(old, cfg *config.Config, parts *Parts) {
	log := n.log
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
	n.opts.Level.Set(runner.ParseLevel(cfg.Log.Level))
	if listenConfigChanged(old, cfg) {
		log.Warn("reload: listener settings (server.listen, udp_sockets, tcp_*) changed; they apply at the next restart")
	}
	if !reflect.DeepEqual(cfg.Server.Dnstap, old.Server.Dnstap) {
		log.Warn("reload: server.dnstap changed; it applies at the next restart")
	}
	if cfg.Log.Format != old.Log.Format {
		log.Warn("reload: log.format changed; it applies at the next restart")
	}
}

// updateHealth points health at a new configuration: its checks run here,
// or, in a cluster, its plan goes to the vantages. When it fails it has
// changed nothing.
func (n *Node) updateHealth(parts *Parts) error {
	var err error
	if n.member != nil {
		err = n.member.update(parts.checks)
	} else {
		err = n.checks.Update(parts.checks)
	}
	if err != nil {
		return err
	}
	if parts.engine == nil { // no [[record]]: nothing reads health
		n.health.OnPublish(nil)
		return nil
	}
	// Every publish of the health store (states and round-trip times)
	// reaches the serving engine's plan from now on; and what was
	// published while the engine was built.
	// The guards are judged after each: health breaking one is logged.
	n.health.OnPublish(func() {
		parts.engine.Refresh()
		n.guards.observe(parts.engine)
	})
	parts.engine.Refresh()
	return nil
}

// publishOverrides shares a change made through this node's admin API.
func (n *Node) publishOverrides(o admin.Overrides) {
	if n.member != nil {
		n.member.publish(o)
	}
}

// applyOverrides puts the operator's persisted drains on a new engine
// before it serves.
func (n *Node) applyOverrides(parts *Parts) {
	if n.admin != nil {
		n.admin.Apply(parts.engine)
	}
}

// follow starts watching the geo databases of parts, stopping the
// previous configuration's watchers.
func (n *Node) follow(parts *Parts) {
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

func listenConfig(cfg *config.Config) dnsfront.Listen {
	n := cfg.Server.UDPSockets
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s := cfg.Server
	return dnsfront.Listen{
		Addrs:      s.Listen,
		UDPSockets: n,
		UDPPoller:  s.UDPLoop == config.UDPLoopPoller,
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
	return !slices.Equal(x.Listen, y.Listen) || x.UDPSockets != y.UDPSockets || x.UDPLoop != y.UDPLoop ||
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
