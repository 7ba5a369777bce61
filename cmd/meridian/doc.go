// Command meridian is Meridian's single binary: the authoritative DNS
// server and the tools around it. Each subcommand only parses its flags,
// loads the configuration and wires the packages that do the work
// (gslb/config, zones, gslb/dnsfront); behaviour lives in those packages.
package main
