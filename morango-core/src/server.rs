//! The answering side of a sync: what a server does when a client creates a transfer, asks it to proceed to a
//! stage, pulls or pushes a chunk, or closes (spec §2.6–§2.9, §9.5). [`crate::peer::LocalPeer`] calls these
//! in process; the HTTP API maps its endpoints onto them.

use crate::buffer::{self, BufferRecord};
use crate::engine::Engine;
use crate::error::{DbContext, Error, Result, StorageFailure};
use crate::events::{Progress, SyncEvent};
use crate::filter::Filter;
use crate::fsic;
use crate::hooks::{self, Moment};
use crate::ids::is_valid_id;
use crate::refused::Refusal;
use crate::session::{self, SyncSession, TransferSession};
use crate::stage::{TransferStage, TransferStatus};
use crate::transfer::{self, QueueCap};

/// What a server bounds for its clients: how long an unfinished transfer may sit idle, and how many bytes of
/// unfinished transfers one client certificate may leave in the server's queues (pushed chunks are merged as they
/// arrive and leave nothing behind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLimits {
    /// An unfinished transfer idle longer than this is closed and its buffers dropped (one whose stage is still
    /// running gets [`crate::cleanup::DEFAULT_EXPIRATION`]). A client that comes back later starts over.
    pub idle_timeout: std::time::Duration,
    /// The most bytes the unfinished transfers of one client certificate may hold (pull queues); beyond it the
    /// server answers 507 and the client must finish or abandon a transfer first.
    pub max_buffered_bytes_per_certificate: i64,
}

impl Default for TransferLimits {
    /// 15 minutes; 1 GiB.
    fn default() -> Self {
        TransferLimits {
            idle_timeout: std::time::Duration::from_secs(15 * 60),
            max_buffered_bytes_per_certificate: 1 << 30,
        }
    }
}

/// A client's request to create a transfer session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The id the client chose.
    pub id: String,
    /// The sync session.
    pub sync_session_id: String,
    /// The partitions to transfer.
    pub filter: Filter,
    /// True when the client sends.
    pub push: bool,
    /// The client's FSIC, if already known (JSON text; `"{}"` otherwise).
    pub client_fsic: String,
    /// Whether FSICs use the v2 format (both sides advertise `FSIC_V2_FORMAT`).
    pub fsic_v2: bool,
}

/// A client's request to move a transfer session to a stage, with what that stage needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageRequest {
    /// The stage to reach.
    pub stage: Option<TransferStage>,
    /// The client's FSIC (serializing).
    pub client_fsic: Option<String>,
    /// Records the client queued (push, queuing).
    pub records_total: Option<i64>,
    /// Records the client received so far (pull, transferring).
    pub records_transferred: Option<i64>,
    /// Records the client refused (pull, transferring).
    pub records_refused: Option<i64>,
}

/// The longest instance JSON accepted from a client.
pub const MAX_INSTANCE_JSON: usize = 64 * 1024;

/// A client's instance JSON (spec §4.3): a JSON object of at most [`MAX_INSTANCE_JSON`] bytes whose `id` is an
/// instance id. Its other keys are the client's business (Kolibri adds its version).
pub fn check_instance_json(text: &str) -> Result<()> {
    if text.len() > MAX_INSTANCE_JSON {
        return Err(Error::Invalid(format!("the instance JSON is longer than {MAX_INSTANCE_JSON} bytes")));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(instance)) => match instance.get("id").and_then(serde_json::Value::as_str) {
            Some(id) if is_valid_id(id) => Ok(()),
            _ => Err(Error::Invalid("the instance JSON needs an `id` of 32 lowercase hex characters".into())),
        },
        Ok(_) => Err(Error::Invalid("the instance JSON must be a JSON object".into())),
        Err(error) => Err(Error::Invalid(format!("the instance JSON is not JSON: {error}"))),
    }
}

/// Opens the server side of a sync session; returns the server's instance JSON.
pub async fn open_sync_session(
    engine: &Engine,
    id: &str,
    client_instance_json: &str,
    connection_kind: &str,
) -> Result<String> {
    if !is_valid_id(id) {
        return Err(Error::Invalid("sync session ids are 32 lowercase hex characters".into()));
    }
    check_instance_json(client_instance_json)?;
    let server_instance_json = engine.instance().to_json(&Default::default());
    session::create_sync_session(
        engine.db(),
        &SyncSession {
            id: id.to_owned(),
            is_server: true,
            profile: engine.profile().name().to_owned(),
            connection_kind: connection_kind.to_owned(),
            client_certificate_id: None,
            server_certificate_id: None,
            signed_requests: false,
            client_instance_json: client_instance_json.to_owned(),
            server_instance_json: server_instance_json.clone(),
            active: true,
        },
    )
    .await?;
    Ok(server_instance_json)
}

