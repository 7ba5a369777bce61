package xfr

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzTransferRequest feeds any bytes to what a listener hands a
// transfer request to, over UDP and TCP: no panic, and every reply is a
// DNS message with the query's ID.
func FuzzTransferRequest(f *testing.F) {
	table, key := fuzzTable(f)
	seed := func(m *dns.Msg, signed bool) {
		if signed {
			m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
			b, _, err := dns.TsigGenerate(m, key.Secret, "", false)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			return
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	m := new(dns.Msg)
	seed(m.SetAxfr("example.test."), false)
	m = new(dns.Msg)
	seed(m.SetAxfr("example.test."), true)
	m = new(dns.Msg)
	seed(m.SetIxfr("example.test.", 1, "ns1.example.test.", "h.example.test."), true)
	m = new(dns.Msg)
	seed(m.SetIxfr("nowhere.test.", 1, "ns1.example.test.", "h.example.test."), false)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if !IsTransfer(pkt) {
			return
		}
		for _, client := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.1")} {
			if out := table.AnswerUDP(pkt, client); out != nil {
				checkReply(t, pkt, out)
			}
			a, b := net.Pipe()
			done := make(chan [][]byte)
			go func() { // the client's side: every message until the server is done
				var msgs [][]byte
				dc := &dns.Conn{Conn: b}
				for {
					m, err := dc.ReadMsgHeader(nil)
					if err != nil {
						done <- msgs
						return
					}
					msgs = append(msgs, m)
				}
			}()
			_ = table.ServeTCP(a, pkt, client, time.Second)
			a.Close()
			for _, out := range <-done {
				checkReply(t, pkt, out)
			}
		}
	})
}

func checkReply(t *testing.T, pkt, out []byte) {
	t.Helper()
	if len(out) < 12 || out[0] != pkt[0] || out[1] != pkt[1] || out[2]&0x80 == 0 {
		t.Fatalf("reply %x to %x: not a response with the query's ID", out, pkt)
	}
}

// fuzzTable is a table serving example.test at two serials, transfers
// allowed with key or from loopback.
func fuzzTable(tb testing.TB) (*Table, Key) {
	tb.Helper()
	key := Key{Name: "ns2-example.", Algorithm: dns.HmacSHA256, Secret: "0rTUrMjf1oODdN0OSuA5CzqTmoGMzF5XF/G3mCOfSZE="}
	plans := map[string]ZonePlan{"example.test.": {Transfer: true}}
	h, _, _, err := (*History)(nil).Next(setOf(tb, zoneOf(tb, 1, "www 300 IN A 192.0.2.10")), plans, 4, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	h, _, _, err = h.Next(setOf(tb, zoneOf(tb, 2, "www 300 IN A 192.0.2.11")), plans, 4, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	table := h.Table(map[string]Config{"example.test.": {Allow: []Rule{{Key: key.Name}, {Prefix: "127.0.0.0/8"}}}},
		map[string]Key{key.Name: key}, NewMetrics(), slog.New(slog.DiscardHandler))
	return table, key
}

// TestVerifyLeavesRequestAlone: miekg/dns's TSIG check rewrites the
// message it is given (the ID to the TSIG's original ID, one fewer
// additional record), so a caller reading the request again (a second
// answer, a log, dnstap) saw a different one; the fuzzer found it.
func TestVerifyLeavesRequestAlone(t *testing.T) {
	table, key := fuzzTable(t)
	m := new(dns.Msg).SetIxfr("example.test.", 1, "ns1.example.test.", "h.example.test.")
	m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	signed, _, err := dns.TsigGenerate(m, key.Secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	// A forwarder may change the ID: the MAC covers the TSIG's original
	// ID (RFC 8945 section 4.3.1), and the answer carries the new one.
	signed[0] ^= 0xff
	want := bytes.Clone(signed)
	for _, client := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.1")} {
		out := table.AnswerUDP(signed, client)
		if !bytes.Equal(signed, want) {
			t.Fatalf("the request changed while it was answered:\n%x\n%x", want, signed)
		}
		checkReply(t, signed, out)
		if rc := out[3] & 0x0f; rc != dns.RcodeSuccess {
			t.Errorf("rcode %s, want NOERROR: the MAC verifies with the original ID", dns.RcodeToString[int(rc)])
		}
	}
}
