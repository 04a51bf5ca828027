//! Dequeuing: the receiver merges received records into its store (spec §7), in a handful of set-based statements
//! per chunk, as each chunk arrives; the dequeuing stage then raises the database-max counters.
//!
//! For an incoming record `b` and the local store row `s`:
//! 1. *known* — the local history already contains `b`'s version: `b` is dropped;
//! 2. *conflict* — `b`'s history does not contain `s`'s version: the local data is kept (or the model's conflict
//!    hook decides), `b`'s JSON is recorded in `conflicting_serialized_data`, deletion flags are OR-ed, a new
//!    local version is minted and the histories are merged by maximum;
//! 3. *fast-forward or new* — `b` replaces the store row and its history is merged in.
//!
//! Unlike Python Morango, history counters are merged by maximum everywhere (they never move down),
//! `hard_deleted` is OR-ed in conflicts on every backend (Python's PostgreSQL backend leaves it) and a hard
//! deletion on either side keeps the other side's payload out of `conflicting_serialized_data`; database-max
//! counters only rise, only for partitions inside the filter, and a multi-prefix v1 FSIC raises none.

use sea_orm::DatabaseTransaction;
use serde_json::Value as Json;

use crate::buffer::{BUFFERS, Staging};
use crate::engine::{Engine, LazyCounter};
use crate::error::{DbContext, Result};
use crate::filter::Filter;
use crate::fsic::{self, FsicV2};
use crate::model::{Conflict, Record};
use crate::sql::{self, get, placeholders, text};

/// What one dequeue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DequeueReport {
    /// Records this database already had.
    pub known: u64,
    /// Conflicts (local version kept or resolved by a hook).
    pub conflicts: u64,
    /// Records that were new or fast-forwarded.
    pub fast_forwards: u64,
}

/// `b` (a staged row) does not contain the version of `s` (its store row): a conflict.
fn conflict(staging: Staging) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM {} x WHERE x.transfer_session_id = $1 AND x.model_uuid = b.model_uuid \
         AND x.instance_id = s.last_saved_instance AND x.counter >= s.last_saved_counter)",
        staging.counters
    )
}

/// Keeps the larger counter on conflict.
pub(crate) const MAX_COUNTER: &str = "counter = CASE WHEN excluded.counter > morango_recordmaxcounter.counter \
    THEN excluded.counter ELSE morango_recordmaxcounter.counter END";

/// Merges what is left in the buffer of `transfer` (an older engine staged whole transfers there; chunks are
/// merged as they arrive now, by [`merge`]) and raises the database-max counters from the sender's FSIC.
pub(crate) async fn dequeue(
    engine: &Engine,
    transfer: &str,
    sender_fsic: &str,
    filter: &Filter,
    v2: bool,
) -> Result<DequeueReport> {
    let (txn, _writer) = engine.begin_exclusive().await?;
    // `merge` empties the transfer's buffer rows; a receiver holds no queue for it.
    let report = merge(&txn, engine, BUFFERS, transfer).await?;
    let updates = if v2 {
        let sender = FsicV2::from_json_text(sender_fsic)?;
        // A sender may only vouch for partitions inside the transfer's filter.
        fsic::check_partitions_within(&sender, filter)?;
        fsic::claims_v2(&sender, filter)
    } else if filter.len() == 1 {
        let own = fsic::v1_from_json_text(&crate::dmc::own_fsic(&txn, filter, false, false).await?)?;
        fsic::dmc_updates_v1(&fsic::v1_from_json_text(sender_fsic)?, &own, filter)
    } else {
        // A v1 FSIC is one maximum over all prefixes: it cannot say what the sender had under each of several
        // prefixes, so claiming it for every one (as Python does) can skip records later. Claim nothing.
        Vec::new()
    };
    crate::dmc::raise_claimed(&txn, &updates).await?;
    crate::fault::point("dequeue.commit");
    txn.commit().await.context(|| "committing the dequeue".into())?;
    Ok(report)
}

