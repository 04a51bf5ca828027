//! Morango's v1 HTTP API as an axum [`Router`] (spec §2): mount [`router`] into an application's router, or
//! let the sync command serve it on its own.
//!
//! Handlers are thin: extractors read and validate the request, the engine does the work, and
//! [`error::ApiError`] turns every failure into a status with a JSON body. A malformed request never writes.

mod auth;
mod buffers;
mod certificates;
pub mod error;
mod extract;
mod info;
mod serve;
mod sync_sessions;
mod transfer_sessions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value};

use crate::capabilities::{self, Capabilities};
use crate::engine::Engine;

pub use error::{ApiError, ApiResult};
pub use serve::serve;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The capabilities the server supports (what a request may use is this ∩ the request's header).
    pub capabilities: Capabilities,
    /// Accept certificates pushed by clients (`ALLOW_CERTIFICATE_PUSHING`); enforced on both endpoints.
    pub allow_certificate_pushing: bool,
    /// Refuse sync sessions that do not use `MORANGO_RS_SIGNED_REQUESTS` (which Python clients cannot use).
    pub require_signed_requests: bool,
    /// Accept certificate chains whose root this database does not know yet (Python Morango accepts any
    /// self-signed root; the default here trusts only roots already stored).
    pub trust_new_roots: bool,
    /// Application info added to `morangoinfo` and to the instance JSON (e.g. `"kolibri": "0.16.0"`).
    pub instance_info: Map<String, Value>,
    /// The largest request body, after gzip inflation (413 beyond it).
    pub max_body_bytes: usize,
    /// The longest a client may take to send a request body (408 after it), so stalled senders do not hold the
    /// server's connections forever.
    pub body_timeout: Duration,
    /// How long unfinished transfers may sit idle, and how many bytes one certificate's may buffer.
    pub transfer_limits: crate::server::TransferLimits,
    /// The most connections [`serve`] holds open at once; more clients wait to be accepted.
    pub max_connections: usize,
    /// The longest [`serve`] waits for a request's headers, on a new connection and between the requests of a
    /// kept-alive one; then the connection is closed.
    pub header_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            capabilities: Capabilities::all(),
            allow_certificate_pushing: false,
            trust_new_roots: false,
            require_signed_requests: false,
            instance_info: Map::new(),
            max_body_bytes: 32 * 1024 * 1024,
            body_timeout: Duration::from_secs(120),
            transfer_limits: crate::server::TransferLimits::default(),
            max_connections: 512,
            header_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerSettings {
    /// The capabilities advertised in `morangoinfo`.
    pub fn advertised(&self) -> Capabilities {
        let caps = self.capabilities.clone().without(capabilities::ALLOW_CERTIFICATE_PUSHING);
        if self.allow_certificate_pushing { caps.with(capabilities::ALLOW_CERTIFICATE_PUSHING) } else { caps }
    }
}

/// The credentials of a certificate signing request (HTTP Basic). Morango lets the username be a list of
/// `k=v` pairs joined by `&` (Kolibri sends `username=<name>&facility=<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `k=v` pairs, or `{"username": <the whole username>}` for a plain one.
    pub fields: BTreeMap<String, String>,
    /// The password.
    pub password: String,
}

/// Someone the application authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The application's id for them.
    pub id: String,
}

/// Who may obtain certificates: the application answers who the user is, and whether they may hold a scope.
#[async_trait::async_trait]
pub trait CertificateAuthority: Send + Sync {
    /// The account these credentials belong to, or `None` when they are wrong.
    async fn authenticate(&self, credentials: &Credentials) -> Option<Account>;
    /// Whether `account` may hold a certificate of `scope_definition_id` with these parameters (Morango's
    /// `has_morango_certificate_scope_permission`). Check every parameter: one left unchecked can be set to
    /// anything by the requester, e.g. a facility id with extra partition segments that moves the write scope
    /// inside partitions other users read.
    async fn may_hold(&self, account: &Account, scope_definition_id: &str, params: &Map<String, Value>) -> bool;
}

/// The server's shared state.
pub struct MorangoApi {
    engine: Engine,
    settings: ServerSettings,
    authority: Arc<dyn CertificateAuthority>,
}

impl MorangoApi {
    /// Serves `engine` with these settings; CSRs are decided by `authority`.
    pub fn new(engine: Engine, settings: ServerSettings, authority: Arc<dyn CertificateAuthority>) -> Arc<Self> {
        Arc::new(MorangoApi { engine, settings, authority })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The settings.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// What a request may use: the server's capabilities ∩ the request's.
    fn effective(&self, request: &Capabilities) -> Capabilities {
        self.settings.capabilities.intersection(request)
    }
}

/// The state handlers receive.
type State = axum::extract::State<Arc<MorangoApi>>;

/// The router with every endpoint under `/api/morango/v1/`.
pub fn router(api: Arc<MorangoApi>) -> Router {
    let limit = api.settings.max_body_bytes;
    let v1 = Router::new()
        .route("/morangoinfo/{id}/", only(get(info::morangoinfo)))
        .route("/certificates/", only(get(certificates::list).post(certificates::request)))
        .route("/certificates/{id}/", only(get(certificates::detail)))
        .route("/nonces/", only(post(sync_sessions::nonce)))
        .route("/syncsessions/", only(post(sync_sessions::create)))
        .route("/syncsessions/{id}/", only(get(sync_sessions::detail).delete(sync_sessions::close)))
        .route("/transfersessions/", only(post(transfer_sessions::create)))
        .route(
            "/transfersessions/{id}/",
            only(get(transfer_sessions::detail).patch(transfer_sessions::update).delete(transfer_sessions::close)),
        )
        .route("/buffers/", only(get(buffers::pull).post(buffers::push)))
        .route("/publickey/", only(get(certificates::shared_public_key)))
        .route("/certificatechain/", only(post(certificates::push_chain)))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api);
    Router::new().nest("/api/morango/v1", v1)
}

fn only(router: MethodRouter<Arc<MorangoApi>>) -> MethodRouter<Arc<MorangoApi>> {
    router.fallback(method_not_allowed)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint")
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Refuses certificates whose signed text hides NUL characters (escaped as `\u0000`) in the fields the database
/// looks them up by: PostgreSQL cannot even compare such text, so they would fail as server errors.
fn check_chain_text(chain: &[crate::certificate::Certificate]) -> Result<(), crate::certificate::CertificateError> {
    match chain.iter().find(|c| [c.profile(), c.scope_definition_id(), c.salt()].iter().any(|t| t.contains('\0'))) {
        Some(cert) => Err(crate::certificate::CertificateError::Malformed(format!(
            "certificate {} has NUL characters in its profile, scope definition or salt",
            cert.id()
        ))),
        None => Ok(()),
    }
}

/// Rejects an id that is not 32 lowercase hex characters (Python answers those with a 500).
fn check_id(id: &str, what: &str) -> ApiResult<()> {
    if crate::ids::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("{what} must be 32 lowercase hex characters")))
    }
}
