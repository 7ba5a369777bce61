package ratelimit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
)

// JWT defaults, applied by New to zero fields.
const (
	DefaultJWTClaim     = "sub"
	DefaultJWTHeader    = "Authorization"
	DefaultJWTCacheSize = 10_000
	// minHMACKey is RFC 7518 section 3.2's floor for HS256: a key as
	// long as the hash.
	minHMACKey = 32
	// minRSABits is the smallest RSA key accepted; anything shorter can
	// be factored by a determined attacker.
	minRSABits = 2048
)

// JWTConfig configures KeyJWTClaim.
type JWTConfig struct {
	// Algorithm is the one algorithm tokens must be signed with: "HS256",
	// "RS256" or "ES256". A token naming any other, "none" included, is
	// refused before its signature is looked at.
	Algorithm string
	// Secret is the HS256 shared secret, at least 32 bytes.
	Secret []byte
	// PublicKeyPEM is the RS256 or ES256 public key: a PEM "PUBLIC KEY"
	// (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE" block. RSA keys
	// must have at least 2048 bits, ECDSA keys must be on P-256.
	PublicKeyPEM []byte
	// Claim is the claim whose value is the key. Default "sub". It must
	// be a string, a number or a boolean.
	Claim string
	// Header carries the token. Default "Authorization", where the token
	// follows the "Bearer" scheme; in any other header a "Bearer " prefix
	// is optional.
	Header string
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
	// RequireExpiry refuses tokens without an exp claim. exp and nbf are
	// checked whenever present.
	RequireExpiry bool
	// Leeway is the clock skew allowed when checking exp and nbf.
	Leeway time.Duration
	// CacheSize caps the verified tokens remembered, so that a client
	// sending the same token does not pay for its signature check each
	// time. Default 10000; negative disables the cache.
	CacheSize int
}

var (
	errNoToken    = errors.New("no bearer token")
	errClaim      = errors.New("claim missing or not a string, number or boolean")
	errAlgorithm  = errors.New("unexpected signing algorithm")
	errExpiredHit = errors.New("cached token has expired")
)

// verifier checks tokens and extracts the key claim.
type verifier struct {
	alg       string
	key       any
	claimName string
	header    string
	leeway    time.Duration
	parser    *jwt.Parser
	now       func() time.Time
	// cache maps a verified token to its claim; only tokens whose
	// signature checked out get in, so a client cannot fill it with
	// garbage.
	cache *lru.Cache[string, verified]
}

type verified struct {
	claim string
	exp   time.Time // zero when the token has no exp
}

func newVerifier(c JWTConfig, now func() time.Time) (*verifier, error) {
	if c.Claim == "" {
		c.Claim = DefaultJWTClaim
	}
	if c.Header == "" {
		c.Header = DefaultJWTHeader
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultJWTCacheSize
	}
	if c.Leeway < 0 {
		return nil, fmt.Errorf("leeway %v: must not be negative", c.Leeway)
	}
	v := &verifier{
		alg:       c.Algorithm,
		claimName: c.Claim,
		header:    http.CanonicalHeaderKey(c.Header),
		leeway:    c.Leeway,
		now:       now,
	}
	var err error
	switch c.Algorithm {
	case "HS256":
		if len(c.PublicKeyPEM) != 0 {
			return nil, errors.New("public_key: not used by HS256; set secret")
		}
		if len(c.Secret) < minHMACKey {
			return nil, fmt.Errorf("secret: %d bytes, HS256 needs at least %d", len(c.Secret), minHMACKey)
		}
		v.key = append([]byte(nil), c.Secret...)
	case "RS256", "ES256":
		if len(c.Secret) != 0 {
			return nil, fmt.Errorf("secret: not used by %s; set public_key", c.Algorithm)
		}
		if v.key, err = parsePublicKey(c.Algorithm, c.PublicKeyPEM); err != nil {
			return nil, fmt.Errorf("public_key: %w", err)
		}
	default:
		return nil, fmt.Errorf("algorithm %q: want HS256, RS256 or ES256", c.Algorithm)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{c.Algorithm}),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(c.Leeway),
		jwt.WithJSONNumber(),
	}
	if c.RequireExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	if c.CacheSize > 0 {
		if v.cache, err = lru.New[string, verified](c.CacheSize); err != nil {
			return nil, fmt.Errorf("cache_size: %w", err)
		}
	}
	return v, nil
}

// parsePublicKey reads the key of the type alg needs, so that a key of
// the wrong type cannot be used with an algorithm it was not meant for.
func parsePublicKey(alg string, data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("an RSA key cannot verify %s", alg)
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if alg != "ES256" {
			return nil, fmt.Errorf("an ECDSA key cannot verify %s", alg)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s, ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%T keys are not supported", pub)
}

// token returns the request's token, or "" when it has none.
func (v *verifier) token(r *http.Request) string {
	h := r.Header.Get(v.header)
	const bearer = "Bearer "
	if len(h) > len(bearer) && strings.EqualFold(h[:len(bearer)], bearer) {
		return strings.TrimSpace(h[len(bearer):])
	}
	if v.header == DefaultJWTHeader {
		// Authorization with another scheme (Basic, say) has no token.
		return ""
	}
	return strings.TrimSpace(h)
}

// claim verifies r's token and returns its key claim.
func (v *verifier) claim(r *http.Request) (string, error) {
	raw := v.token(r)
	if raw == "" {
		return "", errNoToken
	}
	if v.cache != nil {
		if c, ok := v.cache.Get(raw); ok {
			if !c.exp.IsZero() && !v.now().Before(c.exp.Add(v.leeway)) {
				v.cache.Remove(raw)
				return "", errExpiredHit
			}
			return c.claim, nil
		}
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(raw, claims, v.keyFunc)
	if err != nil {
		return "", fmt.Errorf("verify token: %w", err)
	}
	s, err := claimString(claims[v.claimName])
	if err != nil {
		return "", fmt.Errorf("claim %q: %w", v.claimName, err)
	}
	if v.cache != nil {
		c := verified{claim: s}
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
			c.exp = exp.Time
		}
		v.cache.Add(raw, c)
	}
	return s, nil
}

// keyFunc hands the parser the configured key. WithValidMethods already
// pins the algorithm; checking it again here keeps the key from ever
// meeting another algorithm should that option be dropped.
func (v *verifier) keyFunc(t *jwt.Token) (any, error) {
	if t.Method == nil || t.Method.Alg() != v.alg {
		return nil, errAlgorithm
	}
	return v.key, nil
}

func claimString(c any) (string, error) {
	switch x := c.(type) {
	case string:
		if x != "" {
			return x, nil
		}
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", errClaim
}
