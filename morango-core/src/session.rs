//! Sync sessions and transfer sessions (spec §5.5): both peers keep a row with the same id.

use chrono::Utc;
use sea_orm::{ConnectionTrait, QueryResult, Value};

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::sql::{self, get, text};
use crate::stage::{TransferStage, TransferStatus};

/// A sync session: one connection between two peers, within which transfers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSession {
    /// Chosen by the client; the server adopts it.
    pub id: String,
    /// True on the side that answers.
    pub is_server: bool,
    /// The profile synced.
    pub profile: String,
    /// `"local"` for in-process syncs, `"network"` over HTTP.
    pub connection_kind: String,
    /// The client's certificate (network sessions).
    pub client_certificate_id: Option<String>,
    /// The server's certificate (network sessions).
    pub server_certificate_id: Option<String>,
    /// Every request after the handshake must be signed by the client certificate (`MORANGO_RS_SIGNED_REQUESTS`).
    pub signed_requests: bool,
    /// The client's instance JSON.
    pub client_instance_json: String,
    /// The server's instance JSON.
    pub server_instance_json: String,
    /// False once closed.
    pub active: bool,
}

/// A transfer session: one push or one pull of a filter within a sync session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSession {
    /// Chosen by the client; the server adopts it.
    pub id: String,
    /// The sync session it belongs to.
    pub sync_session_id: String,
    /// The partitions transferred.
    pub filter: Filter,
    /// True when the client sends (push), false when it receives (pull).
    pub push: bool,
    /// False once cleaned up.
    pub active: bool,
    /// Records received (receiver) or sent (producer) so far.
    pub records_transferred: i64,
    /// Records queued by the producer; unknown until queuing.
    pub records_total: Option<i64>,
    /// Received records the receiver refused (they are not what they claim, see [`crate::validation`]).
    pub records_refused: i64,
    /// Received records of models the receiver does not declare (kept and relayed).
    pub records_of_unknown_models: i64,
    /// Bytes this side holds for the transfer in its buffers or queue (bounded per certificate on a server).
    pub bytes_buffered: i64,
    /// The client's FSIC (JSON text).
    pub client_fsic: String,
    /// The server's FSIC (JSON text).
    pub server_fsic: String,
    /// True when the FSICs use the v2 format.
    pub fsic_v2: bool,
    /// The current stage.
    pub stage: TransferStage,
    /// The current stage's status.
    pub status: TransferStatus,
}

impl TransferSession {
    /// A new transfer session at its start: nothing moved or known yet.
    pub fn new(id: String, sync_session_id: String, filter: Filter, push: bool, fsic_v2: bool) -> Self {
        TransferSession {
            id,
            sync_session_id,
            filter,
            push,
            active: true,
            records_transferred: 0,
            records_total: None,
            records_refused: 0,
            records_of_unknown_models: 0,
            bytes_buffered: 0,
            client_fsic: "{}".into(),
            server_fsic: "{}".into(),
            fsic_v2,
            stage: TransferStage::Initializing,
            status: TransferStatus::Pending,
        }
    }

    /// True on the side that sends the records: the client of a push, the server of a pull.
    pub fn is_producer(&self, is_server: bool) -> bool {
        self.push != is_server
    }
}

fn now() -> Value {
    Value::ChronoDateTimeUtc(Some(Utc::now()))
}

/// Stores a new sync session.
pub(crate) async fn create_sync_session<C: ConnectionTrait>(db: &C, session: &SyncSession) -> Result<()> {
    sql::exec(
        db,
        "creating a sync session",
        "INSERT INTO morango_syncsession (id, start_timestamp, last_activity_timestamp, active, is_server, profile, \
         connection_kind, client_instance_json, server_instance_json, client_instance_id, server_instance_id, \
         client_certificate_id, server_certificate_id, signed_requests) \
         VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        vec![
            text(&session.id),
            now(),
            session.active.into(),
            session.is_server.into(),
            text(&session.profile),
            text(&session.connection_kind),
            text(&session.client_instance_json),
            text(&session.server_instance_json),
            instance_id_of(&session.client_instance_json),
            instance_id_of(&session.server_instance_json),
            Value::String(session.client_certificate_id.clone()),
            Value::String(session.server_certificate_id.clone()),
            session.signed_requests.into(),
        ],
    )
    .await?;
    Ok(())
}

