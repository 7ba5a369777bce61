package ratelimit

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzJWTClaim feeds bearer tokens to the claim reader a rate limit keyed
// by a JWT claim runs on every request: a client controls the header, so
// anything it sends must be refused or read, never crash.
func FuzzJWTClaim(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": 4102444800}).SignedString(secret)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, "Bearer " + good, "", "Bearer", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"} {
		f.Add(seed)
	}
	v, err := newVerifier(JWTConfig{Algorithm: "HS256", Secret: secret}, func() time.Time { return time.Unix(1764000000, 0) })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r, _ := http.NewRequest("GET", "http://example.test/", nil)
		r.Header.Set("Authorization", header)
		claim, err := v.claim(r)
		if err == nil && header != "Bearer "+good && header != good {
			// Only a token signed with the secret may give a claim.
			tok, perr := jwt.Parse(header[len("Bearer "):], func(*jwt.Token) (any, error) { return secret, nil })
			if perr != nil || !tok.Valid {
				t.Fatalf("claim %q from a token that does not verify: %q", claim, header)
			}
		}
	})
}
