package xfr

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Defaults of Settings, the values of [transfer] left out.
const (
	DefaultHistory = 16 // history: versions of a zone IXFR can start from
)

// Serial modes of a zone's serial key.
const (
	SerialFile      = "file"      // the serial written in the zone file (the default)
	SerialUnixtime  = "unixtime"  // seconds since 1970 at the load that changed the zone
	SerialIncrement = "increment" // one more than the serial served before the change
)

// Settings is [transfer]: what every zone's transfers share.
type Settings struct {
	// KeyFiles name files of TSIG keys as BIND's tsig-keygen writes them
	// (key "name" { algorithm hmac-sha256; secret "..."; };), relative
	// to the configuration file; a reload reads them again.
	KeyFiles []string `toml:"key_files"`
	// History is how many changes of each transferred zone are kept for
	// IXFR; a secondary further behind gets the whole zone (AXFR).
	History int `toml:"history"`

	// Keys are the keys read from KeyFiles, by lower-case FQDN name:
	// filled by validation.
	Keys map[string]Key `toml:"-"`
}

// Config is a zone's [zone.transfer]: who may transfer it and whom to
// notify when it changes. Transfers are refused when Allow is empty.
type Config struct {
	Allow     []Rule   `toml:"allow"`      // any rule that matches allows the transfer
	Notify    []string `toml:"notify"`     // host:port of secondaries to send NOTIFY to
	NotifyKey string   `toml:"notify_key"` // TSIG key NOTIFY messages are signed with; "" unsigned
}

// Rule allows a transfer to clients in Prefix (all when empty) that sign
// with Key (unsigned allowed when empty). At least one of the two is set.
type Rule struct {
	Prefix string `toml:"prefix"`
	Key    string `toml:"key"`
}

// Enabled reports whether the zone is transferred or notified at all.
func (c *Config) Enabled() bool { return len(c.Allow) > 0 || len(c.Notify) > 0 }

// Problem is one invalid setting: the key, relative to its table, and why.
type Problem struct {
	Key, Msg string
}

// SetDefaults fills what [transfer] left out.
func (s *Settings) SetDefaults() {
	if s.History == 0 {
		s.History = DefaultHistory
	}
}

// Validate checks [transfer] but the key files, which the caller reads
// with ParseKeys.
func (s *Settings) Validate() []Problem {
	if s.History < 1 || s.History > 1000 {
		return []Problem{{"history", fmt.Sprintf("must be 1 to 1000 versions, got %d", s.History)}}
	}
	return nil
}

// ValidSerial checks a zone's serial key.
func ValidSerial(mode string) error {
	switch mode {
	case "", SerialFile, SerialUnixtime, SerialIncrement:
		return nil
	}
	return fmt.Errorf("must be %q, %q or %q, got %q", SerialFile, SerialUnixtime, SerialIncrement, mode)
}

// Validate checks [zone.transfer] against the keys known.
func (c *Config) Validate(keys map[string]Key) []Problem {
	var out []Problem
	fail := func(key, format string, args ...any) {
		out = append(out, Problem{key, fmt.Sprintf(format, args...)})
	}
	known := func(key, name string) {
		if _, ok := keys[KeyName(name)]; !ok {
			fail(key, "no key %q in transfer.key_files", name)
		}
	}
	for i, r := range c.Allow {
		key := fmt.Sprintf("allow[%d]", i)
		if r.Prefix == "" && r.Key == "" {
			fail(key, "give a prefix, a key or both: a rule with neither would allow anyone")
		}
		if r.Prefix != "" {
			if _, err := netip.ParsePrefix(r.Prefix); err != nil {
				fail(key+".prefix", "%q is not a prefix (e.g. \"192.0.2.53/32\")", r.Prefix)
			}
		}
		if r.Key != "" {
			known(key+".key", r.Key)
		}
	}
	for i, t := range c.Notify {
		host, port, err := net.SplitHostPort(t)
		if err != nil || net.ParseIP(host) == nil || port == "" {
			fail(fmt.Sprintf("notify[%d]", i), "%q is not ip:port (write IPv6 as \"[2001:db8::53]:53\")", t)
		}
	}
	if c.NotifyKey != "" {
		known("notify_key", c.NotifyKey)
	}
	return out
}

// KeyName is a key's name as TSIG records carry it: lower-case, fully
// qualified.
func KeyName(name string) string { return strings.ToLower(dns.Fqdn(name)) }
