package sni

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Record and message constants from RFC 8446 (section 5.1 and 4) and the
// extension number from RFC 6066 section 3.
const (
	recordHeaderLen     = 5
	contentHandshake    = 22
	handshakeHeaderLen  = 4
	typeClientHello     = 1
	extServerName       = 0
	nameTypeHostName    = 0
	maxRecordLen        = 1<<14 + 2048 // TLSCiphertext's limit; a plaintext record is smaller
	randomLen           = 32
	maxSessionIDLen     = 32
	defaultMaxHelloSize = 64 << 10
)

// Errors, wrapped with what was wrong.
var (
	ErrNotTLS    = errors.New("not a TLS handshake")
	ErrMalformed = errors.New("malformed ClientHello")
	ErrTooLarge  = errors.New("ClientHello too large")
)

// Read reads one ClientHello from r and returns the host name of its
// server_name extension, lower-cased and without a final dot ("" when it
// has none), and every byte it read, to be sent on. It stops at the last
// record of the ClientHello; maxSize bounds the handshake message (0 means
// 64 KiB, far above any real ClientHello, post-quantum key shares
// included).
func Read(r io.Reader, maxSize int) (name string, raw []byte, err error) {
	if maxSize <= 0 {
		maxSize = defaultMaxHelloSize
	}
	var msg []byte // the handshake message, put together from its records
	need := handshakeHeaderLen
	for len(msg) < need {
		start := len(raw)
		raw = grow(raw, recordHeaderLen)
		if k, err := io.ReadFull(r, raw[start:]); err != nil {
			return "", raw[:start+k], fmt.Errorf("record header: %w", err)
		}
		hdr := raw[start:]
		if hdr[0] != contentHandshake || hdr[1] != 3 {
			return "", raw, fmt.Errorf("%w: record type %d, version %d.%d", ErrNotTLS, hdr[0], hdr[1], hdr[2])
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		if n == 0 || n > maxRecordLen {
			return "", raw, fmt.Errorf("%w: record length %d", ErrMalformed, n)
		}
		if len(msg)+n > maxSize+handshakeHeaderLen {
			return "", raw, fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxSize)
		}
		start = len(raw)
		raw = grow(raw, n)
		if k, err := io.ReadFull(r, raw[start:]); err != nil {
			return "", raw[:start+k], fmt.Errorf("record: %w", err)
		}
		msg = append(msg, raw[start:]...)
		if need == handshakeHeaderLen && len(msg) >= handshakeHeaderLen {
			if msg[0] != typeClientHello {
				return "", raw, fmt.Errorf("%w: handshake type %d, not ClientHello", ErrNotTLS, msg[0])
			}
			size := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
			if size > maxSize {
				return "", raw, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
			}
			need = handshakeHeaderLen + size
		}
	}
	name, err = ServerName(msg[handshakeHeaderLen:need])
	return name, raw, err
}

// grow extends b by n bytes to be read into.
func grow(b []byte, n int) []byte { return slices.Grow(b, n)[:len(b)+n] }

// ServerName returns the host name in the server_name extension of a
// ClientHello's body (the handshake message without its 4-byte header).
func ServerName(body []byte) (string, error) {
	p := parser{b: body}
	p.skip(2 + randomLen) // legacy_version, random
	if sid := p.vector(1); len(sid) > maxSessionIDLen {
		return "", fmt.Errorf("%w: session id of %d bytes", ErrMalformed, len(sid))
	}
	if suites := p.vector(2); len(suites)%2 != 0 || len(suites) == 0 {
		p.fail()
	}
	p.vector(1) // compression methods
	if p.bad {
		return "", fmt.Errorf("%w: truncated before its extensions", ErrMalformed)
	}
	if len(p.b) == 0 {
		return "", nil // no extensions at all (SSL 3.0 style)
	}
	exts := parser{b: p.vector(2)}
	for len(exts.b) > 0 && !exts.bad {
		typ := exts.uint16()
		data := exts.vector(2)
		if exts.bad || typ != extServerName {
			continue
		}
		names := parser{b: data}
		list := parser{b: names.vector(2)}
		for len(list.b) > 0 && !list.bad {
			kind := list.uint8()
			host := list.vector(2)
			if !list.bad && kind == nameTypeHostName {
				return cleanName(host)
			}
		}
		if names.bad || list.bad {
			return "", fmt.Errorf("%w: server_name extension", ErrMalformed)
		}
		return "", nil
	}
	if exts.bad || p.bad {
		return "", fmt.Errorf("%w: extensions", ErrMalformed)
	}
	return "", nil
}

// cleanName checks a host name as RFC 6066 allows it (ASCII, no trailing
// dot, though some clients send one) and lower-cases it.
func cleanName(b []byte) (string, error) {
	if len(b) == 0 || len(b) > 255 {
		return "", fmt.Errorf("%w: host name of %d bytes", ErrMalformed, len(b))
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '/' {
			return "", fmt.Errorf("%w: host name with byte %#x", ErrMalformed, c)
		}
	}
	return strings.TrimSuffix(strings.ToLower(string(b)), "."), nil
}

// parser reads TLS's length-prefixed vectors; once a read runs past the
// end, bad is set and every later read returns zero values.
type parser struct {
	b   []byte
	bad bool
}

func (p *parser) fail() { p.bad, p.b = true, nil }

func (p *parser) skip(n int) {
	if p.bad || len(p.b) < n {
		p.fail()
		return
	}
	p.b = p.b[n:]
}

func (p *parser) uint8() int {
	if p.bad || len(p.b) < 1 {
		p.fail()
		return 0
	}
	v := int(p.b[0])
	p.b = p.b[1:]
	return v
}

func (p *parser) uint16() int {
	if p.bad || len(p.b) < 2 {
		p.fail()
		return 0
	}
	v := int(binary.BigEndian.Uint16(p.b))
	p.b = p.b[2:]
	return v
}

// vector reads a vector whose length takes lenBytes (1 or 2) bytes.
func (p *parser) vector(lenBytes int) []byte {
	n := p.uint8()
	if lenBytes == 2 {
		n = n<<8 | p.uint8()
	}
	if p.bad || len(p.b) < n {
		p.fail()
		return nil
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v
}
