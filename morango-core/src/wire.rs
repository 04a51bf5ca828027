//! The JSON shapes of Morango's v1 HTTP API (spec §2), shared by the axum server and the reqwest client.
//!
//! Several fields are JSON text inside a JSON string (FSICs, instance JSON, certificate chains, scope params);
//! they are carried as `String` and parsed where they are used.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::filter::Filter;
use crate::session::TransferSession;
use crate::stage::{TransferStage, TransferStatus};

/// The API's path prefix; the base URL of a peer is everything before it.
pub const API_PREFIX: &str = "api/morango/v1/";

/// The header carrying the sender's capabilities.
pub const CAPABILITIES_HEADER: &str = "X-Morango-Capabilities";

/// Signed requests (`MORANGO_RS_SIGNED_REQUESTS`): the session a request belongs to.
pub const SESSION_HEADER: &str = "X-Morango-Session";
/// Signed requests: the request's sequence number, which must grow within a session.
pub const SEQUENCE_HEADER: &str = "X-Morango-Sequence";
/// Signed requests: the client certificate's signature of [`canonical_request`].
pub const SIGNATURE_HEADER: &str = "X-Morango-Signature";

/// The text a client signs for a request of a signed session:
/// `"<METHOD>\n<path and query>\n<sequence>\n<sha256 hex of the body>\n<sync session id>"`.
pub fn canonical_request(method: &str, path_and_query: &str, sequence: i64, body: &[u8], session_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{method}\n{path_and_query}\n{sequence}\n{hex}\n{session_id}")
}

/// The Morango version this implementation speaks (reported in `morangoinfo`).
pub const MORANGO_VERSION: &str = "0.8.15";

/// `GET morangoinfo/1/`: the application's info plus Morango's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// Display name of the instance id (a proquint).
    #[serde(default)]
    pub instance_hash: String,
    /// The server's instance id.
    pub instance_id: String,
    /// The operating system.
    #[serde(default)]
    pub system_os: String,
    /// The Morango version.
    #[serde(default)]
    pub version: String,
    /// The server's capabilities.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Application info (e.g. `"kolibri": "0.16.0"`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST nonces/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceWire {
    /// The nonce.
    pub id: String,
    /// When it was issued (ISO 8601).
    pub timestamp: String,
    /// The requester's address as the server saw it.
    #[serde(default)]
    pub ip: String,
}

/// `POST syncsessions/` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSessionRequest {
    /// Chosen by the client.
    pub id: String,
    /// The server certificate to use.
    pub server_certificate_id: String,
    /// The client's certificate: the last of the chain.
    pub client_certificate_id: String,
    /// Sent, not used: the server takes the profile from its certificate.
    #[serde(default)]
    pub profile: String,
    /// JSON text of the chain root → client certificate.
    pub certificate_chain: String,
    /// The client's view of the server's base URL.
    #[serde(default)]
    pub connection_path: String,
    /// The client's instance JSON (text).
    #[serde(default)]
    pub instance: String,
    /// From `POST nonces/`.
    pub nonce: String,
    /// Informational.
    #[serde(default)]
    pub client_ip: String,
    /// Informational.
    #[serde(default)]
    pub server_ip: String,
    /// The client certificate's signature of `"<nonce>:<id>"`.
    pub signature: String,
}

/// `POST syncsessions/` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSessionCreated {
    /// The server certificate's signature of `"<nonce>:<id>"`.
    pub signature: String,
    /// The server's instance JSON (text).
    pub server_instance: String,
    /// Present when the session requires signed requests: the server certificate's signature of
    /// [`signed_requests_message`], so that the mode cannot be stripped on the way (Python clients ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_requests: Option<String>,
}

/// What the server signs to confirm that a session requires signed requests.
pub fn signed_requests_message(nonce: &str, session_id: &str) -> String {
    format!("{nonce}:{session_id}:{}", crate::capabilities::SIGNED_REQUESTS)
}

/// `GET syncsessions/<id>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSessionWire {
    /// The id.
    pub id: String,
    /// Whether it is open.
    pub active: bool,
    /// The profile.
    pub profile: String,
    /// `"network"`.
    #[serde(default)]
    pub connection_kind: String,
    /// The client certificate id.
    #[serde(default)]
    pub client_certificate: Option<String>,
    /// The server certificate id.
    #[serde(default)]
    pub server_certificate: Option<String>,
    /// The client's instance JSON.
    #[serde(default)]
    pub client_instance: String,
    /// The server's instance JSON.
    #[serde(default)]
    pub server_instance: String,
}

/// `POST transfersessions/` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSessionRequest {
    /// Chosen by the client.
    pub id: String,
    /// Partition prefixes joined by `"\n"`.
    pub filter: String,
    /// True when the client sends.
    pub push: bool,
    /// The sync session.
    pub sync_session_id: String,
    /// The client's FSIC (JSON text), `"{}"` when not computed yet.
    #[serde(default = "empty_json")]
    pub client_fsic: String,
    /// Records the client will push, if known.
    #[serde(default)]
    pub records_total: Option<i64>,
}

