package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http/httputil"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/l4"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors, wrapped with context.
var (
	ErrStarted        = errors.New("forwarder already started")
	ErrNotStarted     = errors.New("forwarder not started")
	ErrUnknownPool    = errors.New("no such pool")
	ErrUnknownBackend = errors.New("no such backend")
	ErrShuttingDown   = errors.New("forwarder is shutting down")
	ErrUnknownRoute   = errors.New("no such route")
	ErrNoCanary       = errors.New("the route has no canary")
)

// Options configure a Forwarder.
type Options struct {
	Log *slog.Logger // nil discards
	// Metrics is served at the admin API's /metrics; nil serves none.
	// Register Collector in it.
	Metrics prometheus.Gatherer
	// Rand returns a uniform number in [0, n) for the p2c balancer; it must
	// be safe for concurrent use. Nil uses math/rand/v2.
	Rand func(n uint64) uint64
}

// Forwarder is the bundled forwarder: listeners that proxy TCP, TLS (by
// SNI) and UDP to pools of backends, the checks of those backends, and
// the HTTP endpoints that show them.
//
// All upstream state is held here, in one place: the configuration in
// force is an immutable snapshot behind an atomic pointer, which the
// connection path reads without locks and a reload replaces whole; what
// must outlive a reload (health, drains, ejections, counters) sits in
// the upstream registry, keyed by pool and address, and the pools' L7
// state (retry budgets, transports) in l7States.
type Forwarder struct {
	log   *slog.Logger
	opts  Options
	sched *probes.Scheduler
	snap  atomic.Pointer[snapshot]

	// ctx ends when the forwarder has stopped: dials and checks stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex              // serialises Start, Reload and Shutdown; guards the fields below
	upstream   *upstream.Registry      // pools' and backends' state, by name and ID
	l4         *l4.Env                 // what the TCP and UDP listeners read
	l7States   map[string]*poolL7State // by pool
	listeners  map[string]l4.Listener
	started    bool
	stopping   atomic.Bool
	http       []*httpServer
	checksDone chan struct{}
	token      []byte

	// The L7 proxy: route state that survives reloads (canary shares,
	// counters) by listener/route, the access log, and the one
	// ReverseProxy every http listener hands requests to.
	routeStates map[string]*routeState
	limiters    map[string]*limiter // by policy name; f.mu
	accessLog   atomic.Pointer[accessLog]
	proxy       *httputil.ReverseProxy
}

// snapshot is one configuration, built into what the connection path
// reads.
type snapshot struct {
	cfg       *config.Forward
	pools     map[string]*Pool
	poolNames []string // sorted, for listings
	listeners map[string]*listenerConfig
	limiters  map[string]*limiter // rate limit policies, by name
}

// listenerConfig is a listener's part of the configuration in force: what
// every listener has (package l4), and for http and https listeners
// their routes.
type listenerConfig struct {
	*l4.Config
	http *httpConfig // http and https listeners
}

// Listener returns the L4 settings of listener name, for the L4 listeners.
func (snap *snapshot) Listener(name string) *l4.Config {
	if c := snap.listeners[name]; c != nil {
		return c.Config
	}
	return nil
}

// Pool returns pool name, for the L4 listeners.
func (snap *snapshot) Pool(name string) *upstream.Pool {
	if p := snap.pools[name]; p != nil {
		return p.Pool
	}
	return nil
}

// New returns a forwarder; Start runs it.
func New(opts Options) *Forwarder {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		log:         opts.Log,
		opts:        opts,
		upstream:    upstream.NewRegistry(opts.Log, opts.Rand),
		l7States:    map[string]*poolL7State{},
		listeners:   map[string]l4.Listener{},
		routeStates: map[string]*routeState{},
	}
	f.proxy = f.newReverseProxy()
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.l4 = &l4.Env{Ctx: f.ctx, Log: opts.Log, Current: func() l4.Snapshot { return f.snap.Load() }}
	f.sched = probes.NewScheduler(probes.Options{Sink: probes.SinkFunc(f.observe), Logger: opts.Log})
	return f
}

