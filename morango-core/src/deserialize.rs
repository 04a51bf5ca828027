//! Deserialization: store records marked dirty are written into the application tables (spec §8.3).
//!
//! Models are applied in the profile's dependency order (deletions in reverse order). Before a record is
//! written, each of its foreign keys must point at a row that exists in the application table (Python Morango
//! only checks the store): a target that the store holds as deleted makes the record's deletion cascade; a
//! target that is simply missing leaves the record in the store, dirty, with the error recorded, to be applied
//! by a later run. Trees are applied parent first. A bad record never stops the others.

use std::collections::{HashMap, HashSet};

use sea_orm::{DatabaseTransaction, QueryResult, TransactionTrait, Value};
use serde_json::Value as Json;

use crate::engine::Engine;
use crate::error::{DbContext, Result};
use crate::filter::Filter;
use crate::model::{Record, columns};
use crate::registry::{ForeignKey, IncomingRow, SyncableModel};
use crate::sql::{self, get, ident, placeholders, text};
use crate::tracking::Guard;

/// What one deserialization run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeserializeReport {
    /// Records written into application tables.
    pub applied: u64,
    /// Application rows deleted.
    pub deleted: u64,
    /// Records left in the store with an error (retried next time).
    pub failed: u64,
}

/// Serializes local edits first (a local edit beats a received version that was not applied yet), then applies
/// the dirty store records under `filter`.
pub(crate) async fn deserialize(engine: &Engine, filter: Option<&Filter>) -> Result<DeserializeReport> {
    let (txn, _writer) = engine.begin_exclusive().await?;
    Guard::Apply.enter(&txn).await.context(|| "entering the apply guard".into())?;
    crate::serialize::serialize_in(&txn, engine, filter).await?;
    let mut report = DeserializeReport::default();
    let models: Vec<&dyn SyncableModel> = engine.profile().models().collect();
    for model in models.iter().rev() {
        delete_rows(&txn, engine, *model, filter, &mut report).await?;
    }
    for model in &models {
        apply_rows(&txn, engine, *model, filter, &mut report).await?;
    }
    Guard::Apply.leave(&txn).await.context(|| "leaving the apply guard".into())?;
    crate::fault::point("deserialize.commit");
    txn.commit().await.context(|| "committing deserialization".into())?;
    Ok(report)
}

