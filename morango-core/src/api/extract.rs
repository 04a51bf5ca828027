//! Request extraction: capabilities from the header, JSON bodies (optionally gzipped) read with size limits and
//! turned into 400s that say what was wrong.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

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

/// Parses a JSON body; a body that is gzip (`Content-Type: application/gzip`) is inflated first, to at most
/// `limit` bytes (a gzip bomb is refused with 413).
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<T, ApiError> {
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
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed request body: {e}")))
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| ApiError::bad_request(format!("malformed gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the inflated body exceeds {limit} bytes")));
    }
    Ok(out)
}
