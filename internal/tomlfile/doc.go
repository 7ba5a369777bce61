// Package tomlfile decodes a configuration file strictly, as the DNS node's
// and the forwarder's configurations both need: every error says file,
// line and key; a key nothing decodes into is an error; and it says which
// keys are written (a key whose zero value means something of its own),
// from the decoder's own reading, bare, quoted, dotted or inline alike.
// Key lines come from a small scanner of the source, since the TOML
// decoder keeps positions to itself; the scanner decides nothing else.
package tomlfile
