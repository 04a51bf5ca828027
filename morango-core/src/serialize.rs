//! Serialization: application rows marked dirty become new store versions (spec §8.1, §7.4).
//!
//! Differences from Python Morango, all invisible on the wire:
//! - a save that changes nothing mints no version: the blake3 digest of the row's record JSON is compared with
//!   the digest stored at the last serialization, then the merged JSON text with the stored text;
//! - the instance counter is only incremented when a version is minted;
//! - a queued deletion whose row was re-created before this run is dropped instead of deleting the new row;
//! - a deletion of a record the store already holds as deleted mints nothing (no echo of received deletions);
//! - `_self_ref_fk` is refreshed when a tree node moves.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Value};
use serde_json::Value as Json;

use crate::engine::{Engine, LazyCounter};
use crate::error::{DbContext, Result};
use crate::filter::Filter;
use crate::model::Record;
use crate::registry::{AppRow, SyncableModel};
use crate::sql::{self, get, ident, placeholders, text};
use crate::tracking::Guard;

/// What one serialization run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SerializeReport {
    /// Records that got a new version.
    pub versions: u64,
    /// Dirty rows whose content had not changed.
    pub unchanged: u64,
    /// Deletions recorded.
    pub deletions: u64,
}

/// Serializes the dirty application rows under `filter` (all of them when `None`) and the queued deletions,
/// in a transaction of its own.
pub(crate) async fn serialize(engine: &Engine, filter: Option<&Filter>) -> Result<SerializeReport> {
    let (txn, _writer) = engine.begin_exclusive().await?;
    Guard::Apply.enter(&txn).await.context(|| "entering the apply guard".into())?;
    let report = serialize_in(&txn, engine, filter).await?;
    Guard::Apply.leave(&txn).await.context(|| "leaving the apply guard".into())?;
    crate::fault::point("serialize.commit");
    txn.commit().await.context(|| "committing serialization".into())?;
    Ok(report)
}

/// Serializes inside `txn`, which holds the profile lock and the apply guard.
pub(crate) async fn serialize_in(
    txn: &DatabaseTransaction,
    engine: &Engine,
    filter: Option<&Filter>,
) -> Result<SerializeReport> {
    let mut counter = LazyCounter::new(&engine.instance().id);
    let mut report = SerializeReport::default();
    let sqlite = txn.get_database_backend() == DbBackend::Sqlite;
    for model in engine.profile().models() {
        let mut after: Option<String> = None;
        // SQLite: the ids of a first page, cleared by id if no second page follows; after more, one scan clears all.
        let mut first_page: Vec<Value> = Vec::new();
        let mut scan = false;
        loop {
            let rows = model.dirty_rows(txn, after.as_deref(), engine.chunk_size(), filter).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            let ids: Vec<Value> = rows.iter().map(|r| text(&r.id)).collect();
            serialize_chunk(txn, engine, model, &rows, &ids, &mut counter, &mut report).await?;
            if !sqlite {
                clear_dirty_bits(txn, model, &ids).await?;
            } else if first_page.is_empty() {
                first_page = ids;
            } else {
                scan = true;
            }
        }
        if scan {
            clear_all_dirty_bits(txn, model, filter).await?;
        } else if !first_page.is_empty() {
            clear_dirty_bits(txn, model, &first_page).await?;
        }
    }
    report.deletions = serialize_deletions(txn, engine, &mut counter).await?;
    let current = counter.current(txn).await?;
    if let Some(n) = counter.minted() {
        sql::exec(
            txn,
            "recording the record max counters of new versions",
            "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) \
             SELECT id, $1, $2 FROM morango_store WHERE last_saved_instance = $1 AND last_saved_counter = $2 \
             ON CONFLICT (store_model_id, instance_id) DO UPDATE SET counter = excluded.counter",
            vec![text(&engine.instance().id), n.into()],
        )
        .await?;
    }
    let partitions: Vec<String> = match filter {
        Some(filter) => filter.prefixes().to_vec(),
        None => vec![String::new()],
    };
    for partition in partitions {
        crate::dmc::raise(txn, &engine.instance().id, &partition, current).await?;
    }
    Ok(report)
}

/// The stored state of a record that the serializer needs.
struct Stored {
    serialized: String,
    deleted: bool,
    dirty: bool,
    conflicting: String,
    app_digest: Option<String>,
}