fn instance_id_of(json: &str) -> Value {
    Value::String(instance_id(json))
}

/// The `id` of an instance JSON, if it has a valid one.
pub(crate) fn instance_id(json: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
        .filter(|id| crate::ids::is_valid_id(id))
}

/// Loads an active sync session.
pub(crate) async fn active_sync_session<C: ConnectionTrait>(db: &C, id: &str) -> Result<SyncSession> {
    let row = sql::query_one(
        db,
        "reading a sync session",
        "SELECT id, is_server, profile, connection_kind, client_instance_json, server_instance_json, active, \
         client_certificate_id, server_certificate_id, signed_requests FROM morango_syncsession \
         WHERE id = $1 AND active = $2",
        vec![text(id), true.into()],
    )
    .await?
    .ok_or_else(|| Error::NotFound(format!("sync session {id} does not exist or is no longer active")))?;
    Ok(SyncSession {
        id: get(&row, "id")?,
        is_server: get(&row, "is_server")?,
        profile: get(&row, "profile")?,
        connection_kind: get(&row, "connection_kind")?,
        client_certificate_id: get(&row, "client_certificate_id")?,
        server_certificate_id: get(&row, "server_certificate_id")?,
        signed_requests: get(&row, "signed_requests")?,
        client_instance_json: get(&row, "client_instance_json")?,
        server_instance_json: get(&row, "server_instance_json")?,
        active: get(&row, "active")?,
    })
}

/// The most recent network sync session this database opened as a client with this server and certificates that has
/// an unfinished transfer; any older such sessions are closed (their buffers dropped), so at most one is kept.
#[cfg(feature = "client")]
pub(crate) async fn unfinished_client_session<C: ConnectionTrait>(
    db: &C,
    server_instance_id: &str,
    client_certificate_id: &str,
    server_certificate_id: &str,
) -> Result<Option<String>> {
    let rows = sql::query(
        db,
        "looking for an unfinished sync",
        "SELECT s.id FROM morango_syncsession s WHERE s.active = $1 AND s.is_server = $2 \
         AND s.server_instance_id = $3 AND s.client_certificate_id = $4 AND s.server_certificate_id = $5 \
         AND EXISTS (SELECT 1 FROM morango_transfersession t WHERE t.sync_session_id = s.id AND t.active = $1) \
         ORDER BY s.last_activity_timestamp DESC",
        vec![
            true.into(),
            false.into(),
            text(server_instance_id),
            text(client_certificate_id),
            text(server_certificate_id),
        ],
    )
    .await?;
    let mut ids = rows.iter().map(|row| get::<String>(row, "id")).collect::<Result<Vec<_>>>()?.into_iter();
    let newest = ids.next();
    for stale in ids {
        close_sync_session(db, &stale).await?;
    }
    Ok(newest)
}

/// Records the sequence number of a signed request; false when it does not exceed the last one (a replay).
#[cfg(feature = "server")]
pub(crate) async fn advance_sequence<C: ConnectionTrait>(db: &C, id: &str, sequence: i64) -> Result<bool> {
    let updated = sql::exec(
        db,
        "recording a request sequence number",
        "UPDATE morango_syncsession SET request_sequence = $1 WHERE id = $2 AND request_sequence < $1",
        vec![sequence.into(), text(id)],
    )
    .await?;
    Ok(updated == 1)
}

/// Closes a sync session and its transfers; transfers it abandoned lose their buffers.
pub(crate) async fn close_sync_session<C: ConnectionTrait>(db: &C, id: &str) -> Result<()> {
    let open = sql::query(
        db,
        "finding open transfers",
        "SELECT id FROM morango_transfersession WHERE sync_session_id = $1 AND active = $2",
        vec![text(id), true.into()],
    )
    .await?;
    for row in open {
        crate::buffer::clear(db, &get::<String>(&row, "id")?).await?;
    }
    sql::exec(
        db,
        "closing a sync session",
        "UPDATE morango_syncsession SET active = $1, last_activity_timestamp = $2 WHERE id = $3",
        vec![false.into(), now(), text(id)],
    )
    .await?;
    sql::exec(
        db,
        "closing transfer sessions",
        "UPDATE morango_transfersession SET active = $1 WHERE sync_session_id = $2",
        vec![false.into(), text(id)],
    )
    .await?;
    Ok(())
}

