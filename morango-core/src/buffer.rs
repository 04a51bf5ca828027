//! Buffers: the records of one transfer, as the producer pages them out of its queue and as the receiver takes
//! each chunk in: records its store does not hold are written straight into it, the others staged and merged
//! (spec §5.4, §2.9).

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, QueryResult, Value};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sql::{self, get, placeholders, text};

/// One record on the wire, exactly the 14 keys of Morango's `BufferSerializer`, in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferRecord {
    /// The record JSON text.
    pub serialized: String,
    /// Soft-deleted.
    pub deleted: bool,
    /// Instance of the record's current version.
    pub last_saved_instance: String,
    /// Counter of the record's current version.
    pub last_saved_counter: i64,
    /// Hard-deleted (payload erased).
    pub hard_deleted: bool,
    /// The record's partition.
    pub partition: String,
    /// The record's source id.
    pub source_id: String,
    /// Morango model name.
    pub model_name: String,
    /// Losing versions of earlier conflicts.
    pub conflicting_serialized_data: String,
    /// The record id.
    pub model_uuid: String,
    /// The transfer session this record belongs to.
    pub transfer_session: String,
    /// The profile.
    pub profile: String,
    /// The record's history: the highest counter of every instance that saved it.
    pub rmcb_list: Vec<RmcbRecord>,
    /// The parent record's id for models with a self-referential foreign key, else `""`.
    pub _self_ref_fk: String,
}

/// One record-max counter travelling with a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmcbRecord {
    /// The transfer session.
    pub transfer_session: String,
    /// The record id.
    pub model_uuid: String,
    /// The instance.
    pub instance_id: String,
    /// The highest counter at which the instance saved the record.
    pub counter: i64,
}

/// Where received records wait to be merged into the store: a pair of tables with the buffer's columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Staging {
    /// The records.
    pub(crate) records: &'static str,
    /// Their record-max counters.
    pub(crate) counters: &'static str,
}

/// The transfer's buffer tables, where an older engine staged a whole transfer before dequeuing it.
pub(crate) const BUFFERS: Staging = Staging { records: "morango_buffer", counters: "morango_recordmaxcounterbuffer" };

/// Temporary tables that hold the one chunk being merged (each connection has its own; they are emptied before
/// the chunk's transaction ends, and never reach the database file's journal or its fsyncs).
pub(crate) const CHUNK: Staging = Staging { records: "morango_chunk", counters: "morango_chunkcounter" };

/// Creates this connection's [`CHUNK`] tables if it has none yet.
pub(crate) async fn prepare_chunk_tables<C: ConnectionTrait>(db: &C) -> Result<()> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // `IF NOT EXISTS` would answer every chunk with a notice: look first.
        let row = sql::query_one(
            db,
            "looking for the chunk tables",
            "SELECT to_regclass($1) IS NOT NULL AS here",
            vec![text(format!("pg_temp.{}", CHUNK.counters))],
        )
        .await?;
        if let Some(row) = row
            && get::<bool>(&row, "here")?
        {
            return Ok(());
        }
    }
    let texts = "transfer_session_id TEXT NOT NULL, model_uuid TEXT NOT NULL";
    for ddl in [
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} ({texts}, seq BIGINT NOT NULL, profile TEXT NOT NULL, \
             serialized TEXT NOT NULL, deleted BOOLEAN NOT NULL, hard_deleted BOOLEAN NOT NULL, \
             last_saved_instance TEXT NOT NULL, last_saved_counter BIGINT NOT NULL, partition TEXT NOT NULL, \
             source_id TEXT NOT NULL, model_name TEXT NOT NULL, conflicting_serialized_data TEXT NOT NULL, \
             _self_ref_fk TEXT NOT NULL, PRIMARY KEY (transfer_session_id, model_uuid))",
            CHUNK.records
        ),
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} ({texts}, instance_id TEXT NOT NULL, counter BIGINT NOT NULL, \
             PRIMARY KEY (transfer_session_id, model_uuid, instance_id))",
            CHUNK.counters
        ),
    ] {
        sql::exec(db, "creating the chunk tables", &ddl, vec![]).await?;
    }
    Ok(())
}

const BUFFER_COLUMNS: &str = "transfer_session_id, model_uuid, seq, profile, serialized, deleted, hard_deleted, \
    last_saved_instance, last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, _self_ref_fk";

