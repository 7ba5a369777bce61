package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/gslb/quorum"
	"github.com/meridian-gslb/meridian/internal/loopback"
	"github.com/prometheus/client_golang/prometheus"
)

// Role is what a member does.
type Role string

// Roles.
const (
	RoleDNS   Role = "dns"   // answers queries, aggregates votes, publishes the check plan
	RoleProbe Role = "probe" // a vantage: runs the plan's checks and reports
)

// DefaultReconnect is how often a node tries again the members it lost,
// so that the two sides of a healed partition find each other:
// memberlist alone stops calling a dead member after GossipToTheDeadTime.
// memberlist does not tell the events of a failure from those of a
// leave, so members that left are tried too; they just do not answer.
const DefaultReconnect = 10 * time.Second

// reconnectFor is how long a lost member is tried before it is given up,
// as Serf's reconnect_timeout.
const reconnectFor = 24 * time.Hour

// Errors.
var (
	ErrInsecure = errors.New("refusing to gossip on a non-loopback address without an encryption key; set a key, or insecure = true to accept the risk")
	ErrNoSeeds  = errors.New("no seed answered")
)

// Meta is what a member tells the others of itself, in memberlist's node
// metadata (at most 512 bytes).
type Meta struct {
	Role    Role    `json:"role"`
	Vantage string  `json:"vantage,omitempty"`
	Region  string  `json:"region,omitempty"`
	Lat     float64 `json:"lat,omitempty"`
	Lon     float64 `json:"lon,omitempty"`
	Version string  `json:"version,omitempty"`
}

// Config configures a Node.
type Config struct {
	Name      string   // unique in the cluster
	Bind      string   // host:port for gossip over UDP and TCP
	Advertise string   // host:port the others reach this node at, when not Bind
	Seeds     []string // host:port of members to join through
	// Keys are the gossip encryption keys (16, 24 or 32 bytes): the first
	// encrypts, all decrypt, which is how keys rotate.
	Keys     [][]byte
	Insecure bool // allow gossip in clear beyond loopback
	Meta     Meta
	Quorum   quorum.Options // for RoleDNS: how votes become verdicts
	// Reconnect is how often lost members are tried again;
	// DefaultReconnect when 0.
	Reconnect time.Duration
	Log       *slog.Logger
	// Tune adjusts memberlist's configuration (LAN defaults) before the
	// node starts: tests shorten its timers.
	Tune func(*memberlist.Config)
}

// Member is one node of the cluster as this node sees it.
type Member struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// State is "alive" for the members memberlist lists (its suspects
	// included: it does not tell them apart), and for members lost
	// "left" (it said goodbye) or "failed" (declared dead).
	State string `json:"state"`
	// Since is when a lost member was lost.
	Since time.Time `json:"since,omitzero"`
	Meta
}

// Node is this process's membership of the cluster: memberlist with
// Meridian's messages on top. Its delegate only merges what arrives into
// the stores below and signals; the owners (the DNS server, the probe
// agent) read the stores and decide.
type Node struct {
	cfg   Config
	log   *slog.Logger
	ml    *memberlist.Memberlist
	trans *transport
	// meta is the metadata gossiped (a wireMeta): replaced once, when
	// the node begins to leave, while memberlist may be reading it.
	meta atomic.Pointer[[]byte]
	// keyring is memberlist's, shared: changes to it apply at once.
	keyring *memberlist.Keyring

	table *quorum.Table // vantages' results (every role keeps them, to pass them on)
	live  memberSet     // the live members, copied as the event handlers see them

	mu         sync.Mutex
	plans      map[string]Plan
	overrides  Overrides
	own        func() Results       // a probe's own results, for push/pull
	failed     map[string]lost      // members lost (failed or left), by name, to call back
	leaving    map[string]time.Time // members that said goodbye, by name: their loss is a leave
	loads      map[string]heldLoad  // forwarders' latest load reports, by name
	loadWarned map[string]bool      // forwarders whose last report had absurd values

	resultsCh, plansCh, overridesCh, membersCh chan struct{}
	sendq                                      chan send
	joined                                     atomic.Bool
	stop                                       chan struct{}
	wg                                         sync.WaitGroup
	dropped                                    atomic.Uint64 // malformed or foreign messages
	keyErrs                                    *keyErrors    // messages our keys could not read, by source
	joinErr                                    atomic.Pointer[string]
	rtts                                       *prometheus.HistogramVec
}

