// Package dnstap logs queries and responses in the dnstap format (protocol
// buffers in Frame Streams), to a Unix socket, a TCP collector or a file,
// as BIND, Knot, Unbound and CoreDNS do, with the GSLB decision behind
// each dynamic answer in the frame's extra field.
//
// The answer path never waits for the collector: it copies a sampled
// query and its response into a bank of messages of fixed size; a writer
// goroutine swaps the bank for its other one every millisecond, encodes
// and writes the frames, and reconnects when the collector goes away.
// With the bank full (the collector slow or gone) the message is dropped
// and counted. The package owns [server.dnstap]: its settings, defaults
// and validation.
package dnstap
