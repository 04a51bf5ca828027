//! What each side holds, in one shape for both (the Python project's `dump` command and the same read from the
//! Rust database), and the record-by-record comparison of two of them.

use std::collections::BTreeMap;
use std::fmt::Write;

use morango::Syncable;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;

use super::entities::{classroom, facility, learner, lesson_progress};
use super::python::PyInstance;
use super::rust_instance::RustInstance;

/// One store row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRecord {
    pub model_name: String,
    pub partition: String,
    pub source_id: String,
    /// The record JSON, parsed (`Null` when the text is empty).
    pub serialized: Value,
    pub deleted: bool,
    pub hard_deleted: bool,
    pub last_saved_instance: String,
    pub last_saved_counter: i64,
    /// Record-max counters: instance → counter.
    pub rmc: BTreeMap<String, i64>,
    pub conflicting_serialized_data: String,
    pub dirty_bit: bool,
    pub deserialization_error: Option<String>,
}

/// One side's sync state and application rows.
#[derive(Debug, Clone)]
pub struct State {
    pub side: String,
    pub store: BTreeMap<String, StoreRecord>,
    /// Model name → record id → the row as record JSON.
    pub app: BTreeMap<String, BTreeMap<String, Value>>,
    /// Certificate id → (parent id, scope definition, scope params, owned (has the private key)).
    pub certificates: BTreeMap<String, (Option<String>, String, Value, bool)>,
}