/// Merges the records staged in `staging` for `transfer` into the store and their histories into the record-max
/// counters, inside `txn` (which holds the profile lock), and empties `staging` of them. Merged records are left
/// dirty, for deserialization, and marked with the transfer.
pub(crate) async fn merge(
    txn: &DatabaseTransaction,
    engine: &Engine,
    staging: Staging,
    transfer: &str,
) -> Result<DequeueReport> {
    let Staging { records, counters } = staging;
    let mut report = DequeueReport::default();
    let tx = vec![text(transfer)];
    report.known = sql::exec(
        txn,
        "dropping records already known",
        &format!(
            "DELETE FROM {records} WHERE transfer_session_id = $1 AND EXISTS (SELECT 1 FROM morango_recordmaxcounter r \
             WHERE r.store_model_id = {records}.model_uuid AND r.instance_id = {records}.last_saved_instance \
             AND r.counter >= {records}.last_saved_counter)"
        ),
        tx.clone(),
    )
    .await?;
    if report.known > 0 {
        drop_orphan_counters(txn, staging, transfer).await?;
    }
    if crate::buffer::any_staged(txn, staging, transfer).await? {
        let conflict = conflict(staging);
        let any_conflict = sql::query_one(
            txn,
            "looking for conflicts",
            &format!(
                "SELECT 1 AS one FROM {records} b JOIN morango_store s ON s.id = b.model_uuid \
                 WHERE b.transfer_session_id = $1 AND {conflict} LIMIT 1"
            ),
            tx.clone(),
        )
        .await?
        .is_some();
        if any_conflict {
            report.conflicts = merge_conflicts(txn, engine, staging, transfer).await?;
        }
        report.fast_forwards = sql::exec(
            txn,
            "storing new and fast-forwarded records",
            &format!(
                "INSERT INTO morango_store (id, profile, serialized, deleted, hard_deleted, last_saved_instance, \
                 last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, _self_ref_fk, \
                 dirty_bit, deserialization_error, last_transfer_session_id, app_digest) \
                 SELECT b.model_uuid, b.profile, b.serialized, b.deleted, b.hard_deleted, b.last_saved_instance, \
                 b.last_saved_counter, b.partition, b.source_id, b.model_name, b.conflicting_serialized_data, \
                 b._self_ref_fk, $2, NULL, $1, NULL FROM {records} b WHERE b.transfer_session_id = $1 \
                 ON CONFLICT (id) DO UPDATE SET profile = excluded.profile, serialized = excluded.serialized, \
                 deleted = excluded.deleted, hard_deleted = excluded.hard_deleted, \
                 last_saved_instance = excluded.last_saved_instance, last_saved_counter = excluded.last_saved_counter, \
                 partition = excluded.partition, source_id = excluded.source_id, model_name = excluded.model_name, \
                 conflicting_serialized_data = excluded.conflicting_serialized_data, \
                 _self_ref_fk = excluded._self_ref_fk, dirty_bit = excluded.dirty_bit, deserialization_error = NULL, \
                 last_transfer_session_id = excluded.last_transfer_session_id, app_digest = NULL"
            ),
            vec![text(transfer), true.into()],
        )
        .await?;
        sql::exec(
            txn,
            "merging record histories",
            &format!(
                "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) \
                 SELECT x.model_uuid, x.instance_id, x.counter FROM {counters} x \
                 WHERE x.transfer_session_id = $1 ON CONFLICT (store_model_id, instance_id) DO UPDATE SET {MAX_COUNTER}"
            ),
            tx.clone(),
        )
        .await?;
    }
    for table in [records, counters] {
        sql::exec(
            txn,
            "emptying merged records",
            &format!("DELETE FROM {table} WHERE transfer_session_id = $1"),
            tx.clone(),
        )
        .await?;
    }
    Ok(report)
}

/// The conflicts among the staged records: the local data is kept (or the model's hook decides), the incoming
/// JSON goes into `conflicting_serialized_data`, and a new local version is minted. Returns their number.
async fn merge_conflicts(txn: &DatabaseTransaction, engine: &Engine, staging: Staging, transfer: &str) -> Result<u64> {
    let n = LazyCounter::new(&engine.instance().id).get(txn).await?;
    let local = text(&engine.instance().id);
    let hooked = hook_resolutions(txn, engine, staging, transfer).await?;
    let conflicts = sql::exec(
        txn,
        "merging conflicts",
        &format!(
            "UPDATE morango_store AS s SET \
             serialized = CASE WHEN b.hard_deleted THEN '' ELSE s.serialized END, \
             deleted = (s.deleted OR b.deleted), hard_deleted = (s.hard_deleted OR b.hard_deleted), \
             conflicting_serialized_data = CASE WHEN b.hard_deleted OR s.hard_deleted THEN '' \
               ELSE b.serialized || $4 || s.conflicting_serialized_data END, \
             last_saved_instance = $2, last_saved_counter = $3, dirty_bit = $5, deserialization_error = NULL, \
             last_transfer_session_id = $1, app_digest = NULL \
             FROM {} b WHERE b.transfer_session_id = $1 AND b.model_uuid = s.id AND {}",
            staging.records,
            conflict(staging)
        ),
        vec![text(transfer), local, n.into(), text("\n"), true.into()],
    )
    .await?;
    if conflicts > 0 {
        merge_conflict_histories(txn, staging, transfer, &engine.instance().id, n).await?;
        sql::set_by_id(txn, "storing resolved conflicts", "morango_store", "serialized", &hooked).await?;
    }
    Ok(conflicts)
}

