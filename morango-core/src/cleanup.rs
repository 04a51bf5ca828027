//! Removing what abandoned syncs leave behind (Python Morango's `cleanupsyncs` command, spec §10.6).
//!
//! A client that crashes, loses its network or is killed mid-transfer leaves an active transfer session and its
//! staged records (buffers and record-max-counter buffers) on both sides; nothing else ever removes them.
//! [`cleanup_syncs`] closes every transfer session, of either role, that has seen no activity for a while and
//! deletes its buffers, then closes the sync sessions that are as idle and have no active transfer left, and
//! purges expired nonces. Run it now and then (the sync command's `cleanup-syncs`), so nothing grows without
//! bound; [`DEFAULT_EXPIRATION`] is Python Morango's default.
//!
//! Every statement is set-based, with the cut-off time bound as a value: the transfer sessions are closed first,
//! and only the buffers of closed, idle transfers are deleted, so a transfer that becomes active again meanwhile
//! keeps its records.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::Value;

use crate::engine::Engine;
use crate::error::{DbContext, Result};
use crate::sql;

/// How idle a session must be before it counts as abandoned, unless told otherwise: 6 hours, as Python Morango.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(6 * 60 * 60);

/// How long closed sessions and refused records are kept for an operator to look at: 30 days.
pub const HISTORY_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What [`cleanup_syncs`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Transfer sessions closed.
    pub transfer_sessions: u64,
    /// Queued record ids deleted (`morango_transferqueue`).
    pub queued: u64,
    /// Buffered records deleted (`morango_buffer`).
    pub buffers: u64,
    /// Buffered record-max-counters deleted (`morango_recordmaxcounterbuffer`).
    pub record_max_counter_buffers: u64,
    /// Sync sessions closed.
    pub sync_sessions: u64,
    /// Expired nonces deleted (always 0 without the `network` feature).
    pub nonces: u64,
    /// Closed sessions and refused records older than [`HISTORY_RETENTION`] deleted.
    pub history: u64,
}

/// Closes the transfer sessions (client or server side) whose last activity is older than `older_than` and deletes
/// their buffers, then closes the sync sessions idle as long that have no active transfer session, then deletes
/// expired nonces. Sessions that are still in use are left alone; a transfer that was cleaned up cannot be resumed,
/// its sync starts over. On PostgreSQL, when another process is running this or [`expire_idle_transfers`] on the
/// same database, it does nothing and reports nothing.
pub async fn cleanup_syncs(engine: &Engine, older_than: Duration) -> Result<CleanupReport> {
    let report = close_idle(engine, older_than).await?;
    reclaim_space(engine).await?;
    Ok(report)
}

async fn close_idle(engine: &Engine, older_than: Duration) -> Result<CleanupReport> {
    let idle_since = cutoff(Utc::now(), older_than);
    let Some((txn, _writer)) = engine.begin_maintenance().await? else {
        tracing::debug!("another process is collecting abandoned syncs");
        return Ok(CleanupReport::default());
    };
    let mut report = CleanupReport {
        transfer_sessions: sql::exec(
            &txn,
            "closing idle transfer sessions",
            "UPDATE morango_transfersession SET active = $1 WHERE active = $2 AND last_activity_timestamp < $3",
            vec![false.into(), true.into(), timestamp(idle_since)],
        )
        .await?,
        ..CleanupReport::default()
    };
    for (table, count) in [
        ("morango_transferqueue", &mut report.queued),
        ("morango_buffer", &mut report.buffers),
        ("morango_recordmaxcounterbuffer", &mut report.record_max_counter_buffers),
    ] {
        *count = sql::exec(
            &txn,
            "deleting the buffers of closed transfer sessions",
            &format!(
                "DELETE FROM {table} WHERE transfer_session_id IN (SELECT id FROM morango_transfersession \
                 WHERE active = $1 AND last_activity_timestamp < $2)"
            ),
            vec![false.into(), timestamp(idle_since)],
        )
        .await?;
    }
    report.sync_sessions = sql::exec(
        &txn,
        "closing idle sync sessions",
        "UPDATE morango_syncsession SET active = $1 WHERE active = $2 AND last_activity_timestamp < $3 \
         AND NOT EXISTS (SELECT 1 FROM morango_transfersession t \
                         WHERE t.sync_session_id = morango_syncsession.id AND t.active = $2)",
        vec![false.into(), true.into(), timestamp(idle_since)],
    )
    .await?;
    report.history = purge_history(&txn, cutoff(Utc::now(), HISTORY_RETENTION)).await?;
    txn.commit().await.context(|| "committing the cleanup".into())?;
    #[cfg(feature = "network")]
    {
        report.nonces = crate::nonce::purge_expired(engine.db()).await?;
    }
    Ok(report)
}