// Start applies cfg, binds its listeners and the HTTP endpoints, and
// starts forwarding and checking. On error nothing is left running.
func (f *Forwarder) Start(cfg *config.Forward) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return ErrStarted
	}
	if cfg.Admin.TokenFile != "" {
		b, err := os.ReadFile(cfg.ResolvePath(cfg.Admin.TokenFile))
		if err != nil {
			return cfg.Errorf("admin.token_file", "%v", err)
		}
		if f.token = bytes.TrimSpace(b); len(f.token) < 16 {
			return cfg.Errorf("admin.token_file", "the token must be at least 16 characters")
		}
	}
	if err := f.apply(cfg); err != nil {
		return err
	}
	if err := f.startHTTP(cfg); err != nil {
		for _, l := range f.listeners {
			l.Stop()
		}
		f.cancel()
		return err
	}
	f.started = true
	f.checksDone = make(chan struct{})
	go func() {
		defer close(f.checksDone)
		_ = f.sched.Run(f.ctx) // only fails when run twice
	}()
	for _, l := range f.listeners {
		go l.Serve()
	}
	return nil
}

// Reload applies cfg in place of the configuration in force. Established
// connections carry on; backends that are gone drain; unchanged backends
// keep their health, drains and counters. On error the old configuration
// stays in force, untouched.
func (f *Forwarder) Reload(cfg *config.Forward) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		return ErrNotStarted
	}
	if f.stopping.Load() {
		return ErrShuttingDown
	}
	old := f.snap.Load().cfg
	before := make(map[string]l4.Listener, len(f.listeners))
	for name, l := range f.listeners {
		before[name] = l
	}
	if err := f.apply(cfg); err != nil {
		return err
	}
	for name, l := range f.listeners {
		if before[name] != l {
			go l.Serve()
		}
	}
	if a, b := cfg.Admin, old.Admin; a.Listen != b.Listen || a.TokenFile != b.TokenFile || a.ReadsOpen() != b.ReadsOpen() || cfg.Health != old.Health {
		f.log.Warn("reload: admin and health settings changed; they apply at the next restart")
	}
	for _, lc := range cfg.Listeners {
		for _, was := range old.Listeners {
			if was.Name == lc.Name && was.IsHTTP() && before[lc.Name] == f.listeners[lc.Name] && boundSettingsOf(was) != boundSettingsOf(lc) {
				f.log.Warn("reload: the listener's connection settings (timeouts, header size, h2c, TLS version, PROXY protocol) apply at the next restart or on a new address; its routes, pools and certificates changed now",
					"listener", lc.Name)
			}
		}
	}
	return nil
}

// boundSettings are an http listener's settings fixed when it is bound.
type boundSettings struct {
	readHeader, read, write, idle, handshake time.Duration
	maxHeader                                int
	h2c, acceptProxy                         bool
	tlsMin                                   string
}

func boundSettingsOf(lc config.ForwardListener) boundSettings {
	return boundSettings{
		readHeader: lc.ReadHeaderTimeout.Duration, read: lc.ReadTimeout.Duration, write: lc.WriteTimeout.Duration,
		idle: lc.IdleTimeout.Duration, handshake: lc.HandshakeTimeout.Duration, maxHeader: lc.MaxHeaderBytes,
		h2c: lc.H2C, acceptProxy: lc.AcceptProxyProtocol, tlsMin: lc.TLSMinVersion,
	}
}

// prepared is what a configuration needs from outside its file: read
// before anything changes, so that a missing or broken file fails the
// whole reload and leaves the configuration in force untouched.
type prepared struct {
	limiters   map[string]*limiter      // by policy
	stickyKeys map[string][]byte        // by pool
	transports map[string]transportSpec // by pool
	certs      map[string]*certSet      // by https listener
	accessLog  *accessLog
}

func (f *Forwarder) prepare(cfg *config.Forward) (*prepared, error) {
	prep := &prepared{stickyKeys: map[string][]byte{}, transports: map[string]transportSpec{}, certs: map[string]*certSet{}}
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		spec, err := transportSpecOf(cfg, i)
		if err != nil {
			return nil, err
		}
		prep.transports[pc.Name] = spec
		if pc.Sticky.Mode == "cookie" {
			b, err := os.ReadFile(cfg.ResolvePath(pc.Sticky.KeyFile))
			if err != nil {
				return nil, cfg.Errorf(fmt.Sprintf("pool[%d].sticky.key_file", i), "%v", err)
			}
			if b = bytes.TrimSpace(b); len(b) < config.MinStickyKey {
				return nil, cfg.Errorf(fmt.Sprintf("pool[%d].sticky.key_file", i), "the key must be at least %d bytes", config.MinStickyKey)
			}
			prep.stickyKeys[pc.Name] = b
		}
	}
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		if lc.Protocol != "https" {
			continue
		}
		set, err := loadCertSet(certFilesOf(cfg, lc))
		if err != nil {
			return nil, cfg.Errorf(fmt.Sprintf("listener[%d].certificate", i), "%v", err)
		}
		prep.certs[lc.Name] = set
	}
	var err error
	if prep.limiters, err = f.prepareLimiters(cfg, f.limiters); err != nil {
		return nil, err
	}
	al, err := openAccessLog(cfg, f.accessLog.Load())
	if err != nil {
		return nil, err
	}
	prep.accessLog = al
	return prep, nil
}