fn empty_json() -> String {
    "{}".into()
}

/// `PATCH transfersessions/<id>/` body: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSessionPatch {
    /// Run the server up to this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_stage: Option<String>,
    /// The client's FSIC (serializing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_fsic: Option<String>,
    /// Records the client queued (push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_total: Option<i64>,
    /// Records the client received (pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_transferred: Option<i64>,
    /// Informational byte counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<i64>,
    /// Informational byte counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<i64>,
    /// Records the client refused (pull; a morango-rs field, which Python servers ignore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_refused: Option<i64>,
}

/// A transfer session as the API shows it (§2.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSessionWire {
    /// The id.
    pub id: String,
    /// Whether it is open.
    pub active: bool,
    /// Partition prefixes joined by `"\n"`.
    pub filter: String,
    /// True when the client sends.
    pub push: bool,
    /// Records moved so far.
    pub records_transferred: i64,
    /// Records queued, once known.
    pub records_total: Option<i64>,
    /// Received records the receiver refused (a morango-rs field; Python peers neither send nor read it).
    #[serde(default)]
    pub records_refused: i64,
    /// Received records of models the receiver does not declare (a morango-rs field).
    #[serde(default)]
    pub records_of_unknown_models: i64,
    /// Informational.
    #[serde(default)]
    pub bytes_received: i64,
    /// Informational.
    #[serde(default)]
    pub bytes_sent: i64,
    /// The sync session.
    pub sync_session: String,
    /// The server's FSIC (JSON text).
    pub server_fsic: String,
    /// The client's FSIC (JSON text).
    pub client_fsic: String,
    /// The current stage (wire name).
    pub transfer_stage: Option<String>,
    /// The current stage's status (wire name).
    pub transfer_stage_status: Option<String>,
}

impl From<&TransferSession> for TransferSessionWire {
    fn from(ts: &TransferSession) -> Self {
        TransferSessionWire {
            id: ts.id.clone(),
            active: ts.active,
            filter: ts.filter.to_wire(),
            push: ts.push,
            records_transferred: ts.records_transferred,
            records_total: ts.records_total,
            records_refused: ts.records_refused,
            records_of_unknown_models: ts.records_of_unknown_models,
            bytes_received: 0,
            bytes_sent: 0,
            sync_session: ts.sync_session_id.clone(),
            server_fsic: ts.server_fsic.clone(),
            client_fsic: ts.client_fsic.clone(),
            transfer_stage: Some(ts.stage.as_str().to_owned()),
            transfer_stage_status: Some(ts.status.as_str().to_owned()),
        }
    }
}

impl TransferSessionWire {
    /// The session as the engine models it (the FSIC format is not on the wire; the caller supplies it).
    pub fn to_session(&self, fsic_v2: bool) -> Result<TransferSession, String> {
        let stage = match self.transfer_stage.as_deref() {
            None | Some("") => TransferStage::Initializing,
            Some(stage) => stage.parse()?,
        };
        let status = match self.transfer_stage_status.as_deref() {
            None | Some("") => TransferStatus::Pending,
            Some(status) => status.parse()?,
        };
        Ok(TransferSession {
            id: self.id.clone(),
            sync_session_id: self.sync_session.clone(),
            filter: Filter::parse(&self.filter),
            push: self.push,
            active: self.active,
            records_transferred: self.records_transferred,
            records_total: self.records_total,
            records_refused: self.records_refused,
            records_of_unknown_models: self.records_of_unknown_models,
            bytes_buffered: 0,
            client_fsic: self.client_fsic.clone(),
            server_fsic: self.server_fsic.clone(),
            fsic_v2,
            stage,
            status,
        })
    }
}

/// `GET buffers/?limit=…` answer (DRF limit/offset pagination).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferPage {
    /// Records queued in all.
    pub count: i64,
    /// URL of the next page.
    pub next: Option<String>,
    /// URL of the previous page.
    pub previous: Option<String>,
    /// The records.
    pub results: Vec<crate::buffer::BufferRecord>,
}

/// `POST buffers/` answer of a morango-rs server (201): the records of the chunk it refused, with why. Python
/// Morango answers with an empty body, and its clients do not read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAnswer {
    /// The refused records.
    #[serde(default)]
    pub refused: Vec<crate::refused::Refusal>,
}

/// `POST certificates/` body (a certificate signing request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRequest {
    /// The server certificate to sign with.
    pub parent: String,
    /// The profile.
    pub profile: String,
    /// The scope definition id.
    pub scope_definition: String,
    /// The scope definition version.
    pub scope_version: i64,
    /// JSON text of the scope parameters.
    pub scope_params: String,
    /// The requester's public key string.
    pub public_key: String,
}

/// A JSON error body: `{"detail": "..."}`, plus `error_class` for certificate errors (as Python Morango sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong.
    pub detail: String,
    /// Morango's error class, for certificate errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// Same as `detail`, for certificate errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}
