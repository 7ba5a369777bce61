package cookie

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dchest/siphash"
)

// Lengths of RFC 7873: a client cookie, our server cookie, and the range a
// server cookie may have.
const (
	ClientLen    = 8
	ServerLen    = 16
	MinServerLen = 8
	MaxServerLen = 32
)

// RFC 9018 section 4.3: a cookie is valid for an hour from its timestamp,
// and up to five minutes ahead of our clock. Every reply carries a fresh
// one (making it costs less than deciding whether to).
const (
	lifetime = 3600
	skew     = 300
)

// Jar holds the secrets: the first makes cookies, all of them check them.
// It is immutable.
type Jar struct {
	keys [][2]uint64
}

// New returns a jar over secrets of 16 bytes each, the first current.
func New(secrets [][]byte) (*Jar, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("no cookie secret")
	}
	j := &Jar{}
	for i, s := range secrets {
		if len(s) != 16 {
			return nil, fmt.Errorf("cookie secret %d: %d bytes, want 16", i+1, len(s))
		}
		j.keys = append(j.keys, [2]uint64{binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:])})
	}
	return j, nil
}

// Random returns a jar with a secret of this process alone: cookies it
// makes are valid here only, until a restart.
func Random() *Jar {
	s := make([]byte, 16)
	_, _ = rand.Read(s) // never fails (crypto/rand)
	j, _ := New([][]byte{s})
	return j
}

// Derive returns the secret of a cookie jar shared through other key
// material (a cluster's gossip keys), so that every node holding the same
// keys makes and accepts the same cookies.
func Derive(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("meridian dns server cookie (RFC 9018)"))
	return m.Sum(nil)[:16]
}

// ParseSecrets reads a secret file: one 16-byte secret per line in hex
// (32 digits), the first current, the others still accepted; blank lines
// and lines starting with # are skipped.
func ParseSecrets(text string) ([][]byte, error) {
	var out [][]byte
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != 16 {
			return nil, fmt.Errorf("line %d: want 32 hex digits (16 bytes), as `openssl rand -hex 16` prints", n+1)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no secret in the file")
	}
	return out, nil
}

// Make writes the server cookie for client (the client cookie) at addr
// into dst, made now (Unix seconds).
func (j *Jar) Make(dst *[ServerLen]byte, client []byte, addr netip.Addr, now uint32) {
	dst[0] = 1 // version
	dst[1], dst[2], dst[3] = 0, 0, 0
	binary.BigEndian.PutUint32(dst[4:8], now)
	binary.LittleEndian.PutUint64(dst[8:], j.hash(j.keys[0], client, dst[:8], addr))
}

// Check reports whether server is a valid cookie of ours for client at
// addr, now (Unix seconds).
func (j *Jar) Check(client, server []byte, addr netip.Addr, now uint32) bool {
	if len(server) != ServerLen || server[0] != 1 {
		return false
	}
	ts := binary.BigEndian.Uint32(server[4:8])
	// Serial number arithmetic (RFC 1982), as RFC 9018 asks.
	if age := int32(now - ts); age > lifetime || age < -skew {
		return false
	}
	got := binary.LittleEndian.Uint64(server[8:])
	for _, k := range j.keys {
		if j.hash(k, client, server[:8], addr) == got {
			return true
		}
	}
	return false
}

// hash is RFC 9018's: SipHash-2-4 over the client cookie, version,
// reserved bytes and timestamp, and the client's address.
func (j *Jar) hash(k [2]uint64, client, head []byte, addr netip.Addr) uint64 {
	var buf [ClientLen + 8 + 16]byte
	n := copy(buf[:], client)
	n += copy(buf[n:], head)
	addr = addr.Unmap()
	if addr.Is4() {
		a := addr.As4()
		n += copy(buf[n:], a[:])
	} else {
		a := addr.As16()
		n += copy(buf[n:], a[:])
	}
	return siphash.Hash(k[0], k[1], buf[:n])
}

// Config is [server.cookies].
type Config struct {
	// Enabled answers DNS cookies (default true): a reply to a query with
	// a client cookie carries a server cookie, and a client that brings a
	// valid one back is exempt from rate limiting.
	Enabled *bool `toml:"enabled"`
	// SecretFile holds the secrets (ParseSecrets), relative to the config
	// file; read at start and at every reload, so a secret is rolled by
	// adding a new first line and, an hour later, dropping the old one.
	// Without it, a cluster's nodes derive the secret from the cluster's
	// keys (so each accepts the others' cookies), and a lone server makes
	// one at start.
	SecretFile string `toml:"secret_file"`
	// Secrets are SecretFile's, read by the configuration's validation.
	Secrets [][]byte `toml:"-"`
}

// On reports whether cookies are answered.
func (c Config) On() bool { return c.Enabled == nil || *c.Enabled }
