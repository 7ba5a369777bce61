package config

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// ForwardRoute is a route of a listener. On a tls listener it sends
// connections whose SNI matches one of its names to a pool: a name is
// exact ("api.example.com") or a wildcard for one label ("*.example.com").
// On an http or https listener it matches requests, by host, path,
// method, headers, cookies and query parameters (all that are set must
// match), and sends them to a pool, redirects them, or answers itself.
type ForwardRoute struct {
	SNI  []string `toml:"sni"`
	Pool string   `toml:"pool"`

	Name       string            `toml:"name"`        // in logs, metrics and the admin API; default "route-N"
	Host       []string          `toml:"host"`        // exact, or "*.example.com" for one label
	Path       string            `toml:"path"`        // exact
	PathPrefix string            `toml:"path_prefix"` // "/api/" matches /api/ and below; "/api" also /api and /apis
	PathRegexp string            `toml:"path_regexp"` // RE2, unanchored unless written so
	Method     []string          `toml:"method"`
	Header     map[string]string `toml:"header"` // name = value; "*" for any value
	Cookie     map[string]string `toml:"cookie"`
	Query      map[string]string `toml:"query"`

	StripPrefix string `toml:"strip_prefix"` // removed from the path sent to the backend
	// ReplacePath is the path sent to the backend instead; with
	// path_regexp, $1 and ${name} expand to its groups.
	ReplacePath  string          `toml:"replace_path"`
	Redirect     string          `toml:"redirect"`      // a URL; {host}, {port}, {path}, {query} and {uri} expand
	RedirectCode int             `toml:"redirect_code"` // 301, 302, 303, 307 or 308
	Respond      *ForwardRespond `toml:"respond"`       // a fixed answer
	Canary       *ForwardCanary  `toml:"canary"`        // a share of the route's requests to another pool
	RateLimit    string          `toml:"rate_limit"`    // the [[rate_limit]] policy applied first
}

// ForwardRespond is a route's fixed answer.
type ForwardRespond struct {
	Status      int    `toml:"status"`
	Body        string `toml:"body"`
	ContentType string `toml:"content_type"` // default text/plain; charset=utf-8
}

// RouteName returns the name of route j, given or default.
func (r *ForwardRoute) RouteName(j int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("route-%d", j)
}

func (r *ForwardRoute) setDefaults() {
	for k, name := range r.SNI {
		r.SNI[k] = strings.ToLower(strings.TrimSuffix(name, "."))
	}
	for k, name := range r.Host {
		r.Host[k] = strings.ToLower(strings.TrimSuffix(name, "."))
	}
	for k, m := range r.Method {
		r.Method[k] = strings.ToUpper(m)
	}
	r.Header = canonicalKeys(r.Header)
	if r.Redirect != "" && r.RedirectCode == 0 {
		r.RedirectCode = DefaultRedirectCode
	}
	if r.Respond != nil {
		r.Respond.ContentType = cmp.Or(r.Respond.ContentType, "text/plain; charset=utf-8")
	}
}

// canonicalKeys returns m with its keys as HTTP header names.
func canonicalKeys(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[http.CanonicalHeaderKey(k)] = v
	}
	return out
}

// validateSNI checks a tls listener's route, at rkey; seen holds the
// names the routes before it match.
func (r *ForwardRoute) validateSNI(v *validator, rkey string, use poolUser, seen map[string]bool) {
	use.pool(rkey+".pool", r.Pool)
	if len(r.SNI) == 0 {
		v.fail(rkey+".sni", "missing: the server names this route matches")
	}
	if r.hasHTTPMatch() {
		v.fail(rkey, "matches on requests, which only http and https listeners read: a tls route matches sni")
	}
	for _, name := range r.SNI {
		if msg := checkSNI(name); msg != "" {
			v.fail(rkey+".sni", "%q: %s", name, msg)
		}
		if seen[name] {
			v.fail(rkey+".sni", "%q is routed twice", name)
		}
		seen[name] = true
	}
}

// hasHTTPMatch reports whether a route sets any key of request routes.
func (r *ForwardRoute) hasHTTPMatch() bool {
	return r.Name != "" || len(r.Host) > 0 || r.Path != "" || r.PathPrefix != "" || r.PathRegexp != "" ||
		len(r.Method) > 0 || len(r.Header) > 0 || len(r.Cookie) > 0 || len(r.Query) > 0 ||
		r.StripPrefix != "" || r.ReplacePath != "" || r.Redirect != "" || r.Respond != nil || r.Canary != nil ||
		r.RateLimit != ""
}

