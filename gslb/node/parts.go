package node

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/meridian-gslb/meridian/geo"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/dnsfront"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// Parts is one configuration's dynamic side, built before anything
// is swapped in, so a bad reload changes nothing.
type Parts struct {
	engine   *gslb.Engine // nil without [[record]]
	table    *geo.Table   // nil without CIDR rows
	watchers []*geo.Watcher
	interval time.Duration // how often the database files are looked at
	checks   []config.CheckSpec
	log      *slog.Logger
	indexed  []geo.Locator // each watcher's database in the engine's index
	warnings []error       // located; check prints them, serve logs them
	metrics  *geoMetrics   // nil but in serve; kept from one configuration to the next
	// transfers serves AXFR and IXFR; nil when no zone allows them
	// (set by the node, which keeps the zones' history).
	transfers *xfr.Table
}

// Engine is the engine built, nil without [[record]].
func (p *Parts) Engine() *gslb.Engine { return p.engine }

// Checks are the health checks of the configuration.
func (p *Parts) Checks() []config.CheckSpec { return p.checks }

// Warnings are what meridian check warns of: located, not fatal.
func (p *Parts) Warnings() []error { return p.warnings }

// Build builds the engine over health, the geo index and the checks
// of cfg, and holds the dynamic names to the zones. Database files that
// prev already serves, unchanged, are not read again: a reload re-reads
// only what changed on disk.
func Build(cfg *config.Config, set *zones.Set, health gslb.HealthView, log *slog.Logger, prev *Parts) (*Parts, error) {
	g, err := cfg.BuildGSLB()
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckDynamicNames(set, g); err != nil {
		return nil, err
	}
	p := &Parts{checks: g.Checks, interval: cfg.Geo.ReloadInterval.Duration, log: log}
	p.warnings = cfg.TransferWarnings(g)
	if prev != nil {
		p.metrics = prev.metrics
	}
	if len(g.Records) > 0 {
		if p.engine, err = gslb.New(g.Records, health, gslb.Options{UnknownIsUp: cfg.Health.UnknownUp()}); err != nil {
			return nil, err
		}
	}
	rows, err := geoRows(cfg)
	if err != nil {
		return nil, err
	}
	if p.table, err = buildTable(cfg, rows); err != nil {
		return nil, err
	}
	guard := cfg.GeoGuard(rows)
	for i, db := range cfg.Geo.Databases {
		w, err := openDatabase(cfg, i, db, prev, guard, p.metrics, log)
		if err != nil {
			return nil, err
		}
		warnings, err := guard.Vet(i, w)
		if err != nil {
			return nil, err
		}
		p.warnings = append(p.warnings, warnings...)
		p.watchers = append(p.watchers, w)
	}
	if err := p.index(); err != nil {
		return nil, err
	}
	return p, nil
}

// geoRows returns the CIDR rows of geo.network and geo.networks_file.
func geoRows(cfg *config.Config) ([]geo.Row, error) {
	rows := cfg.GeoRows()
	if cfg.Geo.NetworksFile != "" {
		fileRows, err := readNetworksFile(cfg)
		if err != nil {
			return nil, err
		}
		rows = append(rows, fileRows...)
	}
	return rows, nil
}

// buildTable builds the CIDR table from the rows.
func buildTable(cfg *config.Config, rows []geo.Row) (*geo.Table, error) {
	if len(rows) == 0 {
		return nil, nil
	}
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
	return table, nil
}

