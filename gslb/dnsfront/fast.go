package dnsfront

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/miekg/dns"
)

// The fast path answers the queries that make up nearly all of an
// authoritative server's traffic (one question, class IN, at most one OPT,
// static data that fits) straight from the packet into a reply assembled
// from wire data prepared when the zones were loaded, as NSD and gdnsd do.
// Everything else, errors included, returns nil and takes the full path
// (unpack, answer, pack), which is the reference: TestFastPathMatchesFull
// holds the two to the same replies.

// wireAnswer is a static zones.Result in wire form: the header bits and
// section counts it sets, and every record after the question, with names
// compressed as the full path compresses them.
//
// A result with answers is the answer of one name, so the body is packed
// after that name as the question and copied as is: pointers into the
// question stay right whatever case the query spells it in. A result
// without answers (NXDOMAIN, NODATA, a referral) serves many names of the
// zone, whose questions differ in length; its pointers are relocated per
// reply (relocs): those into the question point into the zone's origin
// (or a referral's delegation), which ends every name the result serves,
// and the others into the body.
type wireAnswer struct {
	bits       uint16 // AA and RCODE
	an, ns, ar uint16
	body       []byte
	relocs     []reloc
	originLen  int // the origin's wire length, for pointers into the question
}

// reloc is a compression pointer of a shared body: at pos in the body, it
// points rel bytes past the origin's start in the question (question) or
// past the body's start.
type reloc struct {
	pos      uint16
	rel      uint16
	question bool
}

// appendBody appends w's body to out, which ends with the question, and
// points its relocated pointers for this question.
func (w *wireAnswer) appendBody(out []byte) []byte {
	start := len(out)
	out = append(out, w.body...)
	for _, r := range w.relocs {
		target := start + int(r.rel)
		if r.question {
			target = start - 4 - w.originLen + int(r.rel)
		}
		binary.BigEndian.PutUint16(out[start+int(r.pos):], 0xC000|uint16(target))
	}
	return out
}

// wireTable holds, for each zone, its prepared answers by Result.Static and
// its counters, so the fast path finds both with one lookup.
type wireTable map[*zones.Zone]*zoneWire

type zoneWire struct {
	answers  []wireAnswer
	counters *zoneCounters  // set by Store
	signer   *dnssec.Signer // set by Store: the zone's, or nil
	sigKeys  [][]byte       // by Result.Static: the signature cache keys of a signed zone's answers
}

func buildWire(set *zones.Set) (wireTable, error) {
	t := make(wireTable)
	for _, z := range set.Zones() {
		answers := make([]wireAnswer, z.StaticCount())
		var err error
		z.Statics(func(r zones.Result) {
			if err != nil {
				return
			}
			answers[r.Static], err = packStatic(r, z.Origin())
		})
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.Origin(), err)
		}
		t[z] = &zoneWire{answers: answers}
	}
	return t, nil
}

func packStatic(r zones.Result, origin string) (wireAnswer, error) {
	w := wireAnswer{
		bits: uint16(r.Rcode & 0xF),
		an:   uint16(len(r.Answer)),
		ns:   uint16(len(r.Ns)),
		ar:   uint16(len(r.Extra)),
	}
	if r.Authoritative {
		w.bits |= flagAA
	}
	if len(r.Answer) > 0 {
		body, err := packBody(r, r.Answer[0].Header().Name)
		w.body = body
		return w, err
	}
	// Every name a shared result answers ends with the zone's origin, or
	// for a referral with the delegation: names in the body may point
	// into that part of the question, as the full path's do.
	if r.Kind == zones.KindReferral && len(r.Ns) > 0 {
		origin = zones.Lower(r.Ns[0].Header().Name)
	}
	// Packed twice, after questions two bytes apart, the body differs
	// exactly in its pointers: that is how they are found.
	probe := "z." + origin // two bytes longer
	w.originLen = len(origin) + 1
	if origin == "." {
		probe, w.originLen = "z.", 1
	}
	one, err := packBody(r, origin)
	if err != nil {
		return w, err
	}
	two, err := packBody(r, probe)
	if err != nil {
		return w, err
	}
	w.body = one
	w.relocs, err = relocations(one, two, headerLen+w.originLen+4, w.originLen)
	return w, err
}

