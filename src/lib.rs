//! Morango for Rust: Learning Equality's partition-aware, peer-to-peer database sync, as an extension of SeaORM.
//!
//! Derive [`Syncable`] on your SeaORM entities, list them in a [`profile!`], and sync databases with the engine
//! re-exported here from `morango-core`. See the README for a walk-through.

pub use morango_core::*;
pub use morango_derive::*;
