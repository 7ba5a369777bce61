package config

import (
	"fmt"
	"net"
	"strings"
)

// validator collects the errors of a file, each located at its key's line.
type validator struct {
	file string
	d    *decoded
	errs []error
	// rateLimits are the [[rate_limit]] names, for the routes' references.
	rateLimits map[string]bool
}

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s:%d: %s: %s", v.file, v.d.lines.Line(key), key, fmt.Sprintf(format, args...)))
}

// failFile records an error about the file as a whole.
func (v *validator) failFile(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", v.file, fmt.Sprintf(format, args...)))
}

// has reports whether key is written in the file.
func (v *validator) has(key string) bool { return v.d.has(key) }

// setDefaults gives every absent key its default, table by table.
func (f *Forward) setDefaults() {
	f.Log.setDefaults()
	f.AccessLog.setDefaults()
	for i := range f.RateLimits {
		f.RateLimits[i].setDefaults()
	}
	for i := range f.Pools {
		f.Pools[i].setDefaults(f.decoded, fmt.Sprintf("pool[%d]", i))
	}
	for i := range f.Listeners {
		f.Listeners[i].setDefaults(f.decoded, fmt.Sprintf("listener[%d]", i))
	}
	f.Cluster.setDefaults()
}

func (f *Forward) validate(v *validator) {
	f.Log.validate(v)
	f.Admin.validate(v)
	f.Health.validate(v)
	f.AccessLog.validate(v)
	v.rateLimits = map[string]bool{}
	for i := range f.RateLimits {
		f.RateLimits[i].validate(v, fmt.Sprintf("rate_limit[%d]", i))
	}
	pools := f.validatePools(v)
	if len(f.Listeners) == 0 {
		v.failFile("no [[listener]] configured: the forwarder needs an address to accept clients on")
	}
	names := map[string]bool{}
	addrs := map[string]string{} // "tcp 127.0.0.1:80" -> listener
	for i := range f.Listeners {
		l := &f.Listeners[i]
		key := fmt.Sprintf("listener[%d]", i)
		switch {
		case l.Name == "":
			v.fail(key+".name", "missing: every listener needs a name (metrics and logs use it)")
		case names[l.Name]:
			v.fail(key+".name", "listener %q is defined twice", l.Name)
		}
		names[l.Name] = true
		l.validate(v, key, pools, addrs)
	}
	f.validateLoad(v)
}

// validatePools checks the pools and returns them by name.
func (f *Forward) validatePools(v *validator) map[string]*ForwardPool {
	if len(f.Pools) == 0 {
		v.failFile("no [[pool]] configured: the forwarder needs backends to forward to")
	}
	pools := map[string]*ForwardPool{}
	for i := range f.Pools {
		p := &f.Pools[i]
		key := fmt.Sprintf("pool[%d]", i)
		switch {
		case p.Name == "":
			v.fail(key+".name", "missing: every pool needs a name")
		case strings.ContainsAny(p.Name, "/ "):
			v.fail(key+".name", "%q: a pool name has no slash or space (it is part of URLs)", p.Name)
		case pools[p.Name] != nil:
			v.fail(key+".name", "pool %q is defined twice", p.Name)
		}
		pools[p.Name] = p
		p.validate(v, key)
	}
	return pools
}

// setDefaults lower-cases the log settings; their defaults are in place
// before decoding (an empty level is an error, not the default).
func (l *ForwardLog) setDefaults() {
	l.Level = strings.ToLower(l.Level)
	l.Format = strings.ToLower(l.Format)
}

func (l *ForwardLog) validate(v *validator) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.fail("log.level", "must be debug, info, warn or error, got %q", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		v.fail("log.format", "must be text or json, got %q", l.Format)
	}
}

func (a *ForwardAdmin) validate(v *validator) {
	if a.Listen == "off" {
		return
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		v.fail("admin.listen", "%q is not host:port (or \"off\")", a.Listen)
	}
}

func (h *ForwardHealth) validate(v *validator) {
	if h.Listen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		v.fail("health.listen", "%q is not host:port", h.Listen)
	}
}

func (a *ForwardAccessLog) setDefaults() {
	if a.Sample == nil {
		a.Sample = ptr(DefaultAccessLogSample)
	}
}

func (a *ForwardAccessLog) validate(v *validator) {
	if s := *a.Sample; s < 0 || s > 1 {
		v.fail("access_log.sample", "must be 0 to 1 (a share of requests), got %g", s)
	}
}

func ptr[T any](v T) *T { return &v }
