package dnssec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

const testZone = `
$ORIGIN example.test.
$TTL 300
@        3600 IN SOA   ns1.example.test. hostmaster.example.test. 2026010101 7200 3600 1209600 120
@             IN NS    ns1.example.test.
ns1           IN A     192.0.2.53
www           IN A     192.0.2.10
www           IN A     192.0.2.11
shop          IN CNAME www.example.test.
gone          IN CNAME nowhere.example.test.
deep.path.to  IN TXT   "deep"
*.apps        IN A     192.0.2.80
child         IN NS    ns1.child.example.test.
ns1.child     IN A     192.0.2.153
secure        IN NS    ns1.secure.example.test.
secure        IN DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
`

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for the signer.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func testConfig() Config {
	c := Config{KeyDir: "keys"}
	c.SetDefaults()
	return c
}

// setup makes a key in a temporary folder, a signer with the test clock
// and the test zone with the signer's apex records.
func setup(t *testing.T, alg string) (*Signer, *zones.Zone, *clock) {
	t.Helper()
	dir := t.TempDir()
	if _, err := Generate("example.test", alg, dir, 3600, t0); err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	c.Algorithm = alg
	keys, err := LoadKeys(dir, "example.test", Algorithms[alg])
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	s, err := New("example.test", keys, c, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	rrs := parseZone(t, testZone)
	z, err := zones.Build("example.test.", append(rrs, s.ApexRecords(3600)...))
	if err != nil {
		t.Fatal(err)
	}
	return s, z, clk
}

func parseZone(t *testing.T, text string) []dns.RR {
	t.Helper()
	var rrs []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), "example.test.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return rrs
}

// verifySection checks every RRSIG of rrs against the RRset before it
// with miekg/dns's Verify and the signer's keys, at the test clock, and
// that no RRset but a referral's NS goes unsigned. It returns the RRsets'
// types in order.
func verifySection(t *testing.T, s *Signer, rrs []dns.RR, now time.Time, unsigned ...uint16) []uint16 {
	t.Helper()
	var types []uint16
	for i := 0; i < len(rrs); {
		h := rrs[i].Header()
		j := i + 1
		for j < len(rrs) && rrs[j].Header().Rrtype == h.Rrtype && rrs[j].Header().Name == h.Name {
			j++
		}
		set := rrs[i:j]
		types = append(types, h.Rrtype)
		i = j
		if slices.Contains(unsigned, h.Rrtype) {
			continue
		}
		var sigs []*dns.RRSIG
		for i < len(rrs) {
			sig, ok := rrs[i].(*dns.RRSIG)
			if !ok {
				break
			}
			sigs = append(sigs, sig)
			i++
		}
		if len(sigs) == 0 {
			t.Fatalf("%s %s has no RRSIG", h.Name, dns.TypeToString[h.Rrtype])
		}
		for _, sig := range sigs {
			key := keyOf(s, sig.KeyTag)
			if key == nil {
				t.Fatalf("RRSIG by unknown key %d", sig.KeyTag)
			}
			if err := sig.Verify(key, set); err != nil {
				t.Fatalf("%s %s: Verify: %v", h.Name, dns.TypeToString[h.Rrtype], err)
			}
			if !sig.ValidityPeriod(now) {
				t.Fatalf("%s: not valid at %v", sig, now)
			}
			if inc := time.Unix(int64(sig.Inception), 0); !inc.Equal(now.Add(-Backdate)) && now.Equal(t0) {
				t.Fatalf("inception %v, want an hour before %v", inc, now)
			}
		}
	}
	return types
}

func keyOf(s *Signer, tag uint16) *dns.DNSKEY {
	for _, k := range s.Keys() {
		if k.Tag() == tag {
			return k.DNSKEY
		}
	}
	return nil
}

