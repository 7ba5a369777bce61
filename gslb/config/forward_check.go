package config

import (
	"cmp"
	"github.com/meridian-gslb/meridian/internal/tomlfile"
	"reflect"
	"strings"
	"time"
)

// The forwarder's configuration (package gslb/forward/config) writes its
// pools' active checks as [pool.check] tables of this package's Check type;
// these are what it uses of them.

// minCheckInterval is the shortest check.interval, for DNS nodes and the
// forwarder.
const minCheckInterval = 10 * time.Millisecond

// SetDefaults gives ck the defaults of an absent key. A GSLB pool's
// [record.pool.check] and a forwarder pool's [pool.check] share them but
// for the port, which each sets itself: a forwarder checks its backend's
// own port unless told otherwise, whatever the type.
func (ck *Check) SetDefaults() {
	ck.Type = strings.ToLower(cmp.Or(ck.Type, "tcp"))
	if ck.Interval.Duration == 0 {
		ck.Interval.Duration = DefaultCheckInterval
	}
	if ck.Timeout.Duration == 0 {
		ck.Timeout.Duration = min(DefaultCheckTimeout, ck.Interval.Duration)
	}
	ck.Rise = cmp.Or(ck.Rise, DefaultCheckRise)
	ck.Fall = cmp.Or(ck.Fall, DefaultCheckFall)
	switch ck.Type {
	case "http", "https":
		ck.Method = strings.ToUpper(cmp.Or(ck.Method, DefaultCheckMethod))
		ck.Path = cmp.Or(ck.Path, "/")
	case "dns":
		ck.QueryType = strings.ToUpper(cmp.Or(ck.QueryType, DefaultDNSQueryType))
		ck.Rcode = strings.ToUpper(cmp.Or(ck.Rcode, DefaultDNSRcode))
	}
}

// ValidateCheck checks ck, written at key ("pool[0].check") of file;
// lineOf gives the line a key is written on (or its table's).
func ValidateCheck(file, key string, ck Check, lineOf func(key string) int) []error {
	lines := tomlfile.At(key, lineOf(key))
	t := reflect.TypeFor[Check]()
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("toml"); name != "" {
			k := key + "." + name
			lines = append(lines, tomlfile.At(k, lineOf(k))...)
		}
	}
	v := validator{file: file, lines: lines}
	ck.validate(&v, key)
	return v.errs
}

// CheckSpecOf is ck's spec, with its files resolved against the folder of
// the configuration file at path. The caller fills in Target and Addr.
func CheckSpecOf(path string, ck Check) CheckSpec {
	return (&Config{Path: path}).checkSpec(ck)
}
