package l7

import (
	"bytes"
	"fmt"
	"os"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
)

// Prepared is what a configuration's L7 side needs from outside its file
// (sticky keys, certificates, rate limit keys, the access log), read
// before anything changes, so that a missing or broken file fails the
// whole reload and leaves the configuration in force untouched.
type Prepared struct {
	cfg       *config.Forward
	limiters  map[string]*limiter // by policy
	pools     map[string]poolSpec // by pool
	certs     map[string]*certSet // by https listener
	accessLog *accessLog
	configs   []*Config // the listeners NewConfig built
}

// poolSpec is what a pool's L7 side is built from besides its settings.
type poolSpec struct {
	stickyKey []byte // signs the pool's sticky cookies
	transport transportSpec
}

// Prepare reads what cfg's L7 side needs from outside the file. Publish
// puts it in force; Discard drops it when the reload fails.
func (p *Proxy) Prepare(cfg *config.Forward) (*Prepared, error) {
	prep := &Prepared{cfg: cfg, pools: map[string]poolSpec{}, certs: map[string]*certSet{}}
	for i := range cfg.Pools {
		spec, err := poolSpecOf(cfg, i)
		if err != nil {
			return nil, err
		}
		prep.pools[cfg.Pools[i].Name] = spec
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
	var cur map[string]*limiter
	if m := p.limiters.Load(); m != nil {
		cur = *m
	}
	var err error
	if prep.limiters, err = p.prepareLimiters(cfg, cur); err != nil {
		return nil, err
	}
	if prep.accessLog, err = openAccessLog(cfg, p.accessLog.Load()); err != nil {
		return nil, err
	}
	return prep, nil
}

// poolSpecOf reads pool i's transport settings and its sticky key.
func poolSpecOf(cfg *config.Forward, i int) (poolSpec, error) {
	pc := &cfg.Pools[i]
	var spec poolSpec
	var err error
	if spec.transport, err = transportSpecOf(cfg, i); err != nil {
		return spec, err
	}
	if pc.Sticky.Mode == "cookie" {
		b, err := os.ReadFile(cfg.ResolvePath(pc.Sticky.KeyFile))
		if err != nil {
			return spec, cfg.Errorf(fmt.Sprintf("pool[%d].sticky.key_file", i), "%v", err)
		}
		if b = bytes.TrimSpace(b); len(b) < config.MinStickyKey {
			return spec, cfg.Errorf(fmt.Sprintf("pool[%d].sticky.key_file", i), "the key must be at least %d bytes", config.MinStickyKey)
		}
		spec.stickyKey = b
	}
	return spec, nil
}

// Discard closes what Prepare opened that the configuration in force does
// not use, after the reload failed.
func (p *Proxy) Discard(prep *Prepared) {
	prep.accessLog.close(p.accessLog.Load())
}
