//! Queuing: the producer lists the store records the receiver lacks (spec §6.4–§6.5).
//!
//! The directional FSIC diff becomes a list of `(partition prefix, instance, counter)` triples bound as a
//! `VALUES` list; one `INSERT … SELECT` per few thousand triples numbers the ids of the matching store rows in
//! `morango_transferqueue`. Unlike Python Morango, which copies every queued record and its counters into its
//! buffers, only ids are queued: an unfinished pull costs the server about 100 bytes a record, not a copy of the
//! dataset. No SQL text is built from data, and no `LIKE` is used (on SQLite it ignores case and treats `_`/`%`
//! in partitions as wildcards, §15).

use sea_orm::{ConnectionTrait, DbBackend, Value};

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::fsic::{self, FsicV2};
use crate::profile::Profile;
use crate::sql::{self, text};

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

/// Queues the ids of the wanted records of `profile` for `transfer` and returns how many were queued. They are
/// numbered from 0 in the profile's dependency order (a model's records after those of the models it refers to;
/// records of models this side does not declare last), so that a receiver can apply each chunk as it arrives, and
/// within a model in the order the store received them (serialized here or received from a peer; see
/// [`crate::migration::RecordOrder`]), so that a relay sends records in the order their sender did and applications
/// that check a record against earlier ones of its model accept them. The order holds within each statement of
/// [`TRIPLES_PER_STATEMENT`] triples (a receiver applies a record that arrives before its parent in its
/// deserializing stage). The queue holds ids only: pages read the records from the store when they are sent.
pub(crate) async fn queue<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    profile: &Profile,
    wanted: &[Wanted],
) -> Result<i64> {
    let models: Vec<&str> = profile.models().map(|m| m.model_name()).collect();
    // The order the store received its records in: PostgreSQL numbers them (`seq`), SQLite's rowids do.
    let received = if db.get_database_backend() == DbBackend::Postgres { "s.seq" } else { "s.rowid" };
    let mut queued: i64 = 0;
    for chunk in wanted.chunks(TRIPLES_PER_STATEMENT) {
        let mut values: Vec<Value> = vec![text(transfer), text(profile.name()), queued.into()];
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, w) in chunk.iter().enumerate() {
            let p = 4 + 3 * i;
            tuples.push(format!("(${}, ${}, CAST(${} AS BIGINT))", p, p + 1, p + 2));
            values.extend([text(&w.partition), text(&w.instance), w.counter.into()]);
        }
        let first = values.len() + 1;
        let ranks: String = (0..models.len()).map(|i| format!(" WHEN ${} THEN {i}", first + i)).collect();
        values.extend(models.iter().map(|m| text(*m)));
        let rank = format!("CASE s.model_name{ranks} ELSE {} END", models.len());
        let triples = tuples.join(", ");
        // A triple from 0 asks for everything an instance saved (the receiver holds nothing of it): one scan of the
        // store. Otherwise the store's version index finds the few recent records.
        let wanted = if chunk.iter().any(|w| w.counter <= 0) {
            format!(
                "EXISTS (SELECT 1 FROM (VALUES {triples}) AS d WHERE s.last_saved_instance = d.column2 \
                 AND s.last_saved_counter > d.column3 AND substr(s.partition, 1, length(d.column1)) = d.column1)"
            )
        } else {
            format!(
                "s.id IN (SELECT v.id FROM (VALUES {triples}) AS d JOIN morango_store v \
                 ON v.last_saved_instance = d.column2 AND v.last_saved_counter > d.column3 \
                 WHERE substr(v.partition, 1, length(d.column1)) = d.column1)"
            )
        };
        let added = sql::exec(
            db,
            "queuing records",
            &format!(
                "INSERT INTO morango_transferqueue (transfer_session_id, seq, model_uuid) \
                 SELECT $1, $3 + row_number() OVER (ORDER BY {rank}, {received}, s.id) - 1, s.id FROM morango_store s \
                 WHERE s.profile = $2 \
                 AND {wanted} AND NOT EXISTS (SELECT 1 FROM morango_transferqueue q WHERE q.transfer_session_id = $1 \
                   AND q.model_uuid = s.id)"
            ),
            values,
        )
        .await?;
        queued += i64::try_from(added).map_err(|_| Error::Schema("more records queued than fit in an i64".into()))?;
    }
    Ok(queued)
}

/// About what one queued record costs in bytes (its id, position and index entries).
pub(crate) const QUEUED_BYTES: i64 = 100;
