package ratelimit

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The benchmarks run with a real clock: time.Now is part of the hot path.

func BenchmarkAllow(b *testing.B) {
	s := signers(b)
	cases := []struct {
		name string
		cfg  Config
		req  func(i int) *http.Request
		keys int
	}{
		{"token_bucket/ip", Config{Rate: 1e9, Burst: 1e9}, func(i int) *http.Request { return request(fmt.Sprintf("192.0.2.%d:1", i%250)) }, 250},
		{"sliding_window/ip", Config{Algorithm: SlidingWindow, Limit: 1e9, Window: time.Minute}, func(i int) *http.Request { return request(fmt.Sprintf("192.0.2.%d:1", i%250)) }, 250},
		{"token_bucket/api_key", Config{Key: KeyAPIKey, Rate: 1e9, Burst: 1e9}, func(i int) *http.Request {
			return request("192.0.2.1:1", "X-API-Key", fmt.Sprintf("key-%d", i))
		}, 1000},
		{"token_bucket/jwt_hs256_cached", Config{Key: KeyJWTClaim, Rate: 1e9, Burst: 1e9, JWT: s[0].cfg}, func(i int) *http.Request {
			return request("192.0.2.1:1", bearer(s[0].sign(b, jwt.MapClaims{"sub": fmt.Sprint(i)}))...)
		}, 100},
		{"token_bucket/jwt_es256_cached", Config{Key: KeyJWTClaim, Rate: 1e9, Burst: 1e9, JWT: s[2].cfg}, func(i int) *http.Request {
			return request("192.0.2.1:1", bearer(s[2].sign(b, jwt.MapClaims{"sub": fmt.Sprint(i)}))...)
		}, 100},
		{"token_bucket/jwt_rs256_uncached", Config{Key: KeyJWTClaim, Rate: 1e9, Burst: 1e9, JWT: withCache(s[1].cfg, -1)}, func(i int) *http.Request {
			return request("192.0.2.1:1", bearer(s[1].sign(b, jwt.MapClaims{"sub": fmt.Sprint(i)}))...)
		}, 100},
		{"token_bucket/limited", Config{Rate: 1e-9, Burst: 1}, func(i int) *http.Request { return request("192.0.2.1:1") }, 1},
	}
	for _, c := range cases {
		l := mustNew(b, c.cfg)
		reqs := make([]*http.Request, c.keys)
		for i := range reqs {
			reqs[i] = c.req(i)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(reqs[i%len(reqs)])
				i++
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					l.Allow(reqs[i%len(reqs)])
					i++
				}
			})
		})
	}
}

func withCache(c JWTConfig, size int) JWTConfig {
	c.CacheSize = size
	return c
}
