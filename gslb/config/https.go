package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meridian-gslb/meridian/gslb"
)

// HTTPS is record.https (and record.pool.https): the record's name answers
// HTTPS queries (RFC 9460) with one ServiceMode record whose address hints
// follow the region chosen for the client. A pool's table overrides the
// record's key by key.
type HTTPS struct {
	ALPN []string `toml:"alpn"` // alpn-ids, e.g. ["h2", "h3"]; none: no alpn key
	Port int      `toml:"port"` // 1-65535; 0: no port key (clients use 443)
}

// validate checks the table at key.
func (h *HTTPS) validate(v *validator, key string) {
	if h == nil {
		return
	}
	if h.Port < 0 || h.Port > 65535 {
		v.fail(key+".port", "must be 1 to 65535 (or left out for 443), got %d", h.Port)
	}
	for _, id := range h.ALPN {
		// Commas and backslashes would need escaping in presentation
		// form (RFC 9460 appendix A.1); no registered alpn-id has them.
		if id == "" || len(id) > 255 || strings.ContainsAny(id, `,\`) || !printable(id) {
			v.fail(key+".alpn", "%q is not an alpn-id (1 to 255 printable characters, no comma or backslash)", id)
		}
	}
	for i, id := range h.ALPN {
		if slices.Contains(h.ALPN[:i], id) {
			v.fail(key+".alpn", "lists %q twice", id)
		}
	}
}

func printable(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// validateHTTPS checks the https tables of every record: pools override a
// record's table and need one, and one record of a name carries it.
func (c *Config) validateHTTPS(v *validator) {
	carriers := map[string]int{}
	for i, r := range c.Records {
		key := fmt.Sprintf("record[%d]", i)
		r.HTTPS.validate(v, key+".https")
		for j, p := range r.Pools {
			pkey := fmt.Sprintf("%s.pool[%d].https", key, j)
			p.HTTPS.validate(v, pkey)
			if p.HTTPS != nil && r.HTTPS == nil {
				v.fail(pkey, "overrides the record's https, and record %s has none (add https = {} to the record)", r.Name)
			}
		}
		if r.HTTPS == nil {
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(r.Name, "."))
		if first, ok := carriers[name]; ok {
			v.fail(key+".https", "record[%d] of %s has https already: one HTTPS answer per name, its hints from both the A and the AAAA record", first, r.Name)
		}
		carriers[name] = i
	}
}

// serviceParams builds the engine's parameters: the record's, with the
// pool's keys over them when pool is set.
func serviceParams(rec, pool *HTTPS) *gslb.ServiceParams {
	if rec == nil {
		return nil
	}
	p := &gslb.ServiceParams{ALPN: rec.ALPN, Port: uint16(rec.Port)}
	if pool == nil {
		return p
	}
	if pool.ALPN != nil {
		p.ALPN = pool.ALPN
	}
	if pool.Port != 0 {
		p.Port = uint16(pool.Port)
	}
	return p
}
