package forward

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/meridian-gslb/meridian/gslb/console"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/l7"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
	"github.com/meridian-gslb/meridian/internal/adminhttp"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpServer is one of the forwarder's HTTP listeners.
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

// startHTTP binds the admin API and, when configured, the capacity
// endpoint's own listener. f.mu is held.
func (f *Forwarder) startHTTP(cfg *config.Forward) error {
	type spec struct {
		key, addr string
		h         http.Handler
	}
	var specs []spec
	if cfg.Admin.Listen != "off" {
		specs = append(specs, spec{"admin.listen", cfg.Admin.Listen, f.adminHandler(cfg.Admin.ReadsOpen())})
	}
	if cfg.Health.Listen != "" {
		specs = append(specs, spec{"health.listen", cfg.Health.Listen, f.healthHandler()})
	}
	for _, s := range specs {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, h := range f.http {
				h.ln.Close()
			}
			f.http = nil
			return fmt.Errorf("%s: %w", s.key, err)
		}
		srv := adminhttp.NewServer(s.h, f.log.With("listen", s.key))
		if s.key == "admin.listen" {
			adminhttp.WarnOpenReads(f.log, "forwarder admin API", ln.Addr(), cfg.Admin.ReadsOpen(), OpenReadsExpose)
		}
		f.http = append(f.http, &httpServer{srv: srv, ln: ln})
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				f.log.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
		f.log.Info("http endpoints", "listen", s.key, "addr", ln.Addr().String())
	}
	return nil
}

// healthHandler serves the capacity endpoint alone: what GSLB probes ask.
func (f *Forwarder) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", f.poolsHealth)
	mux.HandleFunc("GET /health/{pool}", f.poolHealth)
	mux.HandleFunc("/", adminhttp.NotFound)
	return mux
}

// adminHandler serves the capacity endpoint, the backend listing, drains
// and metrics.
func (f *Forwarder) adminHandler(openReads bool) http.Handler {
	guard := adminhttp.Guard{Token: f.token, OpenReads: openReads, Log: f.log}
	read, change := guard.Read, guard.Change
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if f.stopping.Load() {
			adminhttp.Fail(w, http.StatusServiceUnavailable, "shutting down")
			return
		}
		adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /health", f.poolsHealth)
	mux.HandleFunc("GET /health/{pool}", f.poolHealth)
	mux.HandleFunc("GET /api/v1/pools", read(f.listPools))
	mux.HandleFunc("GET /api/v1/pools/{pool}", read(f.showPool))
	mux.HandleFunc("POST /api/v1/pools/{pool}/backends/{addr}/drain", change(f.drain))
	mux.HandleFunc("DELETE /api/v1/pools/{pool}/backends/{addr}/drain", change(f.drain))
	mux.HandleFunc("PUT /api/v1/pools/{pool}/backends/{addr}/weight", change(f.weight))
	mux.HandleFunc("DELETE /api/v1/pools/{pool}/backends/{addr}/weight", change(f.weight))
	mux.HandleFunc("GET /api/v1/listeners", read(f.listListeners))
	mux.HandleFunc("GET /api/v1/listeners/{listener}/routes/{route}/canary", read(f.showCanary))
	mux.HandleFunc("PUT /api/v1/listeners/{listener}/routes/{route}/canary", change(f.canary))
	mux.HandleFunc("DELETE /api/v1/listeners/{listener}/routes/{route}/canary", change(f.canary))
	if f.opts.Metrics != nil {
		mux.Handle("GET /metrics", read(promhttp.HandlerFor(f.opts.Metrics, promhttp.HandlerOpts{}).ServeHTTP))
	}
	console.Register(mux, console.Forwarder, read) // the operator console at / (gslb/console)
	mux.HandleFunc("/", adminhttp.NotFound)
	return mux
}

// PoolHealth is the capacity endpoint's answer for one pool.
type PoolHealth struct {
	Pool       string `json:"pool"`
	Status     string `json:"status"` // "ok", or "degraded" below min_healthy
	Healthy    int    `json:"healthy"`
	MinHealthy int    `json:"min_healthy"`
	Total      int    `json:"total"` // backends in the pool
	Panic      bool   `json:"panic"`
}