impl State {
    /// The Python instance's state, from its `dump` command.
    pub async fn of_python(instance: &PyInstance) -> State {
        let dump = instance.run(&["dump"]).await;
        let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
        let mut store = BTreeMap::new();
        for row in dump["store"].as_array().unwrap() {
            let rmc = row["rmc"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap())).collect();
            store.insert(
                text(row, "id"),
                StoreRecord {
                    model_name: text(row, "model_name"),
                    partition: text(row, "partition"),
                    source_id: text(row, "source_id"),
                    serialized: row["serialized"].clone(),
                    deleted: row["deleted"].as_bool().unwrap(),
                    hard_deleted: row["hard_deleted"].as_bool().unwrap(),
                    last_saved_instance: text(row, "last_saved_instance"),
                    last_saved_counter: row["last_saved_counter"].as_i64().unwrap(),
                    rmc,
                    conflicting_serialized_data: text(row, "conflicting_serialized_data"),
                    dirty_bit: row["dirty_bit"].as_bool().unwrap(),
                    deserialization_error: row["deserialization_error"]
                        .as_str()
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned),
                },
            );
        }
        let mut app = BTreeMap::new();
        for (model, rows) in dump["app"].as_object().unwrap() {
            let rows = rows.as_array().unwrap().iter().map(|r| (text(r, "id"), r.clone())).collect();
            app.insert(model.clone(), rows);
        }
        let certificates = dump["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let parent = c["parent"].as_str().map(str::to_owned);
                (
                    text(c, "id"),
                    (parent, text(c, "scope_definition"), c["scope_params"].clone(), c["owned"].as_bool().unwrap()),
                )
            })
            .collect();
        State { side: format!("python[{}]", instance.name), store, app, certificates }
    }

    /// The Rust instance's state, read from its database.
    pub async fn of_rust(instance: &RustInstance) -> State {
        let db = instance.db();
        let mut rmcs: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for row in query(db, "SELECT store_model_id, instance_id, counter FROM morango_recordmaxcounter").await {
            let counter: i64 = row.try_get("", "counter").unwrap();
            rmcs.entry(row.try_get("", "store_model_id").unwrap())
                .or_default()
                .insert(row.try_get("", "instance_id").unwrap(), counter);
        }
        let mut store = BTreeMap::new();
        for row in query(db, "SELECT * FROM morango_store").await {
            let id: String = row.try_get("", "id").unwrap();
            let serialized: String = row.try_get("", "serialized").unwrap();
            let record = StoreRecord {
                model_name: row.try_get("", "model_name").unwrap(),
                partition: row.try_get("", "partition").unwrap(),
                source_id: row.try_get("", "source_id").unwrap(),
                serialized: if serialized.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&serialized).unwrap()
                },
                deleted: row.try_get("", "deleted").unwrap(),
                hard_deleted: row.try_get("", "hard_deleted").unwrap(),
                last_saved_instance: row.try_get("", "last_saved_instance").unwrap(),
                last_saved_counter: row.try_get("", "last_saved_counter").unwrap(),
                rmc: rmcs.remove(&id).unwrap_or_default(),
                conflicting_serialized_data: row.try_get("", "conflicting_serialized_data").unwrap(),
                dirty_bit: row.try_get("", "dirty_bit").unwrap(),
                deserialization_error: row
                    .try_get::<Option<String>>("", "deserialization_error")
                    .unwrap()
                    .filter(|e| !e.is_empty()),
            };
            store.insert(id, record);
        }
        let mut app = BTreeMap::new();
        app.insert("facility".into(), rows::<facility::Entity>(db).await);
        app.insert("classroom".into(), rows::<classroom::Entity>(db).await);
        app.insert("learner".into(), rows::<learner::Entity>(db).await);
        app.insert("lessonprogress".into(), rows::<lesson_progress::Entity>(db).await);
        let mut certificates = BTreeMap::new();
        let sql = "SELECT id, parent_id, scope_definition_id, scope_params, private_key FROM morango_certificate";
        for row in query(db, sql).await {
            let params: String = row.try_get("", "scope_params").unwrap();
            let key: Option<String> = row.try_get("", "private_key").unwrap();
            certificates.insert(
                row.try_get("", "id").unwrap(),
                (
                    row.try_get("", "parent_id").unwrap(),
                    row.try_get("", "scope_definition_id").unwrap(),
                    serde_json::from_str(&params).unwrap(),
                    key.is_some_and(|k| !k.is_empty()),
                ),
            );
        }
        State { side: "rust".into(), store, app, certificates }
    }

    /// The store records under any of `prefixes` (all of them for `None`).
    pub fn records_under<'a>(
        &'a self,
        prefixes: Option<&'a [String]>,
    ) -> impl Iterator<Item = (&'a String, &'a StoreRecord)> {
        self.store.iter().filter(move |(_, r)| under(&r.partition, prefixes))
    }

    /// The live application rows (all models) under `prefixes`, by record id.
    pub fn app_rows_under(&self, prefixes: Option<&[String]>) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for rows in self.app.values() {
            for (id, row) in rows {
                let partition = row["_morango_partition"].as_str().unwrap_or_default();
                if under(partition, prefixes) {
                    out.insert(id.clone(), row.clone());
                }
            }
        }
        out
    }

    /// The live application row of a record, if any.
    pub fn app_row(&self, id: &str) -> Option<&Value> {
        self.app.values().find_map(|rows| rows.get(id))
    }

    /// Problems a converged instance must not have: store rows still waiting to be applied, or that failed to.
    ///
    /// Python Morango 0.8.15 deletes the application row of a received deletion but leaves its store row dirty
    /// (`_deserialize_from_store`, models without a self-referential foreign key: the `None` that
    /// `_deserialize_store_model` returns for a deletion is never marked clean; 0.8.2 cleared it). Such rows are
    /// applied (the row is gone) and are not counted here.
    pub fn pending_problems(&self) -> Vec<String> {
        let python = self.side.starts_with("python");
        self.store
            .iter()
            .filter(|(id, r)| {
                let python_deletion_bug =
                    python && r.deleted && r.deserialization_error.is_none() && self.app_row(id).is_none();
                (r.dirty_bit && !python_deletion_bug) || r.deserialization_error.is_some()
            })
            .map(|(id, r)| {
                format!(
                    "{}: {} {id} dirty={} error={:?}",
                    self.side, r.model_name, r.dirty_bit, r.deserialization_error
                )
            })
            .collect()
    }
}

fn under(partition: &str, prefixes: Option<&[String]>) -> bool {
    prefixes.is_none_or(|prefixes| prefixes.iter().any(|p| partition.starts_with(p.as_str())))
}

async fn query(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.expect(sql)
}

async fn rows<E: Syncable>(db: &DatabaseConnection) -> BTreeMap<String, Value> {
    E::find()
        .all(db)
        .await
        .expect("application rows")
        .iter()
        .map(|m| (E::record_id(m).to_owned(), Value::Object(E::to_record(m))))
        .collect()
}

/// Asserts that `a` and `b` hold the same records under `prefixes` (all when `None`): store rows record by record
/// (model, partition, source id, record JSON parsed, deletion flags, last-saved version and record-max counters),
/// the same application rows, and nothing left unapplied on either side.
pub fn assert_same(step: &str, a: &State, b: &State, prefixes: Option<&[String]>) {
    assert_same_except(step, a, b, prefixes, &[]);
}

