package dnssec

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Signer signs the RRsets of one zone with its keys. Signatures are made
// once per distinct RRset (owner, type, TTL and data) and kept until less
// than Config.Refresh of their validity is left; the cache holds at most
// Config.CacheSize RRsets. It is safe for concurrent use.
type Signer struct {
	zone     string
	keys     []*Key // published in the DNSKEY RRset, oldest first
	active   *Key   // signs everything; every key signs the DNSKEY RRset
	validity time.Duration
	refresh  time.Duration
	now      func() time.Time

	mu    sync.RWMutex
	cache map[string]*entry
	max   int

	made, hits atomic.Uint64
}

// entry is one RRset's signatures and when to make them again.
type entry struct {
	sigs    []dns.RR
	wire    []byte // sigs in wire form, each without its owner name, for CachedWire
	renew   int64  // unix seconds: sign again from here on
	expires int64  // unix seconds: the signatures' expiration
}

// New returns the signer of zone with keys (oldest first, as LoadKeys
// returns them). now is the clock (time.Now when nil).
func New(zone string, keys []*Key, c Config, now func() time.Time) (*Signer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: %w", zone, ErrNoKeys)
	}
	if now == nil {
		now = time.Now
	}
	s := &Signer{zone: dns.Fqdn(strings.ToLower(zone)), keys: keys, active: keys[0],
		validity: c.SignatureValidity.Duration, refresh: c.Refresh.Duration, now: now,
		cache: make(map[string]*entry), max: max(c.CacheSize, 16)}
	if c.ActiveKey != 0 {
		s.active = nil
		for _, k := range keys {
			if k.Tag() == c.ActiveKey {
				s.active = k
			}
		}
		if s.active == nil {
			return nil, fmt.Errorf("%w: %d (the keys there: %s)", ErrActiveKey, c.ActiveKey, tags(keys))
		}
	}
	return s, nil
}

func tags(keys []*Key) string {
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprint(k.Tag()))
	}
	return strings.Join(out, ", ")
}

// Zone is the zone signed, lower-case and fully qualified.
func (s *Signer) Zone() string { return s.zone }

// Keys are the published keys, oldest first.
func (s *Signer) Keys() []*Key { return s.keys }

// Active is the key that signs the zone's data.
func (s *Signer) Active() *Key { return s.active }

// ApexRecords are the records the zone's apex gains: the DNSKEY RRset
// (every key), and CDS and CDNSKEY (RFC 7344, RFC 8078) for the active
// key, the DS the parent should hold.
func (s *Signer) ApexRecords(ttl uint32) []dns.RR {
	var out []dns.RR
	for _, k := range s.keys {
		dk := *k.DNSKEY
		dk.Hdr = dns.RR_Header{Name: s.zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: ttl}
		out = append(out, &dk)
	}
	act := *s.active.DNSKEY
	act.Hdr = dns.RR_Header{Name: s.zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: ttl}
	cdnskey := act.ToCDNSKEY()
	cdnskey.Hdr.Ttl = ttl
	cds := act.ToDS(dns.SHA256).ToCDS()
	cds.Hdr.Ttl = ttl
	return append(out, cdnskey, cds)
}

// DS returns the DS records (SHA-256) of every published key, for the parent.
func (s *Signer) DS() []*dns.DS {
	var out []*dns.DS
	for _, k := range s.keys {
		out = append(out, k.DNSKEY.ToDS(dns.SHA256))
	}
	return out
}

// Sign returns the RRSIGs of rrset (one RRset: same owner, type and
// class), from the cache when they are there and fresh. buf is scratch
// memory for the cache key, returned for reuse; a cached answer allocates
// nothing once buf has grown.
func (s *Signer) Sign(rrset []dns.RR, buf []byte) ([]dns.RR, []byte, error) {
	key, err := appendKey(buf[:0], rrset)
	if err != nil {
		return nil, buf, err
	}
	now := s.now().Unix()
	s.mu.RLock()
	e := s.cache[string(key)]
	s.mu.RUnlock()
	if e != nil && now < e.renew {
		s.hits.Add(1)
		return e.sigs, key, nil
	}
	e, err = s.sign(rrset)
	if err != nil {
		return nil, key, err
	}
	s.mu.Lock()
	if len(s.cache) >= s.max {
		s.evict()
	}
	s.cache[string(key)] = e
	s.mu.Unlock()
	return e.sigs, key, nil
}

// evict drops an eighth of the cache, whichever entries the map's order
// gives: the cache bounds memory, and a dropped RRset is signed again on
// its next use. Called with mu held.
func (s *Signer) evict() {
	n := len(s.cache)/8 + 1
	for k := range s.cache {
		delete(s.cache, k)
		if n--; n == 0 {
			return
		}
	}
}

