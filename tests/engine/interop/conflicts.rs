//! Conflicts Python Morango resolves its own way, in both directions: a hard deletion against an edit (on Python's
//! SQLite and PostgreSQL backends, which write different record shapes for it), and an edit against an edit relayed
//! through a third instance.

use std::path::Path;

use super::pair::{As, Direction, Pair, Side};
use super::python::{self, Caps, PyDb, PyInstance};
use super::scenarios::{admin_sync, assert_nothing_moved};
use super::state::{State, assert_same, assert_same_except};
use crate::support::Backend;

matrix!(a_hard_deletion_meets_an_edit = a_hard_deletion_meets_an_edit on Sqlite: all = ALL, legacy = LEGACY);
matrix!(a_hard_deletion_meets_an_edit_python_on_postgres = a_hard_deletion_meets_an_edit_python_on_postgres on Sqlite:
    all = ALL);

async fn a_hard_deletion_meets_an_edit(python: &Path, direction: Direction, caps: Caps, backend: Backend) {
    hard_deletion_against_edit(python, direction, caps, backend, PyDb::Sqlite).await;
}

async fn a_hard_deletion_meets_an_edit_python_on_postgres(
    python: &Path,
    direction: Direction,
    caps: Caps,
    backend: Backend,
) {
    if !Backend::Postgres.enabled() {
        return eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
    }
    hard_deletion_against_edit(python, direction, caps, backend, PyDb::Postgres).await;
}

/// One side hard-deletes a record while the other edits it, four ways: the server merges (the client pushes before
/// it pulls) or the client does (it pulls first), and either side deletes. Both sides serialize their change first
/// (as Kolibri does between syncs), so that the merge is Morango's conflict path: with an unserialized local edit,
/// Python Morango's receiver serializes it over the incoming hard deletion instead, and the edit comes back. Python
/// Morango writes its own shapes: on SQLite a local hard deletion that meets an edit keeps the edit in
/// `conflicting_serialized_data`; on PostgreSQL an incoming hard deletion that meets a local edit empties
/// `serialized` but leaves `hard_deleted` unset. The Rust side accepts both as hard deletions with nothing kept;
/// the hard deletion wins everywhere.
async fn hard_deletion_against_edit(python: &Path, direction: Direction, caps: Caps, backend: Backend, py_db: PyDb) {
    let pair = Pair::with_python_on(python, direction, caps, backend, py_db).await;
    let facility = pair.facility.clone();
    let (server, client) = (pair.server_side(), pair.client_side());
    let (ada, alan) = (pair.id("learners", "ada"), pair.id("learners", "alan"));
    let mut records = Vec::new();
    for (learner, lesson) in [(&ada, "One"), (&ada, "Two"), (&alan, "Three"), (&alan, "Four")] {
        records.push(server.add_progress(&facility, learner, lesson, 0.5).await);
    }
    pair.sync(As::Admin).await;

    // The server merges.
    server.hard_delete_progress(&records[0]).await;
    client.edit_progress(&records[0], 0.9).await;
    server.edit_progress(&records[1], 0.1).await;
    client.hard_delete_progress(&records[1]).await;
    server.serialize().await;
    client.serialize().await;
    pair.push_only().await;
    pair.sync(As::Stored).await;
    // The client merges.
    server.hard_delete_progress(&records[2]).await;
    client.edit_progress(&records[2], 0.9).await;
    server.edit_progress(&records[3], 0.1).await;
    client.hard_delete_progress(&records[3]).await;
    server.serialize().await;
    client.serialize().await;
    pair.sync(As::Stored).await;
    // Versions minted by the merges go back.
    pair.sync(As::Stored).await;

    let (py, rust) = pair.states().await;
    for id in &records {
        let (p, r) = (&py.store[id], &rust.store[id]);
        assert!(r.deleted && r.hard_deleted, "rust {id}: {r:?}");
        assert!(r.conflicting_serialized_data.is_empty(), "rust keeps no payload of {id}: {r:?}");
        assert!(matches!(&r.serialized, serde_json::Value::Null) || r.serialized == serde_json::json!({}), "{r:?}");
        assert!(p.deleted, "python {id}: {p:?}");
        assert!(py.app_row(id).is_none() && rust.app_row(id).is_none(), "{id} was deleted on both sides");
        assert_eq!(
            (&p.last_saved_instance, p.last_saved_counter),
            (&r.last_saved_instance, r.last_saved_counter),
            "{id}: the same version on both sides"
        );
    }
    // Python Morango wrote its shapes, and the Rust side took them as they came (same versions, above).
    let python_rows: Vec<_> = records.iter().map(|id| &py.store[id]).collect();
    assert!(
        python_rows.iter().any(|r| r.hard_deleted && !r.conflicting_serialized_data.is_empty()),
        "Python kept an edit in the conflict history of a hard deletion: {python_rows:?}"
    );
    if py_db == PyDb::Postgres {
        assert!(
            python_rows.iter().any(|r| !r.hard_deleted && r.serialized.is_null()),
            "Python's PostgreSQL backend left a hard deletion unmarked: {python_rows:?}"
        );
    }
    let ids: Vec<&str> = records.iter().map(String::as_str).collect();
    assert_same_except("hard deletions against edits", &py, &rust, None, &ids);
    let refused = morango::refused_records(pair.rust.db(), None).await.unwrap();
    assert!(refused.is_empty(), "the Rust side refused what Python Morango wrote: {refused:?}");
    let last = pair.sync(As::Stored).await;
    assert_nothing_moved("a sync after the hard deletions", &last, direction, caps);
    pair.finish().await;
}

