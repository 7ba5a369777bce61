package xfr

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// Table is what transfers are served from under one configuration:
// each transferred zone as served, its changes and its rules, and the
// keys. It is immutable; every load builds a new one.
type Table struct {
	zones   map[string]*zoneXfr // by origin: the zones transfers are allowed of
	served  *zones.Set          // every zone served, for NOTAUTH
	keys    map[string]Key
	metrics *Metrics
	log     *slog.Logger
}

type zoneXfr struct {
	zone   *zones.Zone
	deltas []Delta
	rules  []rule

	once sync.Once
	rrs  []dns.RR // the zone's records for AXFR, sorted on first use
}

type rule struct {
	prefix netip.Prefix // invalid: any address
	key    string       // "": no key needed
}

// Table returns the table to serve transfers from after this load: the
// zones of h with a rule in cfgs (by origin), the keys, and where to count
// and log. metrics may be nil.
func (h *History) Table(cfgs map[string]Config, keys map[string]Key, metrics *Metrics, log *slog.Logger) *Table {
	t := &Table{zones: map[string]*zoneXfr{}, served: &zones.Set{}, keys: keys, metrics: metrics, log: log}
	var all []*zones.Zone
	for origin, zh := range h.zones {
		all = append(all, zh.zone)
		cfg := cfgs[origin]
		if len(cfg.Allow) == 0 {
			continue
		}
		zx := &zoneXfr{zone: zh.zone, deltas: zh.deltas}
		for _, r := range cfg.Allow {
			var rl rule
			if r.Prefix != "" {
				rl.prefix, _ = netip.ParsePrefix(r.Prefix) // validated
				rl.prefix = rl.prefix.Masked()
			}
			if r.Key != "" {
				rl.key = KeyName(r.Key)
			}
			zx.rules = append(zx.rules, rl)
		}
		t.zones[origin] = zx
	}
	if s, err := zones.NewSet(all...); err == nil {
		t.served = s
	}
	return t
}

// allows reports whether a client at addr that signed with key ("" when
// unsigned) may transfer the zone.
func (z *zoneXfr) allows(addr netip.Addr, key string) bool {
	for _, r := range z.rules {
		if (!r.prefix.IsValid() || r.prefix.Contains(addr)) && (r.key == "" || r.key == key) {
			return true
		}
	}
	return false
}

// provider signs and checks TSIG (RFC 8945) with the table's keys: an
// unknown key or another algorithm than the key's is dns.ErrSecret, which
// the caller answers with BADKEY.
type provider map[string]Key

func (p provider) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	k, ok := p[dns.CanonicalName(t.Hdr.Name)]
	if !ok || dns.CanonicalName(t.Algorithm) != k.Algorithm {
		return nil, dns.ErrSecret
	}
	raw, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil {
		return nil, dns.ErrSecret
	}
	var h hash.Hash
	switch k.Algorithm {
	case dns.HmacSHA384:
		h = hmac.New(sha512.New384, raw)
	case dns.HmacSHA512:
		h = hmac.New(sha512.New, raw)
	default:
		h = hmac.New(sha256.New, raw)
	}
	h.Write(msg)
	return h.Sum(nil), nil
}

func (p provider) Verify(msg []byte, t *dns.TSIG) error {
	mac, err := p.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(mac, got) {
		return dns.ErrSig
	}
	return nil
}
