package adminhttp

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
)

// Refusals: the reasons a change is refused, as the audit line and the
// changes metric of the DNS node name them.
const (
	RefusedDisabled     = "disabled"     // no token configured
	RefusedUnauthorized = "unauthorized" // missing or wrong token
)

// Guard decides who may read and who may change. Changes always need the
// bearer token, and are refused outright without one configured; reads
// need it unless OpenReads.
type Guard struct {
	Token     []byte // nil or empty refuses every change
	OpenReads bool
	Log       *slog.Logger
	// Refused, when set, is told of each refused change (for a metric);
	// the audit line is written either way.
	Refused func(r *http.Request, reason string)
}

// Authorized compares the request's bearer token with g.Token in
// constant time, so the time an answer takes says nothing of the token.
func (g *Guard) Authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && len(g.Token) > 0 && subtle.ConstantTimeCompare([]byte(got), g.Token) == 1
}

// Read wraps a handler that only reads.
func (g *Guard) Read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !g.OpenReads && !g.Authorized(r) {
			Fail(w, http.StatusUnauthorized, "reads need the bearer token (admin.open_reads is false)")
			return
		}
		h(w, r)
	}
}

// Change wraps a handler that changes something: refused attempts are
// audited (logged at warn with method, path and source) and answered 403
// (changes disabled) or 401.
func (g *Guard) Change(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case len(g.Token) == 0:
			g.refuse(r, RefusedDisabled, "changes are disabled (no admin.token_file)")
			Fail(w, http.StatusForbidden, "changes are disabled: set admin.token_file")
		case !g.Authorized(r):
			g.refuse(r, RefusedUnauthorized, "missing or wrong bearer token")
			Fail(w, http.StatusUnauthorized, "missing or wrong bearer token")
		default:
			h(w, r)
		}
	}
}

func (g *Guard) refuse(r *http.Request, reason, why string) {
	if g.Refused != nil {
		g.Refused(r, reason)
	}
	if g.Log != nil {
		g.Log.Warn("audit: change refused", "method", r.Method, "path", r.URL.Path, "from", r.RemoteAddr, "reason", why)
	}
}

// Audit logs a change made through an API, at info: "audit: " and what,
// the attributes given, then who asked (the client's address) and how
// (the method).
func Audit(log *slog.Logger, r *http.Request, what string, args ...any) {
	log.Info("audit: "+what, append(args, "from", r.RemoteAddr, "method", r.Method)...)
}