type lost struct {
	addr  string
	since time.Time
	how   string // "left" or "failed"
	meta  Meta
}

// byeFor is how long a goodbye explains a member's loss: memberlist
// declares a member that left gone within a gossip round or two.
const byeFor = 10 * time.Second

type send struct {
	to  *memberlist.Node
	msg []byte
}

// New starts a node: it binds and listens, but joins nobody until Join.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Keys) == 0 && !cfg.Insecure {
		if a := loopback.Beyond(append([]string{cfg.Bind, cfg.Advertise}, cfg.Seeds...)...); a != "" {
			return nil, fmt.Errorf("cluster address %s: %w", a, ErrInsecure)
		}
	}
	meta, err := json.Marshal(wireMeta{Meta: cfg.Meta})
	if err != nil {
		return nil, err
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes, more than %d", len(meta), memberlist.MetaMaxSize)
	}
	n := newNode(cfg, meta)
	if err := n.startMemberlist(ctx); err != nil {
		return nil, err
	}
	if n.cfg.Reconnect <= 0 {
		n.cfg.Reconnect = DefaultReconnect
	}
	n.wg.Add(2)
	go n.sender()
	go n.reconnect()
	return n, nil
}

// newNode is a Node before it has a memberlist: its state and metrics.
func newNode(cfg Config, meta []byte) *Node {
	n := &Node{
		cfg: cfg, log: cfg.Log,
		table:  quorum.New(cfg.Quorum),
		live:   memberSet{nodes: map[string]*memberlist.Node{}},
		plans:  map[string]Plan{},
		failed: map[string]lost{}, leaving: map[string]time.Time{},
		loads: map[string]heldLoad{}, loadWarned: map[string]bool{},
		resultsCh: make(chan struct{}, 1), plansCh: make(chan struct{}, 1),
		overridesCh: make(chan struct{}, 1), membersCh: make(chan struct{}, 1),
		sendq: make(chan send, 1024),
		stop:  make(chan struct{}),
		rtts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meridian_probe_rtt_seconds",
			Help:    "Round-trip times vantages report (smoothed per target), by vantage and region.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}, []string{"vantage", "region"}),
	}
	n.meta.Store(&meta)
	return n
}

// startMemberlist binds the gossip transport and creates n's memberlist,
// with the keyring, the delegate and the log bridge.
func (n *Node) startMemberlist(ctx context.Context) error {
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.cfg.Name
	host, port, err := resolveBind(ctx, n.cfg.Bind)
	if err != nil {
		return fmt.Errorf("cluster bind %q: %w", n.cfg.Bind, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	if n.cfg.Advertise != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = resolveBind(ctx, n.cfg.Advertise); err != nil {
			return fmt.Errorf("cluster advertise %q: %w", n.cfg.Advertise, err)
		}
	}
	if len(n.cfg.Keys) > 0 {
		if mc.Keyring, err = memberlist.NewKeyring(n.cfg.Keys, n.cfg.Keys[0]); err != nil {
			return fmt.Errorf("cluster keys: %w", err)
		}
		n.keyring = mc.Keyring
	}
	n.keyErrs = newKeyErrors(n.log)
	mc.Logger = log.New(&logWriter{log: n.log, keys: n.keyErrs}, "", 0)
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	if n.cfg.Tune != nil {
		n.cfg.Tune(mc)
	}
	nt, err := listen(mc)
	if err != nil {
		return fmt.Errorf("cluster listen on %s: %w", n.cfg.Bind, err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
	}
	n.trans = newTransport(nt, mc.BindAddr)
	mc.Transport = n.trans
	if n.ml, err = memberlist.Create(mc); err != nil {
		n.trans.Shutdown()
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// listen binds memberlist's TCP and UDP sockets. With port 0 the kernel
// picks a TCP port that UDP may already use: try again then, as
// memberlist.Create does for the transport it makes itself.
func listen(mc *memberlist.Config) (*memberlist.NetTransport, error) {
	tries := 1
	if mc.BindPort == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger,
		})
		// memberlist formats the cause with %v: only its text is left.
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return nt, err
		}
	}
	return nil, err
}

