//! Signed requests (`MORANGO_RS_SIGNED_REQUESTS`, a fix of spec §15 W2): in a session opened with this
//! capability, every request is signed by the client certificate's key, so knowing a session id is no longer
//! enough to read or write a peer's data. Python peers never advertise the capability; their sessions stay
//! bearer-id sessions, as in Morango.
//!
//! The signed text is `"<METHOD>\n<path and query>\n<sequence>\n<sha256 hex of the body>\n<sync session id>"`;
//! the sequence number must grow from request to request, so a captured request cannot be replayed.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};

use super::{ApiError, ApiResult, MorangoApi};
use crate::certificate;
use crate::session::{self, SyncSession};
use crate::wire::{SEQUENCE_HEADER, SESSION_HEADER, SIGNATURE_HEADER, canonical_request};

/// The parts of a request a signature covers, besides its body: method, path and query as the client sent them
/// (before any nesting router stripped a prefix), and headers.
pub(super) struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestHead {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let OriginalUri(uri) = OriginalUri::from_request_parts(parts, state).await?;
        Ok(RequestHead { method: parts.method.clone(), uri, headers: parts.headers.clone() })
    }
}

/// Accepts the request (`head` and `body`) for `session_id` if that session does not require signatures, or if the
/// request carries a valid signature by the session's client certificate with a fresh sequence number.
pub(super) async fn authorize(api: &MorangoApi, session_id: &str, head: &RequestHead, body: &[u8]) -> ApiResult<()> {
    let db = api.engine().db();
    let session: SyncSession = session::active_sync_session(db, session_id).await?;
    if !session.signed_requests {
        return Ok(());
    }
    let header = |name: &str| head.headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(claimed), Some(sequence), Some(signature)) =
        (header(SESSION_HEADER), header(SEQUENCE_HEADER), header(SIGNATURE_HEADER))
    else {
        return Err(ApiError::forbidden("this sync session requires signed requests"));
    };
    let sequence: i64 = sequence.parse().map_err(|_| ApiError::forbidden("malformed request sequence number"))?;
    if claimed != session.id {
        return Err(ApiError::forbidden("the request is signed for another sync session"));
    }
    let client = match &session.client_certificate_id {
        Some(id) => certificate::get(db, id).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::forbidden("the sync session has no client certificate"))?;
    let path = head.uri.path_and_query().map(|p| p.as_str()).unwrap_or(head.uri.path());
    let text = canonical_request(head.method.as_str(), path, sequence, body, &session.id);
    if !client.verify(&text, signature) {
        return Err(ApiError::forbidden("the request signature does not verify"));
    }
    if !session::advance_sequence(db, &session.id, sequence).await? {
        return Err(ApiError::forbidden("replayed request: its sequence number was used already"));
    }
    Ok(())
}
