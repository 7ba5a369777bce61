package xfr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// envelopeBytes bounds the records of one transfer message, uncompressed,
// well below the 64 KiB a TCP message may hold with its header and TSIG.
const envelopeBytes = 32 << 10

// IsTransfer reports whether pkt is a query (QR clear, opcode QUERY) whose
// one question asks for AXFR or IXFR: what a listener hands to a Table.
func IsTransfer(pkt []byte) bool {
	if len(pkt) < 12 || pkt[2]&0x80 != 0 || (pkt[2]>>3)&0xF != dns.OpcodeQuery || binary.BigEndian.Uint16(pkt[4:]) != 1 {
		return false
	}
	off := 12
	for off < len(pkt) {
		l := int(pkt[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			return false // no compression in a question that opens the message
		}
		off += 1 + l
	}
	if off+2 > len(pkt) {
		return false
	}
	t := binary.BigEndian.Uint16(pkt[off:])
	return t == dns.TypeAXFR || t == dns.TypeIXFR
}

// request is a transfer request that passed the checks.
type request struct {
	msg    *dns.Msg
	zone   *zoneXfr
	origin string
	kind   string // "axfr" or "ixfr"
	key    string // the TSIG key it was signed with; "" unsigned
}

// refusal is why a request is not served: the rcode, the TSIG error, and
// the metric's result.
type refusal struct {
	rcode    int
	tsigErr  uint16
	result   string
	why      string
	unsigned bool // the reply must not be signed (BADKEY, BADSIG)
}

// check parses and vets pkt from client: the request to serve, or the
// reply refusing it (nil when nothing should be sent).
func (t *Table) check(pkt []byte, client netip.Addr, transport string) (*request, []byte) {
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil || len(m.Question) != 1 {
		t.metrics.request("", "unknown"+transport, "formerr")
		t.log.Warn("transfer request malformed", "client", client.String(), "err", err)
		return nil, formErr(pkt)
	}
	q := m.Question[0]
	origin := zones.Lower(q.Name)
	req := &request{msg: m, origin: origin, kind: strings.ToLower(dns.TypeToString[q.Qtype])}
	zone := origin
	if !t.ours(origin) {
		zone = "" // not a zone of ours: no label per name a client makes up
	}
	if r := t.vet(req, pkt, client, transport); r != nil {
		t.metrics.request(zone, req.kind+transport, r.result)
		t.log.Warn("transfer refused", "zone", origin, "type", req.kind+transport, "client", client.String(),
			"key", keyOf(m), "rcode", dns.RcodeToString[r.rcode], "tsig_error", tsigErrName(r.tsigErr), "why", r.why)
		return nil, t.refuse(m, pkt, r)
	}
	return req, nil
}

// vet checks class, zone, TSIG and the zone's rules, in that order.
func (t *Table) vet(req *request, pkt []byte, client netip.Addr, transport string) *refusal {
	m, q := req.msg, req.msg.Question[0]
	if q.Qclass != dns.ClassINET {
		return &refusal{rcode: dns.RcodeRefused, result: "refused", why: "class is not IN"}
	}
	if transport == "_udp" && q.Qtype == dns.TypeAXFR {
		return &refusal{rcode: dns.RcodeRefused, result: "refused", why: "AXFR over UDP is not defined (RFC 5936 4.2)"}
	}
	if q.Qtype == dns.TypeIXFR {
		if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
			return &refusal{rcode: dns.RcodeFormatError, result: "formerr", why: "IXFR without the client's SOA in authority (RFC 1995 3)"}
		}
	}
	if ts := m.IsTsig(); ts != nil {
		if r := t.verify(pkt, ts); r != nil {
			return r
		}
		req.key = dns.CanonicalName(ts.Hdr.Name)
	} else if len(m.Extra) > 0 && m.Extra[len(m.Extra)-1].Header().Rrtype == dns.TypeTSIG {
		return &refusal{rcode: dns.RcodeFormatError, result: "formerr", why: "TSIG not last"}
	}
	z := t.zones[req.origin]
	switch {
	case z == nil && !t.ours(req.origin):
		return &refusal{rcode: dns.RcodeNotAuth, result: "notauth", why: "not a zone served here (RFC 5936 2.2.1)"}
	case z == nil:
		return &refusal{rcode: dns.RcodeRefused, result: "refused", why: "transfers of this zone are not allowed"}
	case !z.allows(client, req.key):
		why := "no rule allows this client"
		if req.key == "" {
			why += " unsigned"
		} else {
			why += " with this key"
		}
		return &refusal{rcode: dns.RcodeRefused, result: "refused", why: why}
	}
	req.zone = z
	return nil
}

