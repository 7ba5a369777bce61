package config

import (
	"fmt"
	"slices"
	"strings"
)

// validateGuards checks each [[guard]] on its own (whatif.Guard.Validate)
// and that the record, pool and region it names are configured.
func (c *Config) validateGuards(v *validator) {
	regions := map[string]bool{}
	for _, r := range c.Regions {
		regions[r.Name] = true
	}
	names := map[string]bool{}
	for i, g := range c.Guards {
		key := fmt.Sprintf("guard[%d]", i)
		for _, p := range g.Validate() {
			if p.Key == "" {
				v.fail(key, "%s", p.Msg)
			} else {
				v.fail(key+"."+p.Key, "%s", p.Msg)
			}
		}
		if g.Name != "" && names[g.Name] {
			v.fail(key+".name", "guard %q is defined twice", g.Name)
		}
		names[g.Name] = true
		if g.NeverDrain != "" && !regions[g.NeverDrain] {
			v.fail(key+".never_drain", "no [[region]] is named %q", g.NeverDrain)
		}
		if g.Record != "" {
			c.validateGuardRecord(v, key, g.Record, g.Type, g.Pool)
		}
	}
}

// validateGuardRecord checks that a guard's record (of type typ, or any
// type) exists and, when pool is set, has that pool.
func (c *Config) validateGuardRecord(v *validator, key, record, typ, pool string) {
	want := strings.ToLower(strings.TrimSuffix(record, "."))
	found, hasPool := false, false
	var pools []string
	for _, r := range c.Records {
		if strings.ToLower(strings.TrimSuffix(r.Name, ".")) != want || (typ != "" && r.Type != typ) {
			continue
		}
		found = true
		for _, p := range r.Pools {
			pools = append(pools, p.Name)
			hasPool = hasPool || p.Name == pool
		}
	}
	switch {
	case !found:
		v.fail(key+".record", "no [[record]] is named %q", record)
	case pool != "" && !hasPool:
		slices.Sort(pools)
		v.fail(key+".pool", "record %s has no pool %q; its pools: %s", record, pool, strings.Join(slices.Compact(pools), ", "))
	}
}