// Join joins the cluster through the seeds, trying again until one
// answers or ctx ends. Joining exchanges full state with the seed, so when
// Join returns the node holds the cluster's results and overrides. A node
// whose seeds are only itself is the first of its cluster and has joined.
func (n *Node) Join(ctx context.Context) error {
	self := n.Addr()
	var seeds []string
	for _, s := range n.cfg.Seeds {
		if s != self && s != n.cfg.Bind && s != n.cfg.Advertise {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		n.joined.Store(true)
		return nil
	}
	var said time.Time // when the failure was last logged
	for attempts := 1; ; attempts++ {
		_, err := n.ml.Join(seeds)
		if err == nil {
			n.joinErr.Store(nil)
			n.joined.Store(true)
			n.log.Info("joined the cluster", "members", n.ml.NumMembers())
			return nil
		}
		n.joinFailed(seeds, err, attempts, &said)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join %s: %w (%w)", strings.Join(seeds, ", "), ErrNoSeeds, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// joinLogEvery is how often a join that keeps failing is logged again.
const joinLogEvery = 30 * time.Second

// joinFailed keeps why the join failed, for JoinError, and logs it: a
// key problem at error (it will not mend by itself), seeds not answering
// at warn after the first attempt (they may be starting too); again every
// joinLogEvery, with the attempts so far.
func (n *Node) joinFailed(seeds []string, err error, attempts int, said *time.Time) {
	reason, keyProblem := joinReason(err)
	n.joinErr.Store(&reason)
	switch {
	case time.Since(*said) < joinLogEvery:
		n.log.Debug("join failed", "seeds", seeds, "err", err)
	case keyProblem:
		*said = time.Now()
		n.log.Error("cannot join the cluster", "reason", reason, "seeds", seeds, "attempts", attempts)
	case attempts > 1:
		*said = time.Now()
		n.log.Warn("cannot join the cluster yet", "reason", reason, "seeds", seeds, "attempts", attempts)
	}
}

// JoinError is why the latest attempt to join failed, or "" once joined
// (or before the first attempt).
func (n *Node) JoinError() string {
	if p := n.joinErr.Load(); p != nil {
		return *p
	}
	return ""
}

// Joined reports whether Join has succeeded.
func (n *Node) Joined() bool { return n.joined.Load() }

// Addr is the address the others reach this node at.
func (n *Node) Addr() string { return n.ml.LocalNode().Address() }

// Name is this node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Table is the vantages' results as this node knows them.
func (n *Node) Table() *quorum.Table { return n.table }

// Signals that something was merged; each holds at most one pending
// signal, so a burst of merges wakes the reader once.
func (n *Node) ResultsChanged() <-chan struct{}   { return n.resultsCh }
func (n *Node) PlansChanged() <-chan struct{}     { return n.plansCh }
func (n *Node) OverridesChanged() <-chan struct{} { return n.overridesCh }
func (n *Node) MembersChanged() <-chan struct{}   { return n.membersCh }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Leave tells the others this node is going and stops it, within
// timeout. memberlist's own leave reads as a failure to the others' event
// handlers (the state it sets is not the one they are given), so the
// node says so twice first: its metadata, which memberlist hands to every
// event handler, marks it leaving, and a goodbye goes to each member
// (which nodes of older versions read). The metadata is the one that
// holds when the others are busy: memberlist handles the alive message
// that carries it before any dead message, while it handles queued
// messages such as the goodbye newest first, after the dead message that
// follows them.
func (n *Node) Leave(timeout time.Duration) error {
	bye := encodeBye(n.cfg.Name)
	for _, m := range n.live.list() {
		if m.Name != n.cfg.Name {
			_ = n.ml.SendBestEffort(m, bye) // a lost goodbye reads as a failure
		}
	}
	// Both waits share the timeout: each lasts until memberlist has
	// gossiped its message enough times.
	deadline := time.Now().Add(timeout)
	if err := n.markLeaving(timeout / 2); err != nil {
		n.log.Debug("leaving: the metadata update did not go out", "err", err)
	}
	err := n.ml.Leave(max(time.Until(deadline), time.Millisecond))
	if serr := n.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// markLeaving gossips this node's metadata marked leaving, waiting up to
// timeout for it to go out.
func (n *Node) markLeaving(timeout time.Duration) error {
	meta, err := json.Marshal(wireMeta{Meta: n.cfg.Meta, Leaving: true})
	if err != nil {
		return err
	}
	n.meta.Store(&meta)
	return n.ml.UpdateNode(timeout)
}

// Shutdown stops the node without telling the others, as a crash would.
func (n *Node) Shutdown() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
	err := n.ml.Shutdown()
	n.wg.Wait()
	return err
}

// Members returns the live members, this node included, by name.
func (n *Node) Members() []Member {
	var out []Member
	for _, m := range n.live.list() {
		out = append(out, memberOf(m))
	}
	return out
}

// Lost returns the members lost (left or failed) and still called back,
// by name.
func (n *Node) Lost() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Member, 0, len(n.failed))
	for name, l := range n.failed {
		out = append(out, Member{Name: name, Addr: l.addr, State: l.how, Since: l.since, Meta: l.meta})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// wireMeta is the metadata a node gossips: its Meta and, once it has
// begun to leave, that it is leaving, which tells the others that its
// loss is a leave. Nodes that do not know the field ignore it.
type wireMeta struct {
	Meta
	Leaving bool `json:"leaving,omitempty"`
}

// saidLeaving reports whether m's last metadata marked it leaving.
func saidLeaving(m *memberlist.Node) bool {
	var w wireMeta
	return json.Unmarshal(m.Meta, &w) == nil && w.Leaving
}

// memberOf is m as a Member, alive.
func memberOf(m *memberlist.Node) Member {
	mm := Member{Name: m.Name, Addr: m.Address(), State: "alive"}
	_ = json.Unmarshal(m.Meta, &mm.Meta) // a member with unreadable metadata has no role
	return mm
}

// alive returns the live members of a role, this node excluded: those
// memberlist lists, which leaves out the dead and those that left.
func (n *Node) alive(role Role) []*memberlist.Node {
	var out []*memberlist.Node
	for _, m := range n.live.list() {
		if m.Name == n.cfg.Name {
			continue
		}
		if memberOf(m).Role == role {
			out = append(out, m)
		}
	}
	return out
}

// Bytes returns the gossip bytes this node has sent and received.
func (n *Node) Bytes() (sent, received uint64) { return n.trans.sent.Load(), n.trans.received.Load() }

// Dropped counts the messages this node could not read.
func (n *Node) Dropped() uint64 { return n.dropped.Load() }

// SetKeys replaces the gossip keys: new ones are installed, the first
// becomes the one that encrypts, and those no longer listed are removed.
func (n *Node) SetKeys(keys [][]byte) error {
	kr := n.keyring
	if kr == nil || len(keys) == 0 {
		return errors.New("encryption cannot be turned on or off at run time; restart the node")
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return err
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return err
	}
	for _, k := range kr.GetKeys() {
		if !slices.ContainsFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) }) {
			if err := kr.RemoveKey(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetBlock cuts this node off from the peers for which block returns true
// (by host:port), or restores it with nil. Tests use it to partition a
// cluster.
func (n *Node) SetBlock(block func(addr string) bool) {
	if block == nil {
		n.trans.block.Store(nil)
		return
	}
	n.trans.block.Store(&block)
}

// SendResults sends a vantage's reports to every live DNS node at once,
// in UDP packets: a lost one is made good by the next periodic report.
func (n *Node) SendResults(rs Results) {
	msgs := encodeResults(rs, maxPacket)
	for _, to := range n.alive(RoleDNS) {
		for _, m := range msgs {
			if err := n.ml.SendBestEffort(to, m); err != nil {
				n.log.Debug("send results", "to", to.Name, "err", err)
			}
		}
	}
}

// SetOwnResults gives a probe's node the function that lists its results,
// which it passes on in full-state exchanges.
func (n *Node) SetOwnResults(f func() Results) {
	n.mu.Lock()
	n.own = f
	n.mu.Unlock()
}

// PublishPlan makes p this DNS node's check plan and sends it to every
// live probe.
func (n *Node) PublishPlan(p Plan) {
	p.Origin = n.cfg.Name
	n.mu.Lock()
	n.plans[p.Origin] = p
	n.mu.Unlock()
	msg := encodePlan(p)
	for _, to := range n.alive(RoleProbe) {
		n.enqueue(to, msg)
	}
}

// Plans returns the check plans known, one per DNS node, by origin.
func (n *Node) Plans() []Plan {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Plan, 0, len(n.plans))
	for _, p := range n.plans {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Plan) int { return strings.Compare(a.Origin, b.Origin) })
	return out
}

// PublishOverrides makes o the cluster's overrides if it is newer than
// those held, and sends it to every live DNS node.
func (n *Node) PublishOverrides(o Overrides) {
	if !n.mergeOverrides(o) {
		return
	}
	msg := encodeOverrides(o)
	for _, to := range n.alive(RoleDNS) {
		n.enqueue(to, msg)
	}
}

// Overrides returns the newest overrides known.
func (n *Node) Overrides() Overrides {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.overrides
}

func (n *Node) mergeOverrides(o Overrides) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !o.newer(n.overrides) {
		return false
	}
	n.overrides = o
	return true
}

// enqueue hands a reliable send to the sender goroutine: memberlist's
// callbacks must not block on a TCP connection.
func (n *Node) enqueue(to *memberlist.Node, msg []byte) {
	select {
	case n.sendq <- send{to: to, msg: msg}:
	default:
		n.log.Warn("cluster send queue full; dropped a message", "to", to.Name)
	}
}

func (n *Node) sender() {
	defer n.wg.Done()
	for {
		select {
		case s := <-n.sendq:
			if err := n.ml.SendReliable(s.to, s.msg); err != nil {
				n.log.Debug("send", "to", s.to.Name, "err", err)
			}
		case <-n.stop:
			return
		}
	}
}

// reconnect tries the lost members again, and the seeds when the node
// has lost every peer, until the node stops.
func (n *Node) reconnect() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Reconnect)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.keyErrs.tick()
		var addrs []string
		n.mu.Lock()
		for name, l := range n.failed {
			if time.Since(l.since) > reconnectFor {
				delete(n.failed, name)
				continue
			}
			addrs = append(addrs, l.addr)
		}
		n.mu.Unlock()
		if n.joined.Load() && n.ml.NumMembers() == 1 {
			addrs = append(addrs, n.cfg.Seeds...)
		}
		if len(addrs) == 0 {
			continue
		}
		if k, err := n.ml.Join(addrs); k > 0 {
			n.log.Info("reconnected to lost members", "contacted", k)
		} else {
			n.log.Debug("reconnect", "addrs", addrs, "err", err)
		}
	}
}

