//! What `#[derive(Syncable)]` generates, observed through the `Syncable` trait, a `profile!` and a SQLite database.

mod entities;
mod kolibri;

use entities::{FACILITY_DATA, collection, facility, learner, membership, note};
use morango::{Conflict, FieldError, Record, Resolution, Syncable};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait, Schema};
use serde_json::{Value, json};

const FACILITY: &str = "f00dfacef00dfacef00dfacef00dface";

fn fixture() -> Value {
    serde_json::from_str(include_str!("../../fixtures/morango-0.8.15.json")).expect("fixture is JSON")
}

fn record(value: Value) -> Record {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn database() -> DatabaseConnection {
    let db = Database::connect("sqlite::memory:").await.expect("in-memory SQLite");
    let schema = Schema::new(db.get_database_backend());
    db.execute(&schema.create_table_from_entity(facility::Entity)).await.expect("facility table");
    db.execute(&schema.create_table_from_entity(learner::Entity)).await.expect("learner table");
    db.execute(&schema.create_table_from_entity(note::Entity)).await.expect("note table");
    db
}

#[test]
fn names_and_fields_follow_the_declaration() {
    assert_eq!(learner::Entity::MODEL_NAME, "facilityuser");
    assert_eq!(learner::Entity::PROFILE, "facilitydata");
    assert_eq!(
        learner::Entity::FIELDS,
        ["id", "_morango_source_id", "_morango_partition", "facility_id", "username", "fullname", "age"]
    );
    // SeaORM drops the leading underscore of a column name; `column_name` renames.
    assert_eq!(
        learner::Entity::SYNCED_COLUMNS,
        ["id", "morango_source_id", "morango_partition", "facility_id", "username", "full_name", "age"]
    );
    assert_eq!(learner::Entity::LOCAL_COLUMNS, ["last_login"]);
    assert_eq!(
        collection::Entity::FIELDS,
        ["id", "_morango_source_id", "_morango_partition", "facility_id", "parent_id", "name"]
    );
    assert_eq!(membership::Entity::MODEL_NAME, "membership");
}

#[test]
fn record_ids_follow_morangos_formula() {
    let fixture = fixture();
    let cases = fixture["record_ids"].as_array().expect("record_ids");
    let mut checked = 0;
    for case in cases {
        let (Some(template), Some(source), Some(model), Some(id)) = (
            case["partition_template"].as_str(),
            case["source_id"].as_str(),
            case["model_name"].as_str(),
            case["id"].as_str(),
        ) else {
            continue;
        };
        assert_eq!(learner::Entity::compute_namespaced_id(template, source, model), id, "{}", case["name"]);
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn a_facility_user_gets_kolibris_id_partition_and_source() {
    let user =
        learner::ActiveModel { facility_id: Set(FACILITY.into()), username: Set("alice".into()), ..Default::default() };
    assert_eq!(learner::Entity::partition_template(&user).unwrap(), format!("{FACILITY}:user-ro:${{id}}"));
    let user = morango::registry::assign_ids::<learner::Entity>(user).expect("ids");
    let bookkeeping = learner::Entity::bookkeeping(&user);
    let expected = fixture()["record_ids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with("peer app FacilityUser")))
        .cloned()
        .expect("FacilityUser case");
    assert_eq!(bookkeeping.id.as_deref(), expected["id"].as_str());
    assert_eq!(bookkeeping.partition.as_deref(), expected["partition"].as_str());
    assert_eq!(bookkeeping.source_id.as_deref(), expected["source_id"].as_str());
}

#[test]
fn a_template_field_that_is_not_set_is_named_in_the_error() {
    let user = learner::ActiveModel { username: Set("alice".into()), ..Default::default() };
    let error = morango::registry::assign_ids::<learner::Entity>(user).unwrap_err();
    assert_eq!(error, morango::IdError::FieldNotSet("facility_id"));
}

#[tokio::test]
async fn inserting_assigns_ids_before_the_row_is_written() {
    let db = database().await;
    let rock = facility::ActiveModel { name: Set("Rock".into()), _morango_dirty_bit: Set(true), ..Default::default() }
        .insert(&db)
        .await
        .expect("insert facility");
    assert_eq!(rock.id, morango::ids::sha2_uuid(&["${id}", "Rock", "facility"]));
    assert_eq!(rock._morango_partition, rock.id);
    assert_eq!(rock._morango_source_id, "Rock");

    // A preset id is kept; the partition template `${id}` then becomes that id.
    let kolibri = facility::ActiveModel {
        id: Set(FACILITY.into()),
        name: Set("Kolibri".into()),
        _morango_dirty_bit: Set(true),
        ..Default::default()
    }
    .insert(&db)
    .await
    .expect("insert facility with id");
    assert_eq!((kolibri.id.as_str(), kolibri._morango_partition.as_str()), (FACILITY, FACILITY));

    let alice = learner::ActiveModel {
        facility_id: Set(FACILITY.into()),
        username: Set("alice".into()),
        age: Set(9),
        _morango_dirty_bit: Set(true),
        ..Default::default()
    }
    .insert(&db)
    .await
    .expect("insert learner");
    assert_eq!(alice.id, "4681892799c69c7bb915d064cbf6b5a3");
    assert_eq!(alice._morango_partition, format!("{FACILITY}:user-ro:4681892799c69c7bb915d064cbf6b5a3"));
    let stored = learner::Entity::find_by_id(alice.id.clone()).one(&db).await.unwrap().expect("row");
    assert_eq!(stored, alice);

    // An update keeps the ids.
    let mut renamed: learner::ActiveModel = stored.into();
    renamed.username = Set("alicia".into());
    let renamed = renamed.update(&db).await.expect("update");
    assert_eq!(renamed.id, alice.id);
    assert_eq!(renamed._morango_source_id, alice._morango_source_id);
}

#[tokio::test]
async fn an_insert_that_cannot_compute_its_id_fails_with_the_field_name() {
    let db = database().await;
    let error = learner::ActiveModel { username: Set("bob".into()), age: Set(1), ..Default::default() }
        .insert(&db)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("facility_id"), "{error}");
}

#[tokio::test]
async fn custom_behavior_and_id_functions_are_used() {
    let db = database().await;
    let note = note::ActiveModel {
        collection_id: Set("c1".into()),
        text: Set("hello".into()),
        written: Set(None),
        ..Default::default()
    }
    .insert(&db)
    .await
    .expect("insert note");
    let expected_id = morango::ids::sha2_uuid(&["note", "note:hello", "c1:notes:${id}"]);
    assert_eq!(note.id, expected_id);
    assert_eq!(note._morango_partition, format!("c1:notes:{expected_id}"));
    assert!(note._morango_dirty_bit);
}

#[test]
fn records_round_trip_without_local_fields() {
    let model = learner::Model {
        id: "4681892799c69c7bb915d064cbf6b5a3".into(),
        _morango_source_id: format!("{FACILITY}:alice"),
        _morango_partition: format!("{FACILITY}:user-ro:4681892799c69c7bb915d064cbf6b5a3"),
        _morango_dirty_bit: true,
        facility_id: FACILITY.into(),
        username: "alice".into(),
        fullname: Some("Alice A.".into()),
        last_login: Some("yesterday".into()),
        age: 12,
        scratch: 3,
    };
    let json = learner::Entity::to_record(&model);
    assert_eq!(json.keys().map(String::as_str).collect::<Vec<_>>(), learner::Entity::FIELDS);
    assert_eq!(json["fullname"], json!("Alice A."));
    assert_eq!(json["age"], json!(12));
    assert!(!json.contains_key("last_login") && !json.contains_key("_morango_dirty_bit"));
    assert_eq!(learner::Entity::record_id(&model), model.id);

    let back = learner::Entity::from_record(&json).expect("valid record");
    assert_eq!(back.username, Set("alice".into()));
    assert_eq!(back.fullname, Set(Some("Alice A.".into())));
    assert_eq!(back.age, Set(12));
    assert_eq!(back._morango_partition, Set(model._morango_partition.clone()));
    assert_eq!(back._morango_dirty_bit, Set(false));
    assert_eq!(back.last_login, Set(None), "local fields are not synced");
}

#[test]
fn a_field_codec_writes_and_reads_the_field_in_record_json() {
    let written = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_micro_opt(10, 0, 0, 250).unwrap();
    let model = note::Model {
        id: "n".into(),
        _morango_source_id: "s".into(),
        _morango_partition: "p".into(),
        _morango_dirty_bit: false,
        collection_id: "c".into(),
        text: "hello".into(),
        written: Some(written),
    };
    let json = note::Entity::to_record(&model);
    assert_eq!(json["written"], json!("2026-01-01 10:00:00.000250(Etc/UTC)"), "`with = kolibri_datetime`");
    assert_eq!(note::Entity::from_record(&json).expect("readable").written, Set(Some(written)));
    let json = record(json!({ "id": "n", "written": "yesterday" }));
    let errors = note::Entity::from_record(&json).expect_err("unreadable");
    assert_eq!(errors.0.iter().map(|e| e.field).collect::<Vec<_>>(), ["written"], "{errors}");
}

#[test]
fn missing_keys_take_the_field_default() {
    let json = record(json!({ "id": "x", "username": "carol", "some_future_field": 1 }));
    let model = learner::Entity::from_record(&json).expect("valid record");
    assert_eq!(model.username, Set("carol".into()));
    assert_eq!(model.facility_id, Set(String::new()));
    assert_eq!(model.fullname, Set(None));
    assert_eq!(model.age, Set(7), "#[morango(default = 7)]");
}

#[test]
fn every_field_that_cannot_be_read_is_reported() {
    let json = record(json!({ "id": "x", "username": 5, "age": "old", "fullname": null }));
    let errors = learner::Entity::from_record(&json).unwrap_err();
    let fields: Vec<&str> = errors.0.iter().map(|e: &FieldError| e.field).collect();
    assert_eq!(fields, ["username", "age"]);
    assert!(errors.to_string().starts_with("username: "), "{errors}");
}

#[test]
fn the_conflict_hook_is_the_declared_function() {
    let hooks = [note::Entity::HAS_CONFLICT_HOOK, learner::Entity::HAS_CONFLICT_HOOK];
    assert_eq!(hooks, [true, false]);
    let local = record(json!({ "text": "hi" }));
    let incoming = record(json!({ "text": "hello" }));
    let conflict = Conflict { id: "x", local: &local, incoming: &incoming };
    assert_eq!(note::Entity::resolve_conflict(&conflict), Resolution::TakeIncoming);
    assert_eq!(learner::Entity::resolve_conflict(&conflict), Resolution::KeepLocal);
}

#[test]
fn the_profile_lists_referenced_models_first() {
    let order: Vec<&str> = FACILITY_DATA.models().map(|m| m.model_name()).collect();
    assert_eq!(order, ["facility", "facilityuser", "collection", "membership", "note"]);
    assert_eq!(FACILITY_DATA.name(), "facilitydata");
    assert_eq!(FACILITY_DATA.model("note").map(|m| m.model_name()), Some("note"));
}

#[test]
fn graph_edges_come_from_relations_and_depends_on() {
    let edges = |node: morango::graph::NodeRef| {
        node.get().edges.iter().map(|e| (e.kind, e.field, e.target.get().model_name)).collect::<Vec<_>>()
    };
    use morango::graph::EdgeKind::*;
    assert_eq!(edges(learner::Entity::NODE), [(BelongsTo, "Facility", "facility")]);
    assert_eq!(
        edges(collection::Entity::NODE),
        [(BelongsTo, "facility", "facility"), (SelfRef, "parent", "collection"), (Via, "learners", "membership")]
    );
    assert_eq!(
        edges(note::Entity::NODE),
        [(DependsOn, "depends_on", "collection"), (DependsOn, "depends_on", "facilityuser")]
    );
    assert_eq!(learner::Entity::NODE.get().table, "learner");
}
