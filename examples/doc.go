// Package examples holds the runnable configurations the README uses. The
// quickstart is embedded in the binary, so `meridian serve` without -config
// serves it from any folder and a fresh checkout needs no outside files.
package examples

import "embed"

// Quickstart holds quickstart/meridian.toml and the zone files it names.
//
//go:embed quickstart
var Quickstart embed.FS

// QuickstartConfig is the path of the quickstart configuration inside Quickstart.
const QuickstartConfig = "quickstart/meridian.toml"