func TestSignResult(t *testing.T) {
	for _, alg := range []string{"ecdsap256sha256", "ed25519"} {
		s, z, _ := setup(t, alg)
		for _, tt := range []struct {
			name     string
			qtype    uint16
			co       bool
			rcode    int
			answer   []uint16 // RRset types of the answer section
			ns       []uint16
			nsecType []uint16 // the NSEC's bitmap, when there is one
		}{
			{"www.example.test.", dns.TypeA, false, dns.RcodeSuccess, []uint16{dns.TypeA}, nil, nil},
			{"example.test.", dns.TypeDNSKEY, false, dns.RcodeSuccess, []uint16{dns.TypeDNSKEY}, nil, nil},
			{"example.test.", dns.TypeCDS, false, dns.RcodeSuccess, []uint16{dns.TypeCDS}, nil, nil},
			{"shop.example.test.", dns.TypeA, false, dns.RcodeSuccess, []uint16{dns.TypeCNAME, dns.TypeA}, nil, nil},
			{"x.apps.example.test.", dns.TypeA, false, dns.RcodeSuccess, []uint16{dns.TypeA}, nil, nil},
			{"nope.example.test.", dns.TypeA, false, dns.RcodeSuccess, nil, []uint16{dns.TypeSOA, dns.TypeNSEC},
				[]uint16{dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNXNAME}},
			{"nope.example.test.", dns.TypeA, true, dns.RcodeNameError, nil, []uint16{dns.TypeSOA, dns.TypeNSEC},
				[]uint16{dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNXNAME}},
			{"gone.example.test.", dns.TypeA, false, dns.RcodeSuccess, []uint16{dns.TypeCNAME}, []uint16{dns.TypeSOA, dns.TypeNSEC},
				[]uint16{dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNXNAME}},
			{"www.example.test.", dns.TypeMX, false, dns.RcodeSuccess, nil, []uint16{dns.TypeSOA, dns.TypeNSEC},
				[]uint16{dns.TypeA, dns.TypeRRSIG, dns.TypeNSEC}},
			{"path.to.example.test.", dns.TypeTXT, false, dns.RcodeSuccess, nil, []uint16{dns.TypeSOA, dns.TypeNSEC},
				[]uint16{dns.TypeRRSIG, dns.TypeNSEC}},
			{"y.apps.example.test.", dns.TypeTXT, false, dns.RcodeSuccess, nil, []uint16{dns.TypeSOA, dns.TypeNSEC},
				[]uint16{dns.TypeA, dns.TypeRRSIG, dns.TypeNSEC}},
			{"example.test.", dns.TypeMX, false, dns.RcodeSuccess, nil, []uint16{dns.TypeSOA, dns.TypeNSEC},
				[]uint16{dns.TypeNS, dns.TypeSOA, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY}},
			{"www.child.example.test.", dns.TypeA, false, dns.RcodeSuccess, nil, []uint16{dns.TypeNS, dns.TypeNSEC},
				[]uint16{dns.TypeNS, dns.TypeRRSIG, dns.TypeNSEC}},
			{"www.secure.example.test.", dns.TypeA, false, dns.RcodeSuccess, nil, []uint16{dns.TypeNS, dns.TypeDS}, nil},
		} {
			t.Run(alg+"/"+tt.name+dns.TypeToString[tt.qtype], func(t *testing.T) {
				res := z.Lookup(tt.name, tt.qtype)
				var sc Scratch
				if err := s.SignResult(z, Query{Name: tt.name, Type: tt.qtype, CO: tt.co}, &res, &sc); err != nil {
					t.Fatal(err)
				}
				if res.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[res.Rcode], dns.RcodeToString[tt.rcode])
				}
				if got := verifySection(t, s, res.Answer, t0); !slices.Equal(got, tt.answer) {
					t.Errorf("answer RRsets %v, want %v", got, tt.answer)
				}
				if got := verifySection(t, s, res.Ns, t0, dns.TypeNS); !slices.Equal(got, tt.ns) {
					t.Errorf("authority RRsets %v, want %v", got, tt.ns)
				}
				for _, rr := range res.Ns {
					n, ok := rr.(*dns.NSEC)
					if !ok {
						continue
					}
					if !slices.Equal(n.TypeBitMap, tt.nsecType) {
						t.Errorf("NSEC bitmap %v, want %v", n.TypeBitMap, tt.nsecType)
					}
					if want := "\\000." + n.Hdr.Name; n.NextDomain != want {
						t.Errorf("NSEC next %s, want %s", n.NextDomain, want)
					}
				}
			})
		}
	}
}

