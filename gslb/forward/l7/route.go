package l7

import (
	"cmp"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/meridian-gslb/meridian/gslb/forward/canary"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
)

// Routes of http and https listeners are tried most specific first, and
// the first whose conditions all hold takes the request:
//
//  1. by host: routes naming the request's host exactly, then those whose
//     wildcard matches it ("*.example.com" is one label, as in
//     certificates), then those that name no host;
//  2. among those, by path: an exact path, then path prefixes longest
//     first, then regular expressions, then routes with no path;
//  3. then the route with more other conditions (method, headers,
//     cookies, query parameters) first;
//  4. and among equals, in the order written.
//
// A request no route takes goes to the listener's pool, or is answered
// 404 when the listener has none.

// pathKind orders path conditions by specificity, most specific highest.
type pathKind uint8

const (
	pathAny pathKind = iota
	pathRegexp
	pathPrefix
	pathExact
)

// route is a compiled request route.
type route struct {
	name     string
	index    int // in the file, the last tie-breaker
	pathKind pathKind
	path     string // exact path or prefix
	re       *regexp.Regexp
	methods  []string
	headers  []match
	cookies  []match
	query    []match

	// What it does: one of pool, redirect and respond.
	pool        string
	canary      string // the canary's pool, or ""
	filePercent int32  // the canary's percent in the file
	stripPrefix string
	replacePath string
	redirect    string
	code        int
	respond     *config.ForwardRespond

	st        *routeState
	handler   http.Handler  // the action, inside the route's middleware
	fast      bool          // the HTTP/1.1 fast path may take its requests (fastRoute)
	guard     *canary.Guard // the canary's guard, if any
	guardSpec guardSpec
	rateLimit string // the policy's name
}

// match is a condition on a header, cookie or query parameter; value "*"
// asks only that it be present.
type match struct{ name, value string }

func (m match) holds(vals []string, ok bool) bool {
	if !ok {
		return false
	}
	if m.value == "*" {
		return true
	}
	return slices.Contains(vals, m.value)
}

// conditions counts the route's conditions besides host and path, for
// precedence.
func (rt *route) conditions() int {
	n := len(rt.headers) + len(rt.cookies) + len(rt.query)
	if len(rt.methods) > 0 {
		n++
	}
	return n
}

// routeTable is an http listener's routes, grouped by host for the first
// step of the precedence and sorted within each group for the rest.
type routeTable struct {
	exact map[string][]*route // by host
	wild  map[string][]*route // by the parent of the wildcard: "example.com" for *.example.com
	any   []*route
	all   []*route // in the file's order, for listings
}

func compileRoute(j int, rc *config.ForwardRoute) *route {
	rt := &route{
		name: rc.RouteName(j), index: j, methods: rc.Method,
		pool: rc.Pool, stripPrefix: rc.StripPrefix, replacePath: rc.ReplacePath,
		redirect: rc.Redirect, code: rc.RedirectCode, respond: rc.Respond, rateLimit: rc.RateLimit,
	}
	switch {
	case rc.Path != "":
		rt.pathKind, rt.path = pathExact, rc.Path
	case rc.PathPrefix != "":
		rt.pathKind, rt.path = pathPrefix, rc.PathPrefix
	case rc.PathRegexp != "":
		rt.pathKind, rt.re = pathRegexp, regexp.MustCompile(rc.PathRegexp) // validated
	}
	if rc.Canary != nil {
		rt.canary = rc.Canary.Pool
	}
	rt.headers = matches(rc.Header)
	rt.cookies = matches(rc.Cookie)
	rt.query = matches(rc.Query)
	return rt
}

// matches returns m's conditions in a fixed order.
func matches(m map[string]string) []match {
	out := make([]match, 0, len(m))
	for k, v := range m {
		out = append(out, match{k, v})
	}
	slices.SortFunc(out, func(a, b match) int { return strings.Compare(a.name, b.name) })
	return out
}

// newRouteTable groups routes by the hosts they name.
func newRouteTable(routes []*route, hosts [][]string) *routeTable {
	t := &routeTable{exact: map[string][]*route{}, wild: map[string][]*route{}, all: routes}
	for i, rt := range routes {
		if len(hosts[i]) == 0 {
			t.any = append(t.any, rt)
			continue
		}
		for _, h := range hosts[i] {
			if parent, ok := strings.CutPrefix(h, "*."); ok {
				t.wild[parent] = append(t.wild[parent], rt)
			} else {
				t.exact[h] = append(t.exact[h], rt)
			}
		}
	}
	for _, group := range t.exact {
		sortRoutes(group)
	}
	for _, group := range t.wild {
		sortRoutes(group)
	}
	sortRoutes(t.any)
	return t
}

