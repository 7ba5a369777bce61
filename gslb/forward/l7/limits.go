package l7

import (
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/meridian-gslb/meridian/gslb/forward/canary"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// limiter is a [[rate_limit]] policy in force. A reload that leaves a
// policy (and its key files) alone keeps its limiter, and with it every
// key's count.
type limiter struct {
	spec    limiterSpec
	l       *ratelimit.Limiter
	headers bool
}

// limiterSpec is what a limiter is built from.
type limiterSpec struct {
	cfg         config.ForwardRateLimit
	secret, pub string // the JWT key files' content
}

// prepareLimiters builds the rate limiters of cfg, reusing those of cur
// whose policy is unchanged.
func (p *Proxy) prepareLimiters(cfg *config.Forward, cur map[string]*limiter) (map[string]*limiter, error) {
	out := make(map[string]*limiter, len(cfg.RateLimits))
	for i, rl := range cfg.RateLimits {
		key := fmt.Sprintf("rate_limit[%d]", i)
		spec := limiterSpec{cfg: rl}
		read := func(k, path string) (string, error) {
			b, err := os.ReadFile(cfg.ResolvePath(path))
			if err != nil {
				return "", cfg.Errorf(key+".jwt."+k, "%v", err)
			}
			return string(bytes.TrimSpace(b)), nil
		}
		var err error
		if rl.JWT.SecretFile != "" {
			if spec.secret, err = read("secret_file", rl.JWT.SecretFile); err != nil {
				return nil, err
			}
		}
		if rl.JWT.PublicKeyFile != "" {
			if spec.pub, err = read("public_key_file", rl.JWT.PublicKeyFile); err != nil {
				return nil, err
			}
		}
		if old := cur[rl.Name]; old != nil && old.spec == spec {
			out[rl.Name] = old
			continue
		}
		l, err := ratelimit.New(ratelimit.Config{
			Name: rl.Name, Algorithm: ratelimit.Algorithm(rl.Algorithm),
			Rate: rl.Rate, Burst: rl.Burst, Limit: rl.Limit, Window: rl.Window.Duration,
			Key: rateKeyKind(rl.Key), Header: rl.Header, Fallback: ratelimit.Fallback(rl.Fallback),
			ClientIP: requestClient, IPv6PrefixLen: rl.IPv6Prefix, MaxKeys: rl.MaxKeys, KeyTTL: rl.KeyTTL.Duration,
			Headers: rl.Headers, LogEvery: rl.LogEvery, Log: p.env.Log,
			JWT: ratelimit.JWTConfig{
				Algorithm: rl.JWT.Algorithm, Secret: []byte(spec.secret), PublicKeyPEM: []byte(spec.pub),
				Claim: rl.JWT.Claim, Header: rl.JWT.Header, Issuer: rl.JWT.Issuer, Audience: rl.JWT.Audience,
				RequireExpiry: rl.JWT.RequireExpiry, Leeway: rl.JWT.Leeway.Duration,
			},
		})
		if err != nil {
			return nil, cfg.Errorf(key, "%s", strings.TrimPrefix(err.Error(), ratelimit.ErrConfig.Error()+": "))
		}
		out[rl.Name] = &limiter{spec: spec, l: l, headers: rl.Headers}
	}
	return out, nil
}

func rateKeyKind(k string) ratelimit.KeyKind {
	switch k {
	case "api_key":
		return ratelimit.KeyAPIKey
	case "header":
		return ratelimit.KeyHeader
	case "jwt_claim":
		return ratelimit.KeyJWTClaim
	}
	return ratelimit.KeyClientIP
}

// requestClient is the rate limiter's client address: the one trusted
// proxies vouch for, as the route's request state has it.
func requestClient(r *http.Request) netip.Addr {
	if rs := stateOf(r); rs != nil {
		return rs.client
	}
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return ap.Addr().Unmap()
}

// limit wraps a route's action in its rate limit: a refused request is
// answered 429 (401 or 400 for a missing or bad key) with Retry-After and
// the RateLimit headers, and counted against the route.
func (lm *limiter) limit(st *routeState, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := lm.l.Allow(r)
		if !d.Allowed {
			st.limited.Add(1)
			if rs := stateOf(r); rs != nil {
				rs.err = "rate limited: " + string(d.Reason)
			}
			lm.l.Reject(w, d)
			return
		}
		if lm.headers {
			lm.l.WriteHeaders(w.Header(), d)
		}
		next.ServeHTTP(w, r)
	})
}

func (lm *limiter) collect(ch chan<- prometheus.Metric, name string) {
	s := lm.l.Stats()
	ch <- prometheus.MustNewConstMetric(descLimitRequests, prometheus.CounterValue, float64(s.Allowed), name, "allowed")
	for _, reason := range []ratelimit.Reason{ratelimit.ReasonLimited, ratelimit.ReasonMissingKey, ratelimit.ReasonInvalidToken} {
		ch <- prometheus.MustNewConstMetric(descLimitRequests, prometheus.CounterValue, float64(s.Rejected(reason)), name, string(reason))
	}
	ch <- prometheus.MustNewConstMetric(descLimitKeys, prometheus.GaugeValue, float64(s.Keys), name)
	ch <- prometheus.MustNewConstMetric(descLimitDropped, prometheus.CounterValue, float64(s.Evicted), name, "evicted")
	ch <- prometheus.MustNewConstMetric(descLimitDropped, prometheus.CounterValue, float64(s.Expired), name, "expired")
}

// guardSpec is what a route's canary guard is built from.
type guardSpec struct {
	baseline, canary string
	cfg              config.ForwardCanaryGuard
	errDelta, latio  float64 // the pointers' values, -2 for unset
}

func guardSpecOf(rt *route, g *config.ForwardCanaryGuard) guardSpec {
	s := guardSpec{baseline: rt.pool, canary: rt.canary, cfg: *g, errDelta: -2, latio: -2}
	s.cfg.MaxErrorRateDelta, s.cfg.MaxLatencyRatio = nil, nil
	if g.MaxErrorRateDelta != nil {
		s.errDelta = *g.MaxErrorRateDelta
	}
	if g.MaxLatencyRatio != nil {
		s.latio = *g.MaxLatencyRatio
	}
	return s
}

// newGuard builds a route's canary guard; Run starts once the
// configuration is in force. Its rollback sets the route's canary share
// to 0, as DELETE on the admin API does.
func (p *Proxy) newGuard(st *routeState, spec guardSpec) (*canary.Guard, error) {
	c := canary.Config{
		Baseline: spec.baseline, Canary: spec.canary,
		Window: spec.cfg.Window.Duration, Interval: spec.cfg.Interval.Duration,
		MinRequests: spec.cfg.MinRequests, Log: p.env.Log.With("listener", st.listener, "route", st.name),
	}
	if spec.errDelta != -2 {
		c.MaxErrorRateDelta = spec.errDelta
	}
	if spec.latio != -2 {
		c.MaxLatencyRatio = spec.latio
	}
	if !spec.cfg.DryRun {
		c.Rollback = func(reason string) {
			if err := p.env.SetCanary(st.listener, st.name, 0); err != nil {
				p.env.Log.Error("canary guard: rollback failed", "listener", st.listener, "route", st.name, "err", err)
				return
			}
			p.env.Log.Warn("audit: canary share", "listener", st.listener, "route", st.name, "percent", 0, "rollback", true, "from", "canary guard", "reason", reason)
		}
	}
	return canary.New(c)
}