async fn serialize_chunk(
    txn: &DatabaseTransaction,
    engine: &Engine,
    model: &dyn SyncableModel,
    rows: &[AppRow],
    ids: &[Value],
    counter: &mut LazyCounter<'_>,
    report: &mut SerializeReport,
) -> Result<()> {
    let stored = load_stored(txn, ids).await?;
    let self_ref = model.foreign_keys().into_iter().find(|fk| fk.self_ref).map(|fk| fk.field);
    let mut upserts = Vec::new();
    let mut digests = Vec::new();
    for row in rows {
        let app_text = crate::json::dumps(&Json::Object(row.record.clone()));
        let digest = blake3::hash(app_text.as_bytes()).to_hex().to_string();
        let self_ref_fk =
            self_ref.and_then(|field| row.record.get(field)).and_then(Json::as_str).unwrap_or_default().to_owned();
        let (serialized, conflicting) = match stored.get(&row.id) {
            None => (app_text, String::new()),
            Some(s) => {
                let settled = !s.deleted && !s.dirty;
                if settled && s.app_digest.as_deref() == Some(digest.as_str()) {
                    report.unchanged += 1;
                    continue;
                }
                let merged = merge_into(&s.serialized, &row.record);
                if settled && merged == s.serialized {
                    report.unchanged += 1;
                    digests.push((row.id.clone(), digest));
                    continue;
                }
                if s.dirty {
                    // The app row changed while a received version waited to be applied: by default the app wins
                    // (Morango's app-level conflict); the received JSON is kept as conflicting data.
                    let resolved = resolve_app_conflict(model, &row.id, &merged, &s.serialized).unwrap_or(merged);
                    (resolved, format!("{}\n{}", s.serialized, s.conflicting))
                } else {
                    (merged, s.conflicting.clone())
                }
            }
        };
        upserts.push(StoreWrite { row, serialized, conflicting, self_ref_fk, digest });
    }
    if !upserts.is_empty() {
        let n = counter.get(txn).await?;
        write_versions(txn, engine, model, &upserts, n).await?;
        report.versions += upserts.len() as u64;
    }
    record_digests(txn, &digests).await
}

/// Runs the model's conflict hook on an app-level conflict; `None` keeps the app's version.
fn resolve_app_conflict(model: &dyn SyncableModel, id: &str, local: &str, received: &str) -> Option<String> {
    if !model.has_conflict_hook() {
        return None;
    }
    let (Ok(Json::Object(local)), Ok(Json::Object(incoming))) =
        (serde_json::from_str::<Json>(local), serde_json::from_str::<Json>(received))
    else {
        return None;
    };
    model.resolve_conflict(&crate::model::Conflict { id, local: &local, incoming: &incoming }).replacement(&incoming)
}

/// `old` JSON updated with the app's fields: keys unknown to this schema keep their values and positions.
fn merge_into(old: &str, record: &Record) -> String {
    let mut merged = match serde_json::from_str::<Json>(old) {
        Ok(Json::Object(map)) => map,
        _ => Record::new(),
    };
    for (key, value) in record {
        merged.insert(key.clone(), value.clone());
    }
    crate::json::dumps(&Json::Object(merged))
}

async fn load_stored(txn: &DatabaseTransaction, ids: &[Value]) -> Result<std::collections::HashMap<String, Stored>> {
    let rows = sql::query(
        txn,
        "reading store rows to serialize into",
        &format!(
            "SELECT id, serialized, deleted, dirty_bit, conflicting_serialized_data, app_digest FROM morango_store \
             WHERE id IN ({})",
            placeholders(1, ids.len())
        ),
        ids.to_vec(),
    )
    .await?;
    let mut stored = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        stored.insert(
            get::<String>(&row, "id")?,
            Stored {
                serialized: get(&row, "serialized")?,
                deleted: get(&row, "deleted")?,
                dirty: get(&row, "dirty_bit")?,
                conflicting: get(&row, "conflicting_serialized_data")?,
                app_digest: get(&row, "app_digest")?,
            },
        );
    }
    Ok(stored)
}

struct StoreWrite<'a> {
    row: &'a AppRow,
    serialized: String,
    conflicting: String,
    self_ref_fk: String,
    digest: String,
}

