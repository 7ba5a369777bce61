package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/meridian-gslb/meridian/geo"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// gslbParts is one configuration's dynamic side, built before anything
// is swapped in, so a bad reload changes nothing.
type gslbParts struct {
	engine   *gslb.Engine // nil without [[record]]
	locator  geo.Locator  // nil without [geo]
	watchers []*geo.Watcher
	checks   []config.CheckSpec
}

// buildGSLB builds the engine over health, the geo locator and the
// checks of cfg, and holds the dynamic names to the zones.
func buildGSLB(cfg *config.Config, set *zones.Set, health gslb.HealthView, log *slog.Logger) (*gslbParts, error) {
	g, err := cfg.BuildGSLB()
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckDynamicNames(set, g); err != nil {
		return nil, err
	}
	p := &gslbParts{checks: g.Checks}
	if len(g.Records) > 0 {
		if p.engine, err = gslb.New(g.Records, health, gslb.Options{UnknownIsUp: cfg.Health.UnknownUp()}); err != nil {
			return nil, err
		}
	}
	var chain geo.Chain
	rows := cfg.GeoRows()
	if cfg.Geo.NetworksFile != "" {
		fileRows, err := readNetworksFile(cfg)
		if err != nil {
			return nil, err
		}
		rows = append(rows, fileRows...)
	}
	if len(rows) > 0 {
		table, err := geo.NewTable(rows)
		if err != nil {
			var re *geo.RowError
			if errors.As(err, &re) {
				if n := len(cfg.Geo.Networks); re.Index >= n {
					return nil, fmt.Errorf("%s: data row %d (%s): %v", cfg.ResolvePath(cfg.Geo.NetworksFile), re.Index-n+1, re.Prefix, re.Err)
				}
				key := fmt.Sprintf("geo.network[%d]", re.Index)
				return nil, cfg.Errorf(cfg.LineOf(key), key, "%v", re.Err)
			}
			return nil, err
		}
		chain = append(chain, table)
	}
	for i, db := range cfg.Geo.Databases {
		w, err := geo.NewWatcher(cfg.ResolvePath(db.Path), geo.Format(db.Format).Open, geo.WatcherOptions{
			Interval: cfg.Geo.ReloadInterval.Duration, Logger: log,
		})
		if err != nil {
			key := fmt.Sprintf("geo.database[%d].path", i)
			return nil, cfg.Errorf(cfg.LineOf(key), key, "%v", err)
		}
		p.watchers = append(p.watchers, w)
		chain = append(chain, w)
	}
	if len(chain) > 0 {
		p.locator = chain
	}
	return p, nil
}

// watch follows the geo database files until ctx ends.
func (p *gslbParts) watch(ctx context.Context) {
	for _, w := range p.watchers {
		go w.Run(ctx)
	}
}

// readNetworksFile reads geo.networks_file and holds its regions to the
// configuration's.
func readNetworksFile(cfg *config.Config) ([]geo.Row, error) {
	path := cfg.ResolvePath(cfg.Geo.NetworksFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, cfg.Errorf(cfg.LineOf("geo.networks_file"), "geo.networks_file", "%v", err)
	}
	defer f.Close()
	rows, err := geo.ReadRows(f, path)
	if err != nil {
		return nil, err
	}
	regions := map[string]bool{}
	for _, r := range cfg.Regions {
		regions[r.Name] = true
	}
	for i, r := range rows {
		if r.Location.Region != "" && !regions[r.Location.Region] {
			return nil, fmt.Errorf("%s: row %d (%s): no [[region]] is named %q", path, i+1, r.Prefix, r.Location.Region)
		}
	}
	return rows, nil
}

// newAdmin prepares the admin API from cfg, or returns nil when it is off.
func newAdmin(cfg *config.Config, src admin.Source, log *slog.Logger, metrics prometheus.Gatherer, publish func(admin.Overrides)) (*admin.Server, error) {
	a := cfg.Admin
	if a.Listen == "off" {
		return nil, nil
	}
	opts := admin.Options{
		Listen: a.Listen, OpenReads: a.ReadsOpen(), StateFile: cfg.ResolvePath(a.StateFile), Log: log, Metrics: metrics,
		Origin: cfg.Cluster.Name, Publish: publish,
	}
	if a.TokenFile != "" {
		b, err := os.ReadFile(cfg.ResolvePath(a.TokenFile))
		if err != nil {
			return nil, cfg.Errorf(cfg.LineOf("admin.token_file"), "admin.token_file", "%v", err)
		}
		if opts.Token = bytes.TrimSpace(b); len(opts.Token) < 16 {
			return nil, cfg.Errorf(cfg.LineOf("admin.token_file"), "admin.token_file", "the token must be at least 16 characters")
		}
	}
	return admin.New(src, opts)
}
