//! The scenarios, each in both directions and with the Python side's capabilities on and off.

use std::path::Path;

use super::pair::{As, Direction, Pair, Side};
use super::python::{self, Caps, PyInstance};
use crate::support::Backend;

use super::state::{State, assert_same, assert_same_except, assert_unchanged};

matrix!(certificates_pull_push_conflict_and_nothing_more = certificates_pull_push_conflict_and_nothing_more on Sqlite:
    all = ALL, legacy = LEGACY, async_fsic_v1 = ASYNC_FSIC_V1, legacy_fsic_v2 = LEGACY_FSIC_V2);
// The same with the Rust side on PostgreSQL (its own SQL for queuing, dequeuing and deserializing).
matrix!(certificates_pull_push_conflict_and_nothing_more_on_postgres = certificates_pull_push_conflict_and_nothing_more on Postgres:
    all = ALL, legacy = LEGACY);

/// A certificate request with credentials; a full pull into the empty client; a second sync that moves nothing; a
/// push of new, edited, soft-deleted and hard-deleted records; a conflict edited on both sides. The stores are
/// compared after every step.
async fn certificates_pull_push_conflict_and_nothing_more(
    python: &Path,
    direction: Direction,
    caps: Caps,
    backend: Backend,
) {
    let pair = Pair::on(python, direction, caps, backend).await;
    let facility = pair.facility.clone();
    let (server, client) = (pair.server_side(), pair.client_side());

    // A certificate request: refused with a wrong password, and for a learner asking for the whole facility.
    let refused = pair.try_sync(As::Credentials("admin", "wrong")).await.expect_err("a wrong password is refused");
    assert!(refused.contains("401") || refused.contains("403"), "{refused}");
    let refused = pair.try_sync(As::Credentials("ada", "ada")).await.expect_err("a learner may not hold the facility");
    assert!(refused.contains("403"), "{refused}");

    // The first sync requests a certificate with the admin's credentials and pulls everything.
    let first = pair.sync(As::Admin).await;
    assert!(first.certificate_requested);
    assert_eq!(first.pull, Some((9, 9)), "the facility, 2 classrooms, 3 learners and 3 lesson progress records");
    assert_eq!(first.push.map(|p| p.1), Some(0));
    let (py, rust) = pair.states().await;
    assert_same("full pull into an empty instance", &py, &rust, None);
    assert_certificate(&py, &rust, &first.certificate_id, &facility, direction);

    // A second sync reuses the certificate and moves nothing.
    let second = pair.sync(As::Stored).await;
    assert!(!second.certificate_requested);
    assert_nothing_moved("second sync", &second, direction, caps);
    let (py_after, rust_after) = pair.states().await;
    assert_unchanged("second sync", &py, &py_after);
    assert_unchanged("second sync", &rust, &rust_after);

    // The client adds, edits, soft-deletes and hard-deletes; the server edits another record meanwhile.
    let class3 = pair.id("classrooms", "Class 3");
    let katherine = client.add_learner(&facility, "katherine", Some(&class3)).await;
    client.add_progress(&facility, &katherine, "Counting", 0.25).await;
    client.edit_learner(&pair.id("learners", "ada"), "Ada King", 40).await;
    client.edit_progress(&pair.id("lessonprogress", "ada:Fractions"), 0.75).await;
    client.delete_learner(&pair.id("learners", "grace")).await;
    client.hard_delete_progress(&pair.id("lessonprogress", "alan:Shapes")).await;
    server.edit_learner(&pair.id("learners", "alan"), "Alan M. Turing", 5).await;
    let third = pair.sync(As::Stored).await;
    assert_eq!(third.pull.map(|p| p.1), Some(if python_legacy_resends(direction, caps) { 9 } else { 1 }));
    assert_eq!(third.push.map(|p| p.1), Some(6), "2 new, 2 edited, 1 soft-deleted, 1 hard-deleted");
    let (py, rust) = pair.states().await;
    assert_same("push of new, edited and deleted records", &py, &rust, None);
    let grace = &py.store[&pair.id("learners", "grace")];
    assert!(grace.deleted && !grace.hard_deleted && py.app_row(&pair.id("learners", "grace")).is_none());
    let shapes = &py.store[&pair.id("lessonprogress", "alan:Shapes")];
    assert!(shapes.deleted && shapes.hard_deleted && shapes.serialized == serde_json::json!({}), "{shapes:?}");
    assert_eq!(py.app_row(&katherine).unwrap()["full_name"], rust.app_row(&katherine).unwrap()["full_name"]);

    // A conflict: both sides edit ada. The client receives the server's edit in its pull while holding its own:
    // its own edit wins (Morango's rule: local data wins at the receiver), goes up in the push, and the server's
    // edit is kept in conflicting_serialized_data.
    let ada = pair.id("learners", "ada");
    server.edit_learner(&ada, "Ada (edited on the server)", 41).await;
    client.edit_learner(&ada, "Ada (edited on the client)", 42).await;
    pair.sync(As::Stored).await;
    let (py, rust) = pair.states().await;
    assert_same("a conflict edited on both sides", &py, &rust, None);
    for state in [&py, &rust] {
        let row = state.app_row(&ada).unwrap_or_else(|| panic!("{}: no ada", state.side));
        assert_eq!(row["full_name"], "Ada (edited on the client)", "{}", state.side);
        assert_eq!(row["points"], 42, "{}", state.side);
    }
    let client_state = if direction == Direction::RustClient { &rust } else { &py };
    let losing = &client_state.store[&ada].conflicting_serialized_data;
    assert!(
        losing.contains("Ada (edited on the server)"),
        "{}: the losing edit is recorded: {losing:?}",
        client_state.side
    );

    // And once more: nothing left to move.
    let last = pair.sync(As::Stored).await;
    assert_nothing_moved("sync after the conflict", &last, direction, caps);
    let (py_after, rust_after) = pair.states().await;
    assert_unchanged("sync after the conflict", &py, &py_after);
    assert_unchanged("sync after the conflict", &rust, &rust_after);
    pair.finish().await;
}

