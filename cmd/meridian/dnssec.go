package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/miekg/dns"
)

const dnssecUsage = `usage: meridian dnssec <command> [flags]

commands:
  keygen  make a zone's signing key (CSK) in BIND's format (-zone NAME -dir DIR [-algorithm ecdsap256sha256|ed25519])
  ds      print the DS records of a signed zone's keys, for its parent (-config FILE ZONE)
`

// dnssecCmd runs the dnssec subcommands.
func dnssecCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dnssecUsage)
		return 2
	}
	switch args[0] {
	case "keygen":
		return keygen(args[1:], stdout, stderr)
	case "ds":
		return printDS(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, dnssecUsage)
		return 0
	}
	fmt.Fprintf(stderr, "meridian dnssec: unknown command %q\n\n%s", args[0], dnssecUsage)
	return 2
}

// keygen writes a new key and prints its file name and DS record.
func keygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dnssec keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	zone := fs.String("zone", "", "the zone the key signs (required)")
	dir := fs.String("dir", "keys", "folder the key files are written to")
	alg := fs.String("algorithm", dnssec.DefaultAlgorithm, "ecdsap256sha256 or ed25519")
	ttl := fs.Uint("ttl", 3600, "TTL of the DNSKEY record in the .key file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *zone == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "meridian dnssec keygen: -zone is required, and nothing else")
		return 2
	}
	k, err := dnssec.Generate(*zone, *alg, *dir, uint32(*ttl), time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "meridian dnssec keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", strings.TrimSuffix(k.File, ".key"))
	fmt.Fprintf(stdout, "key tag %d; the DS record for the parent:\n%s\n", k.Tag(), k.DNSKEY.ToDS(dns.SHA256))
	return 0
}

// printDS prints the DS records of every key of a signed zone.
func printDS(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dnssec ds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: meridian dnssec ds -config FILE ZONE")
		return 2
	}
	cfg, _, err := loadConfig(*path)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	name := strings.ToLower(dns.Fqdn(fs.Arg(0)))
	sg := cfg.Signers()[name]
	if sg == nil {
		fmt.Fprintf(stderr, "meridian dnssec ds: zone %s is not signed in %s (no dnssec table)\n", name, *path)
		return 1
	}
	for _, ds := range sg.DS() {
		fmt.Fprintln(stdout, ds.String())
	}
	return 0
}
