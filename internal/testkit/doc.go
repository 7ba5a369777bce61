// Package testkit holds the helpers that tests across Meridian share: a
// log buffer safe for concurrent writers, polling until a condition holds,
// free loopback ports and a certificate authority for TLS tests.
//
// It is imported only by _test.go files; the architecture test keeps it so.
package testkit
