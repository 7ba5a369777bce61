// Package admin is Meridian's admin HTTP API: operators read regions,
// targets, records and zones, ask for explanations, and drain or restore
// regions and targets. Reads may be open; every change needs the bearer
// token, is written to the audit log and persisted in the state file, so
// drains survive reloads and restarts.
//
// The package holds the overrides; the engine applies them. It reads the
// serving state through the small Source interface, so it never reaches
// into the DNS front or the checks directly.
package admin