async fn drop_orphan_counters(txn: &DatabaseTransaction, staging: Staging, transfer: &str) -> Result<()> {
    let Staging { records, counters } = staging;
    sql::exec(
        txn,
        "dropping counters of dropped records",
        &format!(
            "DELETE FROM {counters} WHERE transfer_session_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM {records} b WHERE b.transfer_session_id = $1 AND b.model_uuid = {counters}.model_uuid)"
        ),
        vec![text(transfer)],
    )
    .await?;
    Ok(())
}

/// Conflicts now carry the version `(local, n)`: merge their histories by maximum, add `RMC[local] = n`, and take
/// them out of the buffer so the fast-forward step leaves them alone.
async fn merge_conflict_histories(
    txn: &DatabaseTransaction,
    staging: Staging,
    transfer: &str,
    local: &str,
    n: i64,
) -> Result<()> {
    let values = || vec![text(transfer), text(local), n.into()];
    let conflicts = "SELECT id FROM morango_store WHERE last_saved_instance = $2 AND last_saved_counter = $3";
    sql::exec(
        txn,
        "merging conflict histories",
        &format!(
            "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) \
             SELECT x.model_uuid, x.instance_id, x.counter FROM {} x \
             WHERE x.transfer_session_id = $1 AND x.model_uuid IN ({conflicts}) \
             ON CONFLICT (store_model_id, instance_id) DO UPDATE SET {MAX_COUNTER}",
            staging.counters
        ),
        values(),
    )
    .await?;
    sql::exec(
        txn,
        "stamping conflict versions",
        &format!(
            "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) \
             SELECT id, $1, $2 FROM morango_store WHERE last_saved_instance = $1 AND last_saved_counter = $2 \
             ON CONFLICT (store_model_id, instance_id) DO UPDATE SET {MAX_COUNTER}"
        ),
        vec![text(local), n.into()],
    )
    .await?;
    for table in [staging.records, staging.counters] {
        sql::exec(
            txn,
            "removing merged conflicts from the buffer",
            &format!("DELETE FROM {table} WHERE transfer_session_id = $1 AND model_uuid IN ({conflicts})"),
            values(),
        )
        .await?;
    }
    Ok(())
}

/// Runs the conflict hooks of models that have one, before the merge; returns the data to store per record.
async fn hook_resolutions(
    txn: &DatabaseTransaction,
    engine: &Engine,
    staging: Staging,
    transfer: &str,
) -> Result<Vec<(String, String)>> {
    let hooked: Vec<_> = engine.profile().models().filter(|m| m.has_conflict_hook()).collect();
    let mut resolved = Vec::new();
    if hooked.is_empty() {
        return Ok(resolved);
    }
    let mut values = vec![text(transfer)];
    values.extend(hooked.iter().map(|m| text(m.model_name())));
    let rows = sql::query(
        txn,
        "reading conflicts for conflict hooks",
        &format!(
            "SELECT s.id, s.model_name, s.serialized AS local, b.serialized AS incoming FROM {} b \
             JOIN morango_store s ON s.id = b.model_uuid WHERE b.transfer_session_id = $1 AND NOT b.hard_deleted \
             AND NOT s.hard_deleted AND s.model_name IN ({}) AND {}",
            staging.records,
            placeholders(2, hooked.len()),
            conflict(staging)
        ),
        values,
    )
    .await?;
    for row in rows {
        let id: String = get(&row, "id")?;
        let model_name: String = get(&row, "model_name")?;
        let (Some(local), Some(incoming)) =
            (as_record(&get::<String>(&row, "local")?), as_record(&get::<String>(&row, "incoming")?))
        else {
            continue;
        };
        let Some(model) = hooked.iter().find(|m| m.model_name() == model_name) else { continue };
        let resolution = model.resolve_conflict(&Conflict { id: &id, local: &local, incoming: &incoming });
        if let Some(serialized) = resolution.replacement(&incoming) {
            resolved.push((id, serialized));
        }
    }
    Ok(resolved)
}

fn as_record(text: &str) -> Option<Record> {
    match serde_json::from_str(text) {
        Ok(Json::Object(map)) => Some(map),
        _ => None,
    }
}
