//! The session controller: the client drives a transfer through Morango's seven stages against a [`Peer`],
//! doing its own part of each stage first, then asking the peer for its part (spec §9.3–§10).
//!
//! The current stage is data: it is written to the client's transfer-session row at every transition, and
//! every transition emits a [`SyncEvent`]. A transfer that was interrupted continues from its stored stage the
//! next time the same sync session pulls or pushes in that direction. There are no sleeps between stages.
//!
//! Two flows, chosen by the negotiated capabilities: with `ASYNC_OPERATIONS` the client moves the server through
//! every stage with a `PATCH`; without it (the legacy flow) the server runs everything up to queuing when the
//! transfer is created and the rest when it is closed. In the legacy flow this client computes its FSIC before
//! creating the transfer and sends it along, so a legacy server queues only what the client lacks (Python's
//! client sends `"{}"` there and is re-sent everything, spec §15 W9).

use crate::buffer;
use crate::capabilities::{self, Capabilities};
use crate::engine::Engine;
use crate::error::{DbContext, Error, Result};
use crate::events::{Progress, SyncEvent};
use crate::filter::Filter;
use crate::hooks::{self, Moment};
use crate::ids;
use crate::peer::{LocalPeer, Peer};
use crate::server::{StageRequest, TransferRequest};
use crate::session::{self, SyncSession, TransferSession};
use crate::stage::{TransferStage, TransferStatus};
use crate::transfer;

/// What to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// The partitions to sync.
    pub filter: Filter,
    /// Receive the peer's changes.
    pub pull: bool,
    /// Send this database's changes.
    pub push: bool,
    /// The capabilities to use with the peer (intersected with what the peer advertises, where it does).
    pub capabilities: Capabilities,
}

impl SyncOptions {
    /// Pull, then push, the partitions under `filter`, with every capability.
    pub fn new(filter: Filter) -> Self {
        SyncOptions { filter, pull: true, push: true, capabilities: Capabilities::all() }
    }

    /// Only receive.
    pub fn pull_only(mut self) -> Self {
        self.push = false;
        self
    }

    /// Only send.
    pub fn push_only(mut self) -> Self {
        self.pull = false;
        self
    }

    /// Use the legacy v1 FSIC format.
    pub fn with_fsic_v1(mut self) -> Self {
        self.capabilities = self.capabilities.without(capabilities::FSIC_V2_FORMAT);
        self
    }

    /// Use the legacy flow (no `ASYNC_OPERATIONS`).
    pub fn with_legacy_flow(mut self) -> Self {
        self.capabilities = self.capabilities.without(capabilities::ASYNC_OPERATIONS);
        self
    }
}

/// What one transfer moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReport {
    /// The transfer session.
    pub transfer_session_id: String,
    /// True for a push.
    pub push: bool,
    /// Records the producer queued.
    pub records_total: i64,
    /// Records that arrived.
    pub records_transferred: i64,
    /// Records the receiver refused because they are not what they claim (details in `morango_refusedrecord` on
    /// the receiving side, and on this side for a push to a morango-rs server).
    pub records_refused: i64,
    /// Records of models the receiver does not declare: kept and relayed, not applied (known on a pull, and on a
    /// push to a morango-rs server).
    pub records_of_unknown_models: i64,
    /// How long the transfer took, every stage on both sides included.
    pub elapsed: std::time::Duration,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The pull, if one ran.
    pub pull: Option<TransferReport>,
    /// The push, if one ran.
    pub push: Option<TransferReport>,
}

/// Syncs `client` with `server` in this process: pull, then push (Kolibri's order).
pub async fn sync_local(client: &Engine, server: &Engine, options: &SyncOptions) -> Result<SyncReport> {
    let peer = LocalPeer::with_capabilities(server, options.capabilities.clone());
    let session = SyncClient::connect(client, &peer, options.capabilities.clone()).await?;
    let result = session.sync(options).await;
    let closed = session.close().await;
    let report = result?;
    closed?;
    Ok(report)
}

/// The most record data one batch of pages may hold, which bounds the memory a pull uses.
const BYTES_PER_COMMIT: usize = 32 * 1024 * 1024;