// sign makes the signatures of rrset: the active key's, and for the
// DNSKEY RRset every published key's, so that a validator anchored at
// any of them (a parent's DS not yet updated in a rollover) follows the
// chain.
func (s *Signer) sign(rrset []dns.RR) (*entry, error) {
	now := s.now()
	inc, exp := now.Add(-Backdate), now.Add(s.validity)
	keys := []*Key{s.active}
	if rrset[0].Header().Rrtype == dns.TypeDNSKEY {
		keys = s.keys
	}
	e := &entry{renew: exp.Add(-s.refresh).Unix(), expires: exp.Unix()}
	for _, k := range keys {
		sig := &dns.RRSIG{
			Hdr:       dns.RR_Header{Ttl: rrset[0].Header().Ttl},
			Algorithm: k.DNSKEY.Algorithm, KeyTag: k.Tag(), SignerName: s.zone,
			Inception: uint32(inc.Unix()), Expiration: uint32(exp.Unix()),
		}
		if err := sig.Sign(k.Signer, rrset); err != nil {
			return nil, fmt.Errorf("sign %s %s: %w", rrset[0].Header().Name, dns.TypeToString[rrset[0].Header().Rrtype], err)
		}
		e.sigs = append(e.sigs, sig)
		s.made.Add(1)
		var err error
		if e.wire, err = appendTail(e.wire, sig); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// appendTail appends rr in wire form without its owner name: what follows
// a compression pointer to the owner in a reply.
func appendTail(out []byte, rr dns.RR) ([]byte, error) {
	buf := make([]byte, dns.Len(rr)+16)
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return out, fmt.Errorf("pack %s: %w", rr.Header().Name, err)
	}
	name := 0
	for buf[name] != 0 {
		name += 1 + int(buf[name])
	}
	return append(out, buf[name+1:end]...), nil
}

// CachedWire returns the signatures of the RRset whose cache key
// (AppendKey's form) is key, in wire form: each record from its type on,
// to follow a pointer to the owner name; and how many there are. ok is
// false when they are not cached or due for renewal: the caller then signs
// with Sign. It allocates nothing.
func (s *Signer) CachedWire(key []byte) (wire []byte, n int, ok bool) {
	now := s.now().Unix()
	s.mu.RLock()
	e := s.cache[string(key)]
	s.mu.RUnlock()
	if e == nil || now >= e.renew {
		return nil, 0, false
	}
	s.hits.Add(1)
	return e.wire, len(e.sigs), true
}

// AppendKey appends the cache key of rrset to buf: its records in wire
// form, uncompressed, in the order given.
func AppendKey(buf []byte, rrset []dns.RR) ([]byte, error) { return appendKey(buf, rrset) }

// appendKey appends rrset's records in wire form (uncompressed, as given)
// to buf: the cache key, equal for equal RRsets.
func appendKey(buf []byte, rrset []dns.RR) ([]byte, error) {
	for _, rr := range rrset {
		need := len(buf) + dns.Len(rr) + 16
		if cap(buf) < need {
			grown := make([]byte, len(buf), 2*need)
			copy(grown, buf)
			buf = grown
		}
		off, err := dns.PackRR(rr, buf[:cap(buf)], len(buf), nil, false)
		if err != nil {
			return buf, fmt.Errorf("sign %s: %w", rr.Header().Name, err)
		}
		buf = buf[:off]
	}
	return buf, nil
}

// Stats is what the signer has done and holds.
type Stats struct {
	Cached  int       // RRsets whose signatures are cached
	Made    uint64    // signatures made
	Hits    uint64    // RRsets answered from the cache
	Soonest time.Time // the soonest expiration of a cached signature that is still served; zero when none
}

// Stats drops the cached signatures due for renewal (they are made again
// on their next use) and reports the rest.
func (s *Signer) Stats() Stats {
	now := s.now().Unix()
	st := Stats{Made: s.made.Load(), Hits: s.hits.Load()}
	var soonest int64
	s.mu.Lock()
	for k, e := range s.cache {
		if now >= e.renew {
			delete(s.cache, k)
			continue
		}
		if soonest == 0 || e.expires < soonest {
			soonest = e.expires
		}
	}
	st.Cached = len(s.cache)
	s.mu.Unlock()
	if soonest != 0 {
		st.Soonest = time.Unix(soonest, 0)
	}
	return st
}

// Same reports whether o signs the same zone with the same keys, active
// key and settings: a reload may then keep s, with its cache and counters.
func (s *Signer) Same(o *Signer) bool {
	if s == nil || o == nil || s.zone != o.zone || s.active.Tag() != o.active.Tag() || len(s.keys) != len(o.keys) ||
		s.validity != o.validity || s.refresh != o.refresh || s.max != o.max {
		return false
	}
	for i, k := range s.keys {
		if k.DNSKEY.String() != o.keys[i].DNSKEY.String() {
			return false
		}
	}
	return true
}

// KeyInfo describes a published key.
type KeyInfo struct {
	Tag       uint16 `json:"tag"`
	Algorithm string `json:"algorithm"`
	// State is "active" for the key that signs the zone's data,
	// "published" for the others (in the DNSKEY RRset, signing it alone).
	State   string    `json:"state"`
	Created time.Time `json:"created,omitzero"`
	DS      string    `json:"ds"` // SHA-256, for the parent
}

// KeyInfos describes the published keys, oldest first.
func (s *Signer) KeyInfos() []KeyInfo {
	var out []KeyInfo
	for _, k := range s.keys {
		state := "published"
		if k == s.active {
			state = "active"
		}
		out = append(out, KeyInfo{Tag: k.Tag(), Algorithm: algorithmName(k.DNSKEY.Algorithm), State: state,
			Created: k.Created, DS: k.DNSKEY.ToDS(dns.SHA256).String()})
	}
	return out
}
