package l7

import (
	"errors"
	"fmt"

	"github.com/meridian-gslb/meridian/gslb/forward/canary"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// Errors of the admin API's canary changes, wrapped with the listener
// and route.
var (
	ErrUnknownRoute = errors.New("no such route")
	ErrNoCanary     = errors.New("the route has no canary")
)

// CanaryView is a route's canary as the admin API shows it.
type CanaryView struct {
	Listener string `json:"listener"`
	Route    string `json:"route"`
	Pool     string `json:"pool"`    // the route's own pool: the baseline
	Canary   string `json:"canary"`  // the canary's pool
	Percent  int    `json:"percent"` // the canary's share in force
	// Runtime says the share was set through the admin API rather than
	// read from the file.
	Runtime          bool   `json:"runtime"`
	BaselineRequests uint64 `json:"baseline_requests"`
	CanaryRequests   uint64 `json:"canary_requests"`
	// Guard is the automatic guard's view of both pools over its window,
	// and whether it rolled the canary back; absent without a guard.
	Guard *canary.Status `json:"guard,omitempty"`
}

// RouteView is a route as the admin API lists it.
type RouteView struct {
	Name        string            `json:"name"`
	Pool        string            `json:"pool,omitempty"`
	Redirect    string            `json:"redirect,omitempty"`
	Respond     int               `json:"respond,omitempty"`
	Canary      *CanaryView       `json:"canary,omitempty"`
	RateLimit   string            `json:"rate_limit,omitempty"`
	RateLimited uint64            `json:"rate_limited"`
	Requests    map[string]uint64 `json:"requests"` // by status class
	P50MS       float64           `json:"p50_ms"`
	P99MS       float64           `json:"p99_ms"`
}

// Routes returns the listener's routes in the order of the file, then the
// one that takes requests no route took: route "default" (the listener's
// pool) or "no_route".
func (c *Config) Routes() []RouteView {
	out := make([]RouteView, 0, len(c.routes.all)+1)
	for _, rt := range append(c.routes.all[:len(c.routes.all):len(c.routes.all)], c.fallback) {
		rv := RouteView{Name: rt.name, Pool: rt.pool, Redirect: rt.redirect, RateLimit: rt.rateLimit,
			RateLimited: rt.st.limited.Load(), Requests: map[string]uint64{}}
		if rt.respond != nil {
			rv.Respond = rt.respond.Status
		}
		for class, n := range upstream.ClassNames {
			if v := rt.st.requests[class].Load(); v > 0 {
				rv.Requests[n] = v
			}
		}
		rv.P50MS = float64(rt.st.latency.Quantile(0.5).Microseconds()) / 1000
		rv.P99MS = float64(rt.st.latency.Quantile(0.99).Microseconds()) / 1000
		if rt.canary != "" {
			rv.Canary = c.canaryView(rt)
		}
		out = append(out, rv)
	}
	return out
}

// Canary returns route's canary: its pool and share in force, its
// counters and its guard's view.
func (c *Config) Canary(route string) (*CanaryView, error) {
	rt, err := c.canaryRoute(route)
	if err != nil {
		return nil, err
	}
	return c.canaryView(rt), nil
}

// SetCanary sets the share of route's requests its canary pool takes,
// 0 to 100 (checked by the caller), at once. It holds across reloads
// until the file's percent for the route changes. The forwarder's lock is
// held.
func (c *Config) SetCanary(route string, percent int) error {
	rt, err := c.canaryRoute(route)
	if err != nil {
		return err
	}
	st := rt.st
	st.percentFrom.Store(rt.filePercent)
	st.percent.Store(int32(percent))
	st.percentSet.Store(true)
	if g := rt.guard; g != nil && percent > 0 && g.Status().Tripped {
		// A new rollout after a rollback: judge it on its own traffic.
		g.Reset()
		c.log.Info("canary guard re-armed", "listener", c.name, "route", route, "percent", percent)
	}
	return nil
}

// canaryRoute finds a route with a canary.
func (c *Config) canaryRoute(route string) (*route, error) {
	for _, rt := range c.routes.all {
		if rt.name != route {
			continue
		}
		if rt.canary == "" {
			return nil, fmt.Errorf("listener %q: route %q: %w", c.name, route, ErrNoCanary)
		}
		return rt, nil
	}
	return nil, fmt.Errorf("listener %q: route %q: %w", c.name, route, ErrUnknownRoute)
}

func (c *Config) canaryView(rt *route) *CanaryView {
	st := rt.st
	return &CanaryView{
		Listener: c.name, Route: rt.name, Pool: rt.pool, Canary: rt.canary,
		Percent: int(st.percent.Load()), Runtime: st.percentSet.Load(),
		BaselineRequests: st.split[0].Load(), CanaryRequests: st.split[1].Load(),
		Guard: guardStatus(rt.guard),
	}
}

func guardStatus(g *canary.Guard) *canary.Status {
	if g == nil {
		return nil
	}
	s := g.Status()
	return &s
}