matrix!(an_edit_conflict_relayed_through_a_third_instance = an_edit_conflict_relayed_through_a_third_instance on Sqlite:
    all = ALL);

/// Two instances edit the same learner; the conflict is merged on one instance and its outcome reaches the third
/// through the middle one. Once merged by the Rust instance, once by a Python one, in both directions.
async fn an_edit_conflict_relayed_through_a_third_instance(
    python: &Path,
    direction: Direction,
    caps: Caps,
    backend: Backend,
) {
    match direction {
        Direction::RustClient => relayed_by_a_rust_client(python, caps, backend).await,
        Direction::PythonClient => relayed_by_a_rust_server(python, caps, backend).await,
    }
}

/// Python A serves the facility, Python B serves a certificate of it, the Rust instance syncs with both.
async fn relayed_by_a_rust_client(python: &Path, caps: Caps, backend: Backend) {
    let pair = Pair::on(python, Direction::RustClient, caps, backend).await;
    let facility = pair.facility.clone();
    let a_url = pair.url();
    let (b, b_server) = pair.second_python_server(python).await;
    let rust = &pair.rust;
    let (a_side, b_side) = (Side::Python(&pair.py), Side::Python(&b));
    let sync = |url: &str, pull: bool| {
        let (url, facility) = (url.to_owned(), facility.clone());
        async move {
            rust.sync_directions(&url, &facility, None, Some(("admin", "admin")), pull).await.expect("rust syncs");
        }
    };
    sync(&a_url, true).await;
    sync(&b_server.url, true).await;

    // Merged by the Rust instance: it holds A's edit when it pulls B's.
    let alan = pair.id("learners", "alan");
    a_side.edit_learner(&alan, "Alan, edited on A", 11).await;
    b_side.edit_learner(&alan, "Alan, edited on B", 12).await;
    sync(&a_url, true).await;
    sync(&b_server.url, true).await;
    sync(&a_url, true).await;
    converged(&[&pair.py, &b], rust, &alan, "Alan, edited on A", "Alan, edited on B").await;

    // Merged by Python A: the Rust instance pushes B's edit to A, which holds its own, then relays the outcome.
    let ada = pair.id("learners", "ada");
    b_side.edit_learner(&ada, "Ada, edited on B", 21).await;
    a_side.edit_learner(&ada, "Ada, edited on A", 22).await;
    sync(&b_server.url, true).await;
    sync(&a_url, false).await;
    sync(&a_url, true).await;
    sync(&b_server.url, true).await;
    converged(&[&pair.py, &b], rust, &ada, "Ada, edited on A", "Ada, edited on B").await;
    pair.finish().await;
}

/// The Rust instance serves the facility; Python A and B sync with it.
async fn relayed_by_a_rust_server(python: &Path, caps: Caps, backend: Backend) {
    let pair = Pair::on(python, Direction::PythonClient, caps, backend).await;
    let facility = pair.facility.clone();
    let url = pair.url();
    let a = &pair.py;
    let b = PyInstance::new(python, "b", caps);
    let (a_side, b_side, r_side) = (Side::Python(a), Side::Python(&b), Side::Rust(&pair.rust));
    admin_sync(a, &url, &facility).await;
    admin_sync(&b, &url, &facility).await;

    // Merged by Python B: it pulls A's edit while holding its own; the outcome reaches A through the Rust server.
    let alan = pair.id("learners", "alan");
    a_side.edit_learner(&alan, "Alan, edited on A", 11).await;
    b_side.edit_learner(&alan, "Alan, edited on B", 12).await;
    admin_sync(a, &url, &facility).await;
    admin_sync(&b, &url, &facility).await;
    admin_sync(a, &url, &facility).await;
    converged(&[a, &b], &pair.rust, &alan, "Alan, edited on B", "Alan, edited on A").await;

    // Merged by the Rust server: A pushes its edit while the server holds one of its own.
    let ada = pair.id("learners", "ada");
    r_side.edit_learner(&ada, "Ada, edited on the server", 21).await;
    a_side.edit_learner(&ada, "Ada, edited on A", 22).await;
    let chunk = super::rust_instance::CHUNK_SIZE.to_string();
    let push = ["sync", &url, &facility, "--username", "admin", "--password", "admin", "--chunk-size", &chunk];
    a.run(&[&push[..], &["--no-pull"]].concat()).await;
    admin_sync(&b, &url, &facility).await;
    admin_sync(a, &url, &facility).await;
    converged(&[a, &b], &pair.rust, &ada, "Ada, edited on the server", "Ada, edited on A").await;
    pair.finish().await;
}

/// All three hold the same records; the learner shows the winning edit, and every store keeps the losing one in
/// its conflict history.
async fn converged(
    pythons: &[&PyInstance; 2],
    rust: &super::rust_instance::RustInstance,
    id: &str,
    won: &str,
    lost: &str,
) {
    let r_state = State::of_rust(rust).await;
    for python in pythons {
        let state = State::of_python(python).await;
        assert_same(&format!("{} and rust after a conflict", python.name), &state, &r_state, None);
    }
    assert_eq!(r_state.app_row(id).expect("the learner")["full_name"], won);
    let history = &r_state.store[id].conflicting_serialized_data;
    assert!(history.contains(lost), "the losing edit is kept: {history:?}");
    let refused = morango::refused_records(rust.db(), None).await.unwrap();
    assert!(refused.is_empty(), "{refused:?}");
}
