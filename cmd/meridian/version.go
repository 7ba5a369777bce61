package main

import "runtime/debug"

// buildVersion is set at link time by the Makefile
// (-ldflags "-X main.buildVersion=..."); builds without it report the module
// version and VCS revision Go recorded.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