/// The client holds the certificate it requested (with its private key), issued under the facility's root; the
/// server holds it too, without the key.
fn assert_certificate(py: &State, rust: &State, id: &str, facility: &str, direction: Direction) {
    let (client, server) = if direction == Direction::RustClient { (rust, py) } else { (py, rust) };
    let (parent, definition, params, owned) = client.certificates.get(id).expect("the client holds its certificate");
    assert_eq!((parent.as_deref(), definition.as_str(), *owned), (Some(facility), "full-facility", true));
    assert_eq!(params, &serde_json::json!({"facility_id": facility}));
    let (_, _, _, owned) = server.certificates.get(id).expect("the server keeps the certificate it issued");
    assert!(!owned, "the server does not hold the client's key");
    assert!(client.certificates.get(facility).is_some_and(|c| c.0.is_none() && !c.3), "the client holds the root");
}

/// A Python client on the legacy flow creates its transfer sessions before computing its FSIC and sends `{}` (spec
/// §15 W9): every legacy pull re-sends everything under the filter, and the server never learns the client's
/// counters from a push, so every legacy push re-sends every record the client last saved. The receiver discards
/// what it already has; the callers check that nothing changed.
fn python_legacy_resends(direction: Direction, caps: Caps) -> bool {
    direction == Direction::PythonClient && !caps.async_operations
}

pub(super) fn assert_nothing_moved(step: &str, synced: &super::pair::Synced, direction: Direction, caps: Caps) {
    if python_legacy_resends(direction, caps) {
        assert!(synced.pull.is_some() && synced.push.is_some(), "{step}: {synced:?}");
    } else {
        assert_eq!(synced.pull.map(|p| p.1), Some(0), "{step}: nothing to pull");
        assert_eq!(synced.push.map(|p| p.1), Some(0), "{step}: nothing to push");
    }
}

