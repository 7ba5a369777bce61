// Command idleconns measures what idle TCP connections cost a server in
// memory: it reads the resident set of the server's processes, opens n
// connections to its address on loopback and keeps them idle, reads the
// resident set again once it has settled, closes them all, and prints the
// growth per 10,000 connections. test/perf/compare.sh -p mem runs it
// against each proxy and Meridian's DNS TCP listener.
//
//	idleconns -addr 127.0.0.33:8081 -pids 1234 -n 5000
//
// Kernel socket buffers are not in a process's resident set, so this is
// the server's own memory per connection: its buffers, goroutines or
// connection structs.
package main
