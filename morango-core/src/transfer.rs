//! The stage work one side of a transfer does on its own database, for the client and the server alike
//! (spec §9.2): who serializes, queues, dequeues and deserializes depends only on the direction and the side.

use crate::buffer::CHUNK;
use crate::engine::{Engine, lock_for};
use crate::error::{DbContext, Error, Result};
use crate::refused::Refusal;
use crate::session::{self, TransferSession};
use crate::tracking::Guard;

/// Serializing: each side serializes its application rows under the filter, then computes its FSIC.
///
/// Python Morango serializes only on the producer here (the receiver does so just before deserializing);
/// serializing the receiver too turns its unsynced local edits into versions first, so that an incoming record
/// that crossed such an edit is seen as a conflict by the version vectors (and goes to the model's conflict
/// hook) instead of being overwritten field by field. The outcome without a hook is the same: local data wins.
pub(crate) async fn serializing(engine: &Engine, ts: &mut TransferSession, is_server: bool) -> Result<()> {
    let producer = ts.is_producer(is_server);
    engine.serialize(Some(&ts.filter)).await?;
    let own = crate::dmc::own_fsic(engine.db(), &ts.filter, producer, ts.fsic_v2).await?;
    if is_server {
        ts.server_fsic = own;
    } else {
        ts.client_fsic = own;
    }
    Ok(())
}

/// What a server's pull queue may hold: the client certificate's unfinished transfers together stay within
/// `limit` bytes.
pub(crate) struct QueueCap {
    /// The client certificate of the transfer's sync session.
    pub(crate) certificate: String,
    /// [`crate::server::TransferLimits::max_buffered_bytes_per_certificate`].
    pub(crate) limit: i64,
}

/// Queuing: the producer queues what the receiver's FSIC says it lacks. Under a `cap`, a queue that would take
/// the certificate past it is refused before it is committed; the check and the queue's size are written in one
/// transaction that excludes the certificate's other queues, on any server process.
pub(crate) async fn queuing(
    engine: &Engine,
    ts: &mut TransferSession,
    is_server: bool,
    cap: Option<&QueueCap>,
) -> Result<()> {
    if !ts.is_producer(is_server) {
        return Ok(());
    }
    let (own, peer) = if is_server { (&ts.server_fsic, &ts.client_fsic) } else { (&ts.client_fsic, &ts.server_fsic) };
    let wanted = crate::queue::wanted(own, peer, &ts.filter, ts.fsic_v2)?;
    let (txn, _writer) = engine.begin_write().await?;
    // The same stage asked for twice at once (a client's retry, maybe on another server process) queues once, then
    // again from the start: never two queues interleaved.
    lock_for(&txn, &format!("morango:queue:{}", ts.id)).await?;
    // A queuing stage run again (a resumed transfer) starts from an empty queue.
    crate::buffer::clear(&txn, &ts.id).await?;
    let total = crate::queue::queue(&txn, &ts.id, engine.profile(), &wanted).await?;
    let bytes = total.saturating_mul(crate::queue::QUEUED_BYTES);
    if let Some(cap) = cap {
        lock_for(&txn, &format!("morango:queued-bytes:{}", cap.certificate)).await?;
        let held = session::buffered_bytes_of_certificate(&txn, &cap.certificate, &ts.id).await?;
        if held.saturating_add(bytes) > cap.limit {
            return Err(Error::Capacity(format!(
                "certificate {} already holds {held} bytes in unfinished transfers on this server, and this pull's \
                 queue of {bytes} bytes would pass the limit of {} bytes: finish or close an unfinished transfer",
                cap.certificate, cap.limit
            )));
        }
        session::set_bytes_buffered(&txn, &ts.id, bytes).await?;
    }
    crate::fault::point("queue.commit");
    txn.commit().await.context(|| "committing the queue".into())?;
    ts.records_total = Some(total);
    ts.bytes_buffered = bytes;
    Ok(())
}

/// Dequeuing: the receiver merges what it received, then learns the sender's counters.
pub(crate) async fn dequeuing(engine: &Engine, ts: &mut TransferSession, is_server: bool) -> Result<()> {
    if ts.is_producer(is_server) {
        return Ok(());
    }
    let sender = if is_server { &ts.client_fsic } else { &ts.server_fsic };
    crate::dequeue::dequeue(engine, &ts.id, sender, &ts.filter, ts.fsic_v2).await?;
    ts.bytes_buffered = 0;
    Ok(())
}