// validateHTTP checks route j of an http or https listener, at rkey;
// names holds the names of the routes before it.
func (r *ForwardRoute) validateHTTP(v *validator, rkey string, j int, use poolUser, names map[string]bool) {
	name := r.RouteName(j)
	switch {
	case strings.ContainsAny(name, "/ ?#%"):
		v.fail(rkey+".name", "%q: a route name has no slash, space, ?, # or %% (it is part of URLs)", name)
	case name == "default" || name == "no_route":
		v.fail(rkey+".name", "%q names the requests no route takes: choose another name", name)
	case names[name]:
		v.fail(rkey+".name", "route %q is defined twice on this listener", name)
	}
	names[name] = true
	if len(r.SNI) > 0 {
		v.fail(rkey+".sni", "is for tls listeners; an http route matches host")
	}
	re := r.validateMatch(v, rkey)
	r.validateAction(v, rkey, re, use)
	if c := r.Canary; c != nil {
		c.validate(v, rkey+".canary", r.Pool, use)
	}
	if r.RateLimit != "" && !v.rateLimits[r.RateLimit] {
		v.fail(rkey+".rate_limit", "no [[rate_limit]] is named %q", r.RateLimit)
	}
}

// validateMatch checks what the route matches, and returns its compiled
// path_regexp, if any.
func (r *ForwardRoute) validateMatch(v *validator, rkey string) *regexp.Regexp {
	for _, h := range r.Host {
		if msg := checkSNI(h); msg != "" {
			v.fail(rkey+".host", "%q: %s", h, msg)
		}
	}
	if count(r.Path != "", r.PathPrefix != "", r.PathRegexp != "") > 1 {
		v.fail(rkey, "path, path_prefix and path_regexp exclude one another: set one")
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		v.fail(rkey+".path", "%q must start with /", r.Path)
	}
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		v.fail(rkey+".path_prefix", "%q must start with /", r.PathPrefix)
	}
	var re *regexp.Regexp
	if r.PathRegexp != "" {
		var err error
		if re, err = regexp.Compile(r.PathRegexp); err != nil {
			v.fail(rkey+".path_regexp", "%v", err)
		}
	}
	for _, m := range r.Method {
		if m == "" || strings.ContainsAny(m, " \t/:") {
			v.fail(rkey+".method", "%q is not a method", m)
		}
	}
	for name := range r.Header {
		if !validHeaderName(name) {
			v.fail(rkey+".header", "%q is not a header name", name)
		}
	}
	for name := range r.Cookie {
		if name == "" || strings.ContainsAny(name, " ;=,") {
			v.fail(rkey+".cookie", "%q is not a cookie name", name)
		}
	}
	return re
}

// validateAction checks what the route does: forward to a pool (changing
// the path or not), redirect, or answer itself.
func (r *ForwardRoute) validateAction(v *validator, rkey string, re *regexp.Regexp, use poolUser) {
	if count(r.Pool != "", r.Redirect != "", r.Respond != nil) != 1 {
		v.fail(rkey, "a route does one thing: set exactly one of pool, redirect and respond")
	}
	if r.Pool != "" {
		use.pool(rkey+".pool", r.Pool)
	}
	if r.Pool == "" && (r.StripPrefix != "" || r.ReplacePath != "" || r.Canary != nil) {
		v.fail(rkey, "strip_prefix, replace_path and canary change what is sent to a pool: they need pool")
	}
	if r.StripPrefix != "" && !strings.HasPrefix(r.StripPrefix, "/") {
		v.fail(rkey+".strip_prefix", "%q must start with /", r.StripPrefix)
	}
	if r.ReplacePath != "" {
		if r.StripPrefix != "" {
			v.fail(rkey+".replace_path", "set strip_prefix or replace_path, not both")
		}
		if !strings.HasPrefix(r.ReplacePath, "/") && !(re != nil && strings.HasPrefix(r.ReplacePath, "$")) {
			v.fail(rkey+".replace_path", "%q must start with /", r.ReplacePath)
		}
	}
	if r.Redirect != "" {
		if !slices.Contains(redirectCodes, r.RedirectCode) {
			v.fail(rkey+".redirect_code", "must be 301, 302, 303, 307 or 308, got %d", r.RedirectCode)
		}
		if !strings.Contains(r.Redirect, "://") && !strings.HasPrefix(r.Redirect, "/") {
			v.fail(rkey+".redirect", "%q: a URL (https://{host}{uri}) or a path (/new{uri})", r.Redirect)
		}
	} else if r.RedirectCode != 0 {
		v.fail(rkey+".redirect_code", "needs redirect")
	}
	if rs := r.Respond; rs != nil && (rs.Status < 200 || rs.Status > 599) {
		v.fail(rkey+".respond", "status must be 200 to 599, got %d", rs.Status)
	}
}

// count returns how many of set are true.
func count(set ...bool) int {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n
}
