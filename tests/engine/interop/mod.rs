//! Interoperability with Python Morango 0.8.15 (the Django project in `tests/interop/`): every scenario runs in
//! both directions — the Rust client against the Python server, and Python Morango's own client
//! (`MorangoProfileController` / `NetworkSyncConnection`) against the Rust server — with the Python side's
//! capabilities on and off, and after each step the two stores are compared record by record.
//!
//! The tests need the venv `.ci/run` creates (`tests/interop/.venv`, or `MORANGO_INTEROP_PYTHON`); without it
//! each prints why it was skipped and passes.

#[path = "../../../examples/school/entities.rs"]
#[allow(dead_code)]
pub mod entities;

mod pair;
mod python;
mod rust_instance;
mod scenarios;
mod state;