func TestSignResultNXNAMEQueryIsFormErr(t *testing.T) {
	s, z, _ := setup(t, DefaultAlgorithm)
	res := z.Lookup("www.example.test.", dns.TypeNXNAME)
	if err := s.SignResult(z, Query{Name: "www.example.test.", Type: dns.TypeNXNAME}, &res, &Scratch{}); err != nil {
		t.Fatal(err)
	}
	if res.Rcode != dns.RcodeFormatError || len(res.Answer)+len(res.Ns) != 0 {
		t.Fatalf("got rcode %d with %d records, want FORMERR and none (RFC 9824 3.5)", res.Rcode, len(res.Answer)+len(res.Ns))
	}
}

// TestSignCache: a second query for the same RRset is a cache hit with
// the same signature; past refresh the signature is made again.
func TestSignCache(t *testing.T) {
	s, z, clk := setup(t, DefaultAlgorithm)
	res := z.Lookup("www.example.test.", dns.TypeA)
	first, buf, err := s.Sign(res.Answer, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, buf, _ := s.Sign(res.Answer, buf)
	if &first[0] != &again[0] || s.Stats().Hits != 1 || s.Stats().Made != 1 {
		t.Fatalf("second use not from the cache: %+v", s.Stats())
	}
	clk.now = t0.Add(DefaultSignatureValidity - DefaultRefresh + time.Second)
	later, _, _ := s.Sign(res.Answer, buf)
	if later[0] == first[0] || s.Stats().Made != 2 {
		t.Fatalf("not signed again past refresh: %+v", s.Stats())
	}
	verifySection(t, s, append(append([]dns.RR{}, res.Answer...), later...), clk.now)
	if exp := time.Unix(int64(later[0].(*dns.RRSIG).Expiration), 0); !exp.Equal(clk.now.Add(DefaultSignatureValidity)) {
		t.Errorf("expiration %v, want %v", exp, clk.now.Add(DefaultSignatureValidity))
	}
}

func TestSignCacheIsBounded(t *testing.T) {
	s, _, _ := setup(t, DefaultAlgorithm)
	s.max = 16
	var buf []byte
	for i := range 100 {
		rr, _ := dns.NewRR(fmt.Sprintf("n%d.example.test. 30 IN A 192.0.2.1", i))
		if _, buf, _ = s.Sign([]dns.RR{rr}, buf); len(s.cache) > 16 {
			t.Fatalf("cache holds %d RRsets, bound 16", len(s.cache))
		}
	}
	if st := s.Stats(); st.Cached == 0 || st.Soonest.IsZero() {
		t.Fatalf("stats %+v", st)
	}
}

// TestCachedSignAllocatesNothing: the answer served from the cache costs
// no allocation once the scratch buffer has grown.
func TestCachedSignAllocatesNothing(t *testing.T) {
	s, z, _ := setup(t, DefaultAlgorithm)
	res := z.Lookup("www.example.test.", dns.TypeA)
	_, buf, _ := s.Sign(res.Answer, nil)
	if n := testing.AllocsPerRun(100, func() { _, buf, _ = s.Sign(res.Answer, buf) }); n != 0 {
		t.Fatalf("%v allocations per cached signature", n)
	}
}

func TestLoadKeysErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    error
		text    string
	}{
		{"missing folder", func(t *testing.T, dir string) { os.RemoveAll(dir) }, os.ErrNotExist, "key folder"},
		{"no keys", func(t *testing.T, dir string) {}, ErrNoKeys, "meridian dnssec keygen"},
		{"loose permissions", func(t *testing.T, dir string) {
			Generate("example.test", DefaultAlgorithm, dir, 3600, t0)
			files, _ := filepath.Glob(filepath.Join(dir, "*.private"))
			os.Chmod(files[0], 0o644)
		}, ErrLoosePermissions, "chmod 600"},
		{"private half missing", func(t *testing.T, dir string) {
			Generate("example.test", DefaultAlgorithm, dir, 3600, t0)
			files, _ := filepath.Glob(filepath.Join(dir, "*.private"))
			os.Remove(files[0])
		}, os.ErrNotExist, "private key"},
		{"another algorithm", func(t *testing.T, dir string) {
			Generate("example.test", "ed25519", dir, 3600, t0)
			files, _ := filepath.Glob(filepath.Join(dir, "*.key"))
			os.Rename(files[0], filepath.Join(dir, "Kexample.test.+013+00001.key"))
			priv, _ := filepath.Glob(filepath.Join(dir, "*.private"))
			os.Rename(priv[0], filepath.Join(dir, "Kexample.test.+013+00001.private"))
		}, ErrAlgorithm, "the zone's algorithm is ecdsap256sha256"},
		{"unsupported algorithm", func(t *testing.T, dir string) {
			writeKey(t, dir, "Kexample.test.+008+00001", "example.test. 3600 IN DNSKEY 257 3 8 AwEAAcMnWBKLuvG/LwnPVykcmpvnntwxfshHlHRhlY0F3oz8AMcuF8gw")
		}, ErrAlgorithm, "RSASHA256"},
		{"key of another zone", func(t *testing.T, dir string) {
			other := t.TempDir()
			Generate("other.test", DefaultAlgorithm, other, 3600, t0)
			keys, _ := filepath.Glob(filepath.Join(other, "*"))
			for _, f := range keys {
				name := strings.Replace(filepath.Base(f), "Kother.test.", "Kexample.test.", 1)
				b, _ := os.ReadFile(f)
				os.WriteFile(filepath.Join(dir, name), b, 0o600)
			}
		}, ErrOtherZone, "for other.test."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			os.Mkdir(dir, 0o700)
			tt.prepare(t, dir)
			_, err := LoadKeys(dir, "example.test", dns.ECDSAP256SHA256)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("error %v, want %v saying %q", err, tt.want, tt.text)
			}
		})
	}
}