// packBody packs r's records after the question qname, compressed, and
// returns the bytes after the question.
func packBody(r zones.Result, qname string) ([]byte, error) {
	m := new(dns.Msg)
	m.SetQuestion(qname, dns.TypeA)
	m.Compress = true
	m.Answer, m.Ns, m.Extra = r.Answer, r.Ns, r.Extra
	out, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", qname, err)
	}
	qend := headerLen
	for out[qend] != 0 {
		qend += 1 + int(out[qend])
	}
	return out[qend+1+4:], nil
}

// relocations compares a body packed after the origin as the question
// (one, starting at bodyStart) with the same body packed two bytes later
// (two): each pointer differs by two, and says where it points.
func relocations(one, two []byte, bodyStart, originLen int) ([]reloc, error) {
	if len(one) != len(two) {
		return nil, fmt.Errorf("bodies of %d and %d bytes: compression depends on the question", len(one), len(two))
	}
	var out []reloc
	for i := 0; i+1 < len(one); i++ {
		if one[i] == two[i] && one[i+1] == two[i+1] {
			continue
		}
		p1 := int(binary.BigEndian.Uint16(one[i:]))
		p2 := int(binary.BigEndian.Uint16(two[i:]))
		if p1&0xC000 != 0xC000 || p2-p1 != 2 {
			return nil, fmt.Errorf("bytes %d of the body differ but are no pointer", i)
		}
		t := p1 &^ 0xC000
		switch {
		case t >= bodyStart:
			out = append(out, reloc{pos: uint16(i), rel: uint16(t - bodyStart)})
		case t >= headerLen && t < headerLen+originLen:
			out = append(out, reloc{pos: uint16(i), rel: uint16(t - headerLen), question: true})
		default:
			return nil, fmt.Errorf("a pointer to %d, in neither the origin nor the body", t)
		}
		i++
	}
	return out, nil
}

// Header bits, RFC 1035 section 4.1.1.
const (
	flagQR     = 1 << 15
	flagAA     = 1 << 10
	flagTC     = 1 << 9
	flagRD     = 1 << 8
	flagCD     = 1 << 4
	maskOpcode = 0xF << 11
	optDO      = 1 << 15
	optFixed   = 11 // an OPT record without options
)

// fastQuery is what the fast path read of a query.
type fastQuery struct {
	bits  uint16 // the query's header flags
	qend  int    // the question's end
	qtype uint16
	// limit is the largest reply the transport takes; adv the payload
	// size our OPT advertises (the full path's min(limit, edns_udp_size)).
	limit, adv int
	edns, do   bool
}

// fastAnswer answers pkt from prepared wire data, or returns nil when the
// full path must take it.
func (h *Handler) fastAnswer(st *State, s *scratch, pkt []byte, src netip.Addr, udp bool) []byte {
	s.info = queryInfo{}
	if len(pkt) < headerLen+5 {
		return nil
	}
	be := binary.BigEndian
	fq := fastQuery{bits: be.Uint16(pkt[2:])}
	ar := be.Uint16(pkt[10:])
	if fq.bits&(flagQR|maskOpcode) != 0 || be.Uint16(pkt[4:]) != 1 || be.Uint16(pkt[6:]) != 0 || be.Uint16(pkt[8:]) != 0 || ar > 1 {
		return nil
	}
	if !fastQuestion(s, pkt, &fq) {
		return nil
	}
	if out, ok := h.fastEDNS(st, s, pkt, ar == 1, udp, &fq); !ok || out != nil {
		return out
	}
	// The same name is asked again and again; keep its string.
	if !bytes.Equal(s.name, s.lastName) {
		s.lastName = append(s.lastName[:0], s.name...)
		s.lastStr = string(s.name)
	}
	s.info = queryInfo{qtype: fq.qtype, ecs: s.fecs.present, edns: fq.edns}
	s.info.cookie = h.cookies(st, &s.fck, src, &s.fck2)
	if recs := st.dynamic(s.lastStr); recs != nil {
		s.info.counters = st.dynCounters[s.lastStr]
		return h.fastDynamic(st, s, pkt, &fq, recs, src)
	}
	return fastStatic(st, s, pkt, &fq)
}