/// Applies received records that the store did not hold, in the transaction that stores them, so that their store
/// rows can be written clean: records of declared models, not deleted, whose foreign-key targets (and tree parents)
/// are already in the application tables or earlier in `records`. Returns the ids applied; the others are stored
/// dirty and left to the deserializing stage, which also records why one cannot be applied. The caller holds the
/// apply guard.
pub(crate) async fn apply_received(
    txn: &DatabaseTransaction,
    engine: &Engine,
    records: &[&crate::buffer::BufferRecord],
) -> Result<HashSet<String>> {
    let mut applied = HashSet::new();
    for model in engine.profile().models() {
        let rows: Vec<Dirty> = records
            .iter()
            .filter(|r| !r.deleted && r.model_name == model.model_name())
            .map(|r| Dirty {
                id: r.model_uuid.clone(),
                serialized: r.serialized.clone(),
                partition: r.partition.clone(),
                source_id: r.source_id.clone(),
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let foreign_keys = model.foreign_keys();
        let self_ref = foreign_keys.iter().find(|fk| fk.self_ref);
        let outcome = apply_chunk(txn, engine, model, &foreign_keys, self_ref, rows, true).await?;
        applied.extend(outcome.settled.into_iter().filter(|id| !outcome.errors.contains_key(id)));
    }
    Ok(applied)
}

/// A dirty store row.
struct Dirty {
    id: String,
    serialized: String,
    partition: String,
    source_id: String,
}

/// Up to `limit` dirty store rows of `model` after `after`, deleted or not.
async fn dirty_store_rows(
    txn: &DatabaseTransaction,
    engine: &Engine,
    model: &dyn SyncableModel,
    deleted: bool,
    filter: Option<&Filter>,
    after: &str,
) -> Result<Vec<Dirty>> {
    let mut values: Vec<Value> = vec![
        text(engine.profile().name()),
        text(model.model_name()),
        true.into(),
        deleted.into(),
        text(after),
        (engine.chunk_size() as i64).into(),
    ];
    let condition = match filter {
        Some(filter) => sql::under_prefixes("partition", filter.prefixes(), &mut values),
        None => String::new(),
    };
    let rows = sql::query(
        txn,
        "reading dirty store records",
        &format!(
            "SELECT id, serialized, partition, source_id FROM morango_store WHERE profile = $1 AND model_name = $2 \
             AND dirty_bit = $3 AND deleted = $4 AND id > $5{condition} ORDER BY id LIMIT $6"
        ),
        values,
    )
    .await?;
    rows.iter()
        .map(|row: &QueryResult| {
            Ok(Dirty {
                id: get(row, "id")?,
                serialized: get(row, "serialized")?,
                partition: get(row, "partition")?,
                source_id: get(row, "source_id")?,
            })
        })
        .collect()
}

async fn delete_rows(
    txn: &DatabaseTransaction,
    engine: &Engine,
    model: &dyn SyncableModel,
    filter: Option<&Filter>,
    report: &mut DeserializeReport,
) -> Result<()> {
    let mut after = String::new();
    loop {
        let rows = dirty_store_rows(txn, engine, model, true, filter, &after).await?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = last.id.clone();
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut errors = HashMap::new();
        match delete_app_rows(txn, model, &ids).await {
            Ok(n) => report.deleted += n,
            Err(_) => {
                // A restricting foreign key refused one of them: find which, one by one.
                for id in &ids {
                    match delete_app_rows(txn, model, std::slice::from_ref(id)).await {
                        Ok(n) => report.deleted += n,
                        Err(error) => {
                            errors.insert(id.clone(), error.to_string());
                        }
                    }
                }
            }
        }
        settle(txn, &ids, &errors, report).await?;
    }
}

/// Deletes application rows inside a savepoint, so a refusing foreign key leaves the transaction usable.
async fn delete_app_rows(txn: &DatabaseTransaction, model: &dyn SyncableModel, ids: &[String]) -> Result<u64> {
    let savepoint = txn.begin().await.context(|| "starting a savepoint".into())?;
    let result = sql::exec(
        &savepoint,
        "deleting application rows",
        &format!(
            "DELETE FROM {} WHERE {} IN ({})",
            ident(model.table()),
            ident(columns::ID),
            placeholders(1, ids.len())
        ),
        ids.iter().map(text).collect(),
    )
    .await;
    match result {
        Ok(n) => savepoint.commit().await.context(|| "releasing a savepoint".into()).map(|()| n),
        Err(error) => {
            savepoint.rollback().await.context(|| "rolling back a savepoint".into())?;
            Err(error)
        }
    }
}

async fn apply_rows(
    txn: &DatabaseTransaction,
    engine: &Engine,
    model: &dyn SyncableModel,
    filter: Option<&Filter>,
    report: &mut DeserializeReport,
) -> Result<()> {
    let foreign_keys = model.foreign_keys();
    let self_ref = foreign_keys.iter().find(|fk| fk.self_ref).cloned();
    // Trees: a child whose parent comes in a later chunk waits for the next pass.
    loop {
        let mut after = String::new();
        let mut applied_in_pass = 0;
        let mut waiting_for_parent = 0;
        loop {
            let rows = dirty_store_rows(txn, engine, model, false, filter, &after).await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            let outcome = apply_chunk(txn, engine, model, &foreign_keys, self_ref.as_ref(), rows, false).await?;
            applied_in_pass += outcome.applied;
            waiting_for_parent += outcome.waiting_for_parent;
            report.applied += outcome.applied;
            settle(txn, &outcome.settled, &outcome.errors, report).await?;
        }
        if self_ref.is_none() || applied_in_pass == 0 || waiting_for_parent == 0 {
            return Ok(());
        }
    }
}

#[derive(Default)]
struct ChunkOutcome {
    applied: u64,
    waiting_for_parent: u64,
    /// Every store row this chunk finished with (applied or failed).
    settled: Vec<String>,
    errors: HashMap<String, String>,
}

/// Applies `rows` of `model`. With `defer`, a record that cannot be applied yet (a foreign-key target missing or
/// deleted, a tree parent not there) is simply left out, with no error and no cascade: the deserializing stage
/// deals with it.
async fn apply_chunk(
    txn: &DatabaseTransaction,
    engine: &Engine,
    model: &dyn SyncableModel,
    foreign_keys: &[ForeignKey],
    self_ref: Option<&ForeignKey>,
    rows: Vec<Dirty>,
    defer: bool,
) -> Result<ChunkOutcome> {
    let mut outcome = ChunkOutcome::default();
    let mut candidates: Vec<(Dirty, Record)> = Vec::with_capacity(rows.len());
    for row in rows {
        match serde_json::from_str::<Json>(&row.serialized) {
            Ok(Json::Object(record)) => candidates.push((row, record)),
            _ => {
                outcome.errors.insert(row.id.clone(), "serialized data is not a JSON object".into());
                outcome.settled.push(row.id);
            }
        }
    }
    // Foreign keys to other tables: the target must exist in the application table.
    for fk in foreign_keys.iter().filter(|fk| !fk.self_ref) {
        let targets: Vec<String> = candidates.iter().filter_map(|(_, r)| reference(r, fk.field)).collect();
        let present = existing(txn, &fk.target_table, &fk.target_column, &targets).await?;
        let missing: Vec<String> = targets.into_iter().filter(|t| !present.contains(t)).collect();
        if missing.is_empty() {
            continue;
        }
        if defer {
            candidates.retain(|(_, record)| reference(record, fk.field).is_none_or(|t| present.contains(&t)));
            continue;
        }
        let deleted = deleted_in_store(txn, &missing).await?;
        let mut keep = Vec::with_capacity(candidates.len());
        for (row, record) in candidates {
            match reference(&record, fk.field) {
                Some(target) if deleted.contains(&target) => {
                    cascade_deletion(txn, engine, model, &row.id).await?;
                    outcome.errors.insert(row.id.clone(), format!("`{}` refers to deleted record {target}", fk.field));
                }
                Some(target) if !present.contains(&target) => {
                    outcome.errors.insert(
                        row.id.clone(),
                        format!(
                            "`{}` refers to {} record {target}, which is not in this database yet",
                            fk.field, fk.target_table
                        ),
                    );
                    outcome.settled.push(row.id);
                }
                _ => keep.push((row, record)),
            }
        }
        candidates = keep;
    }
    // The self-reference: parents first, within the chunk or already in the table.
    if let Some(fk) = self_ref {
        let ordered = order_tree(txn, engine, fk, model, candidates, &mut outcome, defer).await?;
        candidates = ordered;
    }
    let incoming: Vec<IncomingRow> = candidates
        .into_iter()
        .map(|(row, record)| IncomingRow { id: row.id, record, partition: row.partition, source_id: row.source_id })
        .collect();
    let results = model.apply(txn, &incoming).await?;
    for (row, result) in incoming.iter().zip(results) {
        match result {
            None => outcome.applied += 1,
            Some(error) => {
                outcome.errors.insert(row.id.clone(), error);
            }
        }
        outcome.settled.push(row.id.clone());
    }
    Ok(outcome)
}

/// Orders tree nodes parent first; nodes whose parent is neither in the table nor applicable in this chunk wait.
async fn order_tree(
    txn: &DatabaseTransaction,
    engine: &Engine,
    fk: &ForeignKey,
    model: &dyn SyncableModel,
    candidates: Vec<(Dirty, Record)>,
    outcome: &mut ChunkOutcome,
    defer: bool,
) -> Result<Vec<(Dirty, Record)>> {
    let parents: Vec<String> = candidates.iter().filter_map(|(_, r)| reference(r, fk.field)).collect();
    let present = existing(txn, model.table(), &fk.target_column, &parents).await?;
    let mut ready: HashSet<String> = present;
    let mut ordered = Vec::with_capacity(candidates.len());
    let mut pending = candidates;
    loop {
        let before = pending.len();
        let (now, later): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|(_, record)| match reference(record, fk.field) {
                None => true,
                Some(parent) => ready.contains(&parent),
            });
        for (row, record) in now {
            ready.insert(row.id.clone());
            ordered.push((row, record));
        }
        pending = later;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    if defer {
        return Ok(ordered);
    }
    let deleted =
        deleted_in_store(txn, &pending.iter().filter_map(|(_, r)| reference(r, fk.field)).collect::<Vec<_>>()).await?;
    for (row, record) in pending {
        let parent = reference(&record, fk.field).unwrap_or_default();
        if deleted.contains(&parent) {
            cascade_deletion(txn, engine, model, &row.id).await?;
            outcome.errors.insert(row.id.clone(), format!("`{}` refers to deleted record {parent}", fk.field));
            continue;
        } else {
            outcome.errors.insert(row.id.clone(), format!("parent {parent} is not in this database yet"));
            outcome.waiting_for_parent += 1;
        }
        outcome.settled.push(row.id);
    }
    Ok(ordered)
}

/// The id a record's foreign-key field refers to, if any.
fn reference(record: &Record, field: &str) -> Option<String> {
    match record.get(field) {
        Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Which of `ids` exist in `table.column`.
async fn existing(txn: &DatabaseTransaction, table: &str, column: &str, ids: &[String]) -> Result<HashSet<String>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let unique: Vec<&String> = ids.iter().collect::<HashSet<_>>().into_iter().collect();
    let rows = sql::query(
        txn,
        "checking foreign-key targets",
        &format!(
            "SELECT {c} AS id FROM {t} WHERE {c} IN ({})",
            placeholders(1, unique.len()),
            c = ident(column),
            t = ident(table)
        ),
        unique.iter().map(|id| text(id.as_str())).collect(),
    )
    .await?;
    rows.iter().map(|row| get(row, "id")).collect()
}

/// Which of `ids` the store holds as deleted.
async fn deleted_in_store(txn: &DatabaseTransaction, ids: &[String]) -> Result<HashSet<String>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let mut values = vec![true.into()];
    values.extend(ids.iter().map(text));
    let rows = sql::query(
        txn,
        "checking deleted foreign-key targets",
        &format!("SELECT id FROM morango_store WHERE deleted = $1 AND id IN ({})", placeholders(2, ids.len())),
        values,
    )
    .await?;
    rows.iter().map(|row| get(row, "id")).collect()
}

/// A record whose foreign-key target was deleted is deleted too: its row now, its store record at the next
/// serialization (Morango's rule).
async fn cascade_deletion(
    txn: &DatabaseTransaction,
    engine: &Engine,
    model: &dyn SyncableModel,
    id: &str,
) -> Result<()> {
    // An older local row of the record goes too (without a database cascade nothing else would remove it).
    delete_app_rows(txn, model, &[id.to_owned()]).await?;
    sql::exec(
        txn,
        "cascading a deletion",
        "INSERT INTO morango_deletedmodels (id, profile) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        vec![text(id), text(engine.profile().name())],
    )
    .await?;
    Ok(())
}

/// Clears the dirty bit of finished rows and records the errors of failed ones (they stay dirty).
async fn settle(
    txn: &DatabaseTransaction,
    settled: &[String],
    errors: &HashMap<String, String>,
    report: &mut DeserializeReport,
) -> Result<()> {
    let done: Vec<&String> = settled.iter().filter(|id| !errors.contains_key(*id)).collect();
    if !done.is_empty() {
        let mut values: Vec<Value> = vec![false.into()];
        values.extend(done.iter().map(|id| text(id.as_str())));
        sql::exec(
            txn,
            "marking records applied",
            &format!(
                "UPDATE morango_store SET dirty_bit = $1, deserialization_error = NULL WHERE id IN ({})",
                placeholders(2, done.len())
            ),
            values,
        )
        .await?;
    }
    report.failed += errors.len() as u64;
    let errors: Vec<(String, String)> = errors.iter().map(|(id, e)| (id.clone(), e.clone())).collect();
    sql::set_by_id(txn, "recording deserialization errors", "morango_store", "deserialization_error", &errors).await
}
