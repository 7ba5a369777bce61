package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/BurntSushi/toml"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/node"
)

// check validates a configuration and its zones without serving: exit 0
// when valid, 1 with every error listed when not, 2 for bad flags. A
// forwarder's file (meridian forward's) is recognised by its tables and
// checked as meridian forward -check would.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded quickstart)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path != "" && isForwarderFile(*path) {
		return checkForward(*path, stdout, stderr)
	}
	cfg, set, err := loadConfig(*path)
	var parts *node.Parts
	if err == nil {
		// What serve would do next.
		parts, err = node.Check(cfg, set, version())
	}
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	// Warnings do not fail the check: the configuration serves, though
	// not as well as its author may think.
	for _, w := range parts.Warnings() {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	for _, z := range set.Zones() {
		fmt.Fprintf(stdout, "zone %s: serial %d, %d records\n", z.Origin(), z.Serial(), z.Records())
	}
	fmt.Fprintf(stdout, "%s: ok\n", cfg.Path)
	return 0
}

// Top-level tables only one of the two files has.
var (
	forwarderTables = []string{"pool", "listener", "access_log", "rate_limit"}
	dnsTables       = []string{"server", "zone", "region", "record", "geo", "cluster"}
)

// isForwarderFile reports whether path reads as a forwarder's file: one
// of its tables and none of meridian.toml's. A file that does not parse
// is left to the DNS node's check, whose errors say where.
func isForwarderFile(path string) bool {
	src, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var top map[string]any
	if _, err := toml.Decode(string(src), &top); err != nil {
		return false
	}
	has := func(keys []string) bool {
		for _, k := range keys {
			if _, ok := top[k]; ok {
				return true
			}
		}
		return false
	}
	return has(forwarderTables) && !has(dnsTables)
}

// checkForward validates a forwarder's file: every error, each with
// file:line: key.
func checkForward(path string, stdout, stderr io.Writer) int {
	cfg, err := config.LoadForward(path)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (forwarder: %d pools, %d listeners)\n", cfg.Path, len(cfg.Pools), len(cfg.Listeners))
	return 0
}
