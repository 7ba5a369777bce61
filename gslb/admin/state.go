package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Overrides are the operator's drains, as persisted in the state file.
type Overrides struct {
	Version int      `json:"version"` // stateVersion: files from newer versions are refused
	Regions []string `json:"drained_regions"`
	Targets []string `json:"drained_targets"`
	// Runtime weights: pools by gslb.PoolKey ("name./TYPE/pool"), targets by ID.
	PoolWeights   map[string]uint32 `json:"pool_weights,omitempty"`
	TargetWeights map[string]uint32 `json:"target_weights,omitempty"`
	// Stamp (ns since 1970) and Origin (the node's name) order changes
	// made on different nodes of a cluster: the newest wins everywhere.
	Stamp  uint64 `json:"stamp,omitempty"`
	Origin string `json:"origin,omitempty"`
}

// newer reports whether o replaces old.
func (o Overrides) newer(old Overrides) bool {
	return o.Stamp > old.Stamp || o.Stamp == old.Stamp && o.Origin > old.Origin
}

const stateVersion = 1

// set returns o with name added to or removed from list, and whether
// anything changed.
func setIn(list []string, name string, on bool) ([]string, bool) {
	i := slices.Index(list, name)
	switch {
	case on && i < 0:
		out := append(slices.Clone(list), name)
		slices.Sort(out)
		return out, true
	case !on && i >= 0:
		return slices.Delete(slices.Clone(list), i, i+1), true
	}
	return list, false
}

// loadState reads the state file; a missing file is no overrides.
func loadState(path string) (Overrides, error) {
	o := Overrides{Version: stateVersion}
	if path == "" {
		return o, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("read admin state: %w", err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("admin state %s: %w", path, err)
	}
	if o.Version > stateVersion {
		return o, fmt.Errorf("admin state %s: version %d is newer than this meridian understands (%d)", path, o.Version, stateVersion)
	}
	o.Version = stateVersion
	return o, nil
}

// saveState writes the state file atomically: a temporary file in the
// same folder, synced, then renamed over the old one, so a crash leaves
// either the old state or the new, never half of one.
func saveState(path string, o Overrides) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".meridian-state-*")
	if err != nil {
		return fmt.Errorf("write admin state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write admin state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write admin state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write admin state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write admin state: %w", err)
	}
	return nil
}
