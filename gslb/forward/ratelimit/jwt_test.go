package ratelimit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signer makes tokens for one algorithm and its limiter's JWTConfig.
type signer struct {
	alg    string
	method jwt.SigningMethod
	key    any // what SignedString takes
	cfg    JWTConfig
}

func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func signers(t testing.TB) []signer {
	t.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []signer{
		{"HS256", jwt.SigningMethodHS256, secret, JWTConfig{Algorithm: "HS256", Secret: secret}},
		{"RS256", jwt.SigningMethodRS256, rsaKey, JWTConfig{Algorithm: "RS256", PublicKeyPEM: pemPublic(t, &rsaKey.PublicKey)}},
		{"ES256", jwt.SigningMethodES256, ecKey, JWTConfig{Algorithm: "ES256", PublicKeyPEM: pemPublic(t, &ecKey.PublicKey)}},
	}
}

func (s signer) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(s.method, claims).SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// otherKey returns a signing key for the same algorithm that the
// limiter does not know.
func (s signer) otherKey(t *testing.T) any {
	t.Helper()
	switch s.alg {
	case "HS256":
		return []byte("another-secret-another-secret-xx")
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	default:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestJWTClaim(t *testing.T) {
	clk := newClock()
	for _, s := range signers(t) {
		t.Run(s.alg, func(t *testing.T) {
			cfg := Config{Key: KeyJWTClaim, Rate: 1, Burst: 2, JWT: s.cfg, Now: clk.Now}
			l := mustNew(t, cfg)
			srv := server(t, l)
			exp := jwt.NewNumericDate(clk.Now().Add(time.Hour))
			alice := s.sign(t, jwt.MapClaims{"sub": "alice", "exp": exp})
			alice2 := s.sign(t, jwt.MapClaims{"sub": "alice", "exp": exp, "jti": "2"})
			bob := s.sign(t, jwt.MapClaims{"sub": "bob", "exp": exp})

			wrongKey, err := jwt.NewWithClaims(s.method, jwt.MapClaims{"sub": "mallory", "exp": exp}).SignedString(s.otherKey(t))
			if err != nil {
				t.Fatal(err)
			}
			none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "mallory"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			expired := s.sign(t, jwt.MapClaims{"sub": "carol", "exp": jwt.NewNumericDate(clk.Now().Add(-time.Minute))})
			notYet := s.sign(t, jwt.MapClaims{"sub": "carol", "nbf": jwt.NewNumericDate(clk.Now().Add(time.Minute))})
			noSub := s.sign(t, jwt.MapClaims{"name": "dave", "exp": exp})
			numericSub := s.sign(t, jwt.MapClaims{"sub": 42, "exp": exp})
			// Tampering: alice's header and signature around bob's claims.
			ap, bp := strings.Split(alice, "."), strings.Split(bob, ".")
			spliced := ap[0] + "." + bp[1] + "." + ap[2]

			steps := []struct {
				name    string
				headers []string
				n       int
				allowed int
				status  int // of the last refusal
			}{
				{"alice", bearer(alice), 3, 2, 429},
				{"alice's other token shares her key", bearer(alice2), 1, 0, 429},
				{"bob has his own", bearer(bob), 2, 2, 0},
				{"numeric claim", bearer(numericSub), 2, 2, 0},
				{"scheme is case-insensitive", []string{"Authorization", "bearer " + numericSub}, 1, 0, 429},
				{"wrong signature", bearer(wrongKey), 1, 0, 401},
				{"alg none", bearer(none), 1, 0, 401},
				{"expired", bearer(expired), 1, 0, 401},
				{"not yet valid", bearer(notYet), 1, 0, 401},
				{"no sub claim", bearer(noSub), 1, 0, 401},
				{"spliced", bearer(spliced), 1, 0, 401},
				{"garbage", bearer("not.a.jwt"), 1, 0, 401},
				{"missing", nil, 1, 0, 401},
				{"basic auth", []string{"Authorization", "Basic YWxpY2U6c2VjcmV0"}, 1, 0, 401},
			}
			for _, st := range steps {
				allowed, status := 0, 0
				var last *http.Response
				for range st.n {
					last = get(t, srv, st.headers...)
					if last.StatusCode == http.StatusOK {
						allowed++
					} else {
						status = last.StatusCode
					}
				}
				if allowed != st.allowed || status != st.status {
					t.Errorf("%s: %d of %d allowed, status %d; want %d allowed, status %d",
						st.name, allowed, st.n, status, st.allowed, st.status)
				}
				if status == 401 && !strings.HasPrefix(last.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: 401 without a Bearer challenge", st.name)
				}
			}
			stats := l.Stats()
			if stats.InvalidToken != 7 || stats.MissingKey != 2 || stats.Limited != 3 || stats.Allowed != 6 {
				t.Errorf("stats %+v, want 7 invalid tokens, 2 missing, 3 limited, 6 allowed", stats)
			}
		})
	}
}

// TestJWTAlgorithmConfusion signs HS256 tokens with the RS256 and ES256
// public keys as the HMAC secret: the classic attack on verifiers that
// take the algorithm from the token.
func TestJWTAlgorithmConfusion(t *testing.T) {
	for _, s := range signers(t) {
		if s.alg == "HS256" {
			continue
		}
		t.Run(s.alg, func(t *testing.T) {
			l := mustNew(t, Config{Key: KeyJWTClaim, Rate: 1, JWT: s.cfg, Now: newClock().Now})
			forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "mallory"}).SignedString(s.cfg.PublicKeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			d := l.Allow(request("192.0.2.1:1", bearer(forged)...))
			if d.Allowed || d.Status != 401 || d.Reason != ReasonInvalidToken {
				t.Errorf("forged HS256 token: %+v, want 401 invalid_token", d)
			}
		})
	}
}

func TestJWTFallbackToIP(t *testing.T) {
	s := signers(t)[0]
	l := mustNew(t, Config{Key: KeyJWTClaim, Rate: 1, Burst: 2, JWT: s.cfg, Fallback: FallbackClientIP, Now: newClock().Now})
	r := request("192.0.2.1:1", "Authorization", "Bearer not.a.jwt")
	if got := allowN(l, r, 3); got != 2 {
		t.Errorf("invalid token falling back to IP: %d allowed, want 2", got)
	}
	if got := allowN(l, request("192.0.2.1:1"), 1); got != 0 {
		t.Errorf("no token from the same IP: %d allowed, want 0", got)
	}
	good := request("192.0.2.1:1", bearer(s.sign(t, jwt.MapClaims{"sub": "alice"}))...)
	if got := allowN(l, good, 2); got != 2 {
		t.Errorf("valid token from the same IP: %d allowed, want its own 2", got)
	}
}

func TestJWTOptions(t *testing.T) {
	clk := newClock()
	s := signers(t)[0]
	exp := jwt.NewNumericDate(clk.Now().Add(time.Hour))
	cases := []struct {
		name   string
		cfg    JWTConfig
		claims jwt.MapClaims
		header []string
		ok     bool
	}{
		{"custom claim", JWTConfig{Claim: "tenant"}, jwt.MapClaims{"tenant": "t1"}, nil, true},
		{"custom claim missing", JWTConfig{Claim: "tenant"}, jwt.MapClaims{"sub": "a"}, nil, false},
		{"issuer match", JWTConfig{Issuer: "idp"}, jwt.MapClaims{"sub": "a", "iss": "idp"}, nil, true},
		{"issuer mismatch", JWTConfig{Issuer: "idp"}, jwt.MapClaims{"sub": "a", "iss": "evil"}, nil, false},
		{"audience match", JWTConfig{Audience: "api"}, jwt.MapClaims{"sub": "a", "aud": []string{"web", "api"}}, nil, true},
		{"audience mismatch", JWTConfig{Audience: "api"}, jwt.MapClaims{"sub": "a", "aud": "web"}, nil, false},
		{"expiry required", JWTConfig{RequireExpiry: true}, jwt.MapClaims{"sub": "a"}, nil, false},
		{"expiry present", JWTConfig{RequireExpiry: true}, jwt.MapClaims{"sub": "a", "exp": exp}, nil, true},
		{"leeway", JWTConfig{Leeway: time.Minute}, jwt.MapClaims{"sub": "a", "exp": jwt.NewNumericDate(clk.Now().Add(-30 * time.Second))}, nil, true},
		{"custom header", JWTConfig{Header: "X-Token"}, jwt.MapClaims{"sub": "a"}, []string{"X-Token"}, true},
		{"custom header with Bearer", JWTConfig{Header: "X-Token"}, jwt.MapClaims{"sub": "a"}, []string{"X-Token", "Bearer "}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Algorithm, c.cfg.Secret = s.cfg.Algorithm, s.cfg.Secret
			l := mustNew(t, Config{Key: KeyJWTClaim, Rate: 1, JWT: c.cfg, Now: clk.Now})
			tok := s.sign(t, c.claims)
			hdr := bearer(tok)
			if c.header != nil {
				prefix := ""
				if len(c.header) > 1 {
					prefix = c.header[1]
				}
				hdr = []string{c.header[0], prefix + tok}
			}
			if d := l.Allow(request("192.0.2.1:1", hdr...)); d.Allowed != c.ok {
				t.Errorf("%+v, want allowed %v", d, c.ok)
			}
		})
	}
}