// apply builds cfg into a snapshot and publishes it: backends and pools
// first, then listeners, whose new ones are bound before anything changes
// so that an address in use fails the whole reload. f.mu is held.
func (f *Forwarder) apply(cfg *config.Forward) (err error) {
	targets, err := f.checkTargets(cfg)
	if err != nil {
		return err
	}
	prep, err := f.prepare(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			prep.accessLog.close(f.accessLog.Load())
		}
	}()
	lcfgs, usedRoutes, err := f.buildListenerConfigs(cfg, prep)
	if err != nil {
		return err
	}
	next, bound, err := f.bindListeners(cfg, prep)
	if err != nil {
		return err
	}
	first := f.snap.Load() == nil
	snap := &snapshot{cfg: cfg, pools: map[string]*Pool{}, listeners: lcfgs, limiters: prep.limiters}
	if err := f.buildPools(cfg, snap, prep, first); err != nil { // a bug: the configuration was validated
		for _, b := range bound {
			b.Stop()
		}
		return err
	}
	f.publish(snap)
	f.runGuards(snap)
	for key := range f.routeStates {
		if !usedRoutes[key] {
			delete(f.routeStates, key)
		}
	}
	f.limiters = prep.limiters
	if err := f.sched.Update(targets); err != nil {
		// Targets come from a validated configuration: this is a bug,
		// and the checks in force carry on.
		f.log.Error("health checks not updated", "err", err)
	}
	f.swapListeners(cfg, next, prep)
	f.swapAccessLog(prep.accessLog, first)
	for _, l := range bound {
		f.log.Info("listening", "listener", l.Name(), "protocol", l.Protocol(), "addr", l.Addr().String())
	}
	return nil
}

// buildListenerConfigs builds what the connection path reads of each
// listener of cfg, and returns with them the listener/route keys of the
// routes in use.
func (f *Forwarder) buildListenerConfigs(cfg *config.Forward, prep *prepared) (map[string]*listenerConfig, map[string]bool, error) {
	lcfgs := make(map[string]*listenerConfig, len(cfg.Listeners))
	usedRoutes := map[string]bool{}
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		c := &listenerConfig{Config: l4.NewConfig(*lc)}
		if lc.IsHTTP() {
			var err error
			if c.http, err = f.buildHTTPConfig(cfg, i, usedRoutes, prep.limiters); err != nil {
				return nil, nil, err
			}
		}
		lcfgs[lc.Name] = c
	}
	return lcfgs, usedRoutes, nil
}

// bindListeners returns the listeners of cfg: those in force whose
// protocol and address are unchanged, and new ones, bound here, the only
// step of a reload that can fail on something outside the file. bound
// lists the new ones; on error none is left bound.
func (f *Forwarder) bindListeners(cfg *config.Forward, prep *prepared) (next map[string]l4.Listener, bound []l4.Listener, err error) {
	next = make(map[string]l4.Listener, len(cfg.Listeners))
	for _, lc := range cfg.Listeners {
		if l, ok := f.listeners[lc.Name]; ok && l.Protocol() == lc.Protocol && l.Listen() == lc.Listen {
			next[lc.Name] = l
			continue
		}
		var l l4.Listener
		if lc.IsHTTP() {
			l, err = f.bindHTTP(lc, prep.certs[lc.Name])
		} else {
			l, err = l4.Bind(f.l4, lc)
		}
		if err != nil {
			for _, b := range bound {
				b.Stop()
			}
			return nil, nil, err
		}
		bound = append(bound, l)
		next[lc.Name] = l
	}
	return next, bound, nil
}

