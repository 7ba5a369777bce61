// Package docs holds Meridian's documentation pages (the Markdown files in
// this folder) and the tests that hold them to the code: every
// configuration key the decoder accepts is documented in configuration.md
// and every documented key exists; every metric the code registers is
// documented in api.md; every relative link resolves; and the import rules
// written in architecture.md hold for the package graph `go list` reports.
//
// The package has no code of its own. It lives beside the pages so that a
// change to the rules or the reference and the test that enforces it are
// one diff, and so that it can import what it checks (gslb/config) without
// becoming a dependency of anything else.
package docs
