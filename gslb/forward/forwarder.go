package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/l4"
	"github.com/meridian-gslb/meridian/gslb/forward/l7"
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
	ErrUnknownRoute   = l7.ErrUnknownRoute
	ErrNoCanary       = l7.ErrNoCanary
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
// the upstream registry, keyed by pool and address, and in the L7 proxy
// (routes' canary shares and counters, pools' retry budgets and
// transports, rate limiters, the access log).
type Forwarder struct {
	log   *slog.Logger
	opts  Options
	sched *probes.Scheduler
	snap  atomic.Pointer[snapshot]

	// ctx ends when the forwarder has stopped: dials and checks stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex         // serialises Start, Reload and Shutdown; guards the fields below
	upstream   *upstream.Registry // pools' and backends' state, by name and ID
	l4         *l4.Env            // what the TCP and UDP listeners read
	l7         *l7.Proxy          // the http and https listeners' proxy
	listeners  map[string]l4.Listener
	started    bool
	stopping   atomic.Bool
	http       []*httpServer
	checksDone chan struct{}
	token      []byte
}

// snapshot is one configuration, built into what the connection path
// reads.
type snapshot struct {
	cfg       *config.Forward
	pools     map[string]*l7.Pool
	poolNames []string // sorted, for listings
	listeners map[string]*listenerConfig
}

// listenerConfig is a listener's part of the configuration in force: what
// every listener has (package l4), and for http and https listeners
// their routes.
type listenerConfig struct {
	*l4.Config
	http *l7.Config // http and https listeners
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

// HTTPListener returns the L7 settings of listener name, for the L7
// proxy.
func (snap *snapshot) HTTPListener(name string) *l7.Config {
	if c := snap.listeners[name]; c != nil {
		return c.http
	}
	return nil
}

// HTTPPool returns pool name, for the L7 proxy.
func (snap *snapshot) HTTPPool(name string) *l7.Pool { return snap.pools[name] }

// New returns a forwarder; Start runs it.
func New(opts Options) *Forwarder {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		log:       opts.Log,
		opts:      opts,
		upstream:  upstream.NewRegistry(opts.Log, opts.Rand),
		listeners: map[string]l4.Listener{},
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.l4 = &l4.Env{Ctx: f.ctx, Log: opts.Log, Current: func() l4.Snapshot { return f.snap.Load() }}
	f.l7 = l7.New(l7.Env{Ctx: f.ctx, Log: opts.Log, Current: func() l7.Snapshot { return f.snap.Load() }, SetCanary: f.SetCanary})
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

// apply builds cfg into a snapshot and publishes it: backends and pools
// first, then listeners, whose new ones are bound before anything changes
// so that an address in use fails the whole reload. f.mu is held.
func (f *Forwarder) apply(cfg *config.Forward) (err error) {
	targets, err := f.checkTargets(cfg)
	if err != nil {
		return err
	}
	prep, err := f.l7.Prepare(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.l7.Discard(prep)
		}
	}()
	lcfgs, err := f.buildListenerConfigs(cfg, prep)
	if err != nil {
		return err
	}
	next, bound, err := f.bindListeners(cfg, prep)
	if err != nil {
		return err
	}
	first := f.snap.Load() == nil
	snap := &snapshot{cfg: cfg, pools: map[string]*l7.Pool{}, listeners: lcfgs}
	if err := f.buildPools(cfg, snap, prep, first); err != nil { // a bug: the configuration was validated
		for _, b := range bound {
			b.Stop()
		}
		return err
	}
	f.publish(snap)
	if err := f.sched.Update(targets); err != nil {
		// Targets come from a validated configuration: this is a bug,
		// and the checks in force carry on.
		f.log.Error("health checks not updated", "err", err)
	}
	f.swapListeners(next)
	f.l7.Publish(prep, snap.pools, next)
	for _, l := range bound {
		f.log.Info("listening", "listener", l.Name(), "protocol", l.Protocol(), "addr", l.Addr().String())
	}
	return nil
}

// buildListenerConfigs builds what the connection path reads of each
// listener of cfg.
func (f *Forwarder) buildListenerConfigs(cfg *config.Forward, prep *l7.Prepared) (map[string]*listenerConfig, error) {
	lcfgs := make(map[string]*listenerConfig, len(cfg.Listeners))
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		c := &listenerConfig{Config: l4.NewConfig(*lc)}
		if lc.IsHTTP() {
			var err error
			if c.http, err = f.l7.NewConfig(prep, i, c.Config); err != nil {
				return nil, err
			}
		}
		lcfgs[lc.Name] = c
	}
	return lcfgs, nil
}

// bindListeners returns the listeners of cfg: those in force whose
// protocol and address are unchanged, and new ones, bound here, the only
// step of a reload that can fail on something outside the file. bound
// lists the new ones; on error none is left bound.
func (f *Forwarder) bindListeners(cfg *config.Forward, prep *l7.Prepared) (next map[string]l4.Listener, bound []l4.Listener, err error) {
	next = make(map[string]l4.Listener, len(cfg.Listeners))
	for _, lc := range cfg.Listeners {
		if l, ok := f.listeners[lc.Name]; ok && l.Protocol() == lc.Protocol && l.Listen() == lc.Listen {
			next[lc.Name] = l
			continue
		}
		var l l4.Listener
		if lc.IsHTTP() {
			l, err = f.l7.Bind(prep, lc)
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
func (f *Forwarder) buildPools(cfg *config.Forward, snap *snapshot, prep *l7.Prepared, first bool) error {
	now := time.Now()
	keep := map[string]bool{}
	for i := range cfg.Pools {
		pc := &cfg.Pools[i]
		up, err := f.upstream.Build(pc, keep, first, now)
		if err != nil {
			return err
		}
		p := f.l7.NewPool(prep, pc, up)
		snap.pools[p.Name] = p
		snap.poolNames = append(snap.poolNames, p.Name)
	}
	slices.Sort(snap.poolNames)
	f.upstream.Retire(keep)
	return nil
}

// publish puts snap in force: the connection path reads it from now on,
// and the pools it no longer has are taken out. Their transports are the
// L7 proxy's to close, when it publishes its side.
func (f *Forwarder) publish(snap *snapshot) {
	f.snap.Store(snap)
	for _, p := range snap.pools {
		p.State.Install(p.Pool)
	}
	for name, ps := range f.upstream.PoolStates() {
		if snap.pools[name] == nil && ps.Uninstall() {
			f.log.Info("pool removed", "pool", name)
		}
	}
}

// swapListeners puts the listeners of next in force, closing those it
// replaces.
func (f *Forwarder) swapListeners(next map[string]l4.Listener) {
	for name, l := range f.listeners {
		if next[name] != l {
			f.log.Info("listener closed", "listener", name, "addr", l.Addr().String())
			l.Stop()
		}
	}
	f.listeners = next
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
func (snap *snapshot) backend(pool, addr string) (*l7.Pool, *upstream.Backend, error) {
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
	f.cancel()
	<-f.checksDone
	for _, s := range f.http {
		shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.srv.Shutdown(shutCtx)
		cancel()
	}
	f.l7.Close()
	if err != nil {
		return fmt.Errorf("connections still open at the deadline were closed: %w", err)
	}
	return nil
}