/// Closes the server side of a sync session.
pub async fn close_sync_session(engine: &Engine, id: &str) -> Result<()> {
    session::active_sync_session(engine.db(), id).await?;
    session::close_sync_session(engine.db(), id).await
}

/// Creates the server side of a transfer session. An active transfer in the same direction of the same sync
/// session is returned instead (as Morango does), so a client must use the id of the answer. A new transfer
/// supersedes the client instance's unfinished one with the same certificate, filter and direction in another sync
/// session (an interrupted client that started over): it is closed and its buffers dropped in the same
/// transaction. Transfers idle beyond `limits` are closed first.
pub async fn create_transfer(
    engine: &Engine,
    request: &TransferRequest,
    limits: &TransferLimits,
) -> Result<TransferSession> {
    if !is_valid_id(&request.id) {
        return Err(Error::Invalid("transfer session ids are 32 lowercase hex characters".into()));
    }
    let sync_session = session::active_sync_session(engine.db(), &request.sync_session_id).await?;
    check_filter(&request.filter)?;
    #[cfg(feature = "network")]
    check_scope(engine, &sync_session, &request.filter, request.push).await?;
    if let Some(existing) = session::active_transfer(engine.db(), &request.sync_session_id, request.push).await? {
        return Ok(existing);
    }
    check_fsic(&request.client_fsic, request.fsic_v2, &request.filter, true)?;
    if session::transfer_session(engine.db(), &request.id).await?.is_some() {
        return Err(Error::Invalid(format!("a transfer session with id {} exists already", request.id)));
    }
    crate::cleanup::expire_idle_transfers(engine, limits.idle_timeout).await?;
    // `"{}"` is what a client sends before it knows its FSIC, and all Python's legacy flow ever sends (§15 W9): it
    // means "nothing yet", which in v2 is the FSIC without partitions.
    let client_fsic = if request.fsic_v2 && request.client_fsic.trim() == "{}" {
        fsic::FsicV2::default().to_json_text()
    } else {
        request.client_fsic.clone()
    };
    let ts = TransferSession {
        client_fsic,
        // The server's part of initializing is done: it holds the session.
        status: TransferStatus::Completed,
        ..TransferSession::new(
            request.id.clone(),
            request.sync_session_id.clone(),
            request.filter.clone(),
            request.push,
            request.fsic_v2,
        )
    };
    hooks::run(engine, &ts, true, Moment::Before).await?;
    let (txn, _writer) = engine.begin_write().await?;
    for old in session::superseded_by(&txn, &sync_session, &ts).await? {
        tracing::info!(transfer = %old, by = %ts.id, "a new transfer of the same client supersedes an unfinished one");
        crate::buffer::clear(&txn, &old).await?;
        session::close_transfer_session(&txn, &old).await?;
    }
    session::create_transfer_session(&txn, &ts).await?;
    txn.commit().await.context(|| "committing a new transfer session".into())?;
    hooks::run(engine, &ts, true, Moment::After).await?;
    Ok(ts)
}

/// The server's view of an active transfer session.
pub async fn transfer_session(engine: &Engine, id: &str) -> Result<TransferSession> {
    match session::transfer_session(engine.db(), id).await? {
        Some(ts) if ts.active => Ok(ts),
        _ => Err(Error::NotFound(format!("transfer session {id} does not exist or is no longer active"))),
    }
}

