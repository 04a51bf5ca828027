//! One place for HTTP: base URL joining, the capabilities header, timeouts, retries with backoff, gzip posts,
//! and turning failures into typed errors.

use std::io::Write;
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::capabilities::Capabilities;
use crate::certificate::PrivateKey;
use crate::error::{Error, Result};
use crate::wire::{
    API_PREFIX, CAPABILITIES_HEADER, ErrorBody, SEQUENCE_HEADER, SESSION_HEADER, SIGNATURE_HEADER, canonical_request,
};

/// How the client talks HTTP.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The longest a single request may take.
    pub timeout: Duration,
    /// The longest a request that makes the server run a stage may take (creating a transfer in the legacy flow
    /// serializes and queues; moving to dequeuing or deserializing merges and applies; closing a legacy push
    /// does both).
    pub stage_timeout: Duration,
    /// How often a request that could not reach the server is tried again.
    pub retries: u32,
    /// The first wait before a retry; it doubles each time.
    pub backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(120),
            stage_timeout: Duration::from_secs(30 * 60),
            retries: 7,
            backoff: Duration::from_millis(300),
        }
    }
}

/// An HTTP client bound to one Morango server.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    capabilities: Capabilities,
    settings: HttpSettings,
    signer: Option<Arc<Signer>>,
}

/// Signs every request of a session opened with `MORANGO_RS_SIGNED_REQUESTS`.
struct Signer {
    session_id: String,
    key: PrivateKey,
    last_sequence: AtomicI64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("session_id", &self.session_id).finish_non_exhaustive()
    }
}

impl Signer {
    /// A sequence number larger than any this process used, and than any a previous run used (microseconds).
    fn next_sequence(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let previous = self
            .last_sequence
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last.saturating_add(1))))
            .unwrap_or(now);
        now.max(previous.saturating_add(1))
    }
}

/// A request body.
pub enum Body<'a, T: Serialize> {
    /// No body.
    None,
    /// JSON.
    Json(&'a T),
    /// JSON, gzipped (`Content-Type: application/gzip`).
    Gzip(&'a T),
}

impl Http {
    /// A client for the server at `base_url` (which must end with `/`; one is added otherwise).
    pub fn new(base_url: &str, capabilities: Capabilities, settings: HttpSettings) -> Result<Http> {
        install_crypto_provider();
        let base = if base_url.ends_with('/') { base_url.to_owned() } else { format!("{base_url}/") };
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| Error::Invalid(format!("server URL `{base_url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!("server URL `{base_url}` must be http or https")));
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("morango-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Transport { url: base.clone(), message: e.to_string() })?;
        Ok(Http { client, base, capabilities, settings, signer: None })
    }

    /// The same client, signing every request with `key` for the sync session `session_id`.
    pub fn signed(&self, session_id: &str, key: PrivateKey) -> Http {
        let signer = Signer { session_id: session_id.to_owned(), key, last_sequence: AtomicI64::new(0) };
        Http { signer: Some(Arc::new(signer)), ..self.clone() }
    }

    /// The time a stage request may take ([`HttpSettings::stage_timeout`]).
    pub fn stage_timeout(&self) -> Duration {
        self.settings.stage_timeout
    }

    /// The base URL (ends with `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Replaces the capabilities sent with every request (after negotiation).
    pub fn set_capabilities(&mut self, capabilities: Capabilities) {
        self.capabilities = capabilities;
    }

    /// Sends a request to `api/morango/v1/<path>` (or to `<path>` under the base URL when it starts with `/`) and
    /// reads a JSON answer; connection failures are retried.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Body<'_, B>,
        configure: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<T> {
        let bytes = self.send(method.clone(), path, body, configure).await?;
        let url = self.url(path);
        serde_json::from_slice(&bytes).map_err(|e| Error::Remote {
            method: method.to_string(),
            url,
            status: 200,
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Like [`Http::call`] for answers without a body worth reading.
    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Body<'_, B>,
        configure: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Vec<u8>> {
        let url = self.url(path);
        let payload = match body {
            Body::None => None,
            Body::Json(value) => Some(("application/json", json(value)?)),
            Body::Gzip(value) => Some(("application/gzip", gzip(&json(value)?)?)),
        };
        let mut attempt = 0;
        loop {
            let mut request =
                self.client.request(method.clone(), &url).header(CAPABILITIES_HEADER, self.capabilities.to_header());
            if let Some((content_type, bytes)) = &payload {
                request = request.header(reqwest::header::CONTENT_TYPE, *content_type).body(bytes.clone());
            }
            if let Some(signer) = &self.signer {
                // Signed again on every attempt: a retried request gets a fresh sequence number.
                let sequence = signer.next_sequence();
                let body = payload.as_ref().map_or(&[][..], |(_, bytes)| bytes.as_slice());
                let text =
                    canonical_request(method.as_str(), &path_and_query(&url), sequence, body, &signer.session_id);
                let signature =
                    signer.key.sign(&text).map_err(|e| Error::Invalid(format!("cannot sign the request: {e}")))?;
                request = request
                    .header(SESSION_HEADER, &signer.session_id)
                    .header(SEQUENCE_HEADER, sequence.to_string())
                    .header(SIGNATURE_HEADER, signature);
            }
            match configure(request).send().await {
                Ok(response) => return read(method, url, response).await,
                Err(error) if attempt < self.settings.retries && retryable(&method, &error) => {
                    let wait = self.settings.backoff.saturating_mul(1 << attempt.min(16));
                    tracing::warn!(%url, %error, ?wait, "request failed, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => return Err(Error::Transport { url, message: describe(&error) }),
            }
        }
    }

    /// `api/morango/v1/<path>` under the base URL; a path that starts with `/` is taken from the base URL itself
    /// (an application's own endpoint, e.g. `/api/public/v1/facility/`).
    fn url(&self, path: &str) -> String {
        match path.strip_prefix('/') {
            Some(own) => format!("{}{own}", self.base),
            None => format!("{}{API_PREFIX}{path}", self.base),
        }
    }
}

/// The path and query of a URL, as the server sees them.
fn path_and_query(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

/// A request that never reached the server may always be sent again; one that may have been processed (a
/// timeout, a broken connection) only if sending it twice does no harm. `POST buffers/` is not idempotent on
/// Python Morango 0.8.2 and `POST syncsessions/` spends its nonce: those fail, and the transfer resumes instead.
/// An HTTP answer with an error status is final.
fn retryable(method: &Method, error: &reqwest::Error) -> bool {
    error.is_connect() || ((error.is_timeout() || error.is_request()) && *method != Method::POST)
}

fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read(method: Method, url: String, response: reqwest::Response) -> Result<Vec<u8>> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| Error::Transport { url: url.clone(), message: describe(&e) })?;
    if status.is_success() {
        return Ok(bytes.to_vec());
    }
    let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => body.detail,
        Err(_) => String::from_utf8_lossy(&bytes).chars().take(500).collect(),
    };
    let message = if message.is_empty() { status.canonical_reason().unwrap_or_default().to_owned() } else { message };
    Err(Error::Remote { method: method.to_string(), url, status: status.as_u16(), message })
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Invalid(format!("cannot encode request: {e}")))
}

/// Gzip level 9 with a zero mtime, as Python Morango sends it.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).map_err(|e| Error::Invalid(format!("cannot compress request: {e}")))?;
    encoder.finish().map_err(|e| Error::Invalid(format!("cannot compress request: {e}")))
}

/// reqwest is built without a default TLS crypto provider (it saves building aws-lc); install ring's once.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another part of the program may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
