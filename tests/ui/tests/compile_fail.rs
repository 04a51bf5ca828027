//! Compile-time diagnostics of `#[derive(Syncable)]`, `#[derive(SyncableRelations)]` and `profile!`.
//!
//! Every file under `fail/` is one mistake a user can make; its `.stderr` is the message they see. Files under
//! `pass/` must compile. Refresh snapshots with `TRYBUILD=overwrite cargo test -p morango-ui-tests` and read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/pass/*.rs");
    cases.compile_fail("tests/fail/*.rs");
}
