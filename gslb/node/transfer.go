package node

import (
	"time"

	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/meridian-gslb/meridian/zones"
)

// transfers is what a node keeps for zone transfers across reloads.
type transfers struct {
	history  *xfr.History // of the configuration serving; nil before the first
	metrics  *xfr.Metrics
	notifier *xfr.Notifier
	pending  []xfr.Change // New's changes, notified once Start serves them
}

// loadTransfers sets the serials of set's zones and records what changed
// since the serving load: the set to serve, the history to keep once it
// serves, and the table transfers are served from (nil when no zone
// allows any).
func (n *Node) loadTransfers(cfg *config.Config, set *zones.Set) (*zones.Set, *xfr.History, []xfr.Change, *xfr.Table, error) {
	hist, served, changes, err := n.xfr.history.Next(set, cfg.TransferPlans(), cfg.Transfer.History, time.Now())
	if err != nil {
		return nil, nil, nil, nil, err
	}
	for _, origin := range hist.FileSerialStuck(n.xfr.history, cfg.TransferPlans()) {
		n.log.Warn("zone changed but its file's serial did not: secondaries will not transfer it (set serial = \"unixtime\" or \"increment\", or raise it)",
			"zone", origin)
	}
	var table *xfr.Table
	for _, z := range cfg.Zones {
		if len(z.Transfer.Allow) > 0 {
			table = hist.Table(cfg.TransferConfigs(), cfg.Transfer.Keys, n.xfr.metrics, n.log)
			break
		}
	}
	return served, hist, changes, table, nil
}

// notify sends NOTIFY for the changed zones to their secondaries, in the
// background: a secondary that does not answer does not slow the reload.
func (n *Node) notify(cfg *config.Config, changes []xfr.Change) {
	cfgs := cfg.TransferConfigs()
	for _, c := range changes {
		zc := cfgs[c.Zone.Origin()]
		if len(zc.Notify) == 0 {
			continue
		}
		var key *xfr.Key
		if zc.NotifyKey != "" {
			k := cfg.Transfer.Keys[xfr.KeyName(zc.NotifyKey)]
			key = &k
		}
		n.log.Info("notify", "zone", c.Zone.Origin(), "serial", c.Zone.Serial(), "targets", zc.Notify)
		n.xfr.notifier.Notify(c.Zone.Origin(), c.Zone.SOA(), zc.Notify, key)
	}
}
