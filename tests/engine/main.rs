//! Morango's documented scenarios, each on SQLite and on PostgreSQL, syncing real databases in process.

mod schema;
mod support;

mod concurrency;
mod convergence;
mod dense;
mod examples;
mod faults;
mod fixtures;
mod interop;
mod network;
mod order;
mod resume;
mod runtime_checks;
mod scale_out;
mod scenarios;
mod shared_table;
mod stages;
mod tracking;
mod vectors;
