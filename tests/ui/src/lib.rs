//! Compile-fail tests for `#[derive(Syncable)]` live in `tests/`.
