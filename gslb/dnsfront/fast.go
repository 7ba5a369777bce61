package dnsfront

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/meridian-gslb/meridian/zones"
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
// section counts it sets, and every record after the question. Answer
// owners are compression pointers to the question (offset 12), so they
// take the query's own spelling; other names are written in full, so the
// bytes do not depend on the question's length.
type wireAnswer struct {
	bits       uint16 // AA and RCODE
	an, ns, ar uint16
	body       []byte
}

// wireTable holds the prepared answers of each zone, by Result.Static.
type wireTable map[*zones.Zone][]wireAnswer

func buildWire(set *zones.Set) (wireTable, error) {
	t := make(wireTable)
	var buf [dns.MaxMsgSize]byte
	for _, z := range set.Zones() {
		answers := make([]wireAnswer, z.StaticCount())
		var err error
		z.Statics(func(r zones.Result) {
			if err != nil {
				return
			}
			answers[r.Static], err = packStatic(r, buf[:])
		})
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.Origin(), err)
		}
		t[z] = answers
	}
	return t, nil
}

func packStatic(r zones.Result, buf []byte) (wireAnswer, error) {
	w := wireAnswer{
		bits: uint16(r.Rcode & 0xF),
		an:   uint16(len(r.Answer)),
		ns:   uint16(len(r.Ns)),
		ar:   uint16(len(r.Extra)),
	}
	if r.Authoritative {
		w.bits |= flagAA
	}
	for si, rrs := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		for _, rr := range rrs {
			end, err := dns.PackRR(rr, buf, 0, nil, false)
			if err != nil {
				return w, fmt.Errorf("pack %s: %w", rr, err)
			}
			if si > 0 {
				w.body = append(w.body, buf[:end]...)
				continue
			}
			owner, err := dns.PackDomainName(rr.Header().Name, buf[end:], 0, nil, false)
			if err != nil {
				return w, err
			}
			w.body = append(w.body, 0xC0, headerLen)
			w.body = append(w.body, buf[owner:end]...)
		}
	}
	return w, nil
}

// Header bits, RFC 1035 section 4.1.1.
const (
	flagQR     = 1 << 15
	flagAA     = 1 << 10
	flagRD     = 1 << 8
	flagCD     = 1 << 4
	maskOpcode = 0xF << 11
	optDO      = 1 << 15
	optFixed   = 11 // an OPT record without options
)

// fastAnswer answers pkt from prepared wire data, or returns nil when the
// full path must take it.
func (h *Handler) fastAnswer(st *State, s *scratch, pkt []byte) []byte {
	if len(pkt) < headerLen+5 {
		return nil
	}
	be := binary.BigEndian
	bits := be.Uint16(pkt[2:])
	ar := be.Uint16(pkt[10:])
	if bits&(flagQR|maskOpcode) != 0 || be.Uint16(pkt[4:]) != 1 || be.Uint16(pkt[6:]) != 0 || be.Uint16(pkt[8:]) != 0 || ar > 1 {
		return nil
	}

	// The question name, lower-cased into presentation form. Labels with
	// anything but letters, digits, '-', '_' and '*' would need escaping:
	// the full path handles those.
	name := s.name[:0]
	off := headerLen
	for {
		if off >= len(pkt) {
			return nil
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) {
			return nil // compression pointer, or a label past the end
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return nil
			}
			name = append(name, c)
		}
		name = append(name, '.')
		off += l
	}
	if len(name) == 0 || off-headerLen > 255 {
		return nil
	}
	s.name = name
	qend := off + 4
	if qend > len(pkt) {
		return nil
	}
	qtype := be.Uint16(pkt[off:])
	if be.Uint16(pkt[off+2:]) != dns.ClassINET || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR || qtype == dns.TypeOPT {
		return nil
	}

	limit, edns, do := minUDPSize, false, false
	if ar == 1 {
		o := qend
		if len(pkt) < o+optFixed || pkt[o] != 0 || be.Uint16(pkt[o+1:]) != dns.TypeOPT {
			return nil
		}
		if pkt[o+6] != 0 { // EDNS version: BADVERS is the full path's
			return nil
		}
		if o+optFixed+int(be.Uint16(pkt[o+9:])) != len(pkt) || !plainOptions(pkt[o+optFixed:]) {
			return nil
		}
		edns, do = true, be.Uint16(pkt[o+7:])&optDO != 0
		limit = min(max(int(be.Uint16(pkt[o+3:])), minUDPSize), st.UDPSize)
	} else if qend != len(pkt) {
		return nil
	}

	// The same name is asked again and again; keep its string.
	if !bytes.Equal(name, s.lastName) {
		s.lastName = append(s.lastName[:0], name...)
		s.lastStr = string(name)
	}
	if st.dynamic(s.lastStr) != nil {
		return nil // decided per query, by the full path
	}
	// Names in no served zone are REFUSED: no AA, nothing but the OPT.
	refused := wireAnswer{bits: dns.RcodeRefused}
	w := &refused
	if z := st.Zones.Find(s.lastStr); z != nil {
		res := z.Lookup(s.lastStr, qtype)
		if res.Static == 0 {
			return nil
		}
		w = &st.wire[z][res.Static]
	}
	size := qend + len(w.body)
	if edns {
		size += optFixed
	}
	if size > limit {
		return nil // truncation is the full path's
	}

	if cap(s.buf) < dns.MaxMsgSize {
		s.buf = make([]byte, dns.MaxMsgSize)
	}
	out := s.buf[:qend]
	copy(out, pkt[:qend])
	be.PutUint16(out[2:], flagQR|bits&(flagRD|flagCD)|w.bits)
	be.PutUint16(out[6:], w.an)
	be.PutUint16(out[8:], w.ns)
	arOut := w.ar
	if edns {
		arOut++
	}
	be.PutUint16(out[10:], arOut)
	out = append(out, w.body...)
	if edns {
		var flags byte
		if do {
			flags = optDO >> 8
		}
		out = append(out, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT), byte(limit>>8), byte(limit), 0, 0, flags, 0, 0, 0)
	}
	return out
}

// plainOptions reports whether the EDNS options are well framed and all of
// kinds that need no answer: COOKIE, which Meridian does not implement and
// so ignores (RFC 7873 section 5.2), and PADDING. Anything else (Client
// Subnet above all) goes to the full path, which validates it.
func plainOptions(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n || (code != dns.EDNS0COOKIE && code != dns.EDNS0PADDING) {
			return false
		}
		b = b[4+n:]
	}
	return true
}
