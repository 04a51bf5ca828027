//! Morango's documented sync scenarios, each run on both backends.

use morango::{Filter, Progress, SyncOptions, TransferStage};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, ModelTrait, PaginatorTrait};

use crate::fixtures::{self, find_learner, rename_learner};
use crate::on_both_backends;
use crate::schema::{self, Tables, group, learner, log, note, v2};
use crate::support::{Backend, Peer};

on_both_backends!(
    fast_forward_edits_apply_without_conflict,
    concurrent_edits_keep_the_first_receivers_version_and_record_the_other,
    conflict_hook_merges_concurrent_edits,
    soft_delete_removes_the_row_and_keeps_the_payload,
    hard_delete_erases_the_payload_everywhere,
    deleting_a_parent_cascades_to_its_children_on_every_peer,
    single_user_filter_syncs_only_that_learners_partitions,
    relay_through_a_middle_peer_reaches_the_last_one_with_subset_filters,
    record_with_missing_foreign_key_waits_then_applies,
    tree_is_applied_parent_first_across_chunks,
    fields_unknown_to_an_older_schema_survive_its_edits,
    save_that_changes_nothing_mints_no_version,
    second_sync_transfers_nothing,
    legacy_fsic_v1_sync_converges,
    legacy_flow_converges_and_sends_only_what_is_missing,
    progress_events_cover_every_stage,
    v1_with_several_prefixes_claims_nothing_it_cannot_vouch_for,
    a_hard_delete_wins_a_conflict_without_keeping_the_edit,
    a_sender_fsic_outside_the_filter_is_refused,
);

fn facility_filter(facility: &schema::facility::Model) -> Filter {
    Filter::new([facility.id.clone()])
}

async fn fast_forward_edits_apply_without_conflict(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let learner = fixtures::learner(a.db(), &facility, "ada").await;
    rename_learner(a.db(), &learner.id, "Ada v2").await;

    b.sync_all(&a).await;
    assert_eq!(find_learner(b.db(), &learner.id).await.unwrap().full_name, "Ada v2");
    assert_eq!(
        b.store(&learner.id).await,
        a.store(&learner.id).await.map(|mut row| {
            row.dirty_bit = false;
            row
        })
    );

    rename_learner(b.db(), &learner.id, "Ada v3").await;
    a.sync_all(&b).await;

    let on_a = a.store(&learner.id).await.unwrap();
    assert_eq!(find_learner(a.db(), &learner.id).await.unwrap().full_name, "Ada v3");
    assert_eq!(on_a.conflicting_serialized_data, "", "a fast-forward is not a conflict");
    assert_eq!(on_a.last_saved_instance, b.engine.instance().id, "A took B's version as is");
    assert_eq!(on_a.converged_view(), b.store(&learner.id).await.unwrap().converged_view());
    a.finish().await;
    b.finish().await;
}

async fn concurrent_edits_keep_the_first_receivers_version_and_record_the_other(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let learner = fixtures::learner(a.db(), &facility, "ada").await;
    b.sync_all(&a).await;

    rename_learner(a.db(), &learner.id, "edited on A").await;
    rename_learner(b.db(), &learner.id, "edited on B").await;
    // B pulls A's edit first: B receives the conflict and keeps its own data; its push then fast-forwards A.
    b.sync_all(&a).await;

    for peer in [&a, &b] {
        assert_eq!(find_learner(peer.db(), &learner.id).await.unwrap().full_name, "edited on B");
        let row = peer.store(&learner.id).await.unwrap();
        assert_eq!(row.last_saved_instance, b.engine.instance().id);
        assert!(row.conflicting_serialized_data.contains("edited on A"), "the losing version is recorded");
        assert!(row.conflicting_serialized_data.ends_with('\n'));
    }
    assert_eq!(
        a.store(&learner.id).await.unwrap().converged_view(),
        b.store(&learner.id).await.unwrap().converged_view()
    );
    a.finish().await;
    b.finish().await;
}

async fn conflict_hook_merges_concurrent_edits(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let note = fixtures::note(a.db(), &facility, "start").await;
    b.sync_all(&a).await;

    for (peer, text) in [(&a, "from A"), (&b, "from B")] {
        let mut active =
            note::Entity::find_by_id(note.id.clone()).one(peer.db()).await.unwrap().unwrap().into_active_model();
        active.text = Set(text.into());
        active.update(peer.db()).await.unwrap();
    }
    b.sync_all(&a).await;

    for peer in [&a, &b] {
        let merged = note::Entity::find_by_id(note.id.clone()).one(peer.db()).await.unwrap().unwrap();
        assert_eq!(merged.text, "from B | from A", "the hook saw B's local text and A's incoming text");
    }
    a.finish().await;
    b.finish().await;
}