/// How often a pull reports its progress to the peer (and the last page always does).
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a client waits for a peer that reports a stage as pending.
const STAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How to ask a peer again about a stage it reported pending.
enum Poll<'r> {
    /// `GET` the transfer session.
    Get,
    /// Send this `PATCH` again.
    Patch(&'r StageRequest),
}

/// An open sync session, seen from the client.
pub struct SyncClient<'a> {
    engine: &'a Engine,
    peer: &'a dyn Peer,
    sync_session_id: String,
    capabilities: Capabilities,
}

impl<'a> SyncClient<'a> {
    /// Opens a sync session with `peer` (both sides record it). `capabilities` are the effective ones.
    pub async fn connect(engine: &'a Engine, peer: &'a dyn Peer, capabilities: Capabilities) -> Result<SyncClient<'a>> {
        let id = ids::random_id();
        let client_instance_json = engine.instance().to_json(&Default::default());
        let server_instance_json = peer.open_sync_session(&id, &client_instance_json).await?;
        session::create_sync_session(
            engine.db(),
            &SyncSession {
                id: id.clone(),
                is_server: false,
                profile: engine.profile().name().to_owned(),
                connection_kind: "local".into(),
                client_certificate_id: None,
                server_certificate_id: None,
                signed_requests: false,
                client_instance_json,
                server_instance_json,
                active: true,
            },
        )
        .await?;
        Ok(SyncClient::attach(engine, peer, id, capabilities))
    }

    /// Uses a sync session that is already open on both sides (after a network handshake, or to resume).
    pub fn attach(engine: &'a Engine, peer: &'a dyn Peer, sync_session_id: String, capabilities: Capabilities) -> Self {
        SyncClient { engine, peer, sync_session_id, capabilities }
    }

    /// The sync session id.
    pub fn id(&self) -> &str {
        &self.sync_session_id
    }

    /// Runs the pull and/or push that `options` ask for.
    pub async fn sync(&self, options: &SyncOptions) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        if options.pull {
            report.pull = Some(self.pull(&options.filter).await?);
        }
        if options.push {
            report.push = Some(self.push(&options.filter).await?);
        }
        Ok(report)
    }

    /// Receives the peer's records under `filter` (continuing an interrupted pull of this session).
    pub async fn pull(&self, filter: &Filter) -> Result<TransferReport> {
        self.transfer(filter, false).await
    }

    /// Sends this database's records under `filter` (continuing an interrupted push of this session).
    pub async fn push(&self, filter: &Filter) -> Result<TransferReport> {
        self.transfer(filter, true).await
    }

    /// Closes the sync session on both sides.
    pub async fn close(self) -> Result<()> {
        let remote = self.peer.close_sync_session(&self.sync_session_id).await;
        session::close_sync_session(self.engine.db(), &self.sync_session_id).await?;
        remote
    }

    fn async_flow(&self) -> bool {
        self.capabilities.has(capabilities::ASYNC_OPERATIONS)
    }

    async fn transfer(&self, filter: &Filter, push: bool) -> Result<TransferReport> {
        let started = std::time::Instant::now();
        crate::server::check_filter(filter)?;
        let (mut ts, resumed) = match session::active_transfer(self.engine.db(), &self.sync_session_id, push).await? {
            // An interrupted transfer: continue where it stopped.
            Some(mut ts) if ts.filter == *filter => {
                if ts.status != TransferStatus::Completed {
                    ts.status = TransferStatus::Pending;
                }
                (ts, true)
            }
            Some(mut other) => {
                self.abandon(&mut other).await?;
                (self.new_transfer(filter, push), false)
            }
            None => (self.new_transfer(filter, push), false),
        };
        let mut result = self.run(&mut ts).await;
        if resumed && result.as_ref().is_err_and(Error::is_not_found) {
            // The peer closed it meanwhile (it was idle too long there): start over.
            tracing::info!(transfer = %ts.id, "the peer no longer has the unfinished transfer; starting it over");
            self.abandon(&mut ts).await?;
            ts = self.new_transfer(filter, push);
            result = self.run(&mut ts).await;
        }
        match result {
            Ok(()) => Ok(TransferReport {
                transfer_session_id: ts.id.clone(),
                push,
                records_total: ts.records_total.unwrap_or(0),
                records_transferred: ts.records_transferred,
                records_refused: ts.records_refused,
                records_of_unknown_models: ts.records_of_unknown_models,
                elapsed: started.elapsed(),
            }),
            Err(error) => {
                ts.status = TransferStatus::Errored;
                if session::transfer_session(self.engine.db(), &ts.id).await?.is_some() {
                    session::save_transfer(self.engine.db(), &ts).await?;
                }
                self.emit(&ts.id, push, ts.stage, Progress::Errored(error.to_string()));
                Err(error)
            }
        }
    }

    fn new_transfer(&self, filter: &Filter, push: bool) -> TransferSession {
        let v2 = self.capabilities.has(capabilities::FSIC_V2_FORMAT);
        TransferSession::new(ids::random_id(), self.sync_session_id.clone(), filter.clone(), push, v2)
    }

    /// Gives up an unfinished transfer on this side: its buffers go, it is closed.
    async fn abandon(&self, ts: &mut TransferSession) -> Result<()> {
        transfer::cleanup(self.engine, ts).await?;
        if session::transfer_session(self.engine.db(), &ts.id).await?.is_some() {
            session::save_transfer(self.engine.db(), ts).await?;
        }
        Ok(())
    }

    /// Runs every stage from the transfer's current one: local part, then the peer's part.
    async fn run(&self, ts: &mut TransferSession) -> Result<()> {
        for stage in TransferStage::ALL {
            if stage < ts.stage || (stage == ts.stage && ts.status == TransferStatus::Completed) {
                continue;
            }
            ts.stage = stage;
            ts.status = TransferStatus::Started;
            self.emit(&ts.id, ts.push, stage, Progress::Started);
            if stage != TransferStage::Initializing {
                session::save_transfer(self.engine.db(), ts).await?;
            }
            crate::fault::point(&format!("{stage}.start"));
            hooks::run(self.engine, ts, false, Moment::Before).await?;
            match stage {
                TransferStage::Initializing => self.initializing(ts).await?,
                TransferStage::Serializing => self.serializing(ts).await?,
                TransferStage::Queuing => self.queuing(ts).await?,
                TransferStage::Transferring => {
                    if ts.push {
                        self.send(ts).await?
                    } else {
                        self.receive(ts).await?
                    }
                }
                TransferStage::Dequeuing | TransferStage::Deserializing => self.merging(ts, stage).await?,
                TransferStage::Cleanup => {
                    transfer::cleanup(self.engine, ts).await?;
                    self.peer.close_transfer_session(&ts.id).await?;
                }
            }
            crate::fault::point(&format!("{stage}.end"));
            ts.status = TransferStatus::Completed;
            session::save_transfer(self.engine.db(), ts).await?;
            hooks::run(self.engine, ts, false, Moment::After).await?;
            self.emit(&ts.id, ts.push, stage, Progress::Completed);
        }
        Ok(())
    }

    /// Creates the transfer on the peer (again, when resuming: the peer answers with the active one) and here.
    async fn initializing(&self, ts: &mut TransferSession) -> Result<()> {
        let legacy = !self.async_flow();
        if legacy && ts.client_fsic == "{}" {
            transfer::serializing(self.engine, ts, false).await?;
        }
        let request = TransferRequest {
            id: ts.id.clone(),
            sync_session_id: ts.sync_session_id.clone(),
            filter: ts.filter.clone(),
            push: ts.push,
            client_fsic: ts.client_fsic.clone(),
            fsic_v2: ts.fsic_v2,
        };
        let mut remote = self.peer.create_transfer_session(&request).await?;
        if legacy {
            // The legacy server runs its stages up to queuing as it creates the transfer.
            remote = self.settle(&ts.id, remote, TransferStage::Queuing, Poll::Get).await?;
            ts.server_fsic = remote.server_fsic.clone();
            if !ts.push {
                ts.records_total = Some(remote.records_total.unwrap_or(0));
            }
        }
        if remote.id != ts.id {
            return Err(Error::Peer {
                stage: TransferStage::Initializing.as_str(),
                message: format!("the peer continued another transfer ({}) in this direction", remote.id),
            });
        }
        if session::transfer_session(self.engine.db(), &ts.id).await?.is_none() {
            session::create_transfer_session(self.engine.db(), ts).await?;
        }
        Ok(())
    }

    /// Serializes local changes under the filter and exchanges FSICs.
    async fn serializing(&self, ts: &mut TransferSession) -> Result<()> {
        if !self.async_flow() {
            return Ok(()); // done before the legacy create
        }
        transfer::serializing(self.engine, ts, false).await?;
        let fsic = ts.client_fsic.clone();
        let remote = self.patch(ts, TransferStage::Serializing, |r| r.client_fsic = Some(fsic)).await?;
        ts.server_fsic = remote.server_fsic;
        Ok(())
    }

    /// The producer queues; the receiver learns how many records will come.
    async fn queuing(&self, ts: &mut TransferSession) -> Result<()> {
        transfer::queuing(self.engine, ts, false, None).await?;
        let total = ts.records_total.filter(|_| ts.push);
        if self.async_flow() {
            let remote = self.patch(ts, TransferStage::Queuing, |r| r.records_total = total).await?;
            if !ts.push {
                ts.records_total = Some(remote.records_total.unwrap_or(0));
            }
        } else if ts.push {
            self.peer
                .update_transfer_session(&ts.id, &StageRequest { records_total: total, ..Default::default() })
                .await?;
        }
        Ok(())
    }

    /// Dequeuing and deserializing: the receiver's work, here on a pull, on the peer on a push.
    async fn merging(&self, ts: &mut TransferSession, stage: TransferStage) -> Result<()> {
        if stage == TransferStage::Dequeuing {
            transfer::dequeuing(self.engine, ts, false).await?;
        } else {
            transfer::deserializing(self.engine, ts, false).await?;
        }
        if self.async_flow() {
            let remote = self.patch(ts, stage, |_| {}).await?;
            if ts.push {
                // What the receiving server counted (Python servers report nothing: 0).
                ts.records_refused = ts.records_refused.max(remote.records_refused);
                ts.records_of_unknown_models = remote.records_of_unknown_models;
            }
        }
        Ok(())
    }

    /// Pull: fetch pages until every queued record arrived, validating and merging each.
    async fn receive(&self, ts: &mut TransferSession) -> Result<()> {
        let total = ts.records_total.unwrap_or(0);
        let chunk = self.engine.chunk_size() as i64;
        let mut reported = std::time::Instant::now();
        let mut fetched_any = false;
        loop {
            if ts.records_transferred < total {
                let before = ts.records_transferred;
                let (pages, failure) = self.fetch_pages(ts, total, chunk).await;
                fetched_any |= !pages.is_empty();
                if !pages.is_empty() {
                    transfer::receive_chunks(self.engine, ts, pages).await?;
                }
                if let Some(error) = failure {
                    return Err(error);
                }
                if ts.records_transferred == before {
                    return Err(Error::Peer {
                        stage: TransferStage::Transferring.as_str(),
                        message: format!("no new records at offset {before} of {total}"),
                    });
                }
            }
            let done = ts.records_transferred;
            if done >= total {
                let refused = ts.records_refused;
                self.patch(ts, TransferStage::Transferring, |r| {
                    r.records_transferred = Some(done);
                    r.records_refused = Some(refused);
                })
                .await?;
                if !fetched_any {
                    self.progress(ts, done, total);
                }
                return Ok(());
            }
            // Progress only (the peer's transferring stage stays pending until the last chunk), and only every
            // PROGRESS_INTERVAL: each report costs the peer a commit, and one now and then keeps it from taking
            // the transfer for idle.
            if reported.elapsed() < PROGRESS_INTERVAL {
                continue;
            }
            reported = std::time::Instant::now();
            let progress = StageRequest {
                stage: Some(TransferStage::Transferring),
                records_transferred: Some(done),
                ..Default::default()
            };
            let remote = self.peer.update_transfer_session(&ts.id, &progress).await?;
            if remote.status == TransferStatus::Errored {
                return Err(Error::Peer {
                    stage: "transferring",
                    message: "the peer's transferring stage failed".into(),
                });
            }
        }
    }

    /// The next pages of a pull, up to [`Engine::pages_per_commit`] or [`BYTES_PER_COMMIT`], to be merged in one
    /// transaction; a failure ends the batch, and what arrived before it is still returned (and merged). Progress
    /// is reported page by page.
    async fn fetch_pages(
        &self,
        ts: &TransferSession,
        total: i64,
        chunk: i64,
    ) -> (Vec<Vec<buffer::BufferRecord>>, Option<Error>) {
        let mut pages = Vec::new();
        let mut offset = ts.records_transferred;
        let mut bytes = 0;
        while offset < total && pages.len() < self.engine.pages_per_commit() && bytes < BYTES_PER_COMMIT {
            match self.peer.pull_buffers(&ts.id, offset, chunk).await {
                Ok(page) if page.is_empty() => break,
                Ok(page) => {
                    offset += page.len() as i64;
                    self.progress(ts, offset.min(total), total);
                    bytes +=
                        page.iter().map(|r| r.serialized.len() + r.conflicting_serialized_data.len()).sum::<usize>();
                    pages.push(page);
                }
                Err(error) => return (pages, Some(error)),
            }
        }
        (pages, None)
    }

    /// Push: post the queue page by page.
    async fn send(&self, ts: &mut TransferSession) -> Result<()> {
        let total = ts.records_total.unwrap_or(0);
        let chunk = self.engine.chunk_size() as i64;
        if total == 0 && self.async_flow() {
            self.patch(ts, TransferStage::Transferring, |_| {}).await?;
        }
        while ts.records_transferred < total {
            let page = buffer::read_page(self.engine.db(), &ts.id, ts.records_transferred, chunk).await?;
            if page.is_empty() {
                return Err(Error::Session(format!("the queue of transfer {} ended before {total} records", ts.id)));
            }
            crate::fault::point("send");
            let refused = self.peer.push_buffers(&ts.id, &page).await?;
            crate::refused::log(&ts.id, &refused, true);
            // Recorded with the progress, so a resumed push does not count them twice.
            let (txn, _writer) = self.engine.begin_write().await?;
            ts.records_refused += crate::refused::record(&txn, &ts.id, true, &refused).await? as i64;
            ts.records_transferred = (ts.records_transferred + page.len() as i64).min(total);
            session::save_transfer(&txn, ts).await?;
            txn.commit().await.context(|| "committing push progress".into())?;
            self.progress(ts, ts.records_transferred, total);
        }
        Ok(())
    }

    /// Asks the peer to reach `stage` and waits until it has.
    async fn patch(
        &self,
        ts: &TransferSession,
        stage: TransferStage,
        fill: impl FnOnce(&mut StageRequest),
    ) -> Result<TransferSession> {
        let mut request = StageRequest { stage: Some(stage), ..Default::default() };
        fill(&mut request);
        let remote = self.peer.update_transfer_session(&ts.id, &request).await?;
        // Asking again for a stage already reached changes nothing, so waiting re-sends the bare request.
        let again = StageRequest { stage: Some(stage), ..Default::default() };
        self.settle(&ts.id, remote, stage, Poll::Patch(&again)).await
    }

    /// Waits while the peer reports `stage` pending or started (an application's operation may take its time;
    /// Python Morango answers so), asking again as `poll` says; an errored stage, or one that never finishes,
    /// fails the transfer.
    async fn settle(
        &self,
        id: &str,
        mut remote: TransferSession,
        stage: TransferStage,
        poll: Poll<'_>,
    ) -> Result<TransferSession> {
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            if remote.status == TransferStatus::Errored {
                return Err(Error::Peer {
                    stage: remote.stage.as_str(),
                    message: format!("the peer's {} stage failed", remote.stage),
                });
            }
            if remote.stage > stage || (remote.stage == stage && remote.status == TransferStatus::Completed) {
                return Ok(remote);
            }
            if started.elapsed() > STAGE_WAIT {
                return Err(Error::Peer {
                    stage: stage.as_str(),
                    message: format!("the peer did not complete {stage} within {STAGE_WAIT:?}"),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(5));
            remote = match poll {
                Poll::Get => self.peer.transfer_session(id).await?,
                Poll::Patch(request) => self.peer.update_transfer_session(id, request).await?,
            };
        }
    }

    fn progress(&self, ts: &TransferSession, done: i64, total: i64) {
        let (done, total) = (done as u64, total as u64);
        self.emit(&ts.id, ts.push, TransferStage::Transferring, Progress::InProgress { done, total });
    }

    fn emit(&self, id: &str, push: bool, stage: TransferStage, progress: Progress) {
        self.engine.emit(SyncEvent { transfer_session_id: id.to_owned(), push, stage, progress });
    }
}