/// The unfinished transfers that `new` supersedes on a server: those of the same client instance and certificate,
/// filter and direction in the server's other sync sessions.
pub(crate) async fn superseded_by<C: ConnectionTrait>(
    db: &C,
    session: &SyncSession,
    new: &TransferSession,
) -> Result<Vec<String>> {
    let Some(instance) = instance_id(&session.client_instance_json) else { return Ok(Vec::new()) };
    let mut values = vec![true.into(), new.push.into(), text(new.filter.to_wire()), text(instance), text(&session.id)];
    let certificate = match &session.client_certificate_id {
        Some(id) => {
            values.push(text(id));
            "s.client_certificate_id = $6"
        }
        None => "s.client_certificate_id IS NULL",
    };
    let rows = sql::query(
        db,
        "finding superseded transfers",
        &format!(
            "SELECT t.id FROM morango_transfersession t JOIN morango_syncsession s ON s.id = t.sync_session_id \
             WHERE t.active = $1 AND s.is_server = $1 AND t.push = $2 AND t.filter = $3 AND s.client_instance_id = $4 \
             AND s.id <> $5 AND {certificate}"
        ),
        values,
    )
    .await?;
    rows.iter().map(|row| get(row, "id")).collect()
}

/// Marks a transfer session closed (its buffers are the caller's to drop).
pub(crate) async fn close_transfer_session<C: ConnectionTrait>(db: &C, id: &str) -> Result<()> {
    sql::exec(
        db,
        "closing a transfer session",
        "UPDATE morango_transfersession SET active = $1, bytes_buffered = 0, last_activity_timestamp = $2 WHERE id = $3",
        vec![false.into(), now(), text(id)],
    )
    .await?;
    Ok(())
}

/// The bytes the unfinished transfers of a client certificate hold on this server, but for transfer `except`.
pub(crate) async fn buffered_bytes_of_certificate<C: ConnectionTrait>(
    db: &C,
    certificate: &str,
    except: &str,
) -> Result<i64> {
    let row = sql::query_one(
        db,
        "adding up a certificate's buffered bytes",
        "SELECT CAST(COALESCE(SUM(t.bytes_buffered), 0) AS BIGINT) AS held FROM morango_transfersession t \
         JOIN morango_syncsession s ON s.id = t.sync_session_id \
         WHERE t.active = $1 AND s.is_server = $1 AND s.client_certificate_id = $2 AND t.id <> $3",
        vec![true.into(), text(certificate), text(except)],
    )
    .await?;
    match row {
        Some(row) => get(&row, "held"),
        None => Ok(0),
    }
}

const TRANSFER_COLUMNS: &str = "id, sync_session_id, filter, push, active, records_transferred, records_total, \
    records_refused, records_of_unknown_models, bytes_buffered, client_fsic, server_fsic, fsic_v2, transfer_stage, \
    transfer_stage_status";

/// Stores a new transfer session.
pub(crate) async fn create_transfer_session<C: ConnectionTrait>(db: &C, ts: &TransferSession) -> Result<()> {
    sql::exec(
        db,
        "creating a transfer session",
        &format!(
            "INSERT INTO morango_transfersession ({TRANSFER_COLUMNS}, start_timestamp, last_activity_timestamp) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)"
        ),
        vec![
            text(&ts.id),
            text(&ts.sync_session_id),
            text(ts.filter.to_wire()),
            ts.push.into(),
            ts.active.into(),
            ts.records_transferred.into(),
            Value::BigInt(ts.records_total),
            ts.records_refused.into(),
            ts.records_of_unknown_models.into(),
            ts.bytes_buffered.into(),
            text(&ts.client_fsic),
            text(&ts.server_fsic),
            ts.fsic_v2.into(),
            text(ts.stage.as_str()),
            text(ts.status.as_str()),
            now(),
        ],
    )
    .await?;
    Ok(())
}