// buildPools builds the pools of cfg into snap, and drains the backends
// gone from it.
func (f *Forwarder) buildPools(cfg *config.Forward, snap *snapshot, prep *prepared, first bool) error {
	now := time.Now()
	keep := map[string]bool{}
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		p, err := f.buildPool(pc, keep, first, now, prep.stickyKeys[pc.Name], prep.transports[pc.Name])
		if err != nil {
			return err
		}
		snap.pools[p.Name] = p
		snap.poolNames = append(snap.poolNames, p.Name)
	}
	slices.Sort(snap.poolNames)
	f.upstream.Retire(keep)
	return nil
}

// publish puts snap in force: the connection path reads it from now on,
// its pools' transports replace those before, and the pools it no longer
// has are taken out with their transports' idle connections.
func (f *Forwarder) publish(snap *snapshot) {
	f.snap.Store(snap)
	for _, p := range snap.pools {
		p.State.Install(p.Pool)
		p.http.st.install(p)
	}
	for name, ps := range f.upstream.PoolStates() {
		if snap.pools[name] != nil {
			continue
		}
		if ls := f.l7States[name]; ls != nil {
			ls.close()
		}
		if ps.Uninstall() {
			f.log.Info("pool removed", "pool", name)
		}
	}
}

// swapListeners puts the listeners of next in force, closing those it
// replaces, and gives https listeners their certificates.
func (f *Forwarder) swapListeners(cfg *config.Forward, next map[string]l4.Listener, prep *prepared) {
	for name, l := range f.listeners {
		if next[name] != l {
			f.log.Info("listener closed", "listener", name, "addr", l.Addr().String())
			l.Stop()
		}
	}
	f.listeners = next
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		if hl, ok := next[lc.Name].(*httpListener); ok && hl.certs != nil {
			hl.certs.set(prep.certs[lc.Name], lc.CertificateReload.Duration)
		}
	}
}

// swapAccessLog puts al in force, closing the one before unless al keeps
// its file.
func (f *Forwarder) swapAccessLog(al *accessLog, first bool) {
	if old := f.accessLog.Swap(al); old != nil || al != nil {
		old.close(al)
		if !first && old.String() != al.String() {
			f.log.Info("access log", "log", al.String())
		}
	}
}

// buildPool builds one pool of cfg: its upstream side through the
// registry, which reuses the state of backends it already had (keep
// collects the backend IDs in use), and its L7 side. stickyKey signs the
// pool's sticky cookies; spec is its HTTP transport.
func (f *Forwarder) buildPool(pc *config.ForwardPool, keep map[string]bool, first bool, now time.Time, stickyKey []byte, spec transportSpec) (*Pool, error) {
	up, err := f.upstream.Build(pc, keep, first, now)
	if err != nil {
		return nil, err
	}
	ls := f.l7States[pc.Name]
	if ls == nil {
		ls = &poolL7State{}
		f.l7States[pc.Name] = ls
	}
	h := pc.HTTP
	p := &Pool{Pool: up, http: poolHTTP{
		scheme: h.Scheme, host: h.Host, retries: *h.Retries, retryStatuses: h.RetryStatuses,
		retryTimeout: h.RetryTimeout, retryNonIdempotent: h.RetryNonIdempotent,
		budgetRatio: *h.RetryBudget, budgetMin: *h.RetryBudgetMin, retryBuffer: *h.RetryBuffer,
		stickyKey: stickyKey, tspec: spec, st: ls,
	}}
	ls.mu.Lock()
	if ls.transport != nil && ls.tspec == spec {
		p.http.transport, p.http.fast = ls.transport, ls.fast
	}
	ls.mu.Unlock()
	if p.http.transport == nil {
		p.http.transport = f.newTransport(spec)
		if spec.scheme == "http" {
			p.http.fast = newH1Transport(spec)
		}
	}
	p.http.sticky = newSticky(pc.Sticky, pc.Name, up.Backends, stickyKey)
	return p, nil
}

// checkTargets builds the active checks of cfg's backends.
func (f *Forwarder) checkTargets(cfg *config.Forward) ([]probes.Target, error) {
	var targets []probes.Target
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		for j := range pc.Backends {
			bc := &pc.Backends[j]
			spec, ok := cfg.CheckSpec(pc, bc)
			if !ok {
				continue
			}
			id := upstream.BackendID(pc.Name, bc.Address)
			ck, err := probes.NewChecker(spec)
			if err != nil {
				return nil, cfg.Errorf(fmt.Sprintf("pool[%d].check", i), "backend %s: %v", bc.Address, err)
			}
			targets = append(targets, probes.Target{
				ID: id, Checker: ck, Interval: spec.Interval, Timeout: spec.Timeout,
				Rise: spec.Rise, Fall: spec.Fall, Initial: upstream.InitialState(pc),
			})
		}
	}
	return targets, nil
}

