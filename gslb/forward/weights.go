package forward

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// ErrBadWeight is a weight or share out of range.
var ErrBadWeight = errors.New("out of range")

// SetWeight sets a backend's weight at runtime, for blue-green and canary
// shifts within a pool: the pool's balancer is rebuilt with it, and it
// holds across reloads until the file's weight for the backend changes.
// Weight 0 takes the backend out of rotation without draining it.
func (f *Forwarder) SetWeight(pool, addr string, weight int) error {
	if weight < 0 || weight > upstream.MaxRuntimeWeight {
		return fmt.Errorf("weight %d: must be 0 to %d: %w", weight, upstream.MaxRuntimeWeight, ErrBadWeight)
	}
	return f.changeWeight(pool, addr, func(b *upstream.Backend) { b.SetRuntimeWeight(weight) })
}

// ClearWeight puts a backend back on its configured weight.
func (f *Forwarder) ClearWeight(pool, addr string) error {
	return f.changeWeight(pool, addr, (*upstream.Backend).ClearRuntimeWeight)
}

func (f *Forwarder) changeWeight(pool, addr string, change func(*upstream.Backend)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	snap := f.snap.Load()
	_, b, err := snap.backend(pool, addr)
	if err != nil {
		return err
	}
	change(b)
	return f.rebuildPool(snap, pool)
}

// rebuildPool publishes a snapshot in which pool is built again from the
// configuration in force, with the weights as they now are. f.mu is held.
func (f *Forwarder) rebuildPool(snap *snapshot, pool string) error {
	old := snap.pools[pool]
	var p *Pool
	for i := range snap.cfg.Pools {
		if pc := &snap.cfg.Pools[i]; pc.Name == pool {
			var err error
			p, err = f.buildPool(pc, map[string]bool{}, false, time.Now(), old.http.stickyKey, old.http.tspec)
			if err != nil {
				return err
			}
		}
	}
	next := *snap
	next.pools = maps.Clone(snap.pools)
	next.pools[pool] = p
	f.snap.Store(&next)
	p.State.Install(p.Pool)
	return nil
}

// SetCanary sets the share of a route's requests its canary pool takes,
// 0 to 100, at once: 0 is the instant rollback. It holds across reloads
// until the file's percent for the route changes.
func (f *Forwarder) SetCanary(listener, route string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("percent %d: must be 0 to 100: %w", percent, ErrBadWeight)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rt, fromFile, err := f.canaryRoute(listener, route)
	if err != nil {
		return err
	}
	st := rt.st
	st.percentFrom.Store(int32(fromFile))
	st.percent.Store(int32(percent))
	st.percentSet.Store(true)
	if g := rt.guard; g != nil && percent > 0 && g.Status().Tripped {
		// A new rollout after a rollback: judge it on its own traffic.
		g.Reset()
		f.log.Info("canary guard re-armed", "listener", listener, "route", route, "percent", percent)
	}
	return nil
}

// Canary returns a route's canary pool and share in force.
func (f *Forwarder) Canary(listener, route string) (pool string, percent int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rt, _, err := f.canaryRoute(listener, route)
	if err != nil {
		return "", 0, err
	}
	return rt.canary, int(rt.st.percent.Load()), nil
}

// canaryRoute finds a route with a canary, and its percent in the file.
// f.mu is held.
func (f *Forwarder) canaryRoute(listener, route string) (*route, int, error) {
	snap := f.snap.Load()
	if snap == nil {
		return nil, 0, ErrNotStarted
	}
	lc := snap.listeners[listener]
	if lc == nil || lc.http == nil {
		return nil, 0, fmt.Errorf("listener %q: %w", listener, ErrUnknownRoute)
	}
	for _, rt := range lc.http.routes.all {
		if rt.name != route {
			continue
		}
		if rt.canary == "" {
			return nil, 0, fmt.Errorf("listener %q: route %q: %w", listener, route, ErrNoCanary)
		}
		for _, l := range snap.cfg.Listeners {
			if l.Name != listener {
				continue
			}
			for j := range l.Routes {
				if rc := &l.Routes[j]; rc.RouteName(j) == route && rc.Canary != nil {
					return rt, rc.Canary.Percent, nil
				}
			}
		}
		return rt, 0, nil
	}
	return nil, 0, fmt.Errorf("listener %q: route %q: %w", listener, route, ErrUnknownRoute)
}
