//! Records are what they claim: a learner holding her single-user certificate forges records inside her own
//! writable partition, and a server sends a record its fields contradict. Each forged record is refused alone,
//! stored nowhere, reported on both sides and listed in `morango_refusedrecord`; the rest of the chunk is applied.

use morango::api::ServerSettings;
use morango::ids::{random_id, sha2_uuid};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, PaginatorTrait};
use serde_json::json;

use super::harness::{Client, Server, Users, Wants};
use crate::fixtures;
use crate::on_both_backends;
use crate::schema::{learner, log};
use crate::support::Backend;

on_both_backends!(a_learners_forged_records_are_refused_and_the_rest_of_her_push_is_applied);

async fn a_learners_forged_records_are_refused_and_the_rest_of_her_push_is_applied(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let bob = fixtures::learner(server.db(), &server.facility, "bob").await;
    let bobs_log = fixtures::log(server.db(), &bob, "bob's video").await;
    let server = server.with_users(Users::new().learner("ada", &ada.id));
    let tablet = Client::enrol(backend, &server, Wants::Learner { username: "ada", learner_id: &ada.id }).await;
    tablet.sync(&server).await;
    let db = tablet.peer.db();
    let root = server.root.id().to_owned();
    let hers = format!("{root}:user-rw:{}", ada.id);

    // Her own log, honestly made.
    let mine = fixtures::log(db, &fixtures::find_learner(db, &ada.id).await.unwrap(), "ada's video").await;
    // Another owner: a log of Bob's, filed under her partition (Bob's row is here only for the foreign key).
    let mut bobs_row: learner::ActiveModel = bob.clone().into();
    bobs_row = bobs_row.reset_all();
    bobs_row._morango_dirty_bit = Set(false);
    bobs_row.insert(db).await.unwrap();
    let source = random_id();
    let for_bob = sha2_uuid(&[&hers, &source, "contentlog"]);
    log::ActiveModel {
        id: Set(for_bob.clone()),
        _morango_source_id: Set(source),
        _morango_partition: Set(hers.clone()),
        _morango_dirty_bit: Set(true),
        facility_id: Set(root.clone()),
        learner_id: Set(bob.id.clone()),
        content: Set("written as bob".into()),
        progress: Set(1.0),
        extra: Set(None),
    }
    .insert(db)
    .await
    .unwrap();
    // A new account: a learner record in her partition, which would then be given a certificate of its own.
    let source = format!("{root}:mallory");
    let mallory = sha2_uuid(&[&hers, &source, "learner"]);
    learner::ActiveModel {
        id: Set(mallory.clone()),
        _morango_source_id: Set(source),
        _morango_partition: Set(hers.clone()),
        _morango_dirty_bit: Set(true),
        facility_id: Set(root.clone()),
        username: Set("mallory".into()),
        full_name: Set("Mallory".into()),
        score: Set(0.0),
        active: Set(true),
        birth_date: Set(None),
        joined_at: Set(None),
        local_views: Set(0),
    }
    .insert(db)
    .await
    .unwrap();

    let report = tablet.sync(&server).await;
    let push = report.push.unwrap();
    assert_eq!((push.records_total, push.records_refused), (3, 2), "{push:?}");
    // Applied: her own log. Stored nowhere: the forged ones.
    assert!(log::Entity::find_by_id(mine.id.clone()).one(server.db()).await.unwrap().is_some());
    assert!(log::Entity::find_by_id(for_bob.clone()).one(server.db()).await.unwrap().is_none());
    assert!(learner::Entity::find_by_id(mallory.clone()).one(server.db()).await.unwrap().is_none());
    for id in [&for_bob, &mallory] {
        assert!(server_store_has(&server, id).await.is_none(), "{id} reached the server's store");
    }
    // Both sides list them, with the reason; the server knows who sent them.
    let on_server = morango::refused_records(server.db(), Some(&push.transfer_session_id)).await.unwrap();
    let mut refused: Vec<&str> = on_server.iter().map(|r| r.refusal.model_uuid.as_str()).collect();
    refused.sort_unstable();
    let mut forged = [for_bob.as_str(), mallory.as_str()];
    forged.sort_unstable();
    assert_eq!(refused, forged);
    assert!(on_server.iter().all(|r| !r.by_peer
        && r.peer_instance_id.as_deref() == Some(tablet.peer.engine.instance().id.as_str())
        && r.refusal.reason.contains("fields give the partition")));
    let on_tablet = morango::refused_records(db, Some(&push.transfer_session_id)).await.unwrap();
    assert_eq!(on_tablet.len(), 2);
    assert!(on_tablet.iter().all(|r| r.by_peer));

    // Another user's id inside the JSON: a record of hers whose JSON names Bob's log, so that an application that
    // deserializes the JSON (as Python Morango does) would overwrite his log. Refused; the rest of the chunk goes.
    let session = tablet.open(&server).await;
    let client = session.client(&tablet.peer.engine);
    let again = fixtures::log(db, &fixtures::find_learner(db, &ada.id).await.unwrap(), "another video").await;
    let mut forged_json = server_record_of(&tablet, &mine.id).await;
    forged_json["id"] = json!(bobs_log.id);
    let forged_text = forged_json.to_string();
    let statement = sea_orm::Statement::from_sql_and_values(
        tablet.peer.backend(),
        match tablet.peer.backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE morango_store SET serialized = $1, last_saved_counter = last_saved_counter + 100 WHERE id = $2"
            }
            _ => "UPDATE morango_store SET serialized = ?, last_saved_counter = last_saved_counter + 100 WHERE id = ?",
        },
        [forged_text.into(), mine.id.clone().into()],
    );
    sea_orm::ConnectionTrait::execute_raw(db, statement).await.unwrap();
    let counters = sea_orm::Statement::from_sql_and_values(
        tablet.peer.backend(),
        match tablet.peer.backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE morango_recordmaxcounter SET counter = counter + 100 WHERE store_model_id = $1"
            }
            _ => "UPDATE morango_recordmaxcounter SET counter = counter + 100 WHERE store_model_id = ?",
        },
        [mine.id.clone().into()],
    );
    sea_orm::ConnectionTrait::execute_raw(db, counters).await.unwrap();
    let pushed = client.push(&tablet.scope().await.write).await.unwrap();
    client.close().await.unwrap();
    assert_eq!((pushed.records_total, pushed.records_refused), (2, 1), "{pushed:?}");
    let reason = &morango::refused_records(server.db(), Some(&pushed.transfer_session_id)).await.unwrap()[0];
    assert!(reason.refusal.reason.contains("JSON `id`"), "{reason:?}");
    assert!(log::Entity::find_by_id(again.id.clone()).one(server.db()).await.unwrap().is_some());
    assert_eq!(
        log::Entity::find_by_id(bobs_log.id.clone()).one(server.db()).await.unwrap().unwrap().content,
        "bob's video"
    );
    assert_eq!(log::Entity::find().count(server.db()).await.unwrap(), 3, "bob's, hers and her second one");
    tablet.finish().await;
    server.finish().await;
}

