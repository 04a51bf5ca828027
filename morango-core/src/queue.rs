//! Queuing: the producer copies the store records the receiver lacks into its buffer (spec §6.4–§6.5).
//!
//! The directional FSIC diff becomes a list of `(partition prefix, instance, counter)` triples bound as a
//! `VALUES` list; one `INSERT … SELECT` per few thousand triples copies the matching store rows, another copies
//! their record-max counters. No SQL text is built from data, and no `LIKE` is used (on SQLite it ignores case
//! and treats `_`/`%` in partitions as wildcards, §15).

use sea_orm::{ConnectionTrait, Value};

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::fsic::{self, FsicV2};
use crate::sql::{self, get, text};

/// What the producer must send: records under `partition` last saved by `instance` with a counter above
/// `counter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub partition: String,
    pub instance: String,
    pub counter: i64,
}

/// The directional diff between the producer's FSIC and the receiver's, as [`Wanted`] triples. Both FSICs are
/// JSON text in the negotiated format; a receiver FSIC naming partitions outside the filter is rejected.
pub(crate) fn wanted(sender: &str, receiver: &str, filter: &Filter, v2: bool) -> Result<Vec<Wanted>> {
    if v2 {
        let sender = FsicV2::from_json_text(sender)?;
        let receiver = FsicV2::from_json_text(receiver)?;
        fsic::check_partitions_within(&sender, filter)?;
        fsic::check_partitions_within(&receiver, filter)?;
        let diff = fsic::diff_v2(&fsic::expand_for_use(&sender, filter), &fsic::expand_for_use(&receiver, filter));
        Ok(diff
            .into_iter()
            .flat_map(|(partition, counters)| {
                counters.into_iter().map(move |(instance, counter)| Wanted {
                    partition: partition.clone(),
                    instance,
                    counter,
                })
            })
            .collect())
    } else {
        let diff = fsic::diff_v1(&fsic::v1_from_json_text(sender)?, &fsic::v1_from_json_text(receiver)?);
        Ok(filter
            .prefixes()
            .iter()
            .flat_map(|partition| {
                diff.iter().map(move |(instance, counter)| Wanted {
                    partition: partition.clone(),
                    instance: instance.clone(),
                    counter: *counter,
                })
            })
            .collect())
    }
}

/// Triples per statement (3 bound values each).
const TRIPLES_PER_STATEMENT: usize = 2_000;

/// Queues the wanted records of `profile` for `transfer` and returns how many were queued.
pub(crate) async fn queue<C: ConnectionTrait>(db: &C, transfer: &str, profile: &str, wanted: &[Wanted]) -> Result<i64> {
    for chunk in wanted.chunks(TRIPLES_PER_STATEMENT) {
        let base = queued(db, transfer).await?;
        let mut values: Vec<Value> = vec![text(transfer), text(profile), base.into()];
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, w) in chunk.iter().enumerate() {
            let p = 4 + 3 * i;
            tuples.push(format!("(${}, ${}, CAST(${} AS BIGINT))", p, p + 1, p + 2));
            values.extend([text(&w.partition), text(&w.instance), w.counter.into()]);
        }
        sql::exec(
            db,
            "queuing records",
            &format!(
                "INSERT INTO morango_buffer (transfer_session_id, model_uuid, seq, profile, serialized, deleted, \
                 hard_deleted, last_saved_instance, last_saved_counter, partition, source_id, model_name, \
                 conflicting_serialized_data, _self_ref_fk) \
                 SELECT $1, s.id, $3 + row_number() OVER (ORDER BY s.id) - 1, s.profile, s.serialized, s.deleted, \
                 s.hard_deleted, s.last_saved_instance, s.last_saved_counter, s.partition, s.source_id, s.model_name, \
                 s.conflicting_serialized_data, s._self_ref_fk FROM morango_store s \
                 WHERE s.profile = $2 \
                 AND EXISTS (SELECT 1 FROM (VALUES {}) AS d WHERE s.last_saved_instance = d.column2 \
                   AND s.last_saved_counter > d.column3 AND substr(s.partition, 1, length(d.column1)) = d.column1) \
                 AND NOT EXISTS (SELECT 1 FROM morango_buffer b WHERE b.transfer_session_id = $1 AND b.model_uuid = s.id)",
                tuples.join(", ")
            ),
            values,
        )
        .await?;
    }
    sql::exec(
        db,
        "queuing record counters",
        "INSERT INTO morango_recordmaxcounterbuffer (transfer_session_id, model_uuid, instance_id, counter) \
         SELECT $1, r.store_model_id, r.instance_id, r.counter FROM morango_recordmaxcounter r \
         JOIN morango_buffer b ON b.model_uuid = r.store_model_id WHERE b.transfer_session_id = $1",
        vec![text(transfer)],
    )
    .await?;
    queued(db, transfer).await
}

/// How many records are queued for a transfer.
pub(crate) async fn queued<C: ConnectionTrait>(db: &C, transfer: &str) -> Result<i64> {
    let row = sql::query_one(
        db,
        "counting queued records",
        "SELECT COUNT(*) AS n FROM morango_buffer WHERE transfer_session_id = $1",
        vec![text(transfer)],
    )
    .await?
    .ok_or_else(|| Error::Schema("COUNT(*) returned no row".into()))?;
    get(&row, "n")
}