// fastQuestion reads the question into fq and s.name, lower-cased into
// presentation form; false for what the full path must take. Labels with
// anything but letters, digits, '-', '_' and '*' would need escaping: the
// full path handles those.
func fastQuestion(s *scratch, pkt []byte, fq *fastQuery) bool {
	name := s.name[:0]
	off := headerLen
	for {
		if off >= len(pkt) {
			return false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) {
			return false // compression pointer, or a label past the end
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return false
			}
			name = append(name, c)
		}
		name = append(name, '.')
		off += l
	}
	s.name = name
	fq.qend = off + 4
	if len(name) == 0 || off-headerLen > 255 || fq.qend > len(pkt) {
		return false
	}
	fq.qtype = binary.BigEndian.Uint16(pkt[off:])
	class := binary.BigEndian.Uint16(pkt[off+2:])
	return class == dns.ClassINET && fq.qtype != dns.TypeAXFR && fq.qtype != dns.TypeIXFR && fq.qtype != dns.TypeOPT
}

// fastEDNS reads the OPT record after the question, when hasOPT, into fq
// and s (Client Subnet, cookie). It returns ok false for what the full
// path must take, and a reply of its own (FORMERR) for a malformed option.
func (h *Handler) fastEDNS(st *State, s *scratch, pkt []byte, hasOPT, udp bool, fq *fastQuery) (reply []byte, ok bool) {
	fq.limit, fq.adv = minUDPSize, st.UDPSize
	if !udp {
		fq.limit = dns.MaxMsgSize
	}
	s.fecs, s.fck = ecs{}, cookieQuery{} // the reply's cookie is h.cookies'; FORMERR carries none
	if !hasOPT {
		return nil, fq.qend == len(pkt)
	}
	be := binary.BigEndian
	o := fq.qend
	if len(pkt) < o+optFixed || pkt[o] != 0 || be.Uint16(pkt[o+1:]) != dns.TypeOPT ||
		pkt[o+6] != 0 || // EDNS version: BADVERS is the full path's
		o+optFixed+int(be.Uint16(pkt[o+9:])) != len(pkt) {
		return nil, false
	}
	size := min(max(int(be.Uint16(pkt[o+3:])), minUDPSize), st.UDPSize)
	do := be.Uint16(pkt[o+7:])&optDO != 0
	switch fastOptions(pkt[o+optFixed:], &s.fecs, &s.fck) {
	case optionsOther:
		return nil, false
	case optionsBadECS, optionsMalformed:
		// RFC 7871 7.1.2, RFC 6891 section 7. Only here are an ECS
		// address's octets still countable: miekg/dns pads them.
		if udp {
			fq.adv = size
		}
		out := startReply(s, pkt, fq.qend, fq.bits, dns.RcodeFormatError, 0, 0, 0, true)
		return appendOPT(out, fq.adv, do, &ecs{}, nil), true
	}
	if !st.ECS {
		s.fecs.present = false // not ours to use, nor to echo
	}
	fq.edns, fq.do = true, do
	if udp {
		fq.limit, fq.adv = size, size
	}
	return nil, true
}

// fastStatic answers a static name from its zone's prepared answers, or
// REFUSED for a name in no served zone (no AA, nothing but the OPT).
func fastStatic(st *State, s *scratch, pkt []byte, fq *fastQuery) []byte {
	refused := wireAnswer{bits: dns.RcodeRefused}
	w := &refused
	if z := st.Zones.Find(s.lastStr); z != nil {
		zw := st.wire[z]
		s.info.counters = zw.counters
		res := z.Lookup(s.lastStr, fq.qtype)
		if res.Static == 0 {
			return nil
		}
		w = &zw.answers[res.Static]
		s.info.rrl = classify(&res, s.lastStr, z)
		if fq.do && zw.signer != nil {
			return fastSigned(s, pkt, fq, w, zw, res.Static)
		}
	}
	size := fq.qend + len(w.body)
	if fq.edns {
		size += optLen(&s.fecs, &s.fck2)
	}
	if size > fq.limit {
		return nil // truncation is the full path's
	}
	out := startReply(s, pkt, fq.qend, fq.bits, w.bits, w.an, w.ns, w.ar, fq.edns)
	out = w.appendBody(out)
	if fq.edns {
		out = appendOPT(out, fq.adv, fq.do, &s.fecs, &s.fck2)
	}
	return out
}