fn transfer_from_row(row: &QueryResult) -> Result<TransferSession> {
    let stage: String = get(row, "transfer_stage")?;
    let status: String = get(row, "transfer_stage_status")?;
    let filter: String = get(row, "filter")?;
    Ok(TransferSession {
        id: get(row, "id")?,
        sync_session_id: get(row, "sync_session_id")?,
        filter: Filter::parse(&filter),
        push: get(row, "push")?,
        active: get(row, "active")?,
        records_transferred: get(row, "records_transferred")?,
        records_total: get(row, "records_total")?,
        records_refused: get(row, "records_refused")?,
        records_of_unknown_models: get(row, "records_of_unknown_models")?,
        bytes_buffered: get(row, "bytes_buffered")?,
        client_fsic: get(row, "client_fsic")?,
        server_fsic: get(row, "server_fsic")?,
        fsic_v2: get(row, "fsic_v2")?,
        stage: stage.parse().map_err(Error::Session)?,
        status: status.parse().map_err(Error::Session)?,
    })
}

/// Loads a transfer session (active or not).
pub(crate) async fn transfer_session<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<TransferSession>> {
    let row = sql::query_one(
        db,
        "reading a transfer session",
        &format!("SELECT {TRANSFER_COLUMNS} FROM morango_transfersession WHERE id = $1"),
        vec![text(id)],
    )
    .await?;
    row.as_ref().map(transfer_from_row).transpose()
}

/// The active transfer session of a sync session in one direction, if any.
pub(crate) async fn active_transfer<C: ConnectionTrait>(
    db: &C,
    sync_session_id: &str,
    push: bool,
) -> Result<Option<TransferSession>> {
    let row = sql::query_one(
        db,
        "looking for an active transfer session",
        &format!("SELECT {TRANSFER_COLUMNS} FROM morango_transfersession WHERE sync_session_id = $1 AND push = $2 AND active = $3"),
        vec![text(sync_session_id), push.into(), true.into()],
    )
    .await?;
    row.as_ref().map(transfer_from_row).transpose()
}

/// Records the bytes a transfer's queue holds.
pub(crate) async fn set_bytes_buffered<C: ConnectionTrait>(db: &C, id: &str, bytes: i64) -> Result<()> {
    sql::exec(
        db,
        "recording the bytes a queue holds",
        "UPDATE morango_transfersession SET bytes_buffered = $1 WHERE id = $2",
        vec![bytes.into(), text(id)],
    )
    .await?;
    Ok(())
}

/// Writes back the mutable fields of a transfer session. The stage never moves backwards, and a transfer that
/// was closed (cleaned up, or abandoned and collected) is never reopened.
pub(crate) async fn save_transfer<C: ConnectionTrait>(db: &C, ts: &TransferSession) -> Result<()> {
    let mut values = vec![
        ts.active.into(),
        ts.records_transferred.into(),
        Value::BigInt(ts.records_total),
        ts.records_refused.into(),
        ts.records_of_unknown_models.into(),
        ts.bytes_buffered.into(),
        text(&ts.client_fsic),
        text(&ts.server_fsic),
        text(ts.stage.as_str()),
        text(ts.status.as_str()),
        now(),
        text(&ts.id),
    ];
    let reachable: Vec<&TransferStage> = TransferStage::ALL.iter().filter(|stage| **stage <= ts.stage).collect();
    values.extend(reachable.iter().map(|stage| text(stage.as_str())));
    let updated = sql::exec(
        db,
        "updating a transfer session",
        &format!(
            "UPDATE morango_transfersession SET active = (active AND $1), records_transferred = $2, records_total = $3, \
             records_refused = $4, records_of_unknown_models = $5, bytes_buffered = $6, client_fsic = $7, \
             server_fsic = $8, transfer_stage = $9, transfer_stage_status = $10, last_activity_timestamp = $11 \
             WHERE id = $12 AND transfer_stage IN ({})",
            sql::placeholders(13, reachable.len())
        ),
        values,
    )
    .await?;
    if updated == 0 {
        return Err(Error::Session(format!("transfer session {} is unknown or already past {}", ts.id, ts.stage)));
    }
    sql::exec(
        db,
        "touching the sync session",
        "UPDATE morango_syncsession SET last_activity_timestamp = $1 WHERE id = $2",
        vec![now(), text(&ts.sync_session_id)],
    )
    .await?;
    Ok(())
}