on_both_backends!(a_client_refuses_what_a_server_forged_and_tells_the_server);

async fn a_client_refuses_what_a_server_forged_and_tells_the_server(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let bob = fixtures::learner(server.db(), &server.facility, "bob").await;
    // A log under Ada's partition that names Bob as its learner.
    let partition = format!("{}:user-rw:{}", server.root.id(), ada.id);
    let source = random_id();
    let forged = sha2_uuid(&[&partition, &source, "contentlog"]);
    log::ActiveModel {
        id: Set(forged.clone()),
        _morango_source_id: Set(source),
        _morango_partition: Set(partition),
        _morango_dirty_bit: Set(true),
        facility_id: Set(server.root.id().to_owned()),
        learner_id: Set(bob.id.clone()),
        content: Set("filed under ada".into()),
        progress: Set(0.0),
        extra: Set(None),
    }
    .insert(server.db())
    .await
    .unwrap();
    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    let pull = tablet.sync(&server).await.pull.unwrap();
    assert_eq!((pull.records_total, pull.records_refused), (4, 1), "{pull:?}");
    assert!(log::Entity::find_by_id(forged.clone()).one(tablet.peer.db()).await.unwrap().is_none());
    assert_eq!(learner::Entity::find().count(tablet.peer.db()).await.unwrap(), 2, "the rest was applied");
    let here = morango::refused_records(tablet.peer.db(), Some(&pull.transfer_session_id)).await.unwrap();
    assert_eq!(here.len(), 1);
    assert_eq!(here[0].refusal.model_uuid, forged);
    assert_eq!(here[0].peer_instance_id.as_deref(), Some(server.api.engine().instance().id.as_str()));
    // The server's record of the transfer says one record was refused.
    let statement = sea_orm::Statement::from_sql_and_values(
        backend_of(&server),
        match backend_of(&server) {
            sea_orm::DbBackend::Postgres => "SELECT records_refused FROM morango_transfersession WHERE id = $1",
            _ => "SELECT records_refused FROM morango_transfersession WHERE id = ?",
        },
        [pull.transfer_session_id.clone().into()],
    );
    let row = sea_orm::ConnectionTrait::query_one_raw(server.db(), statement).await.unwrap().unwrap();
    assert_eq!(row.try_get::<i64>("", "records_refused").unwrap(), 1);
    // Nothing stops the next sync, which moves nothing new.
    let again = tablet.sync(&server).await.pull.unwrap();
    assert_eq!(again.records_refused, again.records_transferred, "only the forged record can come again");
    tablet.finish().await;
    server.finish().await;
}

