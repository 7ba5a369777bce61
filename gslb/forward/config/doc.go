// Package config is the forwarder's configuration (meridian forward): the
// TOML schema of its pools, backends, listeners, routes, rate limits and
// canaries, their defaults and their validation.
//
// A file is read in three steps, once: decode (ParseForward), default and
// validate. Each TOML table has its type here, and each type its own
// setDefaults and validate methods, so a table's rules sit beside its
// fields. Whether a key is written at all, for the keys whose zero value
// means something of its own (drain_timeout = "0s"), is asked of the
// decoder's result, so a key counts however it is written: bare, quoted,
// dotted or inside an inline table. Errors name the file, the line and the
// key ("fwd.toml:12: pool[1].balance: ..."); lines.go places keys on their
// lines for those messages.
//
// A pool's active check, [pool.check], is a GSLB pool's check type, from
// package gslb/config.
package config
