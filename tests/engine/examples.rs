//! The README's example and the benchmark program run to the end. Each checks its own outcome (the example that both
//! stores hold identical versions, the benchmark that the peer received every record) and exits non-zero otherwise.
//!
//! `cargo test --workspace` builds the examples before it runs any test; a run that did not build them (`cargo test
//! --test engine`) skips these and says so.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

/// The example binary `name` of this build (`target/<profile>/examples/<name>`), if it was built.
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe.parent()?.parent()?.join("examples").join(name);
    if path.exists() {
        return Some(path);
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to stderr: the harness captures `eprintln!` of passing tests, and a skip must be seen.
        let _ = writeln!(std::io::stderr(), "example tests skipped: examples not built (run `cargo test --workspace`)");
    });
    None
}

/// Runs an example in a temporary directory (its working directory and `TMPDIR`); returns its standard output.
fn run(name: &str, args: &[&str]) -> Option<String> {
    let path = example(name)?;
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = Command::new(&path)
        .args(args)
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .env_remove("SCHOOL_DB")
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}

#[test]
fn the_school_example_syncs_both_ways_and_converges() {
    let Some(out) = run("school", &[]) else { return };
    assert!(out.contains("the devices converged"), "{out}");
    assert!(out.contains("conflicting_serialized_data"), "the example shows a conflict:\n{out}");
}

#[test]
fn the_benchmark_program_syncs_every_record() {
    let Some(out) = run("bench_sync", &["1000"]) else { return };
    assert!(out.contains("first sync / floor"), "{out}");
}