// receive merges one message from a peer.
func (n *Node) receive(b []byte, now time.Time) {
	m, err := decode(b)
	if err != nil {
		n.dropped.Add(1)
		n.log.Debug("dropped a cluster message", "err", err)
		return
	}
	switch m.kind {
	case kindResults, kindReports:
		if n.mergeResults(m.results, now) {
			signal(n.resultsCh)
		}
	case kindBye:
		n.mu.Lock()
		n.leaving[m.bye] = now
		n.mu.Unlock()
	case kindPlan:
		if n.mergePlan(m.plan) {
			signal(n.plansCh)
		}
	case kindOverrides:
		if n.mergeOverrides(m.overrides) {
			signal(n.overridesCh)
		}
	case kindLoad:
		n.mergeLoad(m.load, now)
	case kindFull:
		for _, part := range m.full {
			n.receive(part, now)
		}
	}
}

func (n *Node) mergeResults(rs Results, now time.Time) bool {
	if rs.Vantage == n.cfg.Meta.Vantage && n.cfg.Meta.Role == RoleProbe {
		return false // our own, coming back through a peer
	}
	b := quorum.Batch{Vantage: rs.Vantage, Boot: rs.Boot, Complete: rs.Complete, Results: make([]quorum.TargetResult, 0, len(rs.Reports))}
	for _, r := range rs.Reports {
		b.Results = append(b.Results, quorum.TargetResult{Target: r.Target, Result: quorum.Result{
			State: r.State, Seq: r.Seq, RTT: r.RTT, Reason: r.Reason, Seen: now.Add(-r.Delay),
			Backed: now.Add(-r.Backed), Window: r.Window, Streak: r.Streak,
		}})
	}
	if !n.table.MergeBatch(b, now) {
		return false
	}
	for _, r := range rs.Reports {
		if r.RTT > 0 && r.State == health.Up {
			n.rtts.WithLabelValues(rs.Vantage, r.Target.Region()).Observe(r.RTT.Seconds())
		}
	}
	return true
}

