//! Refused records: the records this database refused to store because they are not what they claim (see
//! [`crate::validation`]), and the records of this database a peer refused, each with its reason, in
//! `morango_refusedrecord`, a table an operator can query. A record counts once per transfer and side.
//!
//! ```sql
//! SELECT refused_at, peer_instance_id, model_name, model_uuid, partition, reason
//! FROM morango_refusedrecord WHERE by_peer = false ORDER BY refused_at DESC;
//! ```
//!
//! Rows older than [`crate::cleanup::HISTORY_RETENTION`] are removed by [`crate::cleanup_syncs`].

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value};

use crate::error::Result;
use crate::sql::{self, get, placeholders, text};

/// A received record that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    /// The record id it claimed.
    pub model_uuid: String,
    /// The model name it claimed.
    pub model_name: String,
    /// The partition it claimed.
    pub partition: String,
    /// The source id it claimed.
    pub source_id: String,
    /// The version it claimed: instance.
    pub last_saved_instance: String,
    /// The version it claimed: counter.
    pub last_saved_counter: i64,
    /// Why it was refused.
    pub reason: String,
}

/// A row of `morango_refusedrecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecord {
    /// The transfer session that carried the record.
    pub transfer_session_id: String,
    /// The instance on the other side of the transfer, when known.
    pub peer_instance_id: Option<String>,
    /// False: this database refused a record it received. True: the peer refused a record this database sent.
    pub by_peer: bool,
    /// The record and the reason.
    pub refusal: Refusal,
    /// When.
    pub refused_at: DateTime<Utc>,
}

/// Logs the refusals of a chunk in one line: how many, and the first few with their reasons (all of them are in
/// the table).
pub(crate) fn log(transfer: &str, refusals: &[Refusal], by_peer: bool) {
    if refusals.is_empty() {
        return;
    }
    let first: Vec<String> =
        refusals.iter().take(3).map(|r| format!("{} {} ({})", r.model_name, r.model_uuid, r.reason)).collect();
    let who = if by_peer { "the peer refused records this side sent" } else { "refused received records" };
    tracing::warn!(transfer, refused = refusals.len(), first = %first.join("; "), "{who} (see morango_refusedrecord)");
}

/// Records per statement (7 bound values each).
const PER_STATEMENT: usize = 500;

/// Stores refusals of one transfer (the peer's instance is the other side of its sync session); returns how many
/// were not stored before (a record sent again counts once).
pub(crate) async fn record<C: ConnectionTrait>(
    db: &C,
    transfer: &str,
    by_peer: bool,
    refusals: &[Refusal],
) -> Result<u64> {
    let mut new = 0;
    for chunk in refusals.chunks(PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len() * 8 + 3);
        values.extend([text(transfer), by_peer.into(), Value::ChronoDateTimeUtc(Some(Utc::now()))]);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, refusal) in chunk.iter().enumerate() {
            tuples.push(format!("($1, $2, {}, $3)", placeholders(4 + 7 * i, 7)));
            values.extend([
                text(&refusal.model_uuid),
                text(&refusal.model_name),
                text(&refusal.partition),
                text(&refusal.source_id),
                text(&refusal.last_saved_instance),
                refusal.last_saved_counter.into(),
                text(&refusal.reason),
            ]);
        }
        new += sql::exec(
            db,
            "recording refused records",
            &format!(
                "INSERT INTO morango_refusedrecord (transfer_session_id, by_peer, model_uuid, model_name, partition, \
                 source_id, last_saved_instance, last_saved_counter, reason, refused_at) VALUES {} \
                 ON CONFLICT (transfer_session_id, model_uuid, by_peer) DO NOTHING",
                tuples.join(", ")
            ),
            values,
        )
        .await?;
    }
    if new > 0 {
        sql::exec(
            db,
            "naming the peer of refused records",
            "UPDATE morango_refusedrecord SET peer_instance_id = (SELECT CASE WHEN s.is_server \
             THEN s.client_instance_id ELSE s.server_instance_id END FROM morango_syncsession s \
             JOIN morango_transfersession t ON t.sync_session_id = s.id WHERE t.id = $1) \
             WHERE transfer_session_id = $1 AND peer_instance_id IS NULL",
            vec![text(transfer)],
        )
        .await?;
    }
    Ok(new)
}

/// The refused records of one transfer session, or of all, oldest first.
pub async fn refused_records<C: ConnectionTrait>(
    db: &C,
    transfer_session_id: Option<&str>,
) -> Result<Vec<RefusedRecord>> {
    let (condition, values) = match transfer_session_id {
        Some(id) => ("WHERE transfer_session_id = $1", vec![text(id)]),
        None => ("", Vec::new()),
    };
    let rows = sql::query(
        db,
        "reading refused records",
        &format!(
            "SELECT transfer_session_id, peer_instance_id, by_peer, model_uuid, model_name, partition, source_id, \
             last_saved_instance, last_saved_counter, reason, refused_at FROM morango_refusedrecord {condition} \
             ORDER BY id"
        ),
        values,
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RefusedRecord {
                transfer_session_id: get(row, "transfer_session_id")?,
                peer_instance_id: get(row, "peer_instance_id")?,
                by_peer: get(row, "by_peer")?,
                refusal: Refusal {
                    model_uuid: get(row, "model_uuid")?,
                    model_name: get(row, "model_name")?,
                    partition: get(row, "partition")?,
                    source_id: get(row, "source_id")?,
                    last_saved_instance: get(row, "last_saved_instance")?,
                    last_saved_counter: get(row, "last_saved_counter")?,
                    reason: get(row, "reason")?,
                },
                refused_at: get(row, "refused_at")?,
            })
        })
        .collect()
}
