package forward

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/l7"
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
	var p *l7.Pool
	for i := range snap.cfg.Pools {
		if pc := &snap.cfg.Pools[i]; pc.Name == pool {
			up, err := f.upstream.Build(pc, map[string]bool{}, false, time.Now())
			if err != nil {
				return err
			}
			p = f.l7.RebuildPool(pc, up, old)
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
	hc, err := f.httpListener(listener)
	if err != nil {
		return err
	}
	return hc.SetCanary(route, percent)
}

// Canary returns a route's canary pool and share in force.
func (f *Forwarder) Canary(listener, route string) (pool string, percent int, err error) {
	cv, err := f.canaryView(listener, route)
	if err != nil {
		return "", 0, err
	}
	return cv.Canary, cv.Percent, nil
}

// canaryView returns a route's canary as the admin API shows it.
func (f *Forwarder) canaryView(listener, route string) (*CanaryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hc, err := f.httpListener(listener)
	if err != nil {
		return nil, err
	}
	return hc.Canary(route)
}

// httpListener returns the L7 settings in force of an http listener.
// f.mu is held.
func (f *Forwarder) httpListener(listener string) (*l7.Config, error) {
	snap := f.snap.Load()
	if snap == nil {
		return nil, ErrNotStarted
	}
	hc := snap.HTTPListener(listener)
	if hc == nil {
		return nil, fmt.Errorf("listener %q: %w", listener, ErrUnknownRoute)
	}
	return hc, nil
}