// startReply copies the query's header and question into s.buf as the
// reply's, with the given flags and counts (one more additional record
// for the OPT when edns).
func startReply(s *scratch, pkt []byte, qend int, qbits, bits, an, ns, ar uint16, edns bool) []byte {
	if cap(s.buf) < dns.MaxMsgSize {
		s.buf = make([]byte, dns.MaxMsgSize)
	}
	be := binary.BigEndian
	out := s.buf[:qend]
	copy(out, pkt[:qend])
	be.PutUint16(out[2:], flagQR|qbits&(flagRD|flagCD)|bits)
	be.PutUint16(out[6:], an)
	be.PutUint16(out[8:], ns)
	if edns {
		ar++
	}
	be.PutUint16(out[10:], ar)
	return out
}

// optLen is the size of our OPT record, with the ECS echo when there is one.
func optLen(e *ecs, ck *cookieReply) int {
	n := optFixed
	if e.present {
		n += 8 + len(e.raw)
	}
	if ck.n > 0 {
		n += 4 + ck.n
	}
	return n
}

// appendOPT appends our OPT record: the payload size, DO copied, and the
// query's Client Subnet echoed with our scope (RFC 7871 7.2.1).
func appendOPT(out []byte, size int, do bool, e *ecs, ck *cookieReply) []byte {
	var flags byte
	if do {
		flags = optDO >> 8
	}
	rdlen := 0
	if e.present {
		rdlen = 8 + len(e.raw)
	}
	if ck != nil && ck.n > 0 {
		rdlen += 4 + ck.n
	}
	out = append(out, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT), byte(size>>8), byte(size), 0, 0, flags, 0, byte(rdlen>>8), byte(rdlen))
	if e.present {
		n := 4 + len(e.raw)
		out = append(out, 0, dns.EDNS0SUBNET, byte(n>>8), byte(n), byte(e.family>>8), byte(e.family), e.source, e.scope)
		out = append(out, e.raw...)
	}
	if ck != nil && ck.n > 0 {
		out = append(out, 0, dns.EDNS0COOKIE, 0, byte(ck.n))
		out = append(out, ck.b[:ck.n]...)
	}
	return out
}

// fastDynamic answers a dynamic record from the packet: locate, decide,
// and write the addresses straight into the reply. NODATA, fail-closed
// outcomes and ANY go to the full path.
func (h *Handler) fastDynamic(st *State, s *scratch, pkt []byte, fq *fastQuery, recs []*gslb.Record, src netip.Addr) []byte {
	if fq.qtype == dns.TypeHTTPS {
		return h.fastHTTPS(st, s, pkt, fq, recs, src)
	}
	var rec *gslb.Record
	for _, r := range recs {
		if r.Type == fq.qtype {
			rec = r
			break
		}
	}
	if rec == nil {
		return nil
	}
	s.info.rrl = rrlInfo{set: true, class: rrl.Dynamic, name: rec.Name}
	q := query{ecs: s.fecs}
	c := &s.client
	st.locate(c, &q, src)
	d := st.GSLB.Decide(rec, c, &s.gslb)
	s.info.dec = decision{rec: rec, rtype: rec.Type, outcome: d.Outcome, scope: d.Scope}
	if d.Pool != nil {
		s.info.region = d.Pool.Region.Name
	}
	s.info.unlocated = d.Unlocated
	if d.Outcome == gslb.Servfail || d.Outcome == gslb.NoData || len(d.Addrs) == 0 {
		return nil
	}
	var sigs []byte
	nsigs := 0
	if fq.do {
		if sg := st.dynSigned[rec.Name]; sg != nil {
			var ok bool
			if sigs, nsigs, ok = fastSigsOf(s, pkt, fq, sg, rec.Type, d); !ok {
				return nil // not signed yet: the full path signs it
			}
		}
	}
	if s.fecs.present {
		s.fecs.scope = uint8(d.Scope) // may pass the source prefix (RFC 7871 7.2.1)
	}
	rdlen := 4
	if rec.Type == dns.TypeAAAA {
		rdlen = 16
	}
	size := fq.qend + len(d.Addrs)*(12+rdlen) + len(sigs) + 2*nsigs
	if fq.edns {
		size += optLen(&s.fecs, &s.fck2)
	}
	if size > fq.limit {
		return nil
	}
	// Logged once answered here: a query handed to the full path is
	// logged there.
	h.logDecision(st, rec, c, &s.fecs, d)
	be := binary.BigEndian
	out := startReply(s, pkt, fq.qend, fq.bits, flagAA, uint16(len(d.Addrs)+nsigs), 0, 0, fq.edns)
	for _, a := range d.Addrs {
		out = append(out, 0xC0, headerLen, byte(rec.Type>>8), byte(rec.Type), 0, dns.ClassINET, 0, 0, 0, 0, 0, byte(rdlen))
		be.PutUint32(out[len(out)-6:], d.TTL)
		if rdlen == 4 {
			b := a.As4()
			out = append(out, b[:]...)
		} else {
			b := a.As16()
			out = append(out, b[:]...)
		}
	}
	out = appendSigs(out, sigs)
	if fq.edns {
		out = appendOPT(out, fq.adv, fq.do, &s.fecs, &s.fck2)
	}
	return out
}

