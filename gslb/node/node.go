// Package node is a Meridian DNS node's lifecycle (meridian serve). New
// builds everything a configuration needs before anything serves; Start
// opens the listeners; ReloadConfig builds the next configuration whole,
// swaps the handler's state, then switches health, serving the previous
// state again when that fails; Shutdown and Close stop it all. Signals and
// the reload loop are the caller's (internal/runner).
package node

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/checks"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/dnsfront"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/dnstap"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are what a node takes from the binary.
type Options struct {
	Path    string // the configuration file, as given to Load
	Load    func(path string) (*config.Config, *zones.Set, error)
	Version string // for server.version's default, the cluster and metrics
	Log     *slog.Logger
	Level   *slog.LevelVar // set from log.level by each reload
	// Registry takes the node's metrics; the admin API serves it.
	Registry *prometheus.Registry
	// RequestReload runs a reload on the caller's loop, as SIGHUP does
	// (admin.Source's Reload).
	RequestReload func() error
}

// Node is what a DNS node keeps between reloads.
type Node struct {
	opts    Options
	log     *slog.Logger
	cfg     *config.Config // in force
	set     *zones.Set     // in force until Start; then only reloads read zones
	handler *dnsfront.Handler
	health  *gslb.HealthMap // kept across reloads: unchanged targets keep their state
	checks  *checks.Runner
	stopGeo context.CancelFunc
	parts   *Parts        // serving now: a reload reuses its unchanged geo databases
	pending *Parts        // built by New, served from Start
	admin   *admin.Server // nil when admin.listen is "off"
	adminUp bool
	ready   atomic.Bool // listeners up: /readyz
	reloads *prometheus.CounterVec
	member  *member // nil without a cluster
	guards  *guardWatch
	srv     *dnsfront.Server
	srvUp   bool // started and not yet shut down
	xfr     transfers
	tap     *dnstap.Tap // [server.dnstap] as at start; nil: off

	stopChecks context.CancelFunc
	checksDone chan error

	// switchHealth points health at new parts (updateHealth); tests
	// make it fail.
	switchHealth func(*Parts) error
}

// Admin API: the running server, read through admin.Source and
// admin.ClusterSource.
var (
	_ admin.Source        = (*Node)(nil)
	_ admin.ClusterSource = (*Node)(nil)
)

// Reload runs a reload on the caller's loop and reports its result
// (admin.Source).
func (n *Node) Reload() error { return n.opts.RequestReload() }

// Reloads counts reloads by result (meridian_reloads_total), for the
// caller's loop to count them.
func (n *Node) Reloads() *prometheus.CounterVec { return n.reloads }

// Failed reports a listener that stopped by itself.
func (n *Node) Failed() <-chan error { return n.srv.Done() }

// Addrs are the addresses the DNS listeners are bound to, UDP then TCP.
func (n *Node) Addrs() (udp, tcp []string) {
	return addrStrings(n.srv.UDPAddrs()), addrStrings(n.srv.TCPAddrs())
}

// The admin API reads the running server through these (admin.Source).
func (n *Node) Engine() *gslb.Engine             { return n.handler.State().GSLB }
func (n *Node) Zones() *zones.Set                { return n.handler.State().Zones }
func (n *Node) Checks() map[string]probes.Status { return n.checks.Snapshot() }
func (n *Node) Ready() bool {
	return n.ready.Load() && (n.member == nil || n.member.node.Joined())
}
func (n *Node) Client(p netip.Prefix, ecs bool) gslb.Client {
	st := n.handler.State()
	if ecs {
		p = st.CapECS(p)
	}
	return st.ClientFor(p)
}
