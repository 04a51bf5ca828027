//! The merge vectors of Python Morango 0.8.15 (`fixtures/morango-0.8.15.json`, section `merge`), replayed
//! through this engine's dequeue on a real database: same store row and record-max counters afterwards.

use std::collections::BTreeMap;

use morango::server::{self, StageRequest};
use morango::{Engine, TransferStage};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use serde_json::Value as Json;

use crate::on_both_backends;
use crate::schema::{self, Tables};
use crate::support::{Backend, TestDb};

on_both_backends!(merges_match_python_morango);

fn vectors() -> Json {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/morango-0.8.15.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

struct Sql<'a> {
    db: &'a sea_orm::DatabaseConnection,
}

impl Sql<'_> {
    async fn run(&self, sql: &str, values: Vec<Value>) {
        let backend = self.db.get_database_backend();
        let sql = if backend == DbBackend::Sqlite { sql.replace('$', "?") } else { sql.to_owned() };
        self.db
            .execute_raw(Statement::from_sql_and_values(backend, sql.clone(), values))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn s(v: &Json) -> Value {
    match v {
        Json::Null => Value::String(None),
        Json::String(text) => text.clone().into(),
        other => other.to_string().into(),
    }
}

async fn merges_match_python_morango(backend: Backend) {
    let vectors = vectors();
    let derivation = &vectors["buffer_record"]["instance_id_derivation"];
    for case in vectors["merge"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let test_db = TestDb::new(backend).await;
        let db = &test_db.db;
        morango::migration::migrate(db).await.unwrap();
        schema::create_tables(db, Tables::Current).await.unwrap();
        let sql = Sql { db };
        // The vectors' local instance: same database id, system id and node id.
        sql.run(
            "INSERT INTO morango_databaseidmodel (id, current, date_generated) VALUES ($1, $2, $3)",
            vec![s(&derivation["database_id"]), true.into(), Value::ChronoDateTimeUtc(Some(chrono::Utc::now()))],
        )
        .await;
        let engine = Engine::builder(db.clone(), &schema::FACILITY_DATA)
            .identity(
                derivation["MORANGO_SYSTEM_ID"].as_str().unwrap(),
                derivation["MORANGO_NODE_ID"].as_str().unwrap(),
            )
            .open()
            .await
            .unwrap();
        assert_eq!(engine.instance().id, case["local_instance_id"].as_str().unwrap(), "{name}: instance id derivation");
        sql.run(
            "UPDATE morango_instanceidmodel SET counter = $1",
            vec![case["local_counter_before"].as_i64().unwrap().into()],
        )
        .await;

        let store = &case["store_before"];
        if !store.is_null() {
            sql.run(
                "INSERT INTO morango_store (id, profile, serialized, deleted, hard_deleted, last_saved_instance, \
                 last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, _self_ref_fk, dirty_bit) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                vec![
                    s(&store["id"]),
                    s(&store["profile"]),
                    s(&store["serialized"]),
                    store["deleted"].as_bool().unwrap().into(),
                    store["hard_deleted"].as_bool().unwrap().into(),
                    s(&store["last_saved_instance"]),
                    store["last_saved_counter"].as_i64().unwrap().into(),
                    s(&store["partition"]),
                    s(&store["source_id"]),
                    s(&store["model_name"]),
                    s(&store["conflicting_serialized_data"]),
                    s(&store["_self_ref_fk"]),
                    store["dirty_bit"].as_bool().unwrap().into(),
                ],
            )
            .await;
            for (instance, counter) in case["rmcs_before"].as_object().unwrap() {
                sql.run(
                    "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) VALUES ($1, $2, $3)",
                    vec![s(&store["id"]), instance.clone().into(), counter.as_i64().unwrap().into()],
                )
                .await;
            }
        }

        // A push the server has fully received: the buffer holds the incoming record.
        let transfer = case["transfer_session_id"].as_str().unwrap();
        let buffer = &case["buffer"];
        let sync_session = "5e55105e55105e55105e55105e551051";
        server::open_sync_session(
            &engine,
            sync_session,
            &format!(r#"{{"id": "{}"}}"#, morango::ids::random_id()),
            "local",
        )
        .await
        .unwrap();
        sql.run(
            "INSERT INTO morango_transfersession (id, sync_session_id, filter, push, active, records_transferred, \
             records_total, client_fsic, server_fsic, fsic_v2, transfer_stage, transfer_stage_status, start_timestamp, \
             last_activity_timestamp) VALUES ($1, $2, $3, $4, $4, 1, 1, $5, $5, $4, 'transferring', 'completed', $6, $6)",
            vec![
                transfer.into(),
                sync_session.into(),
                s(&buffer["partition"]),
                true.into(),
                r#"{"super": {}, "sub": {}}"#.into(),
                Value::ChronoDateTimeUtc(Some(chrono::Utc::now())),
            ],
        )
        .await;
        sql.run(
            "INSERT INTO morango_buffer (transfer_session_id, model_uuid, seq, profile, serialized, deleted, hard_deleted, \
             last_saved_instance, last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, \
             _self_ref_fk) VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            vec![
                transfer.into(),
                s(&buffer["model_uuid"]),
                s(&buffer["profile"]),
                s(&buffer["serialized"]),
                buffer["deleted"].as_bool().unwrap().into(),
                buffer["hard_deleted"].as_bool().unwrap().into(),
                s(&buffer["last_saved_instance"]),
                buffer["last_saved_counter"].as_i64().unwrap().into(),
                s(&buffer["partition"]),
                s(&buffer["source_id"]),
                s(&buffer["model_name"]),
                s(&buffer["conflicting_serialized_data"]),
                s(&buffer["_self_ref_fk"]),
            ],
        )
        .await;
        for (instance, counter) in case["rmcb"].as_object().unwrap() {
            sql.run(
                "INSERT INTO morango_recordmaxcounterbuffer (transfer_session_id, model_uuid, instance_id, counter) \
                 VALUES ($1, $2, $3, $4)",
                vec![
                    transfer.into(),
                    s(&buffer["model_uuid"]),
                    instance.clone().into(),
                    counter.as_i64().unwrap().into(),
                ],
            )
            .await;
        }

        server::proceed_to(
            &engine,
            transfer,
            &StageRequest { stage: Some(TransferStage::Dequeuing), ..Default::default() },
            &Default::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));

        let after = &case["store_after"];
        let backend_sql = |sql: &str| if backend == Backend::Sqlite { sql.replace('$', "?") } else { sql.to_owned() };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                backend_sql("SELECT * FROM morango_store WHERE id = $1"),
                vec![s(&after["id"])],
            ))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: store row missing"));
        for column in [
            "serialized",
            "conflicting_serialized_data",
            "last_saved_instance",
            "partition",
            "source_id",
            "model_name",
            "profile",
            "_self_ref_fk",
        ] {
            let got: String = row.try_get("", column).unwrap();
            assert_eq!(got, after[column].as_str().unwrap(), "{name}: {column}");
        }
        for column in ["deleted", "hard_deleted", "dirty_bit"] {
            let got: bool = row.try_get("", column).unwrap();
            assert_eq!(got, after[column].as_bool().unwrap(), "{name}: {column}");
        }
        let counter: i64 = row.try_get("", "last_saved_counter").unwrap();
        assert_eq!(counter, after["last_saved_counter"].as_i64().unwrap(), "{name}: last_saved_counter");
        let last_transfer: Option<String> = row.try_get("", "last_transfer_session_id").unwrap();
        assert_eq!(
            last_transfer.as_deref(),
            after["last_transfer_session_id"].as_str(),
            "{name}: last_transfer_session_id"
        );

        let rmcs = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                backend_sql("SELECT instance_id, counter FROM morango_recordmaxcounter WHERE store_model_id = $1"),
                vec![s(&after["id"])],
            ))
            .await
            .unwrap();
        let got: BTreeMap<String, i64> =
            rmcs.iter().map(|r| (r.try_get("", "instance_id").unwrap(), r.try_get("", "counter").unwrap())).collect();
        let expected: BTreeMap<String, i64> =
            case["rmcs_after"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap())).collect();
        assert_eq!(got, expected, "{name}: record max counters");
        drop(engine);
        test_db.finish().await;
    }
}
