package dnssec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults of a zone's dnssec table.
const (
	DefaultAlgorithm         = "ecdsap256sha256"
	DefaultSignatureValidity = 14 * 24 * time.Hour // signature_validity = "14d"
	DefaultRefresh           = 7 * 24 * time.Hour  // refresh = "7d": re-sign when less than this is left
	DefaultCacheSize         = 100_000             // cache_size: signed RRsets kept per zone
	// Backdate is how far before now a signature's inception lies, for
	// validators whose clocks run behind.
	Backdate = time.Hour
)

// Algorithms maps the config's algorithm names to DNSSEC algorithm numbers.
var Algorithms = map[string]uint8{
	"ecdsap256sha256": dns.ECDSAP256SHA256,
	"ed25519":         dns.ED25519,
}

// Config is a zone's dnssec table:
//
//	dnssec = { key_dir = "keys", algorithm = "ecdsap256sha256", signature_validity = "14d", refresh = "7d" }
type Config struct {
	// KeyDir holds the zone's K<zone>+<alg>+<tag>.key and .private files,
	// relative to the config file. Every key there is published in the
	// DNSKEY RRset.
	KeyDir string `toml:"key_dir"`
	// Algorithm is the keys' algorithm: ecdsap256sha256 (13) or ed25519 (15).
	Algorithm string `toml:"algorithm"`
	// SignatureValidity is how long a signature is valid from its making.
	SignatureValidity Duration `toml:"signature_validity"`
	// Refresh: a cached signature with less than this left is made again.
	Refresh Duration `toml:"refresh"`
	// ActiveKey is the tag of the key that signs; 0: the oldest key in
	// KeyDir (by its Created time). A newer key is then only published,
	// which is how a rollover starts.
	ActiveKey uint16 `toml:"active_key"`
	// CacheSize bounds the signed RRsets kept.
	CacheSize int `toml:"cache_size"`
}

// SetDefaults fills what the operator left out.
func (c *Config) SetDefaults() {
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	c.Algorithm = strings.ToLower(c.Algorithm)
	if c.SignatureValidity.Duration == 0 {
		c.SignatureValidity.Duration = DefaultSignatureValidity
	}
	if c.Refresh.Duration == 0 {
		c.Refresh.Duration = DefaultRefresh
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
}

// Problem is one invalid setting: the key in the dnssec table and why.
type Problem struct {
	Key, Msg string
}

// Validate checks the settings; the keys themselves are read by LoadKeys.
func (c *Config) Validate() []Problem {
	var out []Problem
	fail := func(key, format string, args ...any) {
		out = append(out, Problem{key, fmt.Sprintf(format, args...)})
	}
	if c.KeyDir == "" {
		fail("key_dir", "is required: the folder of the zone's key files (meridian dnssec keygen writes them)")
	}
	if _, ok := Algorithms[c.Algorithm]; !ok {
		fail("algorithm", "%q is not supported: want ecdsap256sha256 or ed25519", c.Algorithm)
	}
	v, r := c.SignatureValidity.Duration, c.Refresh.Duration
	if v < 2*Backdate {
		fail("signature_validity", "must be at least 2h, got %s", c.SignatureValidity)
	}
	if r <= 0 || r >= v {
		fail("refresh", "must be above 0 and below signature_validity (%s), got %s", c.SignatureValidity, c.Refresh)
	}
	if c.CacheSize < 16 {
		fail("cache_size", "must be at least 16, got %d", c.CacheSize)
	}
	return out
}

// Duration is a time.Duration written as a Go duration or in days ("14d").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return fmt.Errorf("not a duration (want e.g. \"14d\" or \"36h\"): %q", s)
		}
		d.Duration = time.Duration(n) * 24 * time.Hour
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"14d\" or \"36h\"): %q", s)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Duration) String() string {
	if d.Duration%(24*time.Hour) == 0 && d.Duration > 0 {
		return strconv.Itoa(int(d.Duration/(24*time.Hour))) + "d"
	}
	return d.Duration.String()
}
