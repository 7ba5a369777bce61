package main

import (
	"github.com/meridian-gslb/meridian/examples"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/zones"
)

// loadConfig reads the configuration at path, or the embedded quickstart
// when path is empty, together with its zones.
func loadConfig(path string) (*config.Config, *zones.Set, error) {
	var (
		cfg *config.Config
		err error
	)
	if path == "" {
		cfg, err = config.LoadFS(examples.Quickstart, examples.QuickstartConfig)
	} else {
		cfg, err = config.Load(path)
	}
	if err != nil {
		return nil, nil, err
	}
	set, err := cfg.LoadZones()
	if err != nil {
		return nil, nil, err
	}
	return cfg, set, nil
}