func (n *Node) mergePlan(p Plan) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.Origin == n.cfg.Name {
		return false
	}
	if old, ok := n.plans[p.Origin]; ok && old.Generation >= p.Generation {
		return false
	}
	n.plans[p.Origin] = p
	return true
}

// fullState is everything this node passes on in a push/pull.
func (n *Node) fullState(now time.Time) []byte {
	var msgs [][]byte
	byV := map[string]*Results{}
	for _, b := range n.table.Batches() {
		rs := &Results{Vantage: b.Vantage, Boot: b.Boot, Complete: b.Complete, Reports: make([]Report, 0, len(b.Results))}
		for _, tr := range b.Results {
			rs.Reports = append(rs.Reports, reportOf(tr, now))
		}
		byV[b.Vantage] = rs
	}
	n.mu.Lock()
	own := n.own
	for _, p := range n.plans {
		msgs = append(msgs, encodePlan(p))
	}
	if n.overrides.Version > 0 {
		msgs = append(msgs, encodeOverrides(n.overrides))
	}
	n.mu.Unlock()
	if own != nil {
		rs := own()
		byV[rs.Vantage] = &rs
	}
	for _, rs := range byV {
		msgs = append(msgs, encodeResults(*rs, 0)...)
	}
	return encodeFull(msgs)
}