/// [`assert_same`], leaving out the records `except` (the caller says why they legitimately differ).
pub fn assert_same_except(step: &str, a: &State, b: &State, prefixes: Option<&[String]>, except: &[&str]) {
    let mut diffs = String::new();
    let kept = |(id, _): &(&String, &StoreRecord)| !except.contains(&id.as_str());
    let left: BTreeMap<_, _> = a.records_under(prefixes).filter(kept).collect();
    let right: BTreeMap<_, _> = b.records_under(prefixes).filter(kept).collect();
    for id in left.keys().chain(right.keys()).collect::<std::collections::BTreeSet<_>>() {
        match (left.get(id), right.get(id)) {
            (Some(x), Some(y)) => {
                let fields = [
                    ("model_name", serde_json::json!(x.model_name), serde_json::json!(y.model_name)),
                    ("partition", serde_json::json!(x.partition), serde_json::json!(y.partition)),
                    ("source_id", serde_json::json!(x.source_id), serde_json::json!(y.source_id)),
                    ("serialized", x.serialized.clone(), y.serialized.clone()),
                    ("deleted", serde_json::json!(x.deleted), serde_json::json!(y.deleted)),
                    ("hard_deleted", serde_json::json!(x.hard_deleted), serde_json::json!(y.hard_deleted)),
                    (
                        "last_saved_instance",
                        serde_json::json!(x.last_saved_instance),
                        serde_json::json!(y.last_saved_instance),
                    ),
                    (
                        "last_saved_counter",
                        serde_json::json!(x.last_saved_counter),
                        serde_json::json!(y.last_saved_counter),
                    ),
                    ("rmc", serde_json::json!(x.rmc), serde_json::json!(y.rmc)),
                ];
                for (name, l, r) in fields {
                    if l != r {
                        let _ = writeln!(
                            diffs,
                            "  {} {id} {name}:\n    {}: {l}\n    {}: {r}",
                            x.model_name, a.side, b.side
                        );
                    }
                }
            }
            (Some(x), None) => {
                let _ = writeln!(diffs, "  {} {id} only on {} ({})", x.model_name, a.side, x.serialized);
            }
            (None, Some(y)) => {
                let _ = writeln!(diffs, "  {} {id} only on {} ({})", y.model_name, b.side, y.serialized);
            }
            (None, None) => unreachable!(),
        }
    }
    let (mut left_app, mut right_app) = (a.app_rows_under(prefixes), b.app_rows_under(prefixes));
    for id in except {
        left_app.remove(*id);
        right_app.remove(*id);
    }
    for id in left_app.keys().chain(right_app.keys()).collect::<std::collections::BTreeSet<_>>() {
        match (left_app.get(id), right_app.get(id)) {
            (Some(l), Some(r)) if l == r => {}
            (l, r) => {
                let show = |v: Option<&Value>| v.map_or("(no row)".to_owned(), Value::to_string);
                let _ = writeln!(
                    diffs,
                    "  application row {id}:\n    {}: {}\n    {}: {}",
                    a.side,
                    show(l),
                    b.side,
                    show(r)
                );
            }
        }
    }
    for problem in a.pending_problems().into_iter().chain(b.pending_problems()) {
        let _ = writeln!(diffs, "  not applied: {problem}");
    }
    assert!(diffs.is_empty(), "{step}: {} and {} differ:\n{diffs}", a.side, b.side);
}

/// Asserts that nothing of `before` changed in `after` (same versions, same data): a sync that moved nothing.
pub fn assert_unchanged(step: &str, before: &State, after: &State) {
    let mut diffs = String::new();
    for (id, old) in &before.store {
        match after.store.get(id) {
            Some(new) if new == old => {}
            Some(new) => {
                let _ = writeln!(diffs, "  {id}: {old:?}\n    became {new:?}");
            }
            None => {
                let _ = writeln!(diffs, "  {id} disappeared");
            }
        }
    }
    for id in after.store.keys().filter(|id| !before.store.contains_key(*id)) {
        let _ = writeln!(diffs, "  {id} appeared");
    }
    assert!(diffs.is_empty(), "{step}: the store of {} changed:\n{diffs}", before.side);
}