func (f *Forwarder) poolHealthOf(p *l7.Pool) (PoolHealth, bool) {
	n, ok := p.Capacity()
	ok = ok && !f.stopping.Load()
	h := PoolHealth{Pool: p.Name, Status: "ok", Healthy: n, MinHealthy: p.MinHealthy, Total: len(p.Backends), Panic: p.State.Panicking.Load()}
	if !ok {
		h.Status = "degraded"
	}
	return h, ok
}

// poolHealth answers 200 while the pool's healthy backends reach
// min_healthy and 503 otherwise (and while shutting down), so that a GSLB
// check of the region sees its capacity, not just an open port.
func (f *Forwarder) poolHealth(w http.ResponseWriter, r *http.Request) {
	p := f.snap.Load().pools[r.PathValue("pool")]
	if p == nil {
		adminhttp.Fail(w, http.StatusNotFound, "no pool named %q", r.PathValue("pool"))
		return
	}
	h, ok := f.poolHealthOf(p)
	adminhttp.WriteJSON(w, statusFor(ok), h)
}

// poolsHealth answers 200 while every pool reaches its min_healthy.
func (f *Forwarder) poolsHealth(w http.ResponseWriter, _ *http.Request) {
	snap := f.snap.Load()
	all := true
	out := make([]PoolHealth, 0, len(snap.poolNames))
	for _, name := range snap.poolNames {
		h, ok := f.poolHealthOf(snap.pools[name])
		all = all && ok
		out = append(out, h)
	}
	adminhttp.WriteJSON(w, statusFor(all), out)
}

