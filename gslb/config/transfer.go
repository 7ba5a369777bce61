package config

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/miekg/dns"
)

// readTransferKeys reads transfer.key_files into Transfer.Keys; a reload
// reads them again, which is how a key is rolled.
func (c *Config) readTransferKeys(v *validator) {
	t := &c.Transfer
	if len(t.KeyFiles) > 0 {
		t.Keys = map[string]xfr.Key{}
	}
	for i, f := range t.KeyFiles {
		key := fmt.Sprintf("transfer.key_files[%d]", i)
		var (
			b   []byte
			err error
		)
		if c.FS != nil {
			b, err = fs.ReadFile(c.FS, path.Join(path.Dir(c.Path), f))
		} else {
			b, err = os.ReadFile(c.ResolvePath(f))
		}
		var keys []xfr.Key
		if err == nil {
			keys, err = xfr.ParseKeys(string(b))
		}
		if err != nil {
			v.fail(key, "%s: %v", f, err)
			continue
		}
		for _, k := range keys {
			if _, dup := t.Keys[k.Name]; dup {
				v.fail(key, "%s: key %q is defined twice", f, k.Name)
			}
			t.Keys[k.Name] = k
		}
	}
}

// validateTransfers checks [transfer] and each zone's serial and
// [zone.transfer], after the key files are read.
func (c *Config) validateTransfers(v *validator) {
	for _, p := range c.Transfer.Validate() {
		v.fail("transfer."+p.Key, "%s", p.Msg)
	}
	c.readTransferKeys(v)
	for i := range c.Zones {
		z := &c.Zones[i]
		key := fmt.Sprintf("zone[%d]", i)
		if err := xfr.ValidSerial(z.Serial); err != nil {
			v.fail(key+".serial", "%v", err)
		}
		for _, p := range z.Transfer.Validate(c.Transfer.Keys) {
			v.fail(key+".transfer."+p.Key, "%s", p.Msg)
		}
	}
}

// TransferPlans returns, by zone origin, how each zone's serial is set and
// whether it is transferred, for xfr.History.
func (c *Config) TransferPlans() map[string]xfr.ZonePlan {
	out := make(map[string]xfr.ZonePlan, len(c.Zones))
	for _, z := range c.Zones {
		out[zoneOrigin(z.Name)] = xfr.ZonePlan{Serial: z.Serial, Transfer: len(z.Transfer.Allow) > 0}
	}
	return out
}

// TransferConfigs returns each zone's [zone.transfer] by origin.
func (c *Config) TransferConfigs() map[string]xfr.Config {
	out := make(map[string]xfr.Config, len(c.Zones))
	for _, z := range c.Zones {
		out[zoneOrigin(z.Name)] = z.Transfer
	}
	return out
}

// TransferWarnings warns of each transferred zone that holds dynamic
// records: a transfer leaves them out (a secondary can apply no policy
// nor health), so the secondaries answer NXDOMAIN for them.
func (c *Config) TransferWarnings(g *GSLB) []error {
	var out []error
	for i, z := range c.Zones {
		if len(z.Transfer.Allow) == 0 {
			continue
		}
		origin := zoneOrigin(z.Name)
		var names []string
		for _, r := range g.Records {
			if dns.IsSubDomain(origin, r.Name) {
				names = append(names, strings.TrimSuffix(r.Name, "."))
			}
		}
		if len(names) > 0 {
			key := fmt.Sprintf("zone[%d].transfer", i)
			out = append(out, c.Errorf(c.LineOf(key), key,
				"zone %s is transferred but holds dynamic records (%s): transfers leave them out, so secondaries answer NXDOMAIN for them; serve them from a zone of their own that only Meridian nodes answer (docs/transfers.md)",
				z.Name, strings.Join(names, ", ")))
		}
	}
	return out
}

func zoneOrigin(name string) string { return strings.ToLower(dns.Fqdn(name)) }