matrix!(a_learner_syncs_only_their_scope = a_learner_syncs_only_their_scope on Sqlite: all = ALL, legacy = LEGACY);

/// A single-user certificate: ada's device gets the facility's shared data and her own, not the others', and pushes
/// her progress.
async fn a_learner_syncs_only_their_scope(python: &Path, direction: Direction, caps: Caps, backend: Backend) {
    let pair = Pair::on(python, direction, caps, backend).await;
    let facility = pair.facility.clone();
    let (ada, alan) = (pair.id("learners", "ada"), pair.id("learners", "alan"));
    let scope = vec![
        format!("{facility}:allusers-ro"),
        format!("{facility}:user-ro:{ada}"),
        format!("{facility}:user-rw:{ada}"),
    ];

    // Ada may not obtain alan's scope.
    let refused = pair
        .try_sync(As::LearnerWith { learner_id: &alan, username: "ada", password: "ada" })
        .await
        .expect_err("ada may not hold alan's scope");
    assert!(refused.contains("403"), "{refused}");

    let first = pair.sync(As::Learner { username: "ada", learner_id: &ada }).await;
    assert!(first.certificate_requested);
    assert_eq!(first.pull, Some((6, 6)), "facility, 2 classrooms, ada and her 2 lesson progress records");
    let (py, rust) = pair.states().await;
    assert_same("a single-user pull", &py, &rust, Some(&scope));
    let client = if direction == Direction::RustClient { &rust } else { &py };
    assert_eq!(client.store.len(), 6, "{}: only ada's scope: {:?}", client.side, client.store.keys());
    assert!(client.app_row(&alan).is_none());

    let side = pair.client_side();
    side.add_progress(&facility, &ada, "Reading", 0.5).await;
    side.edit_progress(&pair.id("lessonprogress", "ada:Counting"), 0.9).await;
    let second = pair.sync(As::Learner { username: "ada", learner_id: &ada }).await;
    assert!(!second.certificate_requested);
    assert_eq!(second.push.map(|p| p.1), Some(2));
    let (py, rust) = pair.states().await;
    assert_same("a single-user push", &py, &rust, Some(&scope));
    pair.finish().await;
}

matrix!(a_relay_python_rust_python = a_relay_python_rust_python on Sqlite: all = ALL, legacy = LEGACY);

/// Data written on one Python instance reaches another through the Rust instance only, and back.
///
/// Rust as the client: Python A serves the facility; Python B obtained a certificate of it from A (a CSR, no data)
/// and serves it too; the Rust instance syncs with A, then with B, then back. Rust as the server: it serves the
/// facility; Python A and Python B each sync with it.
async fn a_relay_python_rust_python(python: &Path, direction: Direction, caps: Caps, backend: Backend) {
    match direction {
        Direction::RustClient => relay_through_a_rust_client(python, caps, backend).await,
        Direction::PythonClient => relay_through_a_rust_server(python, caps, backend).await,
    }
}

async fn relay_through_a_rust_client(python: &Path, caps: Caps, backend: Backend) {
    let pair = Pair::on(python, Direction::RustClient, caps, backend).await;
    let facility = pair.facility.clone();
    let a_url = pair.url();
    // B: a certificate of the facility from A (no records), then its own server.
    let (b, b_server) = pair.second_python_server(python).await;
    let rust = &pair.rust;

    rust.sync(&a_url, &facility, None, Some(("admin", "admin"))).await.expect("rust pulls from A");
    let to_b = rust
        .sync(&b_server.url, &facility, None, None)
        .await
        .unwrap_or_else(|e| panic!("rust with B: {e}\n{}", b_server.log_tail(40)));
    assert_eq!(to_b.push.as_ref().map(|p| p.records_transferred), Some(9), "A's records go on to B");
    let (a_state, b_state, r_state) =
        (State::of_python(&pair.py).await, State::of_python(&b).await, State::of_rust(rust).await);
    assert_same("relay A → rust", &a_state, &r_state, None);
    assert_same("relay rust → B", &b_state, &r_state, None);

    // Back: an edit and a new learner on B reach A.
    let b_side = Side::Python(&b);
    b_side.edit_learner(&pair.id("learners", "alan"), "Alan, edited on B", 3).await;
    let new = b_side.add_learner(&facility, "hedy", None).await;
    rust.sync(&b_server.url, &facility, None, None).await.expect("rust pulls from B");
    rust.sync(&a_url, &facility, None, None).await.expect("rust pushes to A");
    let (a_state, b_state, r_state) =
        (State::of_python(&pair.py).await, State::of_python(&b).await, State::of_rust(rust).await);
    assert_same("relay B → rust → A: rust and B", &b_state, &r_state, None);
    assert_same("relay B → rust → A: rust and A", &a_state, &r_state, None);
    assert!(a_state.app_row(&new).is_some());
    pair.finish().await;
}