/// Runs the server's work for every stage after the current one, up to `request.stage`, and records the
/// request's values. A stage at or before the current one changes nothing.
pub async fn proceed_to(
    engine: &Engine,
    id: &str,
    request: &StageRequest,
    limits: &TransferLimits,
) -> Result<TransferSession> {
    let mut ts = transfer_session(engine, id).await?;
    if ts.status == TransferStatus::Errored {
        return Err(Error::Session(format!("transfer session {id} failed at {} and cannot proceed", ts.stage)));
    }
    // Checked before any stage runs: a bad FSIC is the request's fault and must not fail the transfer.
    if let Some(client_fsic) = &request.client_fsic {
        check_fsic(client_fsic, ts.fsic_v2, &ts.filter, false)?;
    }
    // A pushing client says how many records it queued (again, when it queued again after resuming).
    if let Some(total) = request.records_total.filter(|_| ts.push && ts.stage <= TransferStage::Transferring) {
        ts.records_total = Some(total.max(0));
    }
    let Some(target) = request.stage else {
        session::save_transfer(engine.db(), &ts).await?;
        return Ok(ts);
    };
    for stage in TransferStage::ALL {
        let unfinished = stage == ts.stage && ts.status != TransferStatus::Completed;
        if stage > target || (stage < ts.stage) || (stage == ts.stage && !unfinished) {
            continue;
        }
        ts.stage = stage;
        ts.status = TransferStatus::Started;
        emit(engine, &ts, Progress::Started);
        crate::fault::point(&format!("{stage}.start"));
        // Hooks run before a stage starts, not before each request that moves an unfinished one on.
        let before = match unfinished {
            true => Ok(()),
            false => hooks::run(engine, &ts, true, Moment::Before).await,
        };
        let outcome = match before {
            Ok(()) => run_stage_retrying(engine, &mut ts, request, limits).await,
            Err(error) => Err(error),
        };
        crate::fault::point(&format!("{stage}.end"));
        match outcome {
            Ok(status) => ts.status = status,
            Err(error) if error.storage_failure().is_some() => {
                // The disk or the database failed, not the transfer: the stage runs again when asked again.
                ts.status = TransferStatus::Pending;
                if let Err(also) = session::save_transfer(engine.db(), &ts).await {
                    tracing::warn!(%also, "recording a stage that the storage failed did not work either");
                }
                emit(engine, &ts, Progress::Errored(error.to_string()));
                return Err(error);
            }
            Err(error) => {
                ts.status = TransferStatus::Errored;
                session::save_transfer(engine.db(), &ts).await?;
                emit(engine, &ts, Progress::Errored(error.to_string()));
                return Err(error);
            }
        }
        session::save_transfer(engine.db(), &ts).await?;
        if ts.status == TransferStatus::Completed {
            hooks::run(engine, &ts, true, Moment::After).await?;
        }
        emit(
            engine,
            &ts,
            match ts.status {
                TransferStatus::Completed => Progress::Completed,
                _ => Progress::InProgress {
                    done: ts.records_transferred as u64,
                    total: ts.records_total.unwrap_or(0) as u64,
                },
            },
        );
        if ts.status != TransferStatus::Completed {
            break;
        }
    }
    Ok(ts)
}

/// How many times a stage that PostgreSQL aborted for colliding with another transaction (a serialization
/// failure, a deadlock) runs again before the request fails with "try again later".
const CONFLICT_RETRIES: u32 = 4;

/// [`run_stage`], run again after a transaction conflict (every stage can run again from the start).
async fn run_stage_retrying(
    engine: &Engine,
    ts: &mut TransferSession,
    request: &StageRequest,
    limits: &TransferLimits,
) -> Result<TransferStatus> {
    let mut attempt = 0;
    loop {
        match run_stage(engine, ts, request, limits).await {
            Err(error) if error.storage_failure() == Some(StorageFailure::Conflict) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tracing::info!(%error, attempt, stage = %ts.stage, "a transfer stage collided with another transaction; running it again");
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
            }
            outcome => return outcome,
        }
    }
}

async fn run_stage(
    engine: &Engine,
    ts: &mut TransferSession,
    request: &StageRequest,
    limits: &TransferLimits,
) -> Result<TransferStatus> {
    match ts.stage {
        TransferStage::Initializing => {}
        TransferStage::Serializing => {
            if let Some(client_fsic) = &request.client_fsic {
                ts.client_fsic = client_fsic.clone();
            }
            transfer::serializing(engine, ts, true).await?;
        }
        TransferStage::Queuing => {
            if ts.push {
                ts.records_total = Some(request.records_total.or(ts.records_total).unwrap_or(0).max(0));
            }
            let cap = match ts.push {
                true => None,
                false => session::active_sync_session(engine.db(), &ts.sync_session_id)
                    .await?
                    .client_certificate_id
                    .map(|certificate| QueueCap { certificate, limit: limits.max_buffered_bytes_per_certificate }),
            };
            transfer::queuing(engine, ts, true, cap.as_ref()).await?;
        }
        TransferStage::Transferring => {
            if let Some(n) = request.records_transferred.filter(|_| !ts.push) {
                ts.records_transferred = n.clamp(0, ts.records_total.unwrap_or(0));
            }
            if let Some(n) = request.records_refused.filter(|_| !ts.push) {
                ts.records_refused = n.clamp(0, ts.records_total.unwrap_or(0));
            }
            if ts.records_transferred < ts.records_total.unwrap_or(0) {
                return Ok(TransferStatus::Pending);
            }
        }
        TransferStage::Dequeuing => transfer::dequeuing(engine, ts, true).await?,
        TransferStage::Deserializing => transfer::deserializing(engine, ts, true).await?,
        TransferStage::Cleanup => transfer::cleanup(engine, ts).await?,
    }
    Ok(TransferStatus::Completed)
}