/// Reads the queued records `[offset, offset + limit)` of a transfer, in queue order, as the store holds them now
/// (the queue holds only record ids): a record saved again since it was queued goes at its newer version, which
/// contains the queued one. The record-max counters are read after the records, so they cover their versions.
pub(crate) async fn read_page<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<BufferRecord>> {
    let window = vec![text(transfer), offset.into(), offset.saturating_add(limit).into()];
    let rows = sql::query(
        db,
        "reading a page of the queue",
        "SELECT s.id AS model_uuid, s.profile, s.serialized, s.deleted, s.hard_deleted, s.last_saved_instance, \
         s.last_saved_counter, s.partition, s.source_id, s.model_name, s.conflicting_serialized_data, s._self_ref_fk \
         FROM morango_transferqueue q JOIN morango_store s ON s.id = q.model_uuid \
         WHERE q.transfer_session_id = $1 AND q.seq >= $2 AND q.seq < $3 ORDER BY q.seq",
        window.clone(),
    )
    .await?;
    let rmcs = sql::query(
        db,
        "reading a page's record-max counters",
        "SELECT r.store_model_id AS model_uuid, r.instance_id, r.counter FROM morango_recordmaxcounter r \
         WHERE r.store_model_id IN (SELECT q.model_uuid FROM morango_transferqueue q \
         WHERE q.transfer_session_id = $1 AND q.seq >= $2 AND q.seq < $3) ORDER BY r.store_model_id, r.instance_id",
        window,
    )
    .await?;
    let mut records = rows.iter().map(|row| record_from_row(row, transfer)).collect::<Result<Vec<_>>>()?;
    let index: std::collections::HashMap<String, usize> =
        records.iter().enumerate().map(|(i, r)| (r.model_uuid.clone(), i)).collect();
    for row in &rmcs {
        let model_uuid: String = get(row, "model_uuid")?;
        if let Some(&i) = index.get(&model_uuid) {
            records[i].rmcb_list.push(RmcbRecord {
                transfer_session: transfer.to_owned(),
                model_uuid,
                instance_id: get(row, "instance_id")?,
                counter: get(row, "counter")?,
            });
        }
    }
    Ok(records)
}

fn record_from_row(row: &QueryResult, transfer: &str) -> Result<BufferRecord> {
    Ok(BufferRecord {
        serialized: get(row, "serialized")?,
        deleted: get(row, "deleted")?,
        last_saved_instance: get(row, "last_saved_instance")?,
        last_saved_counter: get(row, "last_saved_counter")?,
        hard_deleted: get(row, "hard_deleted")?,
        partition: get(row, "partition")?,
        source_id: get(row, "source_id")?,
        model_name: get(row, "model_name")?,
        conflicting_serialized_data: get(row, "conflicting_serialized_data")?,
        model_uuid: get(row, "model_uuid")?,
        transfer_session: transfer.to_owned(),
        profile: get(row, "profile")?,
        rmcb_list: Vec::new(),
        _self_ref_fk: get(row, "_self_ref_fk")?,
    })
}

/// Stages the validated records of one chunk in the (empty) [`CHUNK`] tables, for [`crate::dequeue::merge`]. A chunk
/// holds each record once (a chunk naming a record twice is refused whole before this).
pub(crate) async fn stage_chunk<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    profile: &str,
    records: &[&BufferRecord],
) -> Result<()> {
    // Statements stay well below the databases' bound-parameter limits (SQLite 32766, PostgreSQL 65535), however
    // many records a peer sends in one chunk.
    for (n, chunk) in records.chunks(RECORDS_PER_STATEMENT).enumerate() {
        let (sql, values) = insert_records(transfer, profile, chunk, n * RECORDS_PER_STATEMENT);
        sql::exec(db, "staging received records", &sql, values).await?;
    }
    stage_counters(db, transfer, records).await
}

/// Records per statement when staging (14 bound values each).
const RECORDS_PER_STATEMENT: usize = 1_000;

/// A multi-row `INSERT` of records into the [`CHUNK`] table.
fn insert_records(transfer: &str, profile: &str, records: &[&BufferRecord], first: usize) -> (String, Vec<Value>) {
    const COLUMNS: usize = 14;
    let mut values = Vec::with_capacity(records.len() * COLUMNS);
    let mut tuples = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        tuples.push(format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)));
        values.extend([text(transfer), text(&record.model_uuid), ((first + i) as i64).into(), text(profile)]);
        values.extend(version_values(record));
    }
    let sql = format!("INSERT INTO {} ({BUFFER_COLUMNS}) VALUES {}", CHUNK.records, tuples.join(", "));
    (sql, values)
}

/// A record's `serialized, deleted, hard_deleted, last_saved_instance, last_saved_counter, partition, source_id,
/// model_name, conflicting_serialized_data, _self_ref_fk`, in that order.
fn version_values(record: &BufferRecord) -> [Value; 10] {
    [
        text(&record.serialized),
        record.deleted.into(),
        record.hard_deleted.into(),
        text(&record.last_saved_instance),
        record.last_saved_counter.into(),
        text(&record.partition),
        text(&record.source_id),
        text(&record.model_name),
        text(&record.conflicting_serialized_data),
        text(&record._self_ref_fk),
    ]
}

