//! The session controller: the client drives a transfer through Morango's seven stages against a [`Peer`],
//! doing its own part of each stage first, then asking the peer for its part (spec §9.3–§10).
//!
//! The current stage is data: it is written to the client's transfer-session row at every transition, and
//! every transition emits a [`SyncEvent`]. There are no sleeps between stages.

use crate::buffer;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{Progress, SyncEvent};
use crate::filter::Filter;
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
    /// Exchange FSICs in the v2 format (false: the legacy v1 format).
    pub fsic_v2: bool,
}

impl SyncOptions {
    /// Pull, then push, the partitions under `filter`, with FSIC v2.
    pub fn new(filter: Filter) -> Self {
        SyncOptions { filter, pull: true, push: true, fsic_v2: true }
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
        self.fsic_v2 = false;
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
    let peer = LocalPeer::new(server);
    let session = SyncClient::connect(client, &peer, options.fsic_v2).await?;
    let result = session.sync(options).await;
    let closed = session.close().await;
    let report = result?;
    closed?;
    Ok(report)
}

/// An open sync session, seen from the client.
pub struct SyncClient<'a> {
    engine: &'a Engine,
    peer: &'a dyn Peer,
    sync_session_id: String,
    fsic_v2: bool,
}

impl<'a> SyncClient<'a> {
    /// Opens a sync session with `peer` (both sides record it).
    pub async fn connect(engine: &'a Engine, peer: &'a dyn Peer, fsic_v2: bool) -> Result<SyncClient<'a>> {
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
                client_instance_json,
                server_instance_json,
                active: true,
            },
        )
        .await?;
        Ok(SyncClient { engine, peer, sync_session_id: id, fsic_v2 })
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

    /// Receives the peer's records under `filter`.
    pub async fn pull(&self, filter: &Filter) -> Result<TransferReport> {
        self.transfer(filter, false).await
    }

    /// Sends this database's records under `filter`.
    pub async fn push(&self, filter: &Filter) -> Result<TransferReport> {
        self.transfer(filter, true).await
    }

    /// Closes the sync session on both sides.
    pub async fn close(self) -> Result<()> {
        let remote = self.peer.close_sync_session(&self.sync_session_id).await;
        session::close_sync_session(self.engine.db(), &self.sync_session_id).await?;
        remote
    }

    async fn transfer(&self, filter: &Filter, push: bool) -> Result<TransferReport> {
        let request = TransferRequest {
            id: ids::random_id(),
            sync_session_id: self.sync_session_id.clone(),
            filter: filter.clone(),
            push,
            client_fsic: "{}".into(),
            fsic_v2: self.fsic_v2,
        };
        self.emit(&request.id, push, TransferStage::Initializing, Progress::Started);
        let remote = self.peer.create_transfer_session(&request).await?;
        let mut ts = match session::transfer_session(self.engine.db(), &remote.id).await? {
            Some(existing) => existing,
            None => {
                let ts = TransferSession {
                    id: remote.id.clone(),
                    sync_session_id: self.sync_session_id.clone(),
                    filter: filter.clone(),
                    push,
                    active: true,
                    records_transferred: 0,
                    records_total: None,
                    client_fsic: "{}".into(),
                    server_fsic: "{}".into(),
                    fsic_v2: self.fsic_v2,
                    stage: TransferStage::Initializing,
                    status: TransferStatus::Completed,
                };
                session::create_transfer_session(self.engine.db(), &ts).await?;
                ts
            }
        };
        self.emit(&ts.id, push, TransferStage::Initializing, Progress::Completed);
        match self.run(&mut ts).await {
            Ok(()) => Ok(TransferReport {
                transfer_session_id: ts.id.clone(),
                push,
                records_total: ts.records_total.unwrap_or(0),
                records_transferred: ts.records_transferred,
            }),
            Err(error) => {
                ts.status = TransferStatus::Errored;
                session::save_transfer(self.engine.db(), &ts).await?;
                self.emit(&ts.id, push, ts.stage, Progress::Errored(error.to_string()));
                Err(error)
            }
        }
    }

    async fn run(&self, ts: &mut TransferSession) -> Result<()> {
        let engine = self.engine;
        let peer = self.peer;

        self.begin(ts, TransferStage::Serializing).await?;
        transfer::serializing(engine, ts, false).await?;
        let remote = peer
            .update_transfer_session(
                &ts.id,
                &self.stage(TransferStage::Serializing, |r| r.client_fsic = Some(ts.client_fsic.clone())),
            )
            .await?;
        ts.server_fsic = remote.server_fsic;
        self.finish(ts).await?;

        self.begin(ts, TransferStage::Queuing).await?;
        transfer::queuing(engine, ts, false).await?;
        let total = ts.records_total;
        let remote = peer
            .update_transfer_session(
                &ts.id,
                &self.stage(TransferStage::Queuing, |r| r.records_total = total.filter(|_| ts.push)),
            )
            .await?;
        if !ts.push {
            ts.records_total = Some(remote.records_total.unwrap_or(0));
        }
        self.finish(ts).await?;

        self.begin(ts, TransferStage::Transferring).await?;
        if ts.push {
            self.send(ts).await?
        } else {
            self.receive(ts).await?
        }
        self.finish(ts).await?;

        self.begin(ts, TransferStage::Dequeuing).await?;
        transfer::dequeuing(engine, ts, false).await?;
        peer.update_transfer_session(&ts.id, &self.stage(TransferStage::Dequeuing, |_| {})).await?;
        self.finish(ts).await?;

        self.begin(ts, TransferStage::Deserializing).await?;
        transfer::deserializing(engine, ts, false).await?;
        peer.update_transfer_session(&ts.id, &self.stage(TransferStage::Deserializing, |_| {})).await?;
        self.finish(ts).await?;

        self.begin(ts, TransferStage::Cleanup).await?;
        transfer::cleanup(engine, ts).await?;
        peer.close_transfer_session(&ts.id).await?;
        self.finish(ts).await
    }

    /// Pull: fetch pages until every queued record arrived, validating and staging each.
    async fn receive(&self, ts: &mut TransferSession) -> Result<()> {
        let total = ts.records_total.unwrap_or(0);
        let chunk = self.engine.chunk_size() as i64;
        loop {
            if ts.records_transferred < total {
                let page = self.peer.pull_buffers(&ts.id, ts.records_transferred, chunk).await?;
                let before = ts.records_transferred;
                transfer::receive_chunk(self.engine, ts, &page).await?;
                if ts.records_transferred == before {
                    return Err(Error::Peer {
                        stage: TransferStage::Transferring.as_str(),
                        message: format!("no new records at offset {before} of {total}"),
                    });
                }
                session::save_transfer(self.engine.db(), ts).await?;
            }
            let done = ts.records_transferred;
            self.peer
                .update_transfer_session(
                    &ts.id,
                    &self.stage(TransferStage::Transferring, |r| r.records_transferred = Some(done)),
                )
                .await?;
            self.emit(
                &ts.id,
                ts.push,
                TransferStage::Transferring,
                Progress::InProgress { done: done as u64, total: total as u64 },
            );
            if ts.records_transferred >= total {
                return Ok(());
            }
        }
    }

    /// Push: post the queue page by page.
    async fn send(&self, ts: &mut TransferSession) -> Result<()> {
        let total = ts.records_total.unwrap_or(0);
        let chunk = self.engine.chunk_size() as i64;
        if total == 0 {
            self.peer.update_transfer_session(&ts.id, &self.stage(TransferStage::Transferring, |_| {})).await?;
        }
        while ts.records_transferred < total {
            let page = buffer::read_page(self.engine.db(), &ts.id, ts.records_transferred, chunk).await?;
            if page.is_empty() {
                return Err(Error::Session(format!("the queue of transfer {} ended before {total} records", ts.id)));
            }
            self.peer.push_buffers(&ts.id, &page).await?;
            ts.records_transferred = (ts.records_transferred + page.len() as i64).min(total);
            session::save_transfer(self.engine.db(), ts).await?;
            self.emit(
                &ts.id,
                ts.push,
                TransferStage::Transferring,
                Progress::InProgress { done: ts.records_transferred as u64, total: total as u64 },
            );
        }
        Ok(())
    }

    fn stage(&self, stage: TransferStage, fill: impl FnOnce(&mut StageRequest)) -> StageRequest {
        let mut request = StageRequest { stage: Some(stage), ..Default::default() };
        fill(&mut request);
        request
    }

    async fn begin(&self, ts: &mut TransferSession, stage: TransferStage) -> Result<()> {
        ts.stage = stage;
        ts.status = TransferStatus::Started;
        session::save_transfer(self.engine.db(), ts).await?;
        self.emit(&ts.id, ts.push, stage, Progress::Started);
        Ok(())
    }

    async fn finish(&self, ts: &mut TransferSession) -> Result<()> {
        ts.status = TransferStatus::Completed;
        session::save_transfer(self.engine.db(), ts).await?;
        self.emit(&ts.id, ts.push, ts.stage, Progress::Completed);
        Ok(())
    }

    fn emit(&self, id: &str, push: bool, stage: TransferStage, progress: Progress) {
        self.engine.emit(SyncEvent { transfer_session_id: id.to_owned(), push, stage, progress });
    }
}