/// A page of the records queued for a pull.
pub async fn buffers(engine: &Engine, id: &str, offset: i64, limit: i64) -> Result<Vec<BufferRecord>> {
    let ts = transfer_session(engine, id).await?;
    if ts.push {
        return Err(Error::Forbidden(format!("transfer session {id} is a push: records cannot be pulled from it")));
    }
    if ts.stage < TransferStage::Queuing
        || (ts.stage == TransferStage::Queuing && ts.status != TransferStatus::Completed)
    {
        return Err(Error::Session(format!("transfer session {id} has not queued its records yet")));
    }
    // Clamped so that `offset + limit` cannot overflow, whatever the client asked for.
    let mut page =
        buffer::read_page(engine.db(), id, offset.clamp(0, i64::MAX - MAX_PAGE), limit.clamp(1, MAX_PAGE)).await?;
    // A page is also bounded in bytes; the client asks for the rest from where it stopped.
    let mut bytes = 0;
    if let Some(cut) = page.iter().position(|record| {
        bytes += record.serialized.len() + record.conflicting_serialized_data.len();
        bytes > MAX_PAGE_BYTES
    }) {
        page.truncate(cut.max(1));
    }
    crate::fault::point("page");
    Ok(page)
}

/// The most record data a page carries (at least one record is always sent).
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// The largest page served.
pub const MAX_PAGE: i64 = 5_000;

/// Merges a chunk of pushed records into the store after validating every one of them: returns the transfer and
/// the records it refused (the rest of the chunk is stored). A malformed chunk is refused whole. Nothing of the
/// chunk is held for the transfer afterwards.
pub async fn receive(engine: &Engine, id: &str, records: Vec<BufferRecord>) -> Result<(TransferSession, Vec<Refusal>)> {
    let mut ts = transfer_session(engine, id).await?;
    if !ts.push {
        return Err(Error::Forbidden(format!("transfer session {id} is a pull: records cannot be pushed to it")));
    }
    if ts.stage < TransferStage::Queuing
        || ts.stage > TransferStage::Transferring
        || ts.status == TransferStatus::Errored
    {
        return Err(Error::Session(format!(
            "transfer session {id} is not receiving records ({} {})",
            ts.stage, ts.status
        )));
    }
    if ts.stage < TransferStage::Transferring {
        let starting = TransferSession { stage: TransferStage::Transferring, ..ts.clone() };
        hooks::run(engine, &starting, true, Moment::Before).await?;
    }
    let refused = transfer::receive_chunk(engine, &mut ts, records).await?;
    emit(
        engine,
        &ts,
        Progress::InProgress { done: ts.records_transferred as u64, total: ts.records_total.unwrap_or(0) as u64 },
    );
    ts.stage = TransferStage::Transferring;
    ts.status = if ts.records_transferred >= ts.records_total.unwrap_or(0) {
        crate::fault::point("transferring.end");
        TransferStatus::Completed
    } else {
        TransferStatus::Pending
    };
    session::save_transfer(engine.db(), &ts).await?;
    if ts.status == TransferStatus::Completed {
        hooks::run(engine, &ts, true, Moment::After).await?;
    }
    Ok((ts, refused))
}

/// Closes a transfer session: a finished transfer runs its remaining stages (the legacy flow's push completes
/// here), an unfinished one is abandoned; either way its buffers are removed.
pub async fn close_transfer(engine: &Engine, id: &str) -> Result<()> {
    let mut ts = transfer_session(engine, id).await?;
    let transferred = ts.records_transferred >= ts.records_total.unwrap_or(i64::MAX);
    if transferred && ts.status != TransferStatus::Errored {
        let cleanup = StageRequest { stage: Some(TransferStage::Cleanup), ..Default::default() };
        proceed_to(engine, id, &cleanup, &TransferLimits::default()).await?;
        return Ok(());
    }
    transfer::cleanup(engine, &mut ts).await?;
    session::save_transfer(engine.db(), &ts).await
}