const STORE_COLUMNS: &str = "id, profile, serialized, deleted, hard_deleted, last_saved_instance, \
    last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, _self_ref_fk, dirty_bit, \
    app_digest";

async fn write_versions(
    txn: &DatabaseTransaction,
    engine: &Engine,
    model: &dyn SyncableModel,
    writes: &[StoreWrite<'_>],
    n: i64,
) -> Result<()> {
    const COLUMNS: usize = 14;
    let mut values = Vec::with_capacity(writes.len() * COLUMNS);
    let mut tuples = Vec::with_capacity(writes.len());
    for (i, write) in writes.iter().enumerate() {
        tuples.push(format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)));
        values.extend([
            text(&write.row.id),
            text(engine.profile().name()),
            text(&write.serialized),
            false.into(),
            false.into(),
            text(&engine.instance().id),
            n.into(),
            text(&write.row.partition),
            text(&write.row.source_id),
            text(model.model_name()),
            text(&write.conflicting),
            text(&write.self_ref_fk),
            false.into(),
            text(&write.digest),
        ]);
    }
    sql::exec(
        txn,
        "writing new store versions",
        &format!(
            "INSERT INTO morango_store ({STORE_COLUMNS}) VALUES {} ON CONFLICT (id) DO UPDATE SET \
             serialized = excluded.serialized, deleted = excluded.deleted, hard_deleted = excluded.hard_deleted, \
             last_saved_instance = excluded.last_saved_instance, last_saved_counter = excluded.last_saved_counter, \
             conflicting_serialized_data = excluded.conflicting_serialized_data, _self_ref_fk = excluded._self_ref_fk, \
             dirty_bit = excluded.dirty_bit, deserialization_error = NULL, last_transfer_session_id = NULL, \
             app_digest = excluded.app_digest",
            tuples.join(", ")
        ),
        values,
    )
    .await?;
    Ok(())
}

/// Remembers the digest of rows found unchanged, so their next no-op save skips the JSON comparison.
async fn record_digests(txn: &DatabaseTransaction, digests: &[(String, String)]) -> Result<()> {
    sql::set_by_id(txn, "recording record digests", "morango_store", "app_digest", digests).await
}

async fn clear_dirty_bits(txn: &DatabaseTransaction, model: &dyn SyncableModel, ids: &[Value]) -> Result<()> {
    let dirty = model.column(crate::model::columns::DIRTY_BIT);
    let mut values = vec![false.into()];
    values.extend(ids.iter().cloned());
    sql::exec(
        txn,
        "clearing dirty bits",
        &format!(
            "UPDATE {} SET {} = $1 WHERE {} IN ({})",
            ident(model.table()),
            ident(&dirty),
            ident(crate::model::columns::ID),
            placeholders(2, ids.len())
        ),
        values,
    )
    .await?;
    Ok(())
}

/// On SQLite, where the transaction holds the only write lock, every dirty row of `model` under `filter` has just
/// been serialized: one statement clears them all, visiting the table's pages in storage (rowid) order, where
/// clearing by id goes through the id index and visits them at random. PostgreSQL clears by id (rows committed by
/// others meanwhile stay dirty).
async fn clear_all_dirty_bits(
    txn: &DatabaseTransaction,
    model: &dyn SyncableModel,
    filter: Option<&Filter>,
) -> Result<()> {
    let column = model.column(crate::model::columns::DIRTY_BIT);
    let mut values = vec![false.into()];
    let condition = match filter {
        Some(filter) => {
            sql::under_prefixes(&ident(&model.column(crate::model::columns::PARTITION)), filter.prefixes(), &mut values)
        }
        None => String::new(),
    };
    let mut dirty = format!("{}{condition}", crate::tracking::dirty_condition(&column));
    if let Some(discriminator) = model.discriminator() {
        values.push(text(discriminator.value));
        dirty.push_str(&format!(" AND {} = ${}", ident(discriminator.column), values.len()));
    }
    let table = ident(model.table());
    // The dirty rows' rowids, sorted by SQLite, then the rows in that order; a `WITHOUT ROWID` table is scanned in
    // its key order (`+` keeps SQLite off the dirty-row index).
    let rows = if has_rowid(txn, model.table()).await? {
        format!("rowid IN (SELECT rowid FROM {table} WHERE {dirty})")
    } else {
        format!("+{dirty}")
    };
    sql::exec(txn, "clearing dirty bits", &format!("UPDATE {table} SET {} = $1 WHERE {rows}", ident(&column)), values)
        .await?;
    Ok(())
}

