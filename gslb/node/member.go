package node

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/cluster"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/gslb/quorum"
	"github.com/meridian-gslb/meridian/probes"
)

// member is a DNS node's part in a cluster: its gossip node, the bridge
// that turns votes into the engine's health, and the plan it publishes.
type member struct {
	node   *cluster.Node
	health *cluster.Health
	cfg    config.Cluster
	plan   []byte // the body last published
	log    *slog.Logger
}

// newMember starts the node's gossip; it joins in join.
func newMember(ctx context.Context, cfg config.Cluster, store *health.Store, version string, log *slog.Logger) (*member, error) {
	node, err := cluster.New(ctx, cluster.Config{
		Name: cfg.Name, Bind: cfg.Bind, Advertise: cfg.Advertise, Seeds: cfg.Seeds,
		Keys: cfg.Keys, Insecure: cfg.Insecure,
		Meta:   cluster.Meta{Role: cluster.RoleDNS, Version: version},
		Quorum: quorum.Options{Rule: cfg.Rule, StaleAfter: cfg.StaleAfter.Duration},
		Log:    log.With("component", "cluster"),
	})
	if err != nil {
		return nil, err
	}
	return &member{node: node, health: cluster.NewHealth(node, store, log), cfg: cfg, log: log}, nil
}

// update publishes the checks of a new configuration as the plan, and
// recomputes the verdicts of its targets. Only encoding the plan can
// fail, and it comes first: a failed update has changed nothing.
func (m *member) update(specs []config.CheckSpec) error {
	body, err := probes.EncodePlan(specs)
	if err != nil {
		return err
	}
	keep := make(map[health.TargetID]bool, len(specs))
	for _, sp := range specs {
		keep[sp.Target] = true
	}
	m.node.Table().Retain(keep)
	if !bytes.Equal(body, m.plan) {
		m.node.PublishPlan(cluster.Plan{Generation: uint64(time.Now().UnixNano()), Body: body})
		m.plan = body
	}
	m.health.Apply(time.Now())
	return nil
}

// join joins through the seeds, waiting at most join_timeout, so that the
// node answers with the cluster's health rather than blind; without an
// answer it serves anyway (the cluster may be down whole) and keeps
// trying in the background, not ready until it has joined.
func (m *member) join(ctx context.Context) {
	jctx, cancel := context.WithTimeout(ctx, m.cfg.JoinTimeout.Duration)
	err := m.node.Join(jctx)
	cancel()
	if err == nil {
		m.health.Apply(time.Now())
		return
	}
	m.log.Warn("no seed answered; serving with the health known so far and still trying", "err", err, "seeds", m.cfg.Seeds)
	go func() {
		if err := m.node.Join(ctx); err == nil {
			m.health.Apply(time.Now())
		}
	}()
}

// run keeps health and overrides in step with the cluster until ctx ends.
func (m *member) run(ctx context.Context, n *Node) {
	go m.health.Run(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.node.OverridesChanged():
			m.takeOverrides(n)
		}
	}
}

// takeOverrides applies the cluster's overrides when they are newer than
// this node's.
func (m *member) takeOverrides(n *Node) {
	if n.admin == nil {
		return
	}
	co := m.node.Overrides()
	if co.Version == 0 {
		return // none made yet, anywhere
	}
	var o admin.Overrides
	if err := json.Unmarshal(co.Body, &o); err != nil {
		m.log.Error("overrides from the cluster are unreadable", "origin", co.Origin, "err", err)
		return
	}
	if _, err := n.admin.Replace(o, n.Engine()); err != nil {
		m.log.Error("overrides from the cluster not saved", "origin", co.Origin, "err", err)
	}
}

// publish shares overrides changed through this node's admin API.
func (m *member) publish(o admin.Overrides) {
	if o.Stamp == 0 {
		return // written before overrides were stamped: nothing to order it by
	}
	body, err := json.Marshal(o)
	if err != nil {
		m.log.Error("overrides", "err", err)
		return
	}
	m.node.PublishOverrides(cluster.Overrides{Version: o.Stamp, Origin: o.Origin, Body: body})
}

func (m *member) leave() {
	if err := m.node.Leave(2 * time.Second); err != nil {
		m.log.Warn("leaving the cluster", "err", err)
	}
}

// Verdicts and ClusterStatus serve the admin API (admin.ClusterSource).
func (n *Node) Verdicts() map[string]quorum.Verdict {
	if n.member == nil {
		return nil
	}
	out := map[string]quorum.Verdict{}
	for _, v := range n.member.node.Table().Verdicts() {
		out[string(v.Target)] = v
	}
	return out
}

func (n *Node) ClusterStatus() admin.ClusterStatus {
	if n.member == nil {
		return admin.ClusterStatus{}
	}
	m := n.member
	return admin.ClusterStatus{
		Enabled: true, Name: m.cfg.Name, Joined: m.node.Joined(),
		Quorum: m.cfg.Rule.String(), StaleAfter: m.cfg.StaleAfter.String(),
		Members: append(m.node.Members(), m.node.Lost()...), Vantages: m.node.Table().Vantages(time.Now()),
	}
}
