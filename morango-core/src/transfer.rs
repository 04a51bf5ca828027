//! The stage work one side of a transfer does on its own database, for the client and the server alike
//! (spec §9.2): who serializes, queues, dequeues and deserializes depends only on the direction and the side.

use crate::engine::Engine;
use crate::error::{DbContext, Result};
use crate::session::TransferSession;

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

/// Queuing: the producer queues what the receiver's FSIC says it lacks.
pub(crate) async fn queuing(engine: &Engine, ts: &mut TransferSession, is_server: bool) -> Result<()> {
    if !ts.is_producer(is_server) {
        return Ok(());
    }
    let (own, peer) = if is_server { (&ts.server_fsic, &ts.client_fsic) } else { (&ts.client_fsic, &ts.server_fsic) };
    let wanted = crate::queue::wanted(own, peer, &ts.filter, ts.fsic_v2)?;
    // Under the profile lock: no version can change between copying the records and copying their counters.
    let (txn, _writer) = engine.begin_exclusive().await?;
    // A queuing stage run again (a resumed transfer) starts from an empty queue.
    crate::buffer::clear(&txn, &ts.id).await?;
    let total = crate::queue::queue(&txn, &ts.id, engine.profile().name(), &wanted).await?;
    txn.commit().await.context(|| "committing the queue".into())?;
    ts.records_total = Some(total);
    Ok(())
}

/// Dequeuing: the receiver merges what it received, then learns the sender's counters.
pub(crate) async fn dequeuing(engine: &Engine, ts: &TransferSession, is_server: bool) -> Result<()> {
    if ts.is_producer(is_server) {
        return Ok(());
    }
    let sender = if is_server { &ts.client_fsic } else { &ts.server_fsic };
    crate::dequeue::dequeue(engine, &ts.id, sender, &ts.filter, ts.fsic_v2).await?;
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
    Ok(())
}

/// Validates a chunk of received records and stages it in the buffer; counts the new ones as transferred.
pub(crate) async fn receive_chunk(
    engine: &Engine,
    ts: &mut TransferSession,
    records: &[crate::buffer::BufferRecord],
) -> Result<()> {
    crate::buffer::validate(records, &ts.id, &ts.filter, engine.profile())?;
    let (txn, _writer) = engine.begin_write().await?;
    crate::buffer::stage(&txn, &ts.id, engine.profile().name(), records).await?;
    // Counted from what is staged, so a chunk staged just before a crash is not fetched in vain on resume.
    let staged = crate::queue::queued(&txn, &ts.id).await?;
    txn.commit().await.context(|| "committing received records".into())?;
    ts.records_transferred = staged;
    Ok(())
}
