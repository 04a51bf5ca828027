//! The other side of a sync, as the client sees it: [`Peer`] mirrors Morango's HTTP endpoints, so the session
//! controller drives an in-process peer ([`LocalPeer`]) and a remote one the same way.

use crate::buffer::BufferRecord;
use crate::capabilities::{self, Capabilities};
use crate::engine::Engine;
use crate::error::Result;
use crate::refused::Refusal;
use crate::server::{self, StageRequest, TransferLimits, TransferRequest};
use crate::session::TransferSession;
use crate::stage::TransferStage;

/// The server side of a sync session, one method per Morango endpoint the client uses.
#[async_trait::async_trait]
pub trait Peer: Send + Sync {
    /// `POST syncsessions/`: opens the server side; returns the server's instance JSON.
    async fn open_sync_session(&self, id: &str, client_instance_json: &str) -> Result<String>;
    /// `DELETE syncsessions/<id>/`.
    async fn close_sync_session(&self, id: &str) -> Result<()>;
    /// `POST transfersessions/`.
    async fn create_transfer_session(&self, request: &TransferRequest) -> Result<TransferSession>;
    /// `GET transfersessions/<id>/`.
    async fn transfer_session(&self, id: &str) -> Result<TransferSession>;
    /// `PATCH transfersessions/<id>/`.
    async fn update_transfer_session(&self, id: &str, request: &StageRequest) -> Result<TransferSession>;
    /// `GET buffers/?transfer_session_id=<id>&offset=…&limit=…`.
    async fn pull_buffers(&self, id: &str, offset: i64, limit: i64) -> Result<Vec<BufferRecord>>;
    /// `POST buffers/`: returns the records the peer refused (a Python peer reports none).
    async fn push_buffers(&self, id: &str, records: &[BufferRecord]) -> Result<Vec<Refusal>>;
    /// `DELETE transfersessions/<id>/`.
    async fn close_transfer_session(&self, id: &str) -> Result<()>;
}

/// A peer in the same process: another [`Engine`], usually on another database. It answers as a server with
/// the given capabilities would: without `ASYNC_OPERATIONS`, creating a transfer runs it up to queuing.
pub struct LocalPeer<'a> {
    engine: &'a Engine,
    capabilities: Capabilities,
    limits: TransferLimits,
}

impl<'a> LocalPeer<'a> {
    /// The peer served by `engine`, with every capability and the default limits.
    pub fn new(engine: &'a Engine) -> Self {
        LocalPeer::with_capabilities(engine, Capabilities::all())
    }

    /// The same peer, answering as a server with these capabilities.
    pub fn with_capabilities(engine: &'a Engine, capabilities: Capabilities) -> Self {
        LocalPeer { engine, capabilities, limits: TransferLimits::default() }
    }

    /// The same peer, with these limits.
    pub fn with_limits(mut self, limits: TransferLimits) -> Self {
        self.limits = limits;
        self
    }
}

#[async_trait::async_trait]
impl Peer for LocalPeer<'_> {
    async fn open_sync_session(&self, id: &str, client_instance_json: &str) -> Result<String> {
        server::open_sync_session(self.engine, id, client_instance_json, "local").await
    }

    async fn close_sync_session(&self, id: &str) -> Result<()> {
        server::close_sync_session(self.engine, id).await
    }

    async fn create_transfer_session(&self, request: &TransferRequest) -> Result<TransferSession> {
        let created = server::create_transfer(self.engine, request, &self.limits).await?;
        if self.capabilities.has(capabilities::ASYNC_OPERATIONS) {
            return Ok(created);
        }
        let to_queuing = StageRequest { stage: Some(TransferStage::Queuing), ..Default::default() };
        server::proceed_to(self.engine, &created.id, &to_queuing, &self.limits).await
    }

    async fn transfer_session(&self, id: &str) -> Result<TransferSession> {
        server::transfer_session(self.engine, id).await
    }

    async fn update_transfer_session(&self, id: &str, request: &StageRequest) -> Result<TransferSession> {
        server::proceed_to(self.engine, id, request, &self.limits).await
    }

    async fn pull_buffers(&self, id: &str, offset: i64, limit: i64) -> Result<Vec<BufferRecord>> {
        server::buffers(self.engine, id, offset, limit).await
    }

    async fn push_buffers(&self, id: &str, records: &[BufferRecord]) -> Result<Vec<Refusal>> {
        let (_, refused) = server::receive(self.engine, id, records.to_vec()).await?;
        Ok(refused)
    }

    async fn close_transfer_session(&self, id: &str) -> Result<()> {
        server::close_transfer(self.engine, id).await
    }
}
