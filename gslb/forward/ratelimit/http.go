package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// The header fields, as draft-ietf-httpapi-ratelimit-headers names them.
const (
	HeaderRateLimitPolicy = "RateLimit-Policy"
	HeaderRateLimit       = "RateLimit"
	HeaderRetryAfter      = "Retry-After"
)

// quota returns the policy's q and w: the requests a fresh key may make
// at once, and the seconds over which that quota comes back.
func (l *Limiter) quota() (q, w int64) {
	if l.algorithm == TokenBucket {
		return int64(l.burst), ceilSeconds(seconds(float64(l.burst) / l.rate))
	}
	return int64(l.limit), ceilSeconds(time.Duration(l.window))
}

// ceilSeconds rounds d up to whole seconds: a client told to wait less
// than it must would only be refused again.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// WriteHeaders sets the RateLimit-Policy and RateLimit fields for d, and
// Retry-After when d was refused as limited. A decision refused for lack
// of a key says nothing about any quota, so it gets none of them.
func (l *Limiter) WriteHeaders(h http.Header, d Decision) {
	if !d.limited {
		return
	}
	var buf [64]byte
	b := strconv.AppendQuote(buf[:0], l.name)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
	h[HeaderRateLimitPolicy] = []string{l.policy}
	h[HeaderRateLimit] = []string{string(b)}
	if d.Reason == ReasonLimited {
		h[HeaderRetryAfter] = []string{strconv.FormatInt(max(1, ceilSeconds(d.RetryAfter)), 10)}
	}
}

// Reject writes the response for a refused decision: its status, the
// rate limit fields, a bearer challenge for a bad or missing token (RFC
// 6750 section 3), and a one-line body.
func (l *Limiter) Reject(w http.ResponseWriter, d Decision) {
	status := d.Status
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	h := w.Header()
	l.WriteHeaders(h, d)
	if l.kind == KeyJWTClaim && status == http.StatusUnauthorized {
		if d.Reason == ReasonInvalidToken {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		} else {
			h.Set("WWW-Authenticate", "Bearer")
		}
	}
	msg := http.StatusText(status)
	switch d.Reason {
	case ReasonMissingKey:
		if l.kind == KeyJWTClaim {
			msg = "missing bearer token"
		} else {
			msg = "missing " + l.header + " header"
		}
	case ReasonInvalidToken:
		msg = "invalid bearer token"
	}
	http.Error(w, msg, status)
}

// Middleware limits requests to next, answering refused ones itself.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := l.Allow(r)
		if !d.Allowed {
			l.Reject(w, d)
			return
		}
		if l.headers {
			l.WriteHeaders(w.Header(), d)
		}
		next.ServeHTTP(w, r)
	})
}