/// The four scope rules of a network session (spec §2.8): a push needs the filter inside the client's write
/// scope and the server's read scope; a pull inside the client's read scope and the server's write scope.
#[cfg(feature = "network")]
async fn check_scope(engine: &Engine, session: &SyncSession, filter: &Filter, push: bool) -> Result<()> {
    use crate::certificate;
    let (Some(client_id), Some(server_id)) = (&session.client_certificate_id, &session.server_certificate_id) else {
        return Ok(());
    };
    let db = engine.db();
    let load = |id: String| async move {
        certificate::get(db, &id).await?.ok_or_else(|| Error::NotFound(format!("certificate {id} is gone")))
    };
    let client = certificate::scope_of(db, &load(client_id.clone()).await?).await?;
    let server = certificate::scope_of(db, &load(server_id.clone()).await?).await?;
    let (client_ok, server_ok) = if push {
        (filter.is_subset_of(&client.write), filter.is_subset_of(&server.read))
    } else {
        (filter.is_subset_of(&client.read), filter.is_subset_of(&server.write))
    };
    // Python assigns the server's message last, so it wins when both fail.
    match (push, client_ok, server_ok) {
        (true, _, false) => Err(Error::Forbidden(
            "Server certificate scope does not permit receiving pushes for the requested filter.".into(),
        )),
        (true, false, _) => {
            Err(Error::Forbidden("Client certificate scope does not permit pushing for the requested filter.".into()))
        }
        (false, _, false) => Err(Error::Forbidden(
            "Server certificate scope does not permit responding to pulls for the requested filter.".into(),
        )),
        (false, false, _) => {
            Err(Error::Forbidden("Client certificate scope does not permit pulling for the requested filter.".into()))
        }
        _ => Ok(()),
    }
}

/// The most prefixes a transfer's filter may have (Kolibri's have one to three).
const MAX_FILTER_PREFIXES: usize = 1_000;
/// The longest partition prefix of a filter or an FSIC (records' partitions have the same bound).
const MAX_PREFIX_CHARS: usize = 1_024;

/// A transfer's filter: 1 to [`MAX_FILTER_PREFIXES`] prefixes of at most [`MAX_PREFIX_CHARS`] characters, none
/// containing whitespace (the wire form separates them so) or control characters.
pub(crate) fn check_filter(filter: &Filter) -> Result<()> {
    if filter.is_empty() {
        return Err(Error::Invalid("a transfer needs at least one partition prefix in its filter".into()));
    }
    if filter.len() > MAX_FILTER_PREFIXES {
        return Err(Error::Invalid(format!("a filter has at most {MAX_FILTER_PREFIXES} partition prefixes")));
    }
    if let Some(prefix) = filter.prefixes().iter().find(|p| !is_plain_partition(p)) {
        return Err(Error::Invalid(format!(
            "partition prefix {:?} is longer than {MAX_PREFIX_CHARS} characters or contains whitespace or control \
             characters",
            prefix.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

fn is_plain_partition(partition: &str) -> bool {
    partition.chars().count() <= MAX_PREFIX_CHARS && !partition.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Rejects an FSIC that does not parse in the session's format (`"{}"` is allowed at creation), or whose
/// partitions lie outside the transfer's filter (v2, spec §6.5) or are not plain partition strings.
fn check_fsic(text: &str, v2: bool, filter: &Filter, at_creation: bool) -> Result<()> {
    if at_creation && text.trim() == "{}" {
        return Ok(());
    }
    if v2 {
        let fsic = fsic::FsicV2::from_json_text(text)?;
        fsic::check_partitions_within(&fsic, filter)?;
        let mut partitions = fsic.super_partitions.keys().chain(fsic.sub_partitions.keys());
        if let Some(partition) = partitions.find(|p| !is_plain_partition(p)) {
            return Err(Error::Invalid(format!(
                "FSIC partition {:?} is longer than {MAX_PREFIX_CHARS} characters or contains whitespace or \
                 control characters",
                partition.chars().take(64).collect::<String>()
            )));
        }
    } else {
        fsic::v1_from_json_text(text)?;
    }
    Ok(())
}

/// Progress events on the answering side: the transfer as the server runs it (push = the client sends).
fn emit(engine: &Engine, ts: &TransferSession, progress: Progress) {
    engine.emit(SyncEvent { transfer_session_id: ts.id.clone(), push: ts.push, stage: ts.stage, progress });
}
