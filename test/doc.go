// Package e2e holds Meridian's end-to-end tests: they build the real
// binary, run it on free loopback ports with a copy of the quickstart, and
// check what an operator sees: dig's answers, exit codes, logs, and the
// behaviour on SIGHUP and SIGTERM. dig (Debian's dnsutils) must be installed.
package e2e
