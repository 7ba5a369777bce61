package config

import (
	"errors"
	"fmt"
	"github.com/meridian-gslb/meridian/zones/dnssec"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// LoadZones reads every configured zone's file and inline records and
// builds the set the server answers from. All failures are reported, each
// naming the zone and where its data came from.
func (c *Config) LoadZones() (*zones.Set, error) {
	var (
		built []*zones.Zone
		errs  []error
	)
	c.signers = map[string]*dnssec.Signer{}
	for i, zc := range c.Zones {
		z, err := c.loadZone(i, zc)
		if err != nil {
			errs = append(errs, splitJoined(err)...)
			continue
		}
		built = append(built, z)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return zones.NewSet(built...)
}

func (c *Config) loadZone(i int, zc Zone) (*zones.Zone, error) {
	key := fmt.Sprintf("zone[%d]", i)
	origin := dns.Fqdn(zc.Name)
	if _, ok := dns.IsDomainName(origin); !ok {
		return nil, c.Errorf(zc.Line, key+".name", "%q is not a domain name", zc.Name)
	}
	var (
		rrs  []dns.RR
		errs []error
	)
	if zc.File != "" {
		root, file := "", c.ZonePath(zc)
		if zc.IncludeRoot != "" {
			var ok bool
			if root, file, ok = c.IncludeRoot(zc); !ok {
				return nil, c.Errorf(zc.Line, key+".include_root", "zone %s: %s is not in %s", zc.Name, file, root)
			}
		}
		fileRRs, err := zones.ParseFileWithin(c.FS, root, origin, file, zc.TTL())
		// The file's errors, one each: the zone parser lists every
		// record it could not read.
		for _, e := range splitJoined(err) {
			errs = append(errs, c.Errorf(zc.Line, key+".file", "zone %s: %v", zc.Name, e))
		}
		rrs = fileRRs
	}
	for j, line := range zc.Records {
		rr, err := zones.ParseRecord(origin, line, zc.TTL())
		if err != nil {
			errs = append(errs, c.Errorf(zc.Line, fmt.Sprintf("%s.records[%d]", key, j), "zone %s: %q: %v", zc.Name, line, err))
			continue
		}
		rrs = append(rrs, rr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if zc.DNSSEC != nil {
		sg, err := c.loadSigner(key, zc, origin)
		if err != nil {
			return nil, err
		}
		rrs = append(rrs, sg.ApexRecords(zc.TTL())...)
		c.signers[zones.Lower(origin)] = sg
	}
	z, err := zones.Build(origin, rrs)
	if err != nil {
		return nil, c.Errorf(zc.Line, key, "zone %s: %v", zc.Name, err)
	}
	return z, nil
}

// splitJoined is err's parts when it joins several, else err alone (nil
// for nil), so that each is reported on a line of its own.
func splitJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// loadSigner reads the keys of a signed zone and makes its signer.
func (c *Config) loadSigner(key string, zc Zone, origin string) (*dnssec.Signer, error) {
	d := zc.DNSSEC
	if c.FS != nil {
		return nil, c.Errorf(zc.Line, key+".dnssec", "zone %s: a signed zone needs its keys on disk: run with -config", zc.Name)
	}
	keys, err := dnssec.LoadKeys(c.ResolvePath(d.KeyDir), origin, dnssec.Algorithms[d.Algorithm])
	if err != nil {
		return nil, c.Errorf(c.LineOf(key+".dnssec"), key+".dnssec.key_dir", "zone %s: %v", zc.Name, err)
	}
	sg, err := dnssec.New(origin, keys, *d, nil)
	if err != nil {
		return nil, c.Errorf(c.LineOf(key+".dnssec"), key+".dnssec.active_key", "zone %s: %v", zc.Name, err)
	}
	return sg, nil
}

// Signers are the signers of the signed zones by origin, made by
// LoadZones; nil before it.
func (c *Config) Signers() map[string]*dnssec.Signer { return c.signers }