// What fastOptions found.
const (
	optionsOK        = iota // nothing the fast path cannot answer
	optionsOther            // something for the full path
	optionsBadECS           // a Client Subnet whose address has the wrong number of octets
	optionsMalformed        // an option running past the OPT record: FORMERR, with our OPT (RFC 6891 section 7)
)

// fastOptions checks that the EDNS options are well framed and all of
// kinds the fast path handles: COOKIE, which Meridian does not implement
// and so ignores (RFC 7873 section 5.2), PADDING, and one valid Client
// Subnet, parsed into e. Anything else goes to the full path, which
// validates it.
func fastOptions(b []byte, e *ecs, ck *cookieQuery) int {
	result := optionsOK
	for len(b) > 0 {
		if len(b) < 4 {
			return optionsMalformed
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return optionsMalformed
		}
		switch code {
		case dns.EDNS0COOKIE:
			if ck.present || !ck.parse(b[4:4+n]) {
				return optionsMalformed // RFC 7873 5.2.2; two cookies are FORMERR too
			}
		case dns.EDNS0PADDING:
		case dns.EDNS0SUBNET:
			if e.present {
				result = optionsOther
				break
			}
			switch parseECS(b[4:4+n], e) {
			case optionsBadECS:
				return optionsBadECS // whatever else the query carries
			case optionsOther:
				result = optionsOther
			}
		default:
			// Keep reading: a Client Subnet of the wrong length later on
			// is still FORMERR.
			result = optionsOther
		}
		b = b[4+n:]
	}
	return result
}

// parseECS validates a Client Subnet option's data the way ecs.parse
// does for the full path, and keeps the address bytes as sent. An address
// of the wrong length is reported as optionsBadECS: the full path could
// not tell, since miekg/dns pads the address when it unpacks.
func parseECS(b []byte, e *ecs) int {
	if len(b) < 4 {
		return optionsOther
	}
	family, source, scope := binary.BigEndian.Uint16(b), b[2], b[3]
	addr := b[4:]
	var a netip.Addr
	switch family {
	case 1:
		if source > 32 || scope > 32 {
			return optionsOther
		}
		var v [4]byte
		copy(v[:], addr)
		a = netip.AddrFrom4(v)
	case 2:
		if source > 128 || scope > 128 {
			return optionsOther
		}
		var v [16]byte
		copy(v[:], addr)
		a = netip.AddrFrom16(v)
	default:
		return optionsOther // family 0 (dig's "no tailoring") is the full path's
	}
	if len(addr) != (int(source)+7)/8 {
		return optionsBadECS
	}
	if p, err := a.Prefix(int(source)); err != nil || p.Addr() != a {
		return optionsOther
	}
	*e = ecs{present: true, family: family, source: source, addr: a, raw: addr}
	return optionsOK
}