/// Stages the records' record-max counters, keeping the highest per instance.
async fn stage_counters<C: ConnectionTrait>(db: &C, transfer: &str, records: &[&BufferRecord]) -> Result<()> {
    let counters: Vec<&RmcbRecord> = records.iter().flat_map(|r| &r.rmcb_list).collect();
    for chunk in counters.chunks(1000) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, rmcb) in chunk.iter().enumerate() {
            tuples.push(format!("({})", placeholders(i * 4 + 1, 4)));
            values.extend([text(transfer), text(&rmcb.model_uuid), text(&rmcb.instance_id), rmcb.counter.into()]);
        }
        sql::exec(
            db,
            "staging received record counters",
            &format!(
                "INSERT INTO {t} (transfer_session_id, model_uuid, instance_id, counter) \
                 VALUES {} ON CONFLICT (transfer_session_id, model_uuid, instance_id) DO UPDATE SET \
                 counter = CASE WHEN excluded.counter > {t}.counter THEN excluded.counter ELSE {t}.counter END",
                tuples.join(", "),
                t = CHUNK.counters
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Which of `records` the store already holds: each id, with `true` when `transfer` itself stored it (a chunk sent
/// again, retried after a lost answer or re-sent by a resumed push, which must not be counted twice).
pub(crate) async fn stored_among<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    records: &[BufferRecord],
) -> Result<HashMap<String, bool>> {
    let mut stored = HashMap::new();
    for chunk in records.chunks(RECORDS_PER_STATEMENT) {
        let mut values = vec![text(transfer)];
        values.extend(chunk.iter().map(|r| text(&r.model_uuid)));
        let rows = sql::query(
            db,
            "looking for received records in the store",
            &format!(
                "SELECT id, COALESCE(last_transfer_session_id = $1, FALSE) AS again FROM morango_store \
                 WHERE id IN ({})",
                placeholders(2, chunk.len())
            ),
            values,
        )
        .await?;
        for row in rows {
            stored.insert(get::<String>(&row, "id")?, get::<bool>(&row, "again")?);
        }
    }
    Ok(stored)
}

/// Writes received records the store does not hold yet straight into it, marked with `transfer`, and their histories
/// into the record-max counters: nothing to merge them with, so no staging. Records in `applied` are already in the
/// application tables and are stored clean; the others dirty, for deserialization.
pub(crate) async fn store_new<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    profile: &str,
    records: &[&BufferRecord],
    applied: &std::collections::HashSet<String>,
) -> Result<()> {
    const COLUMNS: usize = 14;
    for chunk in records.chunks(RECORDS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len() * COLUMNS);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, record) in chunk.iter().enumerate() {
            tuples.push(format!("({}, NULL, NULL)", placeholders(i * COLUMNS + 1, COLUMNS)));
            values.extend([text(&record.model_uuid), text(profile)]);
            values.extend(version_values(record));
            values.extend([(!applied.contains(&record.model_uuid)).into(), text(transfer)]);
        }
        sql::exec(
            db,
            "storing new records",
            &format!(
                "INSERT INTO morango_store (id, profile, serialized, deleted, hard_deleted, last_saved_instance, \
                 last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, _self_ref_fk, \
                 dirty_bit, last_transfer_session_id, deserialization_error, app_digest) VALUES {}",
                tuples.join(", ")
            ),
            values,
        )
        .await?;
    }
    // A record's history names each instance once, with its highest counter.
    let mut counters: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for rmcb in records.iter().flat_map(|r| &r.rmcb_list) {
        let counter = counters.entry((rmcb.model_uuid.as_str(), rmcb.instance_id.as_str())).or_insert(rmcb.counter);
        *counter = (*counter).max(rmcb.counter);
    }
    let counters: Vec<_> = counters.into_iter().collect();
    for chunk in counters.chunks(RECORDS_PER_STATEMENT) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, ((model_uuid, instance_id), counter)) in chunk.iter().enumerate() {
            tuples.push(format!("({})", placeholders(i * 3 + 1, 3)));
            values.extend([text(*model_uuid), text(*instance_id), (*counter).into()]);
        }
        sql::exec(
            db,
            "recording the histories of new records",
            &format!(
                "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) VALUES {} \
                 ON CONFLICT (store_model_id, instance_id) DO UPDATE SET {}",
                tuples.join(", "),
                crate::dequeue::MAX_COUNTER
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Whether any record is staged in `staging` for `transfer`.
pub(crate) async fn any_staged<C: ConnectionTrait>(db: &C, staging: Staging, transfer: &str) -> Result<bool> {
    let row = sql::query_one(
        db,
        "looking for staged records",
        &format!("SELECT 1 AS one FROM {} WHERE transfer_session_id = $1 LIMIT 1", staging.records),
        vec![text(transfer)],
    )
    .await?;
    Ok(row.is_some())
}

/// Removes everything a transfer holds: the producer's queue and the receiver's buffers.
pub(crate) async fn clear<C: ConnectionTrait>(db: &C, transfer: &str) -> Result<()> {
    for table in ["morango_transferqueue", BUFFERS.records, BUFFERS.counters] {
        sql::exec(
            db,
            "removing buffers",
            &format!("DELETE FROM {table} WHERE transfer_session_id = $1"),
            vec![text(transfer)],
        )
        .await?;
    }
    Ok(())
}
