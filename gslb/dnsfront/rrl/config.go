package rrl

import (
	"fmt"
	"net/netip"
)

// Defaults of Config, the values of [server.rrl] left out.
const (
	DefaultRate       = 200   // rate: responses per second per bucket, NSD's rrl-ratelimit
	DefaultSlip       = 2     // slip: every 2nd limited response goes out truncated
	DefaultIPv4Prefix = 24    // ipv4_prefix: clients of one /24 share their buckets
	DefaultIPv6Prefix = 56    // ipv6_prefix
	DefaultTableSize  = 65536 // table_size: buckets (about 1.5 MiB)
)

// Config is [server.rrl]: response rate limiting of UDP answers.
type Config struct {
	Enabled bool `toml:"enabled"` // off unless set
	// Rate is the responses per second each bucket (client prefix,
	// response class, name) may send; a second's worth may come at once.
	Rate int `toml:"rate"`
	// Slip: every Slip-th limited response is sent as an empty truncated
	// reply (TC=1), so a real client behind a spoofed flood retries over
	// TCP and is answered; 0 drops them all, 1 truncates them all.
	Slip       *int     `toml:"slip"`
	IPv4Prefix int      `toml:"ipv4_prefix"`
	IPv6Prefix int      `toml:"ipv6_prefix"`
	TableSize  int      `toml:"table_size"` // buckets; memory is about 24 bytes each and never grows
	Exempt     []string `toml:"exempt"`     // prefixes never limited (your own resolvers, monitoring)
}

// SetDefaults fills what the file left out.
func (c *Config) SetDefaults() {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Slip == nil {
		slip := DefaultSlip
		c.Slip = &slip
	}
	if c.IPv4Prefix == 0 {
		c.IPv4Prefix = DefaultIPv4Prefix
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.TableSize == 0 {
		c.TableSize = DefaultTableSize
	}
}

// Problem is one invalid setting: the key under [server.rrl] and why.
type Problem struct {
	Key, Msg string
}

// Validate returns what is wrong with c, by key.
func (c *Config) Validate() []Problem {
	var out []Problem
	fail := func(key, format string, args ...any) {
		out = append(out, Problem{key, fmt.Sprintf(format, args...)})
	}
	if c.Rate < 1 || c.Rate > 1_000_000 {
		fail("rate", "must be 1 to 1000000 responses per second, got %d", c.Rate)
	}
	if c.Slip == nil || *c.Slip < 0 || *c.Slip > 100 {
		fail("slip", "must be 0 (drop every limited response) to 100, got %v", c.Slip)
	}
	if c.IPv4Prefix < 1 || c.IPv4Prefix > 32 {
		fail("ipv4_prefix", "must be 1 to 32, got %d", c.IPv4Prefix)
	}
	if c.IPv6Prefix < 1 || c.IPv6Prefix > 128 {
		fail("ipv6_prefix", "must be 1 to 128, got %d", c.IPv6Prefix)
	}
	if c.TableSize < ways || c.TableSize > 1<<26 {
		fail("table_size", "must be %d to %d buckets, got %d", ways, 1<<26, c.TableSize)
	}
	for i, e := range c.Exempt {
		if _, err := netip.ParsePrefix(e); err != nil {
			fail(fmt.Sprintf("exempt[%d]", i), "%q is not a prefix (like \"192.0.2.0/24\")", e)
		}
	}
	return out
}