// TestJWTCacheExpiry checks that a cached token stops working when it
// expires, although its signature is not checked again.
func TestJWTCacheExpiry(t *testing.T) {
	clk := newClock()
	s := signers(t)[0]
	l := mustNew(t, Config{Key: KeyJWTClaim, Rate: 100, JWT: s.cfg, Now: clk.Now})
	tok := s.sign(t, jwt.MapClaims{"sub": "a", "exp": jwt.NewNumericDate(clk.Now().Add(time.Minute))})
	r := request("192.0.2.1:1", bearer(tok)...)
	for i := range 2 {
		if d := l.Allow(r); !d.Allowed {
			t.Fatalf("request %d before expiry: %+v", i, d)
		}
	}
	if l.jwt.cache.Len() != 1 {
		t.Fatalf("cache holds %d tokens, want 1", l.jwt.cache.Len())
	}
	clk.Advance(time.Minute)
	if d := l.Allow(r); d.Allowed || d.Reason != ReasonInvalidToken {
		t.Errorf("at expiry: %+v, want invalid_token", d)
	}
	if d := l.Allow(r); d.Allowed || d.Reason != ReasonInvalidToken {
		t.Errorf("after expiry, uncached: %+v, want invalid_token", d)
	}
}

func TestJWTKeyErrors(t *testing.T) {
	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ss := signers(t)
	rsaPEM, ecPEM := ss[1].cfg.PublicKeyPEM, ss[2].cfg.PublicKeyPEM
	cases := []struct {
		name string
		cfg  JWTConfig
		want string
	}{
		{"RSA key for ES256", JWTConfig{Algorithm: "ES256", PublicKeyPEM: rsaPEM}, "RSA key cannot verify ES256"},
		{"EC key for RS256", JWTConfig{Algorithm: "RS256", PublicKeyPEM: ecPEM}, "ECDSA key cannot verify RS256"},
		{"short RSA key", JWTConfig{Algorithm: "RS256", PublicKeyPEM: pemPublic(t, &rsaSmall.PublicKey)}, "1024 bits"},
		{"P-384 for ES256", JWTConfig{Algorithm: "ES256", PublicKeyPEM: pemPublic(t, &p384.PublicKey)}, "P-256"},
		{"not PEM", JWTConfig{Algorithm: "RS256", PublicKeyPEM: []byte("hello")}, "no PEM block"},
		{"private key block", JWTConfig{Algorithm: "RS256", PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY"})}, "want PUBLIC KEY"},
		{"public key for HS256", JWTConfig{Algorithm: "HS256", Secret: make([]byte, 32), PublicKeyPEM: rsaPEM}, "not used by HS256"},
		{"secret for RS256", JWTConfig{Algorithm: "RS256", Secret: make([]byte, 32), PublicKeyPEM: rsaPEM}, "not used by RS256"},
		{"negative leeway", JWTConfig{Algorithm: "HS256", Secret: make([]byte, 32), Leeway: -time.Second}, "leeway"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(Config{Key: KeyJWTClaim, Rate: 1, JWT: c.cfg})
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want an ErrConfig saying %q", err, c.want)
			}
		})
	}
}
