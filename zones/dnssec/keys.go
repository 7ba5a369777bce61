package dnssec

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Sentinel errors of key loading; LoadKeys wraps them with the file.
var (
	ErrNoKeys           = errors.New("no keys for the zone")
	ErrLoosePermissions = errors.New("private key file is readable or writable by group or others")
	ErrOtherZone        = errors.New("key belongs to another zone")
	ErrAlgorithm        = errors.New("algorithm not supported")
	ErrActiveKey        = errors.New("active_key names no key in key_dir")
)

// flagsCSK are the DNSKEY flags of a combined signing key: zone key and
// secure entry point (RFC 4034 section 2.1.1).
const flagsCSK = dns.ZONE | dns.SEP

// Key is one of a zone's keys: the public DNSKEY and its private half.
type Key struct {
	DNSKEY  *dns.DNSKEY
	Signer  crypto.Signer
	Created time.Time // from the private file's Created line; zero when absent
	File    string    // the .key file's path
}

// Tag is the key's tag, as in its file name and in RRSIGs.
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// base is BIND's file name of a key without the suffix.
func base(zone string, alg uint8, tag uint16) string {
	return fmt.Sprintf("K%s+%03d+%05d", dns.Fqdn(strings.ToLower(zone)), alg, tag)
}

// Generate makes a new CSK for zone with algorithm alg (a name of
// Algorithms) and writes it into dir in BIND's format: the .key file
// (mode 0644) and the .private file (mode 0600). It returns the key.
func Generate(zone, alg, dir string, ttl uint32, now time.Time) (*Key, error) {
	num, ok := Algorithms[strings.ToLower(alg)]
	if !ok {
		return nil, fmt.Errorf("%q: %w (want ecdsap256sha256 or ed25519)", alg, ErrAlgorithm)
	}
	zone = dns.Fqdn(strings.ToLower(zone))
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("%q is not a domain name", zone)
	}
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: ttl},
		Flags: flagsCSK, Protocol: 3, Algorithm: num}
	priv, err := k.Generate(256) // P-256; Ed25519 keys have one size
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key folder: %w", err)
	}
	name := filepath.Join(dir, base(zone, num, k.KeyTag()))
	stamp := now.UTC().Format("20060102150405")
	pub := fmt.Sprintf("; This is a combined signing key (CSK), keyid %d, for %s\n; Created: %s\n%s\n",
		k.KeyTag(), zone, stamp, k.String())
	private := k.PrivateKeyString(priv) + "Created: " + stamp + "\nPublish: " + stamp + "\nActivate: " + stamp + "\n"
	if err := os.WriteFile(name+".private", []byte(private), 0o600); err != nil {
		return nil, fmt.Errorf("write private key: %w", err)
	}
	if err := os.WriteFile(name+".key", []byte(pub), 0o644); err != nil {
		return nil, fmt.Errorf("write public key: %w", err)
	}
	return &Key{DNSKEY: k, Signer: priv.(crypto.Signer), Created: now.UTC().Truncate(time.Second), File: name + ".key"}, nil
}

// LoadKeys reads every key of zone in dir (files K<zone>+*.key and their
// .private halves), oldest first. Every key must be of algorithm alg and
// belong to zone; private files must not be open to group or others.
func LoadKeys(dir, zone string, alg uint8) ([]*Key, error) {
	zone = dns.Fqdn(strings.ToLower(zone))
	pattern := filepath.Join(dir, "K"+escapeGlob(zone)+"+*.key")
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("key folder %s: %w", dir, err)
	}
	if len(files) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("key folder: %w", err)
		}
		return nil, fmt.Errorf("%s: %w %s (make one with: meridian dnssec keygen -zone %s -dir %s)", dir, ErrNoKeys, zone, strings.TrimSuffix(zone, "."), dir)
	}
	var keys []*Key
	for _, f := range files {
		k, err := loadKey(f, zone, alg)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.SortStableFunc(keys, func(a, b *Key) int { return a.Created.Compare(b.Created) })
	return keys, nil
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// loadKey reads one .key file and its .private half.
func loadKey(file, zone string, alg uint8) (*Key, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	var dk *dns.DNSKEY
	zp := dns.NewZoneParser(bytes.NewReader(src), zone, file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if k, isKey := rr.(*dns.DNSKEY); isKey && dk == nil {
			dk = k
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("key %s: %w", file, err)
	}
	if dk == nil {
		return nil, fmt.Errorf("key %s: no DNSKEY record in the file", file)
	}
	if owner := strings.ToLower(dk.Hdr.Name); owner != zone {
		return nil, fmt.Errorf("key %s: %w: its DNSKEY is for %s, not %s", file, ErrOtherZone, owner, zone)
	}
	if _, ok := Algorithms[algorithmName(dk.Algorithm)]; !ok {
		return nil, fmt.Errorf("key %s: %w: %s (%d); want ecdsap256sha256 (13) or ed25519 (15)", file, ErrAlgorithm, dns.AlgorithmToString[dk.Algorithm], dk.Algorithm)
	}
	if dk.Algorithm != alg {
		return nil, fmt.Errorf("key %s: %w here: the key is %s, the zone's algorithm is %s", file, ErrAlgorithm, algorithmName(dk.Algorithm), algorithmName(alg))
	}
	privFile := strings.TrimSuffix(file, ".key") + ".private"
	st, err := os.Stat(privFile)
	if err != nil {
		return nil, fmt.Errorf("key %d: private key: %w", dk.KeyTag(), err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w (mode %04o): chmod 600 it", privFile, ErrLoosePermissions, st.Mode().Perm())
	}
	psrc, err := os.ReadFile(privFile)
	if err != nil {
		return nil, fmt.Errorf("key %d: private key: %w", dk.KeyTag(), err)
	}
	priv, err := dk.ReadPrivateKey(bytes.NewReader(psrc), privFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", privFile, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok || !matches(dk, signer) {
		return nil, fmt.Errorf("%s: the private key is not the half of %s", privFile, file)
	}
	dk.Hdr.Name = zone
	return &Key{DNSKEY: dk, Signer: signer, Created: created(psrc), File: file}, nil
}

// matches reports whether signer's public half is dk's.
func matches(dk *dns.DNSKEY, signer crypto.Signer) bool {
	var raw []byte
	switch pub := signer.Public().(type) {
	case *ecdsa.PublicKey:
		ecdh, err := pub.ECDH()
		if err != nil {
			return false
		}
		raw = ecdh.Bytes()[1:] // the uncompressed point without its 0x04 prefix: X and Y (RFC 6605)
	case ed25519.PublicKey:
		raw = pub
	default:
		return false
	}
	return base64.StdEncoding.EncodeToString(raw) == strings.Join(strings.Fields(dk.PublicKey), "")
}

// created reads the Created line of a BIND private file.
func created(src []byte) time.Time {
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Created: "); ok {
			if t, err := time.Parse("20060102150405", strings.TrimSpace(v)); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

func algorithmName(a uint8) string {
	for name, n := range Algorithms {
		if n == a {
			return name
		}
	}
	return strings.ToLower(dns.AlgorithmToString[a])
}