func statusFor(ok bool) int {
	if ok {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// PoolView is a pool as the admin API lists it.
type PoolView struct {
	PoolHealth
	Balance            string        `json:"balance"`
	RefusedConnections uint64        `json:"refused_connections"`
	Backends           []BackendView `json:"backends"`
}

// BackendView is a backend as the admin API lists it.
type BackendView struct {
	Address string `json:"address"`
	// State sums the rest up: draining, ejected, down, unknown, or up.
	State             string     `json:"state"`
	Health            string     `json:"health"` // as the active checks see it
	Draining          []string   `json:"draining,omitempty"`
	EjectedUntil      *time.Time `json:"ejected_until,omitempty"`
	Available         bool       `json:"available"`
	Weight            int        `json:"weight"`                   // in force
	ConfiguredWeight  int        `json:"configured_weight"`        // in the file
	RuntimeWeight     *int64     `json:"runtime_weight,omitempty"` // set through the admin API
	Breaker           string     `json:"breaker,omitempty"`        // the circuit breaker's state`
	EffectiveWeight   float64    `json:"effective_weight"`
	MaxConnections    int64      `json:"max_connections"`
	ActiveConnections int64      `json:"active_connections"`
	Connections       uint64     `json:"connections"`
	ConnectErrors     uint64     `json:"connect_errors"`
	SentBytes         uint64     `json:"sent_bytes"`
	ReceivedBytes     uint64     `json:"received_bytes"`
	Ejections         uint64     `json:"ejections"`
	HTTPRequests      uint64     `json:"http_requests"` // L7 tries sent to it
	HTTPErrors        uint64     `json:"http_errors"`   // of which answered 5xx or not at all
	LastCheck         *CheckView `json:"last_check,omitempty"`
}

// CheckView is a backend's latest active check.
type CheckView struct {
	OK     bool      `json:"ok"`
	Reason string    `json:"reason"`
	RTTMS  float64   `json:"rtt_ms"`
	At     time.Time `json:"at"`
}

// Pools returns every pool with its backends, as the admin API lists them.
func (f *Forwarder) Pools() []PoolView {
	snap := f.snap.Load()
	if snap == nil {
		return nil
	}
	checks := f.sched.Snapshot()
	now := time.Now()
	out := make([]PoolView, 0, len(snap.poolNames))
	for _, name := range snap.poolNames {
		p := snap.pools[name]
		h, _ := f.poolHealthOf(p)
		pv := PoolView{PoolHealth: h, Balance: p.Balance, RefusedConnections: p.State.Refused.Load()}
		for _, b := range p.Backends {
			pv.Backends = append(pv.Backends, backendView(b, checks, now))
		}
		out = append(out, pv)
	}
	return out
}

func backendView(b *upstream.Backend, checks map[string]probes.Status, now time.Time) BackendView {
	s := b.State
	health := probes.State(s.Health.Load())
	v := BackendView{
		Address: b.Addr, Health: health.String(), Available: b.Available(),
		Weight: b.Weight, EffectiveWeight: b.EffectiveWeight(now.UnixNano()), MaxConnections: b.MaxConns,
		ActiveConnections: s.Active.Load(), Connections: s.Connections.Load(), ConnectErrors: s.ConnectErrors.Load(),
		SentBytes: s.Sent.Load(), ReceivedBytes: s.Received.Load(), Ejections: s.Ejections.Load(),
		ConfiguredWeight: b.ConfigWeight, Breaker: s.Breaker.Load().StateName(),
	}
	for class := range s.Requests {
		n := s.Requests[class].Load()
		v.HTTPRequests += n
		if class == 0 || class == 5 {
			v.HTTPErrors += n
		}
	}
	if w, ok := s.RuntimeWeight(); ok {
		v.RuntimeWeight = &w
	}
	v.Draining = s.DrainReasons().Names()
	if until, ok := s.Ejection(); ok {
		v.EjectedUntil = &until
	}
	switch {
	case len(v.Draining) > 0:
		v.State = "draining"
	case v.EjectedUntil != nil:
		v.State = "ejected"
	case v.Breaker == "open":
		v.State = "breaker-open"
	case s.WeightZero():
		v.State = "weight-0"
	default:
		v.State = health.String()
	}
	if st, ok := checks[s.ID]; ok && !st.Checked.IsZero() {
		v.LastCheck = &CheckView{OK: st.Result.OK, Reason: st.Result.Reason, RTTMS: float64(st.Result.RTT.Microseconds()) / 1000, At: st.Checked}
	}
	return v
}

func (f *Forwarder) listPools(w http.ResponseWriter, _ *http.Request) {
	adminhttp.WriteJSON(w, http.StatusOK, f.Pools())
}

func (f *Forwarder) showPool(w http.ResponseWriter, r *http.Request) {
	for _, p := range f.Pools() {
		if p.Pool == r.PathValue("pool") {
			adminhttp.WriteJSON(w, http.StatusOK, p)
			return
		}
	}
	adminhttp.Fail(w, http.StatusNotFound, "no pool named %q", r.PathValue("pool"))
}

// drain is POST (drain) and DELETE (undrain) of a backend.
func (f *Forwarder) drain(w http.ResponseWriter, r *http.Request) {
	pool, addr := r.PathValue("pool"), r.PathValue("addr")
	on := r.Method == http.MethodPost
	if f.changeFailed(w, f.Drain(pool, addr, on)) {
		return
	}
	adminhttp.Audit(f.log, r, "backend drain", "pool", pool, "backend", addr, "drain", on)
	f.writeBackend(w, pool, addr)
}

// weight is PUT (set, from {"weight": N}) and DELETE (back to the
// configured weight) of a backend's runtime weight.
func (f *Forwarder) weight(w http.ResponseWriter, r *http.Request) {
	pool, addr := r.PathValue("pool"), r.PathValue("addr")
	var err error
	var body struct {
		Weight *int `json:"weight"`
	}
	if r.Method == http.MethodPut {
		if err := adminhttp.DecodeStrict(r.Body, &body); err != nil || body.Weight == nil {
			adminhttp.Fail(w, http.StatusBadRequest, `%swant {"weight": N}, N from 0 to %d`, errPrefix(err), upstream.MaxRuntimeWeight)
			return
		}
		err = f.SetWeight(pool, addr, *body.Weight)
	} else {
		err = f.ClearWeight(pool, addr)
	}
	if !f.changeFailed(w, err) {
		adminhttp.Audit(f.log, r, "backend weight", "pool", pool, "backend", addr, "weight", weightText(body.Weight))
		f.writeBackend(w, pool, addr)
	}
}

// errPrefix is a body's decoding error as the start of the answer's
// message, or nothing when the body decoded (but lacked its key).
func errPrefix(err error) string {
	if err == nil {
		return ""
	}
	return err.Error() + "; "
}

// OpenReadsExpose is what anyone who reaches the admin API reads while
// admin.open_reads is on, as the warning at start says it.
const OpenReadsExpose = "every pool, backend address and its health and counters, the listeners, routes and canaries"

func weightText(w *int) string {
	if w == nil {
		return "configured"
	}
	return fmt.Sprint(*w)
}

// changeFailed answers a change that failed, and says whether it did.
func (f *Forwarder) changeFailed(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrUnknownPool), errors.Is(err, ErrUnknownBackend), errors.Is(err, ErrUnknownRoute):
		adminhttp.Fail(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, ErrBadWeight), errors.Is(err, ErrNoCanary):
		adminhttp.Fail(w, http.StatusBadRequest, "%v", err)
	default:
		adminhttp.Fail(w, http.StatusServiceUnavailable, "%v", err)
	}
	return true
}

