// Package e2e runs the real meridian binary on 127.0.0.1 and checks what a
// user sees through dig and the command line. The handler's own unit tests
// call it directly; these catch what only the whole program does: flags,
// config files, sockets, the listener's own replies, signals and logs.
// dig (Debian's dnsutils) must be installed; .ci/run installs it.
package e2e