// observe takes every check result; a change of state moves the backend
// in or out of rotation. It compares with the backend's own state rather
// than trusting Status.Changed: a check redefined by a reload starts over
// from initial_state, which may differ from what the backend was.
func (f *Forwarder) observe(id string, s probes.Status) {
	st := f.upstream.Backend(id)
	if st == nil || s.State == probes.Unknown || !st.SetHealth(s.State, s.Checked) {
		return
	}
	level, reason := slog.LevelInfo, s.Reason
	if s.State == probes.Down {
		level = slog.LevelWarn
	}
	if !s.Changed {
		reason = s.Result.Reason
	}
	f.log.Log(context.Background(), level, "backend "+s.State.String(), "pool", st.Pool.Name, "backend", st.Addr, "reason", reason)
	st.Pool.Refresh()
}

// Drain sets or clears the admin API's drain of a backend. The configured
// drain, if any, still holds after the admin's is cleared.
func (f *Forwarder) Drain(pool, addr string, on bool) error {
	p, b, err := f.snap.Load().backend(pool, addr)
	if err != nil {
		return err
	}
	if b.State.SetDrain(upstream.DrainAdmin, on, p.DrainTimeout) {
		b.State.LogDrain(on, "admin")
	}
	return nil
}

// backend finds a backend of the configuration in force, for the admin
// API's changes.
func (snap *snapshot) backend(pool, addr string) (*Pool, *upstream.Backend, error) {
	if snap == nil {
		return nil, nil, ErrNotStarted
	}
	p := snap.pools[pool]
	if p == nil {
		return nil, nil, fmt.Errorf("pool %q: %w", pool, ErrUnknownPool)
	}
	for _, b := range p.Backends {
		if b.Addr == addr {
			return p, b, nil
		}
	}
	return nil, nil, fmt.Errorf("pool %q: backend %q: %w", pool, addr, ErrUnknownBackend)
}

// Addr returns the address listener name is bound to, or nil.
func (f *Forwarder) Addr(name string) net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.listeners[name]; l != nil {
		return l.Addr()
	}
	return nil
}

// HTTPAddrs returns the addresses of the admin and health endpoints, in
// that order, of those configured.
func (f *Forwarder) HTTPAddrs() []net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []net.Addr
	for _, s := range f.http {
		out = append(out, s.ln.Addr())
	}
	return out
}

// DrainTimeout is the longest drain_timeout of the configuration in force:
// how long Shutdown may wait for connections to finish.
func (f *Forwarder) DrainTimeout() time.Duration {
	var d time.Duration
	if snap := f.snap.Load(); snap != nil {
		for _, p := range snap.pools {
			d = max(d, p.DrainTimeout)
		}
	}
	return d
}

// Shutdown stops accepting, drains every backend and waits for the
// established connections, each up to its pool's drain_timeout, then
// closes what is left; when ctx ends first it closes them at once. The
// health endpoint answers 503 from the start, so GSLB probes move traffic
// away while connections drain.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	switch {
	case !f.started:
		f.mu.Unlock()
		return ErrNotStarted
	case f.stopping.Swap(true):
		f.mu.Unlock()
		return ErrShuttingDown
	}
	listeners := slices.Collect(maps.Values(f.listeners))
	states := f.upstream.BackendStates()
	pools := f.upstream.PoolStates()
	l7 := slices.Collect(maps.Values(f.l7States))
	f.mu.Unlock()

	for _, l := range listeners {
		l.Stop()
	}
	for _, st := range states {
		st.SetDrain(upstream.DrainShutdown, true, st.DrainTimeout())
	}
	for _, ps := range pools {
		ps.Refresh()
	}
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() { l.Wait(ctx) })
	}
	wg.Wait()
	err := ctx.Err()
	if err != nil {
		for _, st := range states {
			st.AbortAll()
		}
		waitCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		for _, l := range listeners {
			l.Wait(waitCtx)
		}
		cancel()
	}
	for _, ls := range l7 {
		ls.close()
	}
	f.cancel()
	<-f.checksDone
	for _, s := range f.http {
		shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.srv.Shutdown(shutCtx)
		cancel()
	}
	f.accessLog.Swap(nil).close(nil)
	if err != nil {
		return fmt.Errorf("connections still open at the deadline were closed: %w", err)
	}
	return nil
}