// ours reports whether origin is the apex of a zone served here.
func (t *Table) ours(origin string) bool {
	z := t.served.Find(origin)
	return z != nil && z.Origin() == origin
}

// verify checks pkt's TSIG: nil when good, else the refusal RFC 8945
// section 5.2 prescribes (NOTAUTH with BADKEY, BADSIG or BADTIME).
func (t *Table) verify(pkt []byte, ts *dns.TSIG) *refusal {
	// On a copy: miekg/dns rewrites the message it verifies (the ID to the
	// TSIG's original ID, ARCOUNT one less), and pkt is the caller's.
	err := dns.TsigVerifyWithProvider(bytes.Clone(pkt), provider(t.keys), "", false)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dns.ErrSecret):
		t.metrics.tsigError("badkey")
		return &refusal{rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey, result: "notauth", why: "unknown TSIG key or algorithm", unsigned: true}
	case errors.Is(err, dns.ErrTime):
		t.metrics.tsigError("badtime")
		return &refusal{rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadTime, result: "notauth",
			why: fmt.Sprintf("TSIG time %s is more than %ds from ours", time.Unix(int64(ts.TimeSigned), 0).UTC().Format(time.RFC3339), ts.Fudge)}
	default:
		t.metrics.tsigError("badsig")
		return &refusal{rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadSig, result: "notauth", why: "TSIG MAC does not verify: " + err.Error(), unsigned: true}
	}
}

// refuse packs the reply refusing m: the rcode and, when m was signed,
// a TSIG carrying the error, signed but for BADKEY and BADSIG.
func (t *Table) refuse(m *dns.Msg, pkt []byte, r *refusal) []byte {
	reply := new(dns.Msg)
	reply.SetRcode(m, r.rcode)
	ts := m.IsTsig()
	if ts == nil {
		out, err := reply.Pack()
		if err != nil {
			return formErr(pkt)
		}
		return out
	}
	now := time.Now().Unix()
	reply.SetTsig(ts.Hdr.Name, ts.Algorithm, ts.Fudge, now)
	rt := reply.Extra[len(reply.Extra)-1].(*dns.TSIG)
	rt.Error = r.tsigErr
	if r.tsigErr == dns.RcodeBadTime {
		// RFC 8945 5.2.3: our time in Other Data, the request's Time Signed.
		rt.TimeSigned = ts.TimeSigned
		rt.OtherLen = 6
		rt.OtherData = fmt.Sprintf("%012x", now)
	}
	mac := ts.MAC
	if r.unsigned {
		mac = ""
	}
	out, _, err := dns.TsigGenerateWithProvider(reply, provider(t.keys), mac, false)
	if err != nil {
		reply.Extra = nil
		if out, err = reply.Pack(); err != nil {
			return formErr(pkt)
		}
	}
	return out
}

// formErr is the header of pkt answered FORMERR, nothing else.
func formErr(pkt []byte) []byte {
	if len(pkt) < 12 {
		return nil
	}
	out := make([]byte, 12)
	copy(out, pkt[:4])
	out[2] = 0x80 | pkt[2]&0x78 // QR, the opcode
	out[3] = dns.RcodeFormatError
	return out
}

func keyOf(m *dns.Msg) string {
	if ts := m.IsTsig(); ts != nil {
		return ts.Hdr.Name
	}
	return ""
}

func tsigErrName(e uint16) string {
	if e == 0 {
		return ""
	}
	return dns.RcodeToString[int(e)]
}

// AnswerUDP answers a transfer request over UDP: IXFR gets the zone's SOA
// alone (RFC 1995 section 2: a client behind asks again over TCP), AXFR is
// refused. The reply is signed when the request was.
func (t *Table) AnswerUDP(pkt []byte, client netip.Addr) []byte {
	req, refusal := t.check(pkt, client, "_udp")
	if req == nil {
		return refusal
	}
	reply := new(dns.Msg)
	reply.SetReply(req.msg)
	reply.Authoritative = true
	reply.Answer = []dns.RR{req.zone.zone.SOA()}
	t.metrics.request(req.origin, "ixfr_udp", "soa")
	out, err := t.sign(reply, req.msg)
	if err != nil {
		t.log.Error("transfer reply not packed", "zone", req.origin, "err", err)
		return nil
	}
	return out
}

