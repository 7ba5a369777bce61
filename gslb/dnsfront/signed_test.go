package dnsfront

import (
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/examples"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/miekg/dns"
)

// signedHandler serves the quickstart with example.test signed by a key
// made for the test, every target up.
func signedHandler(t testing.TB) (*Handler, *dns.DNSKEY) {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(examples.Quickstart, "quickstart", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(examples.Quickstart, path)
		if err != nil {
			return err
		}
		if d.Name() == "meridian.toml" {
			b = []byte(strings.Replace(string(b), `file = "example.test.zone"`, `file = "example.test.zone"`+"\n"+`dnssec = { key_dir = "keys" }`, 1))
		}
		return os.WriteFile(filepath.Join(dir, d.Name()), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	key, err := dnssec.Generate("example.test", dnssec.DefaultAlgorithm, filepath.Join(dir, "keys"), 3600, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "meridian.toml"))
	if err != nil {
		t.Fatal(err)
	}
	health := gslb.NewHealthMap()
	h, e := handlerFor(t, cfg, health)
	for _, id := range []string{"us-east/192.0.2.100", "us-east/192.0.2.101", "eu-west/198.51.100.100", "ap-northeast/203.0.113.100"} {
		health.Set(id, gslb.Up)
	}
	e.Refresh()
	return h, key.DNSKEY
}

func signedQuery(t testing.TB, name string, qtype uint16, subnet string, do bool) []byte {
	t.Helper()
	q := withECS(name, qtype, subnet)
	if q.IsEdns0() == nil {
		q.SetEdns0(1232, do)
	}
	q.IsEdns0().SetDo(do)
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

// TestSignedFastPath: a DO query of a signed zone is signed by the full
// path first; once the signatures are cached, the fast path gives the
// same reply for positive answers, and its RRSIGs verify. Queries without
// DO keep the fast path from the start.
func TestSignedFastPath(t *testing.T) {
	h, key := signedHandler(t)
	src := netip.MustParseAddr("203.0.113.53")
	for _, tt := range []struct {
		name   string
		qtype  uint16
		subnet string
		fast   bool // once signed
	}{
		{"www.example.test.", dns.TypeA, "", true},
		{"WWW.Example.TEST.", dns.TypeA, "", true},
		{"example.test.", dns.TypeDNSKEY, "", true},
		{"app.example.test.", dns.TypeA, "", true},
		{"App.example.test.", dns.TypeA, "198.51.100.0/24", true},
		{"app.example.test.", dns.TypeA, "192.0.2.0/24", true},
		{"example.test.", dns.TypeMX, "", false}, // additional records follow the answer
		{"nope.example.test.", dns.TypeA, "", false},
		{"www.example.test.", dns.TypeMX, "", false},
		{"shop.example.test.", dns.TypeA, "", false},
		{"x.apps.example.test.", dns.TypeA, "", false},
		{"app.example.test.", dns.TypeAAAA, "", false},
	} {
		what := tt.name + " " + dns.TypeToString[tt.qtype] + " " + tt.subnet
		if h.fastAnswer(h.State(), new(scratch), signedQuery(t, tt.name, tt.qtype, tt.subnet, false), src, true) == nil && tt.fast {
			t.Errorf("%s: without DO, the fast path declined", what)
		}
		pkt := signedQuery(t, tt.name, tt.qtype, tt.subnet, true)
		var req dns.Msg
		if err := req.Unpack(pkt); err != nil {
			t.Fatal(err)
		}
		full := h.answer(h.State(), new(scratch), &req, true, src) // signs, and caches
		fast := h.fastAnswer(h.State(), new(scratch), pkt, src, true)
		if (fast != nil) != tt.fast {
			t.Errorf("%s: fast path answered: %v, want %v", what, fast != nil, tt.fast)
		}
		if fast != nil {
			compareReplies(t, what, fast, full)
			full = fast
		}
		verifyReply(t, what, full, key)
	}
}

// verifyReply checks that every answer RRset of the reply has an RRSIG
// that verifies with key.
func verifyReply(t *testing.T, what string, out []byte, key *dns.DNSKEY) {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(out); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		sets := map[string][]dns.RR{}
		var sigs []*dns.RRSIG
		for _, rr := range sec {
			if sig, ok := rr.(*dns.RRSIG); ok {
				sigs = append(sigs, sig)
				continue
			}
			k := strings.ToLower(rr.Header().Name) + dns.TypeToString[rr.Header().Rrtype]
			sets[k] = append(sets[k], rr)
		}
		for _, sig := range sigs {
			set := sets[strings.ToLower(sig.Hdr.Name)+dns.TypeToString[sig.TypeCovered]]
			if err := sig.Verify(key, set); err != nil {
				t.Errorf("%s: RRSIG %s: %v", what, dns.TypeToString[sig.TypeCovered], err)
			}
			delete(sets, strings.ToLower(sig.Hdr.Name)+dns.TypeToString[sig.TypeCovered])
		}
		for k, set := range sets {
			if set[0].Header().Rrtype != dns.TypeNS {
				t.Errorf("%s: %s unsigned", what, k)
			}
		}
	}
	if len(m.Answer)+len(m.Ns) == 0 {
		t.Errorf("%s: empty reply", what)
	}
}

// BenchmarkSignedUDPPacket: a DO query of a signed zone whose signature
// is cached, per packet, against the unsigned answer of the same name.
// The cached signed answers allocate nothing.
func BenchmarkSignedUDPPacket(b *testing.B) {
	h, _ := signedHandler(b)
	src := netip.MustParseAddr("203.0.113.53")
	for _, bc := range []struct {
		name, qname, subnet string
		do                  bool
	}{
		{"static_A_unsigned", "www.example.test.", "", false},
		{"static_A_signed", "www.example.test.", "", true},
		{"geo_ecs_unsigned", "app.example.test.", "198.51.100.0/24", false},
		{"geo_ecs_signed", "app.example.test.", "198.51.100.0/24", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pkt := signedQuery(b, bc.qname, dns.TypeA, bc.subnet, bc.do)
			s := new(scratch)
			var req dns.Msg
			h.answerPacket(s, &req, pkt, src, true) // signs once
			if h.fastAnswer(h.State(), s, pkt, src, true) == nil {
				b.Fatal("the fast path declined")
			}
			b.ReportAllocs()
			for b.Loop() {
				if h.answerPacket(s, &req, pkt, src, true) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