// openDatabase returns a watcher serving geo.database[i], refusing a
// replacement file that guard refuses. A file prev serves, unchanged, is
// not read again: the watcher starts from prev's data and looks at the
// file once, so a change on disk is read now.
func openDatabase(cfg *config.Config, i int, db config.GeoDatabase, prev *Parts, guard *config.GeoGuard, metrics *geoMetrics, log *slog.Logger) (*geo.Watcher, error) {
	path, format := cfg.ResolvePath(db.Path), geo.Format(db.Format)
	opts := geo.WatcherOptions{Format: format, Logger: log, Accept: guard.Accept(i, log)}
	if metrics != nil {
		opts.OnReload = metrics.reloaded
	}
	if prev != nil {
		for _, w := range prev.watchers {
			if w.Path() == path && w.Format() == format {
				opts.Previous = w
			}
		}
	}
	w, err := geo.NewWatcher(path, format.Open, opts)
	if err != nil {
		return nil, cfg.GeoDatabaseError(i, err)
	}
	if opts.Previous == nil {
		logDatabase(log, "geo database loaded", path, w.Current())
	} else if _, err := w.Check(); err != nil {
		return nil, cfg.GeoDatabaseError(i, err)
	}
	return w, nil
}

// logDatabase says what a database file holds.
func logDatabase(log *slog.Logger, msg, path string, l geo.Locator) {
	attrs := []any{"file", path}
	if d, ok := l.(interface{ Info() geo.Info }); ok {
		info := d.Info()
		attrs = append(attrs, "type", info.Type, "built", info.Built.Format(time.DateOnly),
			"networks", info.Networks, "places", info.Places)
	}
	log.Info(msg, attrs...)
}

// index snapshots the table and the databases into a geo index and gives
// it to the engine, which cuts the records' partitions from it.
func (p *Parts) index() error {
	if p.engine == nil || (p.table == nil && len(p.watchers) == 0) {
		return nil
	}
	var chain []geo.Named
	if p.table != nil {
		chain = append(chain, geo.Named{Name: "geo.network", Locator: p.table})
	}
	indexed := make([]geo.Locator, len(p.watchers))
	for i, w := range p.watchers {
		indexed[i] = w.Current()
		chain = append(chain, geo.Named{Name: w.Path(), Locator: indexed[i]})
	}
	idx, err := geo.NewIndex(chain...)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := p.engine.SetGeo(idx); err != nil {
		return err
	}
	p.indexed = indexed
	if p.metrics != nil {
		p.metrics.cutDone(time.Since(start), p.engine.GeoRanges())
	}
	// The walk of a City database leaves a hundred MiB or more of
	// garbage, and a server that then idles would not collect it for
	// minutes: give it back now, once per database change.
	debug.FreeOSMemory()
	p.log.Info("geo partitions cut", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// watch looks at the database files every interval until ctx ends, and
// gives the engine a new index when one changed. Only the configuration
// serving now watches: a reload cancels the previous one's ctx.
func (p *Parts) watch(ctx context.Context) {
	if len(p.watchers) == 0 {
		return
	}
	go func() {
		t := time.NewTicker(cmp.Or(p.interval, geo.DefaultPollInterval))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.recheck()
			}
		}
	}()
}

// recheck reloads the databases whose files changed; a file that fails
// to load leaves its previous data serving (the watcher logs why). The
// index is rebuilt whenever a watcher serves other data than the index
// holds, whoever noticed the change: a reload that failed after looking
// at a shared watcher must not leave this configuration behind.
func (p *Parts) recheck() {
	changed := false
	for i, w := range p.watchers {
		_, _ = w.Check() // logged by the watcher
		if i >= len(p.indexed) || w.Current() != p.indexed[i] {
			changed = true
		}
	}
	if changed && p.engine != nil {
		if err := p.index(); err != nil {
			p.log.Error("geo index not rebuilt; the previous one still serves", "err", err)
		}
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

// Check builds what New would for cfg, serving nothing and running no
// check: the dynamic side, every record in wire form, the admin API's
// settings. It returns the parts for their warnings.
func Check(cfg *config.Config, set *zones.Set, version string) (*Parts, error) {
	discard := slog.New(slog.DiscardHandler)
	parts, err := Build(cfg, set, gslb.NewHealthMap(), discard, nil)
	if err != nil {
		return nil, err
	}
	if _, err := dnsfront.NewHandler(DNSState(cfg, set, parts, nil, version), discard); err != nil {
		return nil, err
	}
	if _, err := newAdmin(cfg, nil, discard, nil, nil); err != nil {
		return nil, err
	}
	return parts, nil
}