// sign packs reply to q, signed when q was.
func (t *Table) sign(reply, q *dns.Msg) ([]byte, error) {
	ts := q.IsTsig()
	if ts == nil {
		return reply.Pack()
	}
	reply.SetTsig(ts.Hdr.Name, ts.Algorithm, ts.Fudge, time.Now().Unix())
	out, _, err := dns.TsigGenerateWithProvider(reply, provider(t.keys), ts.MAC, false)
	return out, err
}

// ServeTCP answers the transfer request pkt from client on conn, each
// message length-prefixed (RFC 7766), each write within timeout. It
// returns when the transfer is written, refused, or the connection failed.
func (t *Table) ServeTCP(conn net.Conn, pkt []byte, client netip.Addr, timeout time.Duration) error {
	req, refusal := t.check(pkt, client, "")
	w := &tcpWriter{conn: conn, timeout: timeout, keys: t.keys}
	if req == nil {
		if refusal == nil {
			return nil
		}
		_, err := w.Write(refusal)
		return err
	}
	if ts := req.msg.IsTsig(); ts != nil {
		w.requestMAC = ts.MAC
	}
	start := time.Now()
	rrs, result := t.plan(req)
	if err := stream(w, req.msg, rrs); err != nil {
		t.metrics.request(req.origin, req.kind, "error")
		t.log.Warn("transfer failed", "zone", req.origin, "type", req.kind, "client", client.String(), "err", err)
		return err
	}
	t.metrics.request(req.origin, req.kind, result)
	t.metrics.sent(req.origin, len(rrs))
	t.log.Info("transfer served", "zone", req.origin, "type", req.kind, "served", result, "client", client.String(),
		"key", req.key, "serial", req.zone.zone.Serial(), "records", len(rrs), "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// plan returns the records to send for req and what they are: a whole
// zone (axfr), its changes (ixfr), or the SOA alone (uptodate).
func (t *Table) plan(req *request) ([]dns.RR, string) {
	z := req.zone
	soa := z.zone.SOA()
	if req.kind == "ixfr" {
		have := req.msg.Ns[0].(*dns.SOA).Serial
		if !serialLess(have, soa.Serial) {
			return []dns.RR{soa}, "uptodate"
		}
		if chain := z.chain(have); chain != nil {
			out := []dns.RR{soa}
			for _, d := range chain {
				out = append(out, d.From)
				out = append(out, d.Deleted...)
				out = append(out, d.To)
				out = append(out, d.Added...)
			}
			return append(out, soa), "ixfr"
		}
	}
	return append(z.records(), soa), "axfr"
}

// records returns the zone's records, SOA first, computed once per load.
func (z *zoneXfr) records() []dns.RR {
	z.once.Do(func() { z.rrs = z.zone.RRs() })
	return z.rrs
}

// chain returns the changes from serial have to the zone's, or nil when
// the history does not reach back that far (the client gets AXFR).
func (z *zoneXfr) chain(have uint32) []Delta {
	for i, d := range z.deltas {
		if d.From.Serial != have {
			continue
		}
		chain := z.deltas[i:]
		for j := 1; j < len(chain); j++ {
			if chain[j].From.Serial != chain[j-1].To.Serial {
				return nil
			}
		}
		if chain[len(chain)-1].To.Serial != z.zone.Serial() {
			return nil
		}
		return chain
	}
	return nil
}

// serialLess is a < b in serial number arithmetic (RFC 1982).
func serialLess(a, b uint32) bool { return a != b && b-a < 1<<31 }

// stream sends rrs as the answer to q through dns.Transfer.Out, in
// messages of at most envelopeBytes of records each.
func stream(w *tcpWriter, q *dns.Msg, rrs []dns.RR) error {
	ch := make(chan *dns.Envelope)
	done := make(chan error, 1)
	go func() { done <- new(dns.Transfer).Out(w, q, ch) }()
	send := func(env *dns.Envelope) bool {
		select {
		case ch <- env:
			return true
		case err := <-done: // Out gave up: a write failed
			done <- err
			return false
		}
	}
	start, size := 0, 0
	ok := true
	for i := 0; i < len(rrs) && ok; i++ {
		l := dns.Len(rrs[i])
		if size+l > envelopeBytes && i > start {
			ok = send(&dns.Envelope{RR: rrs[start:i]})
			start, size = i, 0
		}
		size += l
	}
	if ok {
		send(&dns.Envelope{RR: rrs[start:]})
	}
	close(ch)
	return <-done
}
