//! Filter-specific instance counters (spec §6).
