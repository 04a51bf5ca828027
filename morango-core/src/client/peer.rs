//! [`HttpPeer`]: the [`Peer`] a client drives over HTTP, one method per endpoint.

use reqwest::Method;
use serde_json::Value;

use super::http::{Body, Http};
use crate::buffer::BufferRecord;
use crate::capabilities::{self, Capabilities};
use crate::error::{Error, Result};
use crate::peer::Peer;
use crate::refused::Refusal;
use crate::server::{StageRequest, TransferRequest};
use crate::session::TransferSession;
use crate::wire::{BufferPage, PushAnswer, TransferSessionPatch, TransferSessionRequest, TransferSessionWire};

/// A Morango server reached over HTTP, within an open sync session.
pub struct HttpPeer {
    http: Http,
    capabilities: Capabilities,
}

impl HttpPeer {
    /// The peer behind `http`, using the negotiated `capabilities`.
    pub fn new(http: Http, capabilities: Capabilities) -> Self {
        HttpPeer { http, capabilities }
    }

    /// The capabilities both sides use.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    /// The HTTP client (signing requests in a signed session).
    pub fn http(&self) -> &Http {
        &self.http
    }

    fn session(&self, wire: TransferSessionWire) -> Result<TransferSession> {
        wire.to_session(self.capabilities.has(capabilities::FSIC_V2_FORMAT))
            .map_err(|e| Error::Invalid(format!("the server answered with an unreadable transfer session: {e}")))
    }
}

type NoBody = Body<'static, ()>;

#[async_trait::async_trait]
impl Peer for HttpPeer {
    async fn open_sync_session(&self, _id: &str, _client_instance_json: &str) -> Result<String> {
        Err(Error::Invalid("network sync sessions are opened by NetworkSyncConnection's certificate handshake".into()))
    }

    async fn close_sync_session(&self, id: &str) -> Result<()> {
        match self.http.send(Method::DELETE, &format!("syncsessions/{id}/"), NoBody::None, |r| r).await {
            Err(error) if !error.is_not_found() => Err(error),
            _ => Ok(()),
        }
    }

    async fn create_transfer_session(&self, request: &TransferRequest) -> Result<TransferSession> {
        let body = TransferSessionRequest {
            id: request.id.clone(),
            filter: request.filter.to_wire(),
            push: request.push,
            sync_session_id: request.sync_session_id.clone(),
            client_fsic: request.client_fsic.clone(),
            records_total: None,
        };
        let stage = self.http.stage_timeout();
        let wire = self.http.call(Method::POST, "transfersessions/", Body::Json(&body), |r| r.timeout(stage)).await?;
        self.session(wire)
    }

    async fn transfer_session(&self, id: &str) -> Result<TransferSession> {
        let wire = self.http.call(Method::GET, &format!("transfersessions/{id}/"), NoBody::None, |r| r).await?;
        self.session(wire)
    }

    async fn update_transfer_session(&self, id: &str, request: &StageRequest) -> Result<TransferSession> {
        let patch = TransferSessionPatch {
            transfer_stage: request.stage.map(|s| s.as_str().to_owned()),
            client_fsic: request.client_fsic.clone(),
            records_total: request.records_total,
            records_transferred: request.records_transferred,
            bytes_sent: None,
            bytes_received: None,
            records_refused: request.records_refused,
        };
        let stage = self.http.stage_timeout();
        let path = format!("transfersessions/{id}/");
        let wire = self.http.call(Method::PATCH, &path, Body::Json(&patch), |r| r.timeout(stage)).await?;
        self.session(wire)
    }

    async fn pull_buffers(&self, id: &str, offset: i64, limit: i64) -> Result<Vec<BufferRecord>> {
        // The query is part of the path so that a signed request signs it too (ids are hex, counts digits).
        let path = format!("buffers/?limit={limit}&offset={offset}&transfer_session_id={id}");
        let page: Value = self.http.call(Method::GET, &path, NoBody::None, |r| r).await?;
        let records = match page {
            // A bare list (no pagination) is also a valid answer.
            Value::Array(_) => serde_json::from_value(page),
            _ => serde_json::from_value::<BufferPage>(page).map(|p| p.results),
        };
        records.map_err(|e| Error::Invalid(format!("the server sent malformed records: {e}")))
    }

    async fn push_buffers(&self, _id: &str, records: &[BufferRecord]) -> Result<Vec<Refusal>> {
        let body = if self.capabilities.has(capabilities::GZIP_BUFFER_POST) {
            Body::Gzip(&records)
        } else {
            Body::Json(&records)
        };
        let answer = self.http.send(Method::POST, "buffers/", body, |r| r).await?;
        // A morango-rs server lists the records it refused; Python Morango answers with an empty body.
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        serde_json::from_slice::<PushAnswer>(&answer)
            .map(|answer| answer.refused)
            .map_err(|e| Error::Invalid(format!("the server answered a push with unreadable JSON: {e}")))
    }

    async fn close_transfer_session(&self, id: &str) -> Result<()> {
        let stage = self.http.stage_timeout();
        match self
            .http
            .send(Method::DELETE, &format!("transfersessions/{id}/"), NoBody::None, |r| r.timeout(stage))
            .await
        {
            Err(error) if !error.is_not_found() => Err(error),
            _ => Ok(()),
        }
    }
}