async fn relay_through_a_rust_server(python: &Path, caps: Caps, backend: Backend) {
    let pair = Pair::on(python, Direction::PythonClient, caps, backend).await;
    let facility = pair.facility.clone();
    let url = pair.url();
    let a = &pair.py;
    let b = PyInstance::new(python, "b", caps);
    let (a_side, b_side) = (Side::Python(a), Side::Python(&b));
    admin_sync(a, &url, &facility).await;
    let hedy = a_side.add_learner(&facility, "hedy", None).await;
    admin_sync(a, &url, &facility).await;
    let (a_state, r_state) = (State::of_python(a).await, State::of_rust(&pair.rust).await);
    assert_same("relay A → rust", &a_state, &r_state, None);

    if !caps.async_operations {
        // The legacy flow cannot relay what a Python client pushed: the client sends `{}` as its FSIC (W9), so the
        // server never learns A's counters, and its own FSIC — from its database-max counters, as Python
        // Morango's — leaves A out: B's pull does not queue hedy. A Python 0.8.15 server does exactly the same
        // (checked by hand: legacy client A pushes a learner to a legacy Python server, client B pulls 9 of its
        // 10 records). Everything else reaches B.
        admin_sync(&b, &url, &facility).await;
        let b_state = State::of_python(&b).await;
        assert!(
            !b_state.store.contains_key(&hedy),
            "a legacy pull now relays what a legacy push brought: update this test"
        );
        assert_same_except("relay rust → B (legacy)", &b_state, &r_state, None, &[hedy.as_str()]);
        pair.finish().await;
        return;
    }

    a_side.edit_learner(&pair.id("learners", "ada"), "Ada, edited on A", 1).await;
    admin_sync(a, &url, &facility).await;
    admin_sync(&b, &url, &facility).await;
    let (a_state, b_state, r_state) =
        (State::of_python(a).await, State::of_python(&b).await, State::of_rust(&pair.rust).await);
    assert_same("relay A → rust", &a_state, &r_state, None);
    assert_same("relay rust → B", &b_state, &r_state, None);
    assert!(b_state.app_row(&hedy).is_some());

    b_side.edit_learner(&hedy, "Hedy, edited on B", 2).await;
    admin_sync(&b, &url, &facility).await;
    admin_sync(a, &url, &facility).await;
    let (a_state, b_state, r_state) =
        (State::of_python(a).await, State::of_python(&b).await, State::of_rust(&pair.rust).await);
    assert_same("relay B → rust → A: rust and B", &b_state, &r_state, None);
    assert_same("relay B → rust → A: rust and A", &a_state, &r_state, None);
    assert_eq!(a_state.app_row(&hedy).unwrap()["full_name"], "Hedy, edited on B");
    pair.finish().await;
}

/// Python Morango's client syncs the whole facility as the admin.
pub(super) async fn admin_sync(instance: &PyInstance, url: &str, facility: &str) -> serde_json::Value {
    let chunk = super::rust_instance::CHUNK_SIZE.to_string();
    instance.run(&["sync", url, facility, "--username", "admin", "--password", "admin", "--chunk-size", &chunk]).await
}