/// Whether a SQLite table has rowids (it was not created `WITHOUT ROWID`).
async fn has_rowid(txn: &DatabaseTransaction, table: &str) -> Result<bool> {
    let row = sql::query_one(
        txn,
        "looking up how a table is stored",
        "SELECT wr FROM pragma_table_list WHERE name = $1 AND schema = 'main'",
        vec![text(table)],
    )
    .await?;
    Ok(match row {
        Some(row) => !get::<bool>(&row, "wr")?,
        None => true,
    })
}

/// Marks queued deletions in the store (one statement per model and kind) and empties the queues.
async fn serialize_deletions(txn: &DatabaseTransaction, engine: &Engine, counter: &mut LazyCounter<'_>) -> Result<u64> {
    let profile = engine.profile().name();
    let queued = sql::query_one(
        txn,
        "counting queued deletions",
        "SELECT (SELECT COUNT(*) FROM morango_deletedmodels WHERE profile = $1) + \
         (SELECT COUNT(*) FROM morango_harddeletedmodels WHERE profile = $1) AS n",
        vec![text(profile)],
    )
    .await?;
    let queued: i64 = match queued {
        Some(row) => get(&row, "n")?,
        None => 0,
    };
    if queued == 0 {
        return Ok(0);
    }
    let n = counter.get(txn).await?;
    let mut deletions = 0;
    for model in engine.profile().models() {
        let still_there =
            format!("id NOT IN (SELECT {} FROM {})", ident(crate::model::columns::ID), ident(model.table()));
        let values = || {
            let instance = text(&engine.instance().id);
            vec![true.into(), false.into(), instance, n.into(), text(profile), text(model.model_name())]
        };
        // Hard deletions first: they also erase the payload; a later soft pass then finds nothing left to do.
        deletions += sql::exec(
            txn,
            "recording hard deletions",
            &format!(
                "UPDATE morango_store SET deleted = $1, hard_deleted = $1, serialized = '{{}}', \
                 conflicting_serialized_data = '', dirty_bit = $2, last_saved_instance = $3, last_saved_counter = $4, \
                 app_digest = NULL, last_transfer_session_id = NULL \
                 WHERE profile = $5 AND model_name = $6 AND NOT hard_deleted AND {still_there} \
                 AND id IN (SELECT id FROM morango_harddeletedmodels WHERE profile = $5)"
            ),
            values(),
        )
        .await?;
        deletions += sql::exec(
            txn,
            "recording deletions",
            &format!(
                "UPDATE morango_store SET deleted = $1, dirty_bit = $2, last_saved_instance = $3, \
                 last_saved_counter = $4, app_digest = NULL, last_transfer_session_id = NULL \
                 WHERE profile = $5 AND model_name = $6 AND NOT deleted AND {still_there} \
                 AND id IN (SELECT id FROM morango_deletedmodels WHERE profile = $5)"
            ),
            values(),
        )
        .await?;
    }
    // Remove only the entries that are settled: the record is deleted in the store (or was never serialized), or
    // its row was re-created. A deletion committed while this ran (PostgreSQL) stays queued for the next run.
    for (table, flag) in [("morango_deletedmodels", "deleted"), ("morango_harddeletedmodels", "hard_deleted")] {
        sql::exec(
            txn,
            "emptying the deletion queue",
            &format!(
                "DELETE FROM {table} WHERE profile = $1 AND NOT EXISTS \
                 (SELECT 1 FROM morango_store s WHERE s.id = {table}.id AND NOT s.{flag})"
            ),
            vec![text(profile)],
        )
        .await?;
        for model in engine.profile().models() {
            sql::exec(
                txn,
                "dropping deletions of re-created rows",
                &format!(
                    "DELETE FROM {table} WHERE profile = $1 AND id IN (SELECT {} FROM {})",
                    ident(crate::model::columns::ID),
                    ident(model.table())
                ),
                vec![text(profile)],
            )
            .await?;
        }
    }
    Ok(deletions)
}