func (f *Forwarder) writeBackend(w http.ResponseWriter, pool, addr string) {
	for _, p := range f.Pools() {
		if p.Pool != pool {
			continue
		}
		for _, b := range p.Backends {
			if b.Address == addr {
				adminhttp.WriteJSON(w, http.StatusOK, b)
				return
			}
		}
	}
	adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// CanaryView is a route's canary as the admin API shows it.
type CanaryView = l7.CanaryView

// RouteView is a route as the admin API lists it.
type RouteView = l7.RouteView

// ListenerView is an http listener as the admin API lists it.
type ListenerView struct {
	Name     string      `json:"name"`
	Protocol string      `json:"protocol"`
	Address  string      `json:"address"`
	Routes   []RouteView `json:"routes"`
}

// Listeners returns the http listeners with their routes, in the order of
// the file; requests no route took are shown as route "default" (the
// listener's pool) or "no_route".
func (f *Forwarder) Listeners() []ListenerView {
	snap := f.snap.Load()
	if snap == nil {
		return nil
	}
	var out []ListenerView
	for _, lc := range snap.cfg.Listeners {
		c := snap.listeners[lc.Name]
		if c == nil || c.http == nil {
			continue
		}
		lv := ListenerView{Name: lc.Name, Protocol: lc.Protocol}
		if a := f.Addr(lc.Name); a != nil {
			lv.Address = a.String()
		}
		lv.Routes = c.http.Routes()
		out = append(out, lv)
	}
	return out
}

func (f *Forwarder) listListeners(w http.ResponseWriter, _ *http.Request) {
	adminhttp.WriteJSON(w, http.StatusOK, f.Listeners())
}

func (f *Forwarder) showCanary(w http.ResponseWriter, r *http.Request) {
	cv, err := f.canaryView(r.PathValue("listener"), r.PathValue("route"))
	if f.changeFailed(w, err) {
		return
	}
	adminhttp.WriteJSON(w, http.StatusOK, cv)
}

// canary is PUT (set the share, from {"percent": N}) and DELETE (roll
// back: share 0) of a route's canary.
func (f *Forwarder) canary(w http.ResponseWriter, r *http.Request) {
	listener, route := r.PathValue("listener"), r.PathValue("route")
	percent := 0
	if r.Method == http.MethodPut {
		var body struct {
			Percent *int `json:"percent"`
		}
		if err := adminhttp.DecodeStrict(r.Body, &body); err != nil || body.Percent == nil {
			adminhttp.Fail(w, http.StatusBadRequest, `%swant {"percent": N}, N from 0 to 100`, errPrefix(err))
			return
		}
		percent = *body.Percent
	}
	_, before, _ := f.Canary(listener, route)
	if f.changeFailed(w, f.SetCanary(listener, route, percent)) {
		return
	}
	adminhttp.Audit(f.log, r, "canary share", "listener", listener, "route", route, "from_percent", before, "percent", percent,
		"rollback", r.Method == http.MethodDelete)
	f.showCanary(w, r)
}
