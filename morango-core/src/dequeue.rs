//! Dequeuing: the receiver merges its buffer into its store (spec §7), in a handful of set-based statements.
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

/// `b` (a buffer row) does not contain the version of `s` (its store row): a conflict.
const CONFLICT: &str = "NOT EXISTS (SELECT 1 FROM morango_recordmaxcounterbuffer x WHERE x.transfer_session_id = $1 \
    AND x.model_uuid = b.model_uuid AND x.instance_id = s.last_saved_instance AND x.counter >= s.last_saved_counter)";

/// Keeps the larger counter on conflict.
const MAX_COUNTER: &str = "counter = CASE WHEN excluded.counter > morango_recordmaxcounter.counter \
    THEN excluded.counter ELSE morango_recordmaxcounter.counter END";

/// Merges the buffer of `transfer` into the store and raises the database-max counters from the sender's FSIC.
pub(crate) async fn dequeue(
    engine: &Engine,
    transfer: &str,
    sender_fsic: &str,
    filter: &Filter,
    v2: bool,
) -> Result<DequeueReport> {
    let (txn, _writer) = engine.begin_exclusive().await?;
    let mut report = DequeueReport::default();
    let tx = vec![text(transfer)];
    report.known = sql::exec(
        &txn,
        "dropping records already known",
        "DELETE FROM morango_buffer WHERE transfer_session_id = $1 AND EXISTS (SELECT 1 FROM morango_recordmaxcounter r \
         WHERE r.store_model_id = morango_buffer.model_uuid AND r.instance_id = morango_buffer.last_saved_instance \
         AND r.counter >= morango_buffer.last_saved_counter)",
        tx.clone(),
    )
    .await?;
    drop_orphan_counters(&txn, transfer).await?;
    if crate::buffer::any_staged(&txn, transfer).await? {
        let mut counter = LazyCounter::new(&engine.instance().id);
        let n = counter.get(&txn).await?;
        let local = text(&engine.instance().id);
        let hooked = hook_resolutions(&txn, engine, transfer).await?;
        report.conflicts = sql::exec(
            &txn,
            "merging conflicts",
            &format!(
                "UPDATE morango_store AS s SET \
                 serialized = CASE WHEN b.hard_deleted THEN '' ELSE s.serialized END, \
                 deleted = (s.deleted OR b.deleted), hard_deleted = (s.hard_deleted OR b.hard_deleted), \
                 conflicting_serialized_data = CASE WHEN b.hard_deleted OR s.hard_deleted THEN '' \
                   ELSE b.serialized || $4 || s.conflicting_serialized_data END, \
                 last_saved_instance = $2, last_saved_counter = $3, dirty_bit = $5, deserialization_error = NULL, \
                 last_transfer_session_id = $1, app_digest = NULL \
                 FROM morango_buffer b WHERE b.transfer_session_id = $1 AND b.model_uuid = s.id AND {CONFLICT}"
            ),
            vec![text(transfer), local.clone(), n.into(), text("\n"), true.into()],
        )
        .await?;
        if report.conflicts > 0 {
            merge_conflict_histories(&txn, transfer, &engine.instance().id, n).await?;
            sql::set_by_id(&txn, "storing resolved conflicts", "morango_store", "serialized", &hooked).await?;
        }
        report.fast_forwards = sql::exec(
            &txn,
            "storing new and fast-forwarded records",
            "INSERT INTO morango_store (id, profile, serialized, deleted, hard_deleted, last_saved_instance, \
             last_saved_counter, partition, source_id, model_name, conflicting_serialized_data, _self_ref_fk, dirty_bit, \
             deserialization_error, last_transfer_session_id, app_digest) \
             SELECT b.model_uuid, b.profile, b.serialized, b.deleted, b.hard_deleted, b.last_saved_instance, \
             b.last_saved_counter, b.partition, b.source_id, b.model_name, b.conflicting_serialized_data, b._self_ref_fk, \
             $2, NULL, $1, NULL FROM morango_buffer b WHERE b.transfer_session_id = $1 \
             ON CONFLICT (id) DO UPDATE SET profile = excluded.profile, serialized = excluded.serialized, \
             deleted = excluded.deleted, hard_deleted = excluded.hard_deleted, \
             last_saved_instance = excluded.last_saved_instance, last_saved_counter = excluded.last_saved_counter, \
             partition = excluded.partition, source_id = excluded.source_id, model_name = excluded.model_name, \
             conflicting_serialized_data = excluded.conflicting_serialized_data, _self_ref_fk = excluded._self_ref_fk, \
             dirty_bit = excluded.dirty_bit, deserialization_error = NULL, \
             last_transfer_session_id = excluded.last_transfer_session_id, app_digest = NULL",
            vec![text(transfer), true.into()],
        )
        .await?;
        sql::exec(
            &txn,
            "merging record histories",
            &format!(
                "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) \
                 SELECT x.model_uuid, x.instance_id, x.counter FROM morango_recordmaxcounterbuffer x \
                 WHERE x.transfer_session_id = $1 ON CONFLICT (store_model_id, instance_id) DO UPDATE SET {MAX_COUNTER}"
            ),
            tx,
        )
        .await?;
    }
    crate::buffer::clear(&txn, transfer).await?;
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

async fn drop_orphan_counters(txn: &DatabaseTransaction, transfer: &str) -> Result<()> {
    sql::exec(
        txn,
        "dropping counters of dropped records",
        "DELETE FROM morango_recordmaxcounterbuffer WHERE transfer_session_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM morango_buffer b WHERE b.transfer_session_id = $1 \
          AND b.model_uuid = morango_recordmaxcounterbuffer.model_uuid)",
        vec![text(transfer)],
    )
    .await?;
    Ok(())
}

/// Conflicts now carry the version `(local, n)`: merge their histories by maximum, add `RMC[local] = n`, and take
/// them out of the buffer so the fast-forward step leaves them alone.
async fn merge_conflict_histories(txn: &DatabaseTransaction, transfer: &str, local: &str, n: i64) -> Result<()> {
    let values = || vec![text(transfer), text(local), n.into()];
    let conflicts = "SELECT id FROM morango_store WHERE last_saved_instance = $2 AND last_saved_counter = $3";
    sql::exec(
        txn,
        "merging conflict histories",
        &format!(
            "INSERT INTO morango_recordmaxcounter (store_model_id, instance_id, counter) \
             SELECT x.model_uuid, x.instance_id, x.counter FROM morango_recordmaxcounterbuffer x \
             WHERE x.transfer_session_id = $1 AND x.model_uuid IN ({conflicts}) \
             ON CONFLICT (store_model_id, instance_id) DO UPDATE SET {MAX_COUNTER}"
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
    for table in ["morango_buffer", "morango_recordmaxcounterbuffer"] {
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
async fn hook_resolutions(txn: &DatabaseTransaction, engine: &Engine, transfer: &str) -> Result<Vec<(String, String)>> {
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
            "SELECT s.id, s.model_name, s.serialized AS local, b.serialized AS incoming FROM morango_buffer b \
             JOIN morango_store s ON s.id = b.model_uuid WHERE b.transfer_session_id = $1 AND NOT b.hard_deleted \
             AND NOT s.hard_deleted AND s.model_name IN ({}) AND {CONFLICT}",
            placeholders(2, hooked.len())
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
