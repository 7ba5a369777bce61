// Package config decodes Meridian's TOML configuration once into typed,
// validated structs, so that nothing else in the program sees raw TOML.
//
// Decoding is strict: a key the program does not know is an error, and every
// error names the file, the line and the key, because a typo in a
// nameserver's configuration should stop a deploy, not be ignored.
// Load runs the three steps in order: decode, apply defaults, validate.
package config
