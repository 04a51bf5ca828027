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

/// Runs `$scenario(python, Direction, Caps, Backend)` for both directions and each capability set named, with the
/// Rust side on `$backend`: `$scenario::$caps::{rust_client_python_server, python_client_rust_server}`.
macro_rules! matrix {
    ($module:ident = $scenario:ident on $backend:ident: $($caps:ident = $value:ident),+ $(,)?) => {
        mod $module {$(
            mod $caps {
                use super::super::*;
                async fn run(direction: Direction) {
                    let Some(python) = python::python() else { return };
                    if !Backend::$backend.enabled() {
                        return eprintln!("skipped: {:?} not in MORANGO_TEST_BACKENDS", Backend::$backend);
                    }
                    $scenario(&python, direction, Caps::$value, Backend::$backend).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn rust_client_python_server() {
                    run(Direction::RustClient).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn python_client_rust_server() {
                    run(Direction::PythonClient).await;
                }
            }
        )+}
    };
}

mod conflicts;
mod pair;
mod python;
mod rust_instance;
mod scenarios;
mod state;