// reportOf is a held result as a peer receives it, its times made
// relative to now again.
func reportOf(tr quorum.TargetResult, now time.Time) Report {
	r := tr.Result
	rep := Report{Target: tr.Target, State: r.State, Seq: r.Seq, RTT: r.RTT, Reason: r.Reason, Delay: now.Sub(r.Seen),
		Window: r.Window, Streak: r.Streak}
	if r.Window > 0 {
		rep.Backed = now.Sub(r.Backed)
	}
	return rep
}

// delegate is memberlist's view of a Node: it merges and signals, and
// never blocks.
type delegate Node

func (d *delegate) NodeMeta(limit int) []byte { return *d.meta.Load() }

func (d *delegate) NotifyMsg(b []byte) { (*Node)(d).receive(b, time.Now()) }

// GetBroadcasts sends nothing by gossip: results go straight to the DNS
// nodes, plans and overrides over TCP, and push/pull repairs any loss.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

func (d *delegate) LocalState(join bool) []byte { return (*Node)(d).fullState(time.Now()) }

func (d *delegate) MergeRemoteState(buf []byte, join bool) { (*Node)(d).receive(buf, time.Now()) }

// events follows membership: a vantage that goes stops voting, one that
// comes back votes once judged, a probe that comes gets the plan, and
// each of these is logged, naming the member.
type events Node

