//! Filters: sets of partition prefixes (spec §3.5).
