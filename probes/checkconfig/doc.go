// Package checkconfig is the configuration of a health check as both
// configuration files write it ([record.pool.check] in meridian.toml,
// [pool.check] in the forwarder's): its TOML table, defaults and
// validation, and the probes.CheckSpec it becomes.
package checkconfig
