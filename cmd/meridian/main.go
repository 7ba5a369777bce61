package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: meridian <command> [flags]

commands:
  serve    serve DNS (-config FILE; without it, the embedded quickstart; -admin-token-file FILE)
  probe    run a probe agent, a vantage of a cluster (-seeds, -vantage, -key-file)
  forward  run the forwarder (L4, L7) in front of a region's backends (-config FILE; -check validates)
  check    validate a configuration and its zone files, or a forwarder's file (-config FILE)
  explain  show how a dynamic record is decided for a client (-client IP[/PREFIX] NAME [TYPE])
  dnssec   make a zone's signing key (keygen) and print its DS records (ds)
  simulate what-if: which clients move where if regions go down, drain, reweigh or fill up (-down eu-west, -load us-east=120); -drill for game days
  status   show regions and targets of a running server (-admin URL, -json)
  version  print the version

Run "meridian <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "forward":
		return forward(ctx, args[1:], stdout, stderr)
	case "probe":
		return probe(ctx, args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "explain":
		return explain(args[1:], stdout, stderr)
	case "simulate":
		return simulate(ctx, args[1:], stdout, stderr)
	case "status":
		return status(args[1:], stdout, stderr)
	case "dnssec":
		return dnssecCmd(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "meridian", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "meridian: unknown command %q\n\n%s", args[0], usage)
	return 2
}