/// Closes the unfinished transfers this database serves (the server side of sync sessions) that have been idle
/// longer than `idle`, and drops what they buffer and queue; a transfer whose stage is still running is given
/// [`DEFAULT_EXPIRATION`]. Returns how many were closed. Servers call it when a transfer is created and while
/// serving, so an interrupted client never leaves its buffers behind for long. Several server processes on one
/// PostgreSQL database take turns: while one runs it, the others' calls return 0.
pub async fn expire_idle_transfers(engine: &Engine, idle: Duration) -> Result<u64> {
    // Looked for first without the write lock: usually there is none.
    if idle_served(engine.db(), Utc::now(), idle).await?.is_empty() {
        return Ok(0);
    }
    let Some((txn, _writer)) = engine.begin_maintenance().await? else {
        return Ok(0);
    };
    let idle = idle_served(&txn, Utc::now(), idle).await?;
    for id in &idle {
        tracing::info!(transfer = %id, "closing a transfer idle for too long");
        crate::buffer::clear(&txn, id).await?;
        crate::session::close_transfer_session(&txn, id).await?;
    }
    txn.commit().await.context(|| "committing expired transfers".into())?;
    Ok(idle.len() as u64)
}

/// The unfinished transfers served here that are idle beyond `idle` (beyond [`DEFAULT_EXPIRATION`] when their
/// stage is still running).
async fn idle_served<C: sea_orm::ConnectionTrait>(db: &C, now: DateTime<Utc>, idle: Duration) -> Result<Vec<String>> {
    let rows = sql::query(
        db,
        "finding idle transfers",
        "SELECT t.id FROM morango_transfersession t JOIN morango_syncsession s ON s.id = t.sync_session_id \
         WHERE t.active = $1 AND s.is_server = $1 AND ((t.last_activity_timestamp < $2 AND t.transfer_stage_status <> $3) \
         OR t.last_activity_timestamp < $4)",
        vec![
            true.into(),
            timestamp(cutoff(now, idle)),
            sql::text(crate::stage::TransferStatus::Started.as_str()),
            timestamp(cutoff(now, DEFAULT_EXPIRATION.max(idle))),
        ],
    )
    .await?;
    rows.iter().map(|row| sql::get(row, "id")).collect()
}

/// Deletes closed sessions whose last activity is older than `before`, and refused records refused before it.
async fn purge_history(txn: &sea_orm::DatabaseTransaction, before: DateTime<Utc>) -> Result<u64> {
    let mut purged = sql::exec(
        txn,
        "deleting old refused records",
        "DELETE FROM morango_refusedrecord WHERE refused_at < $1",
        vec![timestamp(before)],
    )
    .await?;
    for (what, statement) in [
        (
            "deleting old transfer sessions",
            "DELETE FROM morango_transfersession WHERE active = $1 AND last_activity_timestamp < $2",
        ),
        (
            "deleting old sync sessions",
            "DELETE FROM morango_syncsession WHERE active = $1 AND last_activity_timestamp < $2 AND NOT EXISTS \
             (SELECT 1 FROM morango_transfersession t WHERE t.sync_session_id = morango_syncsession.id)",
        ),
    ] {
        purged += sql::exec(txn, what, statement, vec![false.into(), timestamp(before)]).await?;
    }
    Ok(purged)
}

/// Gives the space of deleted rows back to the file system. SQLite: the first time, switches the database to
/// incremental auto-vacuum (one full `VACUUM`), then frees the pages deleted since; and truncates the write-ahead
/// log. PostgreSQL's autovacuum needs nothing.
pub async fn reclaim_space(engine: &Engine) -> Result<()> {
    let db = engine.db();
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return Ok(());
    }
    let mode = sql::query_one(db, "reading the auto-vacuum mode", "PRAGMA auto_vacuum", vec![]).await?;
    let mode: i32 = match mode {
        Some(row) => sql::get(&row, "auto_vacuum")?,
        None => 0,
    };
    // Writers wait on the engine's lock; VACUUM needs the database to itself.
    let _writer = engine.lock_writer().await?;
    if mode != INCREMENTAL {
        tracing::info!("switching the database to incremental auto-vacuum (a one-time VACUUM)");
        sql::exec(db, "switching to incremental auto-vacuum", "PRAGMA auto_vacuum = INCREMENTAL", vec![]).await?;
        sql::exec(db, "vacuuming the database", "VACUUM", vec![]).await?;
    } else {
        sql::query(db, "freeing deleted pages", "PRAGMA incremental_vacuum", vec![]).await?;
    }
    sql::query(db, "truncating the write-ahead log", "PRAGMA wal_checkpoint(TRUNCATE)", vec![]).await?;
    Ok(())
}

/// SQLite's `auto_vacuum` value for incremental mode.
const INCREMENTAL: i32 = 2;

/// `now - older_than`, but not before 1970 (no session is that old, and every backend can store that time).
fn cutoff(now: DateTime<Utc>, older_than: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(older_than)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .map_or(DateTime::UNIX_EPOCH, |at| at.max(DateTime::UNIX_EPOCH))
}

fn timestamp(at: DateTime<Utc>) -> Value {
    Value::ChronoDateTimeUtc(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cutoff_before_1970_is_1970() {
        let now = Utc::now();
        assert_eq!(cutoff(now, Duration::from_secs(3600)), now - chrono::Duration::hours(1));
        assert_eq!(cutoff(now, Duration::from_secs(100 * 365 * 24 * 3600)), DateTime::UNIX_EPOCH);
        assert_eq!(cutoff(now, Duration::MAX), DateTime::UNIX_EPOCH);
    }
}
