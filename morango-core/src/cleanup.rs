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
use sea_orm::{TransactionTrait, Value};

use crate::engine::Engine;
use crate::error::{DbContext, Result};
use crate::sql;

/// How idle a session must be before it counts as abandoned, unless told otherwise: 6 hours, as Python Morango.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(6 * 60 * 60);

/// What [`cleanup_syncs`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Transfer sessions closed.
    pub transfer_sessions: u64,
    /// Buffered records deleted (`morango_buffer`).
    pub buffers: u64,
    /// Buffered record-max-counters deleted (`morango_recordmaxcounterbuffer`).
    pub record_max_counter_buffers: u64,
    /// Sync sessions closed.
    pub sync_sessions: u64,
    /// Expired nonces deleted (always 0 without the `network` feature).
    pub nonces: u64,
}

/// Closes the transfer sessions (client or server side) whose last activity is older than `older_than` and deletes
/// their buffers, then closes the sync sessions idle as long that have no active transfer session, then deletes
/// expired nonces. Sessions that are still in use are left alone; a transfer that was cleaned up cannot be resumed,
/// its sync starts over.
pub async fn cleanup_syncs(engine: &Engine, older_than: Duration) -> Result<CleanupReport> {
    let cutoff = cutoff(Utc::now(), older_than);
    let txn = engine.db().begin().await.context(|| "starting the cleanup".into())?;
    let mut report = CleanupReport {
        transfer_sessions: sql::exec(
            &txn,
            "closing idle transfer sessions",
            "UPDATE morango_transfersession SET active = $1 WHERE active = $2 AND last_activity_timestamp < $3",
            vec![false.into(), true.into(), timestamp(cutoff)],
        )
        .await?,
        ..CleanupReport::default()
    };
    for (table, count) in [
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
            vec![false.into(), timestamp(cutoff)],
        )
        .await?;
    }
    report.sync_sessions = sql::exec(
        &txn,
        "closing idle sync sessions",
        "UPDATE morango_syncsession SET active = $1 WHERE active = $2 AND last_activity_timestamp < $3 \
         AND NOT EXISTS (SELECT 1 FROM morango_transfersession t \
                         WHERE t.sync_session_id = morango_syncsession.id AND t.active = $2)",
        vec![false.into(), true.into(), timestamp(cutoff)],
    )
    .await?;
    txn.commit().await.context(|| "committing the cleanup".into())?;
    #[cfg(feature = "network")]
    {
        report.nonces = crate::nonce::purge_expired(engine.db()).await?;
    }
    Ok(report)
}

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