func writeKey(t *testing.T, dir, base, rr string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, base+".key"), []byte(rr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, base+".private"), []byte("Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRolloverKeys: with two keys the oldest signs and both sign the
// DNSKEY RRset; active_key hands the data to the new one.
func TestRolloverKeys(t *testing.T) {
	dir := t.TempDir()
	old, _ := Generate("example.test", DefaultAlgorithm, dir, 3600, t0)
	next, _ := Generate("example.test", DefaultAlgorithm, dir, 3600, t0.Add(time.Hour))
	keys, err := LoadKeys(dir, "example.test", dns.ECDSAP256SHA256)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	c := testConfig()
	s, _ := New("example.test", keys, c, func() time.Time { return t0 })
	if s.Active().Tag() != old.Tag() {
		t.Fatalf("active %d, want the oldest %d", s.Active().Tag(), old.Tag())
	}
	apex := s.ApexRecords(3600)
	sigs, _, _ := s.Sign(apex[:2], nil)
	if len(sigs) != 2 {
		t.Fatalf("%d signatures of the DNSKEY RRset, want one per key", len(sigs))
	}
	for _, sig := range sigs {
		if err := sig.(*dns.RRSIG).Verify(keyOf(s, sig.(*dns.RRSIG).KeyTag), apex[:2]); err != nil {
			t.Fatal(err)
		}
	}
	c.ActiveKey = next.Tag()
	s, _ = New("example.test", keys, c, func() time.Time { return t0 })
	rr, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.1")
	sigs, _, _ = s.Sign([]dns.RR{rr}, nil)
	if len(sigs) != 1 || sigs[0].(*dns.RRSIG).KeyTag != next.Tag() {
		t.Fatalf("data signed by %v, want %d", sigs, next.Tag())
	}
	if cds := apex[len(apex)-1].(*dns.CDS); cds.KeyTag != old.Tag() {
		t.Errorf("CDS of %d before the switch, want %d", cds.KeyTag, old.Tag())
	}
	c.ActiveKey = 1
	if _, err := New("example.test", keys, c, nil); !errors.Is(err, ErrActiveKey) {
		t.Fatalf("active_key of no key: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		edit func(*Config)
		key  string
	}{
		{func(c *Config) { c.KeyDir = "" }, "key_dir"},
		{func(c *Config) { c.Algorithm = "rsasha256" }, "algorithm"},
		{func(c *Config) { c.Refresh.Duration = c.SignatureValidity.Duration }, "refresh"},
		{func(c *Config) { c.SignatureValidity.Duration = time.Hour }, "signature_validity"},
		{func(c *Config) { c.CacheSize = 1 }, "cache_size"},
	} {
		c := testConfig()
		tt.edit(&c)
		p := c.Validate()
		if len(p) == 0 || p[0].Key != tt.key {
			t.Errorf("problems %v, want one of %s", p, tt.key)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("14d")); err != nil || d.Duration != 14*24*time.Hour || d.String() != "14d" {
		t.Errorf("14d: %v %v", d, err)
	}
	if err := d.UnmarshalText([]byte("2w")); err == nil {
		t.Error("2w accepted")
	}
}
