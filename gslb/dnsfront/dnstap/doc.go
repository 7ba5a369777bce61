// Package dnstap logs queries and responses in the dnstap format (protocol
// buffers in Frame Streams), to a Unix socket, a TCP collector or a file,
// as BIND, Knot, Unbound and CoreDNS do, with the GSLB decision behind
// each dynamic answer in the frame's extra field.
//
// The answer path never waits for the collector: it copies a sampled
// query and its response into a message taken from a fixed free list and
// queues it; a writer goroutine encodes and writes the frames, and
// reconnects when the collector goes away. With no free message (the
// collector slow or gone) the message is dropped and counted. The package
// owns [server.dnstap]: its settings, defaults and validation.
package dnstap