func (e *events) NotifyJoin(m *memberlist.Node) {
	n := (*Node)(e)
	n.live.put(m)
	m = n.live.get(m.Name) // a copy, which the handlers below may keep
	signal(n.membersCh)
	if m.Name == n.cfg.Name {
		return
	}
	mm := memberOf(m)
	n.mu.Lock()
	l, back := n.failed[m.Name]
	delete(n.failed, m.Name)
	delete(n.leaving, m.Name)
	p, planned := n.plans[n.cfg.Name]
	n.mu.Unlock()
	attrs := []any{"member", m.Name, "role", mm.Role, "vantage", mm.Vantage, "addr", m.Address()}
	if back {
		n.log.Info("member came back", append(attrs, "was", l.how, "after", time.Since(l.since).Round(time.Millisecond).String())...)
	} else {
		n.log.Info("member joined", attrs...)
	}
	if mm.Role != RoleProbe {
		return
	}
	if mm.Vantage != "" {
		n.table.Return(mm.Vantage)
		signal(n.resultsCh)
	}
	if n.cfg.Meta.Role == RoleDNS && planned {
		n.enqueue(m, encodePlan(p))
	}
}

func (e *events) NotifyLeave(m *memberlist.Node) {
	n := (*Node)(e)
	n.live.drop(m.Name)
	signal(n.membersCh)
	// This node's own leave is not a loss.
	if m.Name == n.cfg.Name {
		return
	}
	now := time.Now()
	mm := memberOf(m)
	how := n.lose(m, mm, now)
	attrs := []any{"member", m.Name, "role", mm.Role, "vantage", mm.Vantage, "addr", m.Address()}
	if how == "left" {
		n.log.Info("member left", attrs...)
	} else {
		n.log.Warn("member failed", attrs...)
	}
	switch mm.Role {
	case RoleProbe:
		if mm.Vantage != "" {
			n.table.Gone(mm.Vantage, now)
			signal(n.resultsCh)
		}
	case RoleDNS:
		n.dropPlan(m.Name)
	case RoleForwarder:
		n.forgetLoad(m)
	}
}

// lose records a member lost, to call back, and returns whether it left
// or failed. Every member lost is called back: one that left does not
// answer, and is given up after reconnectFor.
func (n *Node) lose(m *memberlist.Node, mm Member, now time.Time) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	how := "failed"
	if t, ok := n.leaving[m.Name]; saidLeaving(m) || ok && now.Sub(t) < byeFor {
		how = "left"
	}
	delete(n.leaving, m.Name)
	n.failed[m.Name] = lost{addr: m.Address(), since: now, how: how, meta: mm.Meta}
	return how
}

// dropPlan forgets the plan of a DNS node that went, unless it was the
// only one: probes keep checking something while every DNS node
// restarts.
func (n *Node) dropPlan(name string) {
	n.mu.Lock()
	_, ok := n.plans[name]
	drop := ok && len(n.plans) > 1
	if drop {
		delete(n.plans, name)
	}
	n.mu.Unlock()
	if drop {
		signal(n.plansCh)
	}
}

func (e *events) NotifyUpdate(m *memberlist.Node) {
	n := (*Node)(e)
	n.live.put(m)
	signal(n.membersCh)
}

// logWriter turns memberlist's "[LEVEL] memberlist: ..." lines into slog
// records at the matching level.
type logWriter struct {
	log  *slog.Logger
	keys *keyErrors // takes the key errors, counted and rate-limited
}

func (w *logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if w.keys != nil && w.keys.observe(line) {
		return len(p), nil
	}
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[ERR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo, "[DEBUG]": slog.LevelDebug} {
		if strings.HasPrefix(line, prefix) {
			level, line = l, strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	// memberlist's INFO is chatty (every probe timeout); ours is for what
	// an operator acts on.
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

var _ io.Writer = (*logWriter)(nil)