fn backend_of(server: &Server) -> sea_orm::DbBackend {
    server.db().get_database_backend()
}

/// The store row of `id` on the server, if any.
async fn server_store_has(server: &Server, id: &str) -> Option<String> {
    let statement = sea_orm::Statement::from_sql_and_values(
        backend_of(server),
        match backend_of(server) {
            sea_orm::DbBackend::Postgres => "SELECT serialized FROM morango_store WHERE id = $1",
            _ => "SELECT serialized FROM morango_store WHERE id = ?",
        },
        [id.into()],
    );
    let row = sea_orm::ConnectionTrait::query_one_raw(server.db(), statement).await.unwrap()?;
    row.try_get("", "serialized").ok()
}

/// The record JSON of `id` in the tablet's store, parsed.
async fn server_record_of(tablet: &Client, id: &str) -> serde_json::Value {
    serde_json::Value::Object(tablet.peer.record(id).await)
}

on_both_backends!(a_hard_deletion_is_checked_by_its_models_own_id_function);

/// A hard deletion carries no fields to check, only its claimed partition and source id: its id is checked with its
/// model's `compute_namespaced_id` (the facility's is its dataset id), and it is accepted.
async fn a_hard_deletion_is_checked_by_its_models_own_id_function(backend: Backend) {
    let (office, tablet) = (crate::support::Peer::new(backend).await, crate::support::Peer::new(backend).await);
    let facility = fixtures::facility(office.db(), "Riverside").await;
    fixtures::learner(office.db(), &facility, "ada").await;
    tablet.sync_all(&office).await;
    morango::hard_delete::<crate::schema::facility::Entity, _>(office.db(), &facility.id).await.unwrap();
    let report = tablet.sync_all(&office).await;
    let pull = report.pull.unwrap();
    assert_eq!((pull.records_transferred, pull.records_refused), (2, 0), "{pull:?}");
    let row = tablet.store(&facility.id).await.unwrap();
    assert!(row.hard_deleted && row.deleted, "{row:?}");
    assert!(crate::schema::facility::Entity::find().one(tablet.db()).await.unwrap().is_none());
    office.finish().await;
    tablet.finish().await;
}