/// Deserializing: the receiver writes changed records into its application tables.
pub(crate) async fn deserializing(engine: &Engine, ts: &TransferSession, is_server: bool) -> Result<()> {
    if ts.is_producer(is_server) {
        return Ok(());
    }
    engine.deserialize(Some(&ts.filter)).await?;
    Ok(())
}

/// Cleanup: buffers go, the session closes.
pub(crate) async fn cleanup(engine: &Engine, ts: &mut TransferSession) -> Result<()> {
    crate::buffer::clear(engine.db(), &ts.id).await?;
    ts.active = false;
    ts.bytes_buffered = 0;
    Ok(())
}

/// Validates a chunk of received records and merges the records that pass straight into the store (they stay
/// dirty until deserialization); a refused record is stored in `morango_refusedrecord` with its reason and logged,
/// and the rest of the chunk goes on (only a malformed chunk is refused whole). The transfer's counts move in the
/// same transaction: records received (a record sent again counts once), refused, and of undeclared models.
/// Returns the refusals.
pub(crate) async fn receive_chunk(
    engine: &Engine,
    ts: &mut TransferSession,
    records: Vec<crate::buffer::BufferRecord>,
) -> Result<Vec<Refusal>> {
    receive_chunks(engine, ts, vec![records]).await
}

/// [`receive_chunk`] for several chunks in one transaction (one commit, one fsync): every chunk is checked before
/// anything is written, so a malformed one refuses them all.
pub(crate) async fn receive_chunks(
    engine: &Engine,
    ts: &mut TransferSession,
    chunks: Vec<Vec<crate::buffer::BufferRecord>>,
) -> Result<Vec<Refusal>> {
    let checked = chunks
        .into_iter()
        .map(|records| crate::validation::check_chunk(records, &ts.id, &ts.filter, engine.profile()))
        .collect::<Result<Vec<_>>>()?;
    let (txn, _writer) = engine.begin_exclusive().await?;
    // The counts move from what the database holds now: a chunk sent again while the first attempt was still
    // being received (a retry, maybe on another server process) must not overwrite that attempt's counts.
    if let Some(current) = session::transfer_session(&txn, &ts.id).await? {
        ts.records_transferred = current.records_transferred;
        ts.records_refused = current.records_refused;
        ts.records_of_unknown_models = current.records_of_unknown_models;
    }
    crate::buffer::prepare_chunk_tables(&txn).await?;
    Guard::Apply.enter(&txn).await.context(|| "entering the apply guard".into())?;
    let mut refusals = Vec::new();
    for chunk in checked {
        crate::refused::log(&ts.id, &chunk.refused, false);
        // Records the store does not hold go straight into the application tables where they can, and into the
        // store; the others are staged and merged with what it holds, for the deserializing stage to apply.
        let stored = crate::buffer::stored_among(&txn, &ts.id, &chunk.accepted).await?;
        let (known, fresh): (Vec<_>, Vec<_>) = chunk.accepted.iter().partition(|r| stored.contains_key(&r.model_uuid));
        if !known.is_empty() {
            crate::buffer::stage_chunk(&txn, &ts.id, engine.profile().name(), &known).await?;
            crate::dequeue::merge(&txn, engine, CHUNK, &ts.id).await?;
        }
        let applied = crate::deserialize::apply_received(&txn, engine, &fresh).await?;
        crate::buffer::store_new(&txn, &ts.id, engine.profile().name(), &fresh, &applied).await?;
        let new: Vec<&crate::buffer::BufferRecord> =
            chunk.accepted.iter().filter(|r| stored.get(&r.model_uuid) != Some(&true)).collect();
        let newly_refused = crate::refused::record(&txn, &ts.id, false, &chunk.refused).await? as i64;
        let mut unknown: Vec<&str> =
            new.iter().map(|r| r.model_name.as_str()).filter(|m| engine.profile().model(m).is_none()).collect();
        ts.records_of_unknown_models += unknown.len() as i64;
        if !unknown.is_empty() {
            let records = unknown.len();
            unknown.sort_unstable();
            unknown.dedup();
            tracing::info!(transfer = %ts.id, records, models = ?unknown, "kept records of models this side does not declare");
        }
        ts.records_transferred += new.len() as i64 + newly_refused;
        ts.records_refused += newly_refused;
        refusals.extend(chunk.refused);
    }
    Guard::Apply.leave(&txn).await.context(|| "leaving the apply guard".into())?;
    session::save_transfer(&txn, ts).await?;
    crate::fault::point("receive.commit");
    txn.commit().await.context(|| "committing received records".into())?;
    Ok(refusals)
}
