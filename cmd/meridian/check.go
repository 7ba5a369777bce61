package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/meridian-gslb/meridian/gslb/node"
)

// check validates a configuration and its zones without serving: exit 0
// when valid, 1 with every error listed when not, 2 for bad flags.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the embedded quickstart)")
	if err := fs.Parse(args); err != nil {
		return 2
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
