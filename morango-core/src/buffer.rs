//! Buffers: the records of one transfer, as the producer queued them and as the receiver stages them before
//! merging (spec §5.4, §2.9, §5.6).

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, QueryResult, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ids::is_valid_id;
use crate::profile::Profile;
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

const BUFFER_COLUMNS: &str = "transfer_session_id, model_uuid, seq, profile, serialized, deleted, hard_deleted, \
    last_saved_instance, last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, _self_ref_fk";

/// Reads the queued records `[offset, offset + limit)` of a transfer, in queue order.
pub(crate) async fn read_page<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<BufferRecord>> {
    let window = vec![text(transfer), offset.into(), (offset + limit).into()];
    let rows = sql::query(
        db,
        "reading a buffer page",
        &format!("SELECT {BUFFER_COLUMNS} FROM morango_buffer WHERE transfer_session_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"),
        window.clone(),
    )
    .await?;
    let rmcbs = sql::query(
        db,
        "reading a buffer page's counters",
        // Start from the page (a range of `seq`), then look each record's counters up by key: joining from the
        // counters made SQLite walk every counter of the transfer for every page.
        "SELECT r.model_uuid, r.instance_id, r.counter FROM morango_recordmaxcounterbuffer r \
         WHERE r.transfer_session_id = $1 AND r.model_uuid IN (SELECT b.model_uuid FROM morango_buffer b \
         WHERE b.transfer_session_id = $1 AND b.seq >= $2 AND b.seq < $3) ORDER BY r.model_uuid, r.instance_id",
        window,
    )
    .await?;
    let mut records = rows.iter().map(|row| record_from_row(row, transfer)).collect::<Result<Vec<_>>>()?;
    let index: std::collections::HashMap<String, usize> =
        records.iter().enumerate().map(|(i, r)| (r.model_uuid.clone(), i)).collect();
    for row in &rmcbs {
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

/// Longest accepted source id, model name and partition (Python Morango's column sizes; partition is generous).
const MAX_SOURCE_ID: usize = 96;
const MAX_MODEL_NAME: usize = 40;
const MAX_PARTITION: usize = 1024;

/// Checks a chunk of received records against the transfer (spec §5.6 and more). Nothing is written when any
/// record is rejected.
pub(crate) fn validate(records: &[BufferRecord], transfer: &str, filter: &Filter, profile: &Profile) -> Result<()> {
    let mut seen = HashSet::new();
    for record in records {
        let fail = |why: String| Err(Error::Invalid(format!("record {}: {why}", record.model_uuid)));
        if record.transfer_session != transfer {
            return fail("belongs to another transfer session".into());
        }
        if !is_valid_id(&record.model_uuid) || !is_valid_id(&record.last_saved_instance) {
            return fail("ids must be 32 lowercase hex characters".into());
        }
        if !seen.insert(record.model_uuid.as_str()) {
            return fail("appears twice in one chunk".into());
        }
        if record.last_saved_counter < 0 {
            return fail("negative counter".into());
        }
        if record.source_id.is_empty() || record.source_id.chars().count() > MAX_SOURCE_ID {
            return fail(format!("source id must have 1 to {MAX_SOURCE_ID} characters"));
        }
        if record.model_name.is_empty() || record.model_name.chars().count() > MAX_MODEL_NAME {
            return fail(format!("model name must have 1 to {MAX_MODEL_NAME} characters"));
        }
        if record.partition.chars().count() > MAX_PARTITION {
            return fail("partition too long".into());
        }
        if !record._self_ref_fk.is_empty() && !is_valid_id(&record._self_ref_fk) {
            return fail("_self_ref_fk must be empty or an id".into());
        }
        let texts = [&record.serialized, &record.partition, &record.source_id, &record.model_name, &record.profile];
        if texts.into_iter().chain([&record.conflicting_serialized_data]).any(|t| t.contains('\0')) {
            return fail("text must not contain NUL characters".into());
        }
        if !filter.contains_partition(&record.partition) {
            return fail(format!("partition `{}` is outside the transfer's filter", record.partition));
        }
        let template = record.partition.replace(&record.model_uuid, "${id}");
        let expected = match profile.model(&record.model_name) {
            Some(model) => model.compute_namespaced_id(&template, &record.source_id),
            None => crate::ids::sha2_uuid(&[&template, &record.source_id, &record.model_name]),
        };
        if expected != record.model_uuid {
            return fail("does not match the id computed from its partition, source id and model name".into());
        }
        if record.hard_deleted {
            if !matches!(record.serialized.as_str(), "" | "{}") || !record.conflicting_serialized_data.is_empty() {
                return fail("a hard-deleted record must not carry data".into());
            }
        } else if !matches!(serde_json::from_str(&record.serialized), Ok(serde_json::Value::Object(_))) {
            return fail("serialized data is not a JSON object".into());
        }
        let mut covers_version = false;
        let mut instances = HashSet::with_capacity(record.rmcb_list.len());
        for rmcb in &record.rmcb_list {
            if rmcb.transfer_session != transfer || rmcb.model_uuid != record.model_uuid {
                return fail("a record-max counter names another record or transfer".into());
            }
            if !instances.insert(rmcb.instance_id.as_str()) {
                return fail("two record-max counters name the same instance".into());
            }
            if !is_valid_id(&rmcb.instance_id) || rmcb.counter < 0 {
                return fail("invalid record-max counter".into());
            }
            covers_version |=
                rmcb.instance_id == record.last_saved_instance && rmcb.counter >= record.last_saved_counter;
        }
        if !covers_version {
            return fail("its record-max counters do not include its own version".into());
        }
    }
    Ok(())
}

/// Stages validated records in the receiver's buffer. A record already staged for this transfer is replaced and
/// its record-max counters merged, highest per instance (retried chunks are idempotent, as in Morango 0.8.15). Both
/// are upserts on the buffers' keys, one index probe per record however large the transfer: a `DELETE … IN` of the
/// chunk's ids, planned before the buffer's statistics caught up, scanned the whole transfer on PostgreSQL.
pub(crate) async fn stage<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    profile: &str,
    records: &[BufferRecord],
) -> Result<()> {
    // Statements stay well below the databases' bound-parameter limits (SQLite 32766, PostgreSQL 65535), however
    // many records a peer sends in one chunk.
    for (n, chunk) in records.chunks(RECORDS_PER_STATEMENT).enumerate() {
        stage_chunk(db, transfer, profile, chunk, n * RECORDS_PER_STATEMENT).await?;
    }
    Ok(())
}

/// The upsert's assignments that replace a re-sent record: every column but the key.
const REPLACE_BUFFERED: &str = "seq = excluded.seq, profile = excluded.profile, serialized = excluded.serialized, \
    deleted = excluded.deleted, hard_deleted = excluded.hard_deleted, last_saved_instance = excluded.last_saved_instance, \
    last_saved_counter = excluded.last_saved_counter, partition = excluded.partition, source_id = excluded.source_id, \
    model_name = excluded.model_name, conflicting_serialized_data = excluded.conflicting_serialized_data, \
    _self_ref_fk = excluded._self_ref_fk";

/// Records per statement when staging (14 bound values each).
const RECORDS_PER_STATEMENT: usize = 1_000;

async fn stage_chunk<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    profile: &str,
    records: &[BufferRecord],
    first: usize,
) -> Result<()> {
    const COLUMNS: usize = 14;
    let mut values = Vec::with_capacity(records.len() * COLUMNS);
    let mut tuples = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        tuples.push(format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)));
        values.extend([
            text(transfer),
            text(&record.model_uuid),
            ((first + i) as i64).into(),
            text(profile),
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
        ]);
    }
    sql::exec(
        db,
        "staging received records",
        &format!(
            "INSERT INTO morango_buffer ({BUFFER_COLUMNS}) VALUES {} \
             ON CONFLICT (transfer_session_id, model_uuid) DO UPDATE SET {REPLACE_BUFFERED}",
            tuples.join(", ")
        ),
        values,
    )
    .await?;
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
                "INSERT INTO morango_recordmaxcounterbuffer (transfer_session_id, model_uuid, instance_id, counter) \
                 VALUES {} ON CONFLICT (transfer_session_id, model_uuid, instance_id) DO UPDATE SET \
                 counter = CASE WHEN excluded.counter > morango_recordmaxcounterbuffer.counter THEN excluded.counter \
                 ELSE morango_recordmaxcounterbuffer.counter END",
                tuples.join(", ")
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Removes every buffered record of a transfer.
pub(crate) async fn clear<C: ConnectionTrait>(db: &C, transfer: &str) -> Result<()> {
    for table in ["morango_buffer", "morango_recordmaxcounterbuffer"] {
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
