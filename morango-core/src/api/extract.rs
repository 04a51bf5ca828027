//! Request extraction: capabilities from the header, ids from the path, query parameters, and JSON bodies
//! (optionally gzipped) read within a size limit and a time limit. Every refusal is an [`ApiError`]: a 4xx with a
//! JSON `detail`, never axum's plain-text rejections.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::MorangoApi;
use super::error::ApiError;
use crate::capabilities::Capabilities;
use crate::wire::CAPABILITIES_HEADER;

/// The capabilities the request's sender advertises (`X-Morango-Capabilities`; missing = none).
#[derive(Debug, Clone)]
pub struct PeerCapabilities(pub Capabilities);

impl<S: Send + Sync> FromRequestParts<S> for PeerCapabilities {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(CAPABILITIES_HEADER).map(|v| v.to_str().unwrap_or_default());
        Ok(PeerCapabilities(Capabilities::from_header(value)))
    }
}

/// The `{id}` of a detail route, percent-decoded (handlers check its form).
#[derive(Debug, Clone)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(rejection) => {
                Err(ApiError::bad_request(format!("malformed id in the path: {}", rejection.body_text())))
            }
        }
    }
}

/// The query string's parameters (the last of repeated ones); none may contain a NUL character.
#[derive(Debug, Clone)]
pub struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(query) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map_err(|rejection| ApiError::bad_request(format!("malformed query string: {}", rejection.body_text())))?;
        if query.iter().any(|(key, value)| key.contains('\0') || value.contains('\0')) {
            return Err(ApiError::bad_request("query parameters must not contain NUL characters"));
        }
        Ok(QueryMap(query))
    }
}

/// The raw request body, read within [`ServerSettings::max_body_bytes`](super::ServerSettings) (413 beyond it)
/// and [`ServerSettings::body_timeout`](super::ServerSettings) (408 when the sender stalls).
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

impl FromRequest<Arc<MorangoApi>> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<MorangoApi>) -> Result<Self, Self::Rejection> {
        let settings = state.settings();
        match tokio::time::timeout(settings.body_timeout, Bytes::from_request(request, state)).await {
            Ok(Ok(bytes)) => Ok(Body(bytes)),
            Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body exceeds {} bytes", settings.max_body_bytes),
            )),
            Ok(Err(rejection)) => Err(ApiError::new(rejection.status(), rejection.body_text())),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {} s", settings.body_timeout.as_secs_f64()),
            )),
        }
    }
}

/// Parses a JSON object body into `T`; see [`json_value`]. Any other JSON value is refused, even one serde could
/// read into `T` (an array, for a struct).
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<T, ApiError> {
    let value = json_value(headers, body, limit)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!("expected a JSON object, got {}", kind(&value))));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("malformed request body: {e}")))
}

/// Parses a JSON body; a body that is gzip (`Content-Type: application/gzip`) is inflated first, to at most
/// `limit` bytes (a gzip bomb is refused with 413). Text containing NUL characters is refused: no database
/// column can hold it (PostgreSQL rejects it), so it can only be an attack or a broken peer.
pub fn json_value(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Value, ApiError> {
    let gzipped = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/gzip"));
    let inflated;
    let bytes: &[u8] = if gzipped {
        inflated = gunzip(body, limit)?;
        &inflated
    } else {
        body
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed request body: {e}")))?;
    if contains_nul(&value) {
        return Err(ApiError::bad_request("text in the request body must not contain NUL characters"));
    }
    Ok(value)
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(key, value)| key.contains('\0') || contains_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut decoder = flate2::read::GzDecoder::new(body).take(cap);
    decoder.read_to_end(&mut out).map_err(|e| ApiError::bad_request(format!("malformed gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the inflated body exceeds {limit} bytes")));
    }
    Ok(out)
}