// sortRoutes orders one host group by the rest of the precedence.
func sortRoutes(rs []*route) {
	slices.SortStableFunc(rs, func(a, b *route) int {
		if c := cmp.Compare(b.pathKind, a.pathKind); c != 0 {
			return c
		}
		if a.pathKind == pathPrefix {
			if c := cmp.Compare(len(b.path), len(a.path)); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(b.conditions(), a.conditions()); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
}

// requestView is what routing reads of a request, whichever server
// parsed it: net/http's, or the HTTP/1.1 fast path's (h1.go).
type requestView interface {
	method() string
	path() string // unescaped
	// hasHeader and hasQuery report whether the request carries the
	// header (by canonical name) or query parameter with the value; "*"
	// asks only that it be present.
	hasHeader(name, value string) bool
	hasQuery(name, value string) bool
	cookie(name string) (string, bool)
	header(name string) string // the first value, or ""
}

// stdRequest is a net/http request as routing reads it.
type stdRequest struct {
	r           *http.Request
	q           url.Values     // parsed once, if a route asks
	cookies     []*http.Cookie // likewise
	cookiesRead bool
}

func (s *stdRequest) method() string { return s.r.Method }
func (s *stdRequest) path() string   { return s.r.URL.Path }

func (s *stdRequest) hasHeader(name, value string) bool {
	vals, ok := s.r.Header[name]
	return match{name, value}.holds(vals, ok)
}

func (s *stdRequest) header(name string) string { return s.r.Header.Get(name) }

func (s *stdRequest) cookie(name string) (string, bool) {
	if !s.cookiesRead {
		s.cookies, s.cookiesRead = s.r.Cookies(), true
	}
	return cookieValue(s.cookies, name)
}

// cookieValue is the value of the first cookie named name, as
// Request.Cookie finds it.
func cookieValue(cookies []*http.Cookie, name string) (string, bool) {
	for _, c := range cookies {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

func (s *stdRequest) hasQuery(name, value string) bool {
	if s.q == nil {
		s.q = s.r.URL.Query()
	}
	vals, ok := s.q[name]
	return match{name, value}.holds(vals, ok)
}

// find returns the route that takes the request, or nil. host is its
// host, lower case, without port or final dot.
func (t *routeTable) find(r requestView, host string) *route {
	if len(t.all) == 0 {
		return nil
	}
	if rt := firstMatch(t.exact[host], r); rt != nil {
		return rt
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		if rt := firstMatch(t.wild[parent], r); rt != nil {
			return rt
		}
	}
	return firstMatch(t.any, r)
}

func firstMatch(rs []*route, r requestView) *route {
	for _, rt := range rs {
		if rt.matches(r) {
			return rt
		}
	}
	return nil
}

func (rt *route) matches(r requestView) bool {
	p := r.path()
	switch rt.pathKind {
	case pathExact:
		if p != rt.path {
			return false
		}
	case pathPrefix:
		if !strings.HasPrefix(p, rt.path) {
			return false
		}
	case pathRegexp:
		if !rt.re.MatchString(p) {
			return false
		}
	}
	if len(rt.methods) > 0 && !slices.Contains(rt.methods, r.method()) {
		return false
	}
	for _, m := range rt.headers {
		if !r.hasHeader(m.name, m.value) {
			return false
		}
	}
	for _, m := range rt.cookies {
		v, ok := r.cookie(m.name)
		if !ok || (m.value != "*" && v != m.value) {
			return false
		}
	}
	for _, m := range rt.query {
		if !r.hasQuery(m.name, m.value) {
			return false
		}
	}
	return true
}

// rewritePath returns the escaped path the backend gets, given the
// client's, or "" to send the client's unchanged.
func (rt *route) rewritePath(esc string) string {
	switch {
	case rt.stripPrefix != "":
		rest, ok := strings.CutPrefix(esc, rt.stripPrefix)
		if !ok {
			return ""
		}
		if !strings.HasPrefix(rest, "/") {
			rest = "/" + rest
		}
		return rest
	case rt.replacePath != "" && rt.re != nil:
		return rt.re.ReplaceAllString(esc, rt.replacePath)
	case rt.replacePath != "":
		return rt.replacePath
	}
	return ""
}

// setPath sets u's path from an escaped one.
func setPath(u *url.URL, escaped string) {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		// Not a valid escape: send it as written rather than guess.
		u.Path, u.RawPath = escaped, ""
		return
	}
	u.Path, u.RawPath = p, escaped
}

// redirectURL expands the route's redirect for r: {host} (without port),
// {port}, {path} (escaped), {query} (without "?") and {uri} (path and
// query, as the client sent them).
func (rt *route) redirectURL(r *http.Request, host string) string {
	port := ""
	if i := strings.LastIndexByte(r.Host, ':'); i >= 0 && !strings.HasSuffix(r.Host, "]") {
		port = r.Host[i+1:]
	}
	uri := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		uri += "?" + r.URL.RawQuery
	}
	rep := strings.NewReplacer("{host}", host, "{port}", port, "{path}", r.URL.EscapedPath(), "{query}", r.URL.RawQuery, "{uri}", uri)
	return rep.Replace(rt.redirect)
}

// requestHost returns r's host as routes and certificates name it: lower
// case, without port or final dot.
func requestHost(r *http.Request) string { return hostName(r.Host) }

// hostName returns a Host header's host: lower case, without port or
// final dot.
func hostName(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
