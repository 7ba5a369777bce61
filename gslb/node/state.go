package node

import (
	"log/slog"
	"reflect"

	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/dnsfront"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/cookie"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/dnstap"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/zones"
)

// DNSState is what the DNS front end serves for cfg; version is the
// default of server.version. The rate limiter's
// table is prev's when its settings did not change, so a reload does not
// hand every limited client a fresh allowance.
func DNSState(cfg *config.Config, set *zones.Set, g *Parts, prev *dnsfront.State, version string) *dnsfront.State {
	v := serverVersion(cfg, version)
	var tap *dnstap.Tap
	if prev != nil {
		tap = prev.Dnstap // started once; its settings apply at a restart
	}
	signers := cfg.Signers()
	if prev != nil {
		signers = keepSigners(signers, prev.Signers)
	}
	return &dnsfront.State{
		Dnstap:        tap,
		Zones:         set,
		Signers:       signers,
		UDPSize:       cfg.Server.EDNSUDPSize,
		Chaos:         cfg.Server.Chaos,
		Identity:      cfg.Server.Identity,
		Version:       v,
		GSLB:          g.engine,
		ECS:           cfg.Server.ECS,
		ECSMaxPrefix4: cfg.Server.ECSMaxPrefix4,
		ECSMaxPrefix6: cfg.Server.ECSMaxPrefix6,
		QuerySample:   cfg.Log.QuerySample,
		RRL:           rrlTable(cfg.Server.RRL, prev),
		Cookies:       cookieJar(cfg, prev),
		Transfers:     g.transfers,
	}
}

// serverVersion is server.version, by default "meridian <version>".
func serverVersion(cfg *config.Config, version string) string {
	if cfg.Server.Version != "" {
		return cfg.Server.Version
	}
	return "meridian " + version
}

// newTap starts [server.dnstap], or returns nil when it is off. Its
// frames carry server.identity and server.version unless it names its own.
func newTap(cfg *config.Config, version string, log *slog.Logger) (*dnstap.Tap, error) {
	c := cfg.Server.Dnstap
	if !c.On() {
		return nil, nil
	}
	c.File, c.Socket = cfg.ResolvePath(c.File), cfg.ResolvePath(c.Socket)
	return dnstap.New(c, cfg.Server.Identity, serverVersion(cfg, version), log)
}

// cookieJar holds the secrets of [server.cookies]: the secret file's, else
// one derived from the cluster's keys (every node then accepts the
// others' cookies, and rolling the keys rolls the secret), else one made
// at start and kept across reloads.
func cookieJar(cfg *config.Config, prev *dnsfront.State) *cookie.Jar {
	c := cfg.Server.Cookies
	if !c.On() {
		return nil
	}
	secrets := c.Secrets
	if len(secrets) == 0 {
		for _, k := range cfg.Cluster.Keys {
			secrets = append(secrets, cookie.Derive(k))
		}
	}
	if len(secrets) > 0 {
		if jar, err := cookie.New(secrets); err == nil { // validated: 16 bytes each
			return jar
		}
	}
	if prev != nil && prev.Cookies != nil {
		return prev.Cookies
	}
	return cookie.Random()
}

func rrlTable(c rrl.Config, prev *dnsfront.State) *rrl.Table {
	if !c.Enabled {
		return nil
	}
	if prev != nil && prev.RRL != nil && reflect.DeepEqual(prev.RRL.Config(), c) {
		return prev.RRL
	}
	return rrl.New(c)
}
