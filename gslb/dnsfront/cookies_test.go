package dnsfront

import (
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/cookie"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/miekg/dns"
)

// cookieHandler serves the quickstart's zone with cookies from jar, and
// rate limiting at rate when rate > 0.
func cookieHandler(t *testing.T, jar *cookie.Jar, rate int) *Handler {
	t.Helper()
	h := quickstartHandler(t)
	st := *h.State()
	st.Cookies = jar
	if rate > 0 {
		c := rrl.Config{Enabled: true, Rate: rate}
		c.SetDefaults()
		st.RRL = rrl.New(c)
	}
	if err := h.Store(&st); err != nil {
		t.Fatal(err)
	}
	return h
}

// withCookie is a query for www.example.test A carrying cookie (hex), and
// NSID when full, which sends it down the full path.
func withCookie(t *testing.T, hexCookie string, full bool) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	q.SetEdns0(1232, false)
	opt := q.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hexCookie})
	if full {
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	}
	p, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func replyCookie(t *testing.T, out []byte) (rcode int, ck string) {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				ck = c.Cookie
			}
		}
	}
	return m.Rcode, ck
}

func TestCookies(t *testing.T) {
	secret, _ := hex.DecodeString("e5e973e5a6b2a43f48e7dc849e37bfcf")
	jar, _ := cookie.New([][]byte{secret})
	h := cookieHandler(t, jar, 0)
	from := netip.MustParseAddr("198.51.100.100")
	const client = "2464c4abcf10c957"
	for _, full := range []bool{false, true} {
		path := map[bool]string{false: "fast path", true: "full path"}[full]
		// A first query: the client's cookie alone gets a server cookie.
		rcode, got := replyCookie(t, h.answerPacket(new(scratch), new(dns.Msg), withCookie(t, client, full), from, true))
		if rcode != dns.RcodeSuccess || len(got) != 48 || got[:16] != client {
			t.Fatalf("%s: rcode %d cookie %q, want the client's followed by 16 bytes", path, rcode, got)
		}
		server, _ := hex.DecodeString(got[16:])
		cc, _ := hex.DecodeString(client)
		if !jar.Check(cc, server, from, uint32(h.born.Unix())) {
			t.Errorf("%s: the server cookie handed out does not check", path)
		}
		// Brought back: valid, and a fresh one in the reply.
		s := new(scratch)
		_, again := replyCookie(t, h.answerPacket(s, new(dns.Msg), withCookie(t, got, full), from, true))
		if len(again) != 48 || !s.info.cookie {
			t.Errorf("%s: a valid cookie brought back: reply %q, valid %v", path, again, s.info.cookie)
		}
		// From another address the same cookie is not valid.
		s = new(scratch)
		h.answerPacket(s, new(dns.Msg), withCookie(t, got, full), netip.MustParseAddr("198.51.100.101"), true)
		if s.info.cookie {
			t.Errorf("%s: a cookie made for another address was taken as valid", path)
		}
		// Malformed lengths are FORMERR (RFC 7873 5.2.2).
		for _, bad := range []string{"2464c4abcf", client + "0102030405"} {
			if rcode, _ := replyCookie(t, h.answerPacket(new(scratch), new(dns.Msg), withCookie(t, bad, full), from, true)); rcode != dns.RcodeFormatError {
				t.Errorf("%s: cookie of %d bytes: %s, want FORMERR", path, len(bad)/2, dns.RcodeToString[rcode])
			}
		}
	}
}

// TestCookieExemptsFromRateLimit: a client that brings back a valid server
// cookie has proven its address, and is not limited.
func TestCookieExemptsFromRateLimit(t *testing.T) {
	h := cookieHandler(t, cookie.Random(), 5)
	from := netip.MustParseAddr("192.0.2.7")
	_, first := replyCookie(t, h.answerPacket(new(scratch), new(dns.Msg), withCookie(t, "0102030405060708", false), from, true))
	limited := 0
	for range 50 {
		out := h.answerPacket(new(scratch), new(dns.Msg), withCookie(t, first, false), from, true)
		if out == nil {
			limited++
			continue
		}
		var m dns.Msg
		if m.Unpack(out) != nil || m.Truncated {
			limited++
		}
	}
	if limited != 0 {
		t.Errorf("%d of 50 answers to a client with a valid cookie were limited", limited)
	}
	// Without the server cookie the same client is limited.
	a, _, _ := burst(t, h, 50, "192.0.2.7", true, func(int) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		return m
	})
	if a >= 50 {
		t.Error("a client without a cookie was not limited either")
	}
}

// TestCookiesAcrossNodes: nodes whose secrets come from the same cluster
// key accept each other's cookies.
func TestCookiesAcrossNodes(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a, _ := cookie.New([][]byte{cookie.Derive(key)})
	b, _ := cookie.New([][]byte{cookie.Derive(key)})
	ha, hb := cookieHandler(t, a, 0), cookieHandler(t, b, 0)
	from := netip.MustParseAddr("203.0.113.203")
	_, got := replyCookie(t, ha.answerPacket(new(scratch), new(dns.Msg), withCookie(t, "fc93fc62807ddb86", false), from, true))
	s := new(scratch)
	hb.answerPacket(s, new(dns.Msg), withCookie(t, got, false), from, true)
	if !s.info.cookie {
		t.Error("node b did not accept node a's cookie")
	}
}