async fn soft_delete_removes_the_row_and_keeps_the_payload(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let learner = fixtures::learner(a.db(), &facility, "ada").await;
    b.sync_all(&a).await;
    assert!(find_learner(b.db(), &learner.id).await.is_some());

    learner.clone().delete(a.db()).await.unwrap();
    b.sync_all(&a).await;

    assert!(find_learner(b.db(), &learner.id).await.is_none(), "the deletion reached B");
    for peer in [&a, &b] {
        let row = peer.store(&learner.id).await.unwrap();
        assert!(row.deleted && !row.hard_deleted);
        assert!(row.serialized.contains("ada"), "a soft delete keeps the payload");
    }
    a.finish().await;
    b.finish().await;
}

async fn hard_delete_erases_the_payload_everywhere(backend: Backend) {
    let (a, b, c) = (Peer::new(backend).await, Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let learner = fixtures::learner(a.db(), &facility, "ada").await;
    fixtures::log(a.db(), &learner, "video").await;
    b.sync_all(&a).await;
    c.sync_all(&b).await;

    morango::hard_delete::<learner::Entity, _>(a.db(), &learner.id).await.unwrap();
    b.sync_all(&a).await;
    c.sync_all(&b).await;

    for peer in [&a, &b, &c] {
        assert!(find_learner(peer.db(), &learner.id).await.is_none());
        let row = peer.store(&learner.id).await.unwrap();
        assert!(row.deleted && row.hard_deleted);
        assert_eq!(row.serialized, "{}");
        assert!(!row.conflicting_serialized_data.contains("ada"));
        assert_eq!(log::Entity::find().count(peer.db()).await.unwrap(), 0, "the learner's logs went with it");
    }
    for row in a.store_snapshot().await.into_iter().filter(|r| r.partition.contains(":user-rw:")) {
        assert!(row.hard_deleted, "rows removed by the cascade are hard-deleted too");
    }
    a.finish().await;
    b.finish().await;
    c.finish().await;
}

async fn deleting_a_parent_cascades_to_its_children_on_every_peer(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let bob = fixtures::learner(a.db(), &facility, "bob").await;
    fixtures::log(a.db(), &ada, "video").await;
    fixtures::log(a.db(), &bob, "exercise").await;
    b.sync_all(&a).await;
    assert_eq!(log::Entity::find().count(b.db()).await.unwrap(), 2);

    facility.clone().delete(a.db()).await.unwrap();
    b.sync_all(&a).await;

    for peer in [&a, &b] {
        assert_eq!(learner::Entity::find().count(peer.db()).await.unwrap(), 0);
        assert_eq!(log::Entity::find().count(peer.db()).await.unwrap(), 0);
        let rows = peer.store_snapshot().await;
        assert_eq!(rows.len(), 5);
        assert!(rows.iter().all(|r| r.deleted), "every record of the cascade is deleted in the store");
    }
    a.finish().await;
    b.finish().await;
}

async fn single_user_filter_syncs_only_that_learners_partitions(backend: Backend) {
    let (server, tablet) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(server.db(), "Riverside").await;
    let ada = fixtures::learner(server.db(), &facility, "ada").await;
    let bob = fixtures::learner(server.db(), &facility, "bob").await;
    fixtures::log(server.db(), &ada, "ada's video").await;
    fixtures::log(server.db(), &bob, "bob's video").await;
    fixtures::note(server.db(), &facility, "staff only").await;

    let f = &facility.id;
    let single_user =
        Filter::new([format!("{f}:allusers-ro"), format!("{f}:user-ro:{}", ada.id), format!("{f}:user-rw:{}", ada.id)]);
    tablet.sync(&server, &single_user).await;

    assert!(find_learner(tablet.db(), &ada.id).await.is_some());
    assert!(find_learner(tablet.db(), &bob.id).await.is_none(), "another learner's data stays on the server");
    let logs = log::Entity::find().all(tablet.db()).await.unwrap();
    assert_eq!(logs.iter().map(|l| l.content.as_str()).collect::<Vec<_>>(), ["ada's video"]);
    assert_eq!(note::Entity::find().count(tablet.db()).await.unwrap(), 0);

    // What the learner does on the tablet comes back with the same filter.
    let ada_here = find_learner(tablet.db(), &ada.id).await.unwrap();
    fixtures::log(tablet.db(), &ada_here, "done on the tablet").await;
    tablet.sync(&server, &single_user).await;
    assert_eq!(log::Entity::find().count(server.db()).await.unwrap(), 3);

    // The whole facility brings everything.
    tablet.sync(&server, &facility_filter(&facility)).await;
    assert_eq!(log::Entity::find().count(tablet.db()).await.unwrap(), 3);
    assert_eq!(note::Entity::find().count(tablet.db()).await.unwrap(), 1);
    server.finish().await;
    tablet.finish().await;
}

async fn relay_through_a_middle_peer_reaches_the_last_one_with_subset_filters(backend: Backend) {
    let (a, b, c, d) =
        (Peer::new(backend).await, Peer::new(backend).await, Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let bob = fixtures::learner(a.db(), &facility, "bob").await;
    for i in 0..5 {
        fixtures::log(a.db(), &ada, &format!("ada {i}")).await;
        fixtures::log(a.db(), &bob, &format!("bob {i}")).await;
    }
    let f = &facility.id;
    let whole = facility_filter(&facility);
    b.sync(&a, &whole).await;
    // D knows nothing; syncing it with B must not lower what B knows (Python's W4 lowered it).
    d.sync(&b, &Filter::new([format!("{f}:allusers-ro")])).await;

    let ada_only =
        Filter::new([format!("{f}:allusers-ro"), format!("{f}:user-ro:{}", ada.id), format!("{f}:user-rw:{}", ada.id)]);
    c.sync(&b, &ada_only).await;
    c.sync(&b, &Filter::new([format!("{f}:user-ro:{}", bob.id), format!("{f}:user-rw:{}", bob.id)])).await;
    c.sync(&b, &whole).await;

    let converged =
        |rows: Vec<crate::support::StoreRow>| rows.into_iter().map(|r| r.converged_view()).collect::<Vec<_>>();
    assert_eq!(converged(c.store_snapshot().await), converged(a.store_snapshot().await), "every record reached C");
    assert_eq!(log::Entity::find().count(c.db()).await.unwrap(), 10);
    assert_eq!(learner::Entity::find().count(c.db()).await.unwrap(), 2);
    for peer in [a, b, c, d] {
        peer.finish().await;
    }
}

async fn record_with_missing_foreign_key_waits_then_applies(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let video = fixtures::log(a.db(), &ada, "video").await;

    // Only the logs' partition: the learner and facility they point at stay behind.
    b.sync(&a, &Filter::new([format!("{}:user-rw:{}", facility.id, ada.id)])).await;
    assert_eq!(log::Entity::find().count(b.db()).await.unwrap(), 0);
    let waiting = b.store(&video.id).await.expect("the record is kept in the store");
    assert!(waiting.dirty_bit);
    let error = waiting.deserialization_error.expect("its error is recorded");
    assert!(error.contains("not in this database yet"), "{error}");

    b.sync(&a, &facility_filter(&facility)).await;
    assert_eq!(log::Entity::find().count(b.db()).await.unwrap(), 1, "applied once its targets arrived");
    let applied = b.store(&video.id).await.unwrap();
    assert!(!applied.dirty_bit);
    assert_eq!(applied.deserialization_error, None);
    a.finish().await;
    b.finish().await;
}

async fn tree_is_applied_parent_first_across_chunks(backend: Backend) {
    let a = Peer::new(backend).await;
    let b = Peer::with(backend, Tables::Current, &schema::FACILITY_DATA, 2).await;
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let mut parent = None;
    let mut expected = Vec::new();
    for depth in 0..8 {
        let node = fixtures::group(a.db(), &facility, &format!("level {depth}"), parent.as_ref()).await;
        fixtures::group(a.db(), &facility, &format!("leaf {depth}"), Some(&node)).await;
        expected.push((node.id.clone(), node.parent_id.clone()));
        parent = Some(node);
    }
    b.sync_all(&a).await;

    let groups = group::Entity::find().all(b.db()).await.unwrap();
    assert_eq!(groups.len(), 16);
    for (id, parent_id) in expected {
        let here = groups.iter().find(|g| g.id == id).expect("every node arrived");
        assert_eq!(here.parent_id, parent_id);
    }
    assert!(b.store_snapshot().await.iter().all(|row| !row.dirty_bit && row.deserialization_error.is_none()));
    a.finish().await;
    b.finish().await;
}

async fn fields_unknown_to_an_older_schema_survive_its_edits(backend: Backend) {
    let newer = Peer::with(backend, Tables::Newer, &v2::FACILITY_DATA_V2, 500).await;
    let older = Peer::with(backend, Tables::Current, &schema::FACILITY_DATA, 500).await;
    let facility = fixtures::facility(newer.db(), "Riverside").await;
    let learner = v2::learner::ActiveModel {
        facility_id: Set(facility.id.clone()),
        username: Set("ada".into()),
        full_name: Set("Ada".into()),
        score: Set(1.0),
        active: Set(true),
        birth_date: Set(None),
        joined_at: Set(None),
        nickname: Set(Some("Nick".into())),
        ..Default::default()
    }
    .insert(newer.db())
    .await
    .unwrap();

    older.sync_all(&newer).await;
    rename_learner(older.db(), &learner.id, "Ada Lovelace").await;
    older.sync_all(&newer).await;

    let record = older.record(&learner.id).await;
    assert_eq!(record["nickname"], "Nick", "the older peer kept the field it does not know");
    let back = v2::learner::Entity::find_by_id(learner.id.clone()).one(newer.db()).await.unwrap().unwrap();
    assert_eq!(back.full_name, "Ada Lovelace");
    assert_eq!(back.nickname.as_deref(), Some("Nick"));
    newer.finish().await;
    older.finish().await;
}

async fn save_that_changes_nothing_mints_no_version(backend: Backend) {
    let a = Peer::new(backend).await;
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let learner = fixtures::learner(a.db(), &facility, "ada").await;
    a.engine.serialize(None).await.unwrap();
    let before = a.store(&learner.id).await.unwrap();
    let counter = a.counter().await;

    let mut same = learner.clone().into_active_model();
    same.full_name = Set(learner.full_name.clone());
    same.reset_all().update(a.db()).await.unwrap();
    let report = a.engine.serialize(None).await.unwrap();

    assert_eq!(report.versions, 0);
    assert_eq!(report.unchanged, 1, "the row was dirty and found unchanged");
    assert_eq!(a.store(&learner.id).await.unwrap(), before);
    assert_eq!(a.counter().await, counter, "no counter was spent");

    rename_learner(a.db(), &learner.id, "Ada v2").await;
    assert_eq!(a.engine.serialize(None).await.unwrap().versions, 1, "a real change still mints a version");
    a.finish().await;
}

async fn second_sync_transfers_nothing(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    for name in ["ada", "bob", "cy"] {
        fixtures::learner(a.db(), &facility, name).await;
    }
    let first = b.sync_all(&a).await;
    assert_eq!(first.pull.unwrap().records_total, 4);
    let second = b.sync_all(&a).await;
    assert_eq!(second.pull.unwrap().records_total, 0);
    assert_eq!(second.push.unwrap().records_total, 0);
    a.finish().await;
    b.finish().await;
}

async fn legacy_fsic_v1_sync_converges(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let options = SyncOptions::new(facility_filter(&facility)).with_fsic_v1();
    morango::sync_local(&b.engine, &a.engine, &options).await.unwrap();
    rename_learner(b.db(), &ada.id, "edited on B").await;
    morango::sync_local(&b.engine, &a.engine, &options).await.unwrap();

    assert_eq!(find_learner(a.db(), &ada.id).await.unwrap().full_name, "edited on B");
    let again = morango::sync_local(&b.engine, &a.engine, &options).await.unwrap();
    assert_eq!(again.pull.unwrap().records_total, 0, "v1 counters also remember what was sent");
    a.finish().await;
    b.finish().await;
}

async fn legacy_flow_converges_and_sends_only_what_is_missing(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let legacy = SyncOptions::new(facility_filter(&facility)).with_legacy_flow();
    let first = morango::sync_local(&b.engine, &a.engine, &legacy).await.unwrap();
    assert_eq!(first.pull.unwrap().records_total, 2);
    rename_learner(b.db(), &ada.id, "edited on B").await;
    let second = morango::sync_local(&b.engine, &a.engine, &legacy).await.unwrap();
    assert_eq!(second.push.unwrap().records_total, 1);
    assert_eq!(find_learner(a.db(), &ada.id).await.unwrap().full_name, "edited on B");

    let third = morango::sync_local(&b.engine, &a.engine, &legacy).await.unwrap();
    assert_eq!(third.pull.unwrap().records_total, 0, "the client's FSIC went with the create (Python sends {{}})");
    assert_eq!(third.push.unwrap().records_total, 0);
    a.finish().await;
    b.finish().await;
}

async fn progress_events_cover_every_stage(backend: Backend) {
    let a = Peer::new(backend).await;
    let b = Peer::with(backend, Tables::Current, &schema::FACILITY_DATA, 2).await;
    let facility = fixtures::facility(a.db(), "Riverside").await;
    for name in ["ada", "bob", "cy", "dee"] {
        fixtures::learner(a.db(), &facility, name).await;
    }
    let mut events = b.engine.subscribe();
    morango::sync_local(&b.engine, &a.engine, &SyncOptions::new(Filter::everything()).pull_only()).await.unwrap();

    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    for stage in TransferStage::ALL {
        assert!(seen.iter().any(|e| e.stage == stage && e.progress == Progress::Started), "{stage} started");
        assert!(seen.iter().any(|e| e.stage == stage && e.progress == Progress::Completed), "{stage} completed");
    }
    let progress: Vec<_> = seen
        .iter()
        .filter_map(|e| match e.progress {
            Progress::InProgress { done, total } => Some((done, total)),
            _ => None,
        })
        .collect();
    assert_eq!(progress, [(2, 5), (4, 5), (5, 5)], "chunks of two out of five records");
    a.finish().await;
    b.finish().await;
}

async fn v1_with_several_prefixes_claims_nothing_it_cannot_vouch_for(backend: Backend) {
    let (a, b, c) = (Peer::new(backend).await, Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let bob = fixtures::learner(a.db(), &facility, "bob").await;
    fixtures::log(a.db(), &ada, "ada's video").await;
    let bobs = fixtures::log(a.db(), &bob, "bob's video").await;
    let f = &facility.id;
    let v1 = |prefixes: Vec<String>| SyncOptions::new(Filter::new(prefixes)).with_fsic_v1().pull_only();
    let ada_rw = format!("{f}:user-rw:{}", ada.id);
    let bob_rw = format!("{f}:user-rw:{}", bob.id);
    morango::sync_local(&b.engine, &a.engine, &v1(vec![format!("{f}:user-ro:{}", ada.id), ada_rw.clone()]))
        .await
        .unwrap();
    // C pulls both learners' log partitions from B, which holds only Ada's.
    morango::sync_local(&c.engine, &b.engine, &v1(vec![ada_rw, bob_rw.clone()])).await.unwrap();
    morango::sync_local(&c.engine, &a.engine, &v1(vec![bob_rw])).await.unwrap();
    assert!(c.store(&bobs.id).await.is_some(), "C still asks A for Bob's logs");
    a.finish().await;
    b.finish().await;
    c.finish().await;
}

async fn a_hard_delete_wins_a_conflict_without_keeping_the_edit(backend: Backend) {
    let (a, b, c) = (Peer::new(backend).await, Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    b.sync_all(&a).await;
    morango::hard_delete::<learner::Entity, _>(a.db(), &ada.id).await.unwrap();
    rename_learner(b.db(), &ada.id, "edited while A erased it").await;
    a.sync_all(&b).await;
    c.sync_all(&b).await;
    for peer in [&a, &b, &c] {
        let row = peer.store(&ada.id).await.unwrap();
        assert!(row.hard_deleted, "{row:?}");
        assert!(!row.serialized.contains("edited") && !row.conflicting_serialized_data.contains("edited"), "{row:?}");
        assert!(find_learner(peer.db(), &ada.id).await.is_none());
    }
    a.finish().await;
    b.finish().await;
    c.finish().await;
}

async fn a_sender_fsic_outside_the_filter_is_refused(backend: Backend) {
    use morango::server::{StageRequest, TransferRequest};
    let server = Peer::new(backend).await;
    let session = morango::ids::random_id();
    morango::server::open_sync_session(
        &server.engine,
        &session,
        &format!(r#"{{"id": "{}"}}"#, morango::ids::random_id()),
        "local",
    )
    .await
    .unwrap();
    let request = TransferRequest {
        id: morango::ids::random_id(),
        sync_session_id: session,
        filter: Filter::new(["somewhere"]),
        push: true,
        client_fsic: "{}".into(),
        fsic_v2: true,
    };
    let ts = morango::server::create_transfer(&server.engine, &request, &Default::default()).await.unwrap();
    let claim = format!(r#"{{"super": {{}}, "sub": {{"": {{"{}": 1000000}}}}}}"#, "c".repeat(32));
    let serializing =
        StageRequest { stage: Some(TransferStage::Serializing), client_fsic: Some(claim), ..Default::default() };
    let refused = morango::server::proceed_to(&server.engine, &ts.id, &serializing, &Default::default()).await;
    assert!(matches!(refused, Err(morango::Error::Fsic(_))), "{refused:?}");
    let counters = sea_orm::ConnectionTrait::query_all_raw(
        server.db(),
        sea_orm::Statement::from_string(
            server.backend(),
            "SELECT * FROM morango_databasemaxcounter WHERE counter > 1000",
        ),
    )
    .await
    .unwrap();
    assert!(counters.is_empty(), "no counter was raised");
    server.finish().await;
}
