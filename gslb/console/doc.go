// Package console is the operator console in the browser: plain HTML,
// CSS and a little JavaScript, embedded in the binary and served by the
// DNS node's and the forwarder's admin servers at their own "/".
//
// The pages hold no data: their scripts read the JSON API the same server
// already serves (regions, targets, explain, pools...) and send changes
// to it with the bearer token the operator types, so the console can
// neither show nor change more than the API allows. There is no build
// step and no outside asset (no CDN, font or map tile): an admin address
// on a management network works without the internet. Every string the
// API returns is put into the page as text, never as markup.
package console
