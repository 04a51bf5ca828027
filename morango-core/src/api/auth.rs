//! Signed requests (`MORANGO_RS_SIGNED_REQUESTS`, a fix of spec §15 W2): in a session opened with this
//! capability, every request is signed by the client certificate's key, so knowing a session id is no longer
//! enough to read or write a peer's data. Python peers never advertise the capability; their sessions stay
//! bearer-id sessions, as in Morango.
//!
//! The signed text is `"<METHOD>\n<path and query>\n<sequence>\n<sha256 hex of the body>\n<sync session id>"`;
//! the sequence number must grow from request to request, so a captured request cannot be replayed.

use axum::http::{HeaderMap, Method, Uri};

use super::{ApiError, ApiResult, MorangoApi};
use crate::certificate;
use crate::session::{self, SyncSession};
use crate::wire::{SEQUENCE_HEADER, SESSION_HEADER, SIGNATURE_HEADER, canonical_request};

/// What a handler knows about the request it checks.
pub(super) struct Request<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Accepts the request for `session_id` if that session does not require signatures, or if the request carries a
/// valid signature by the session's client certificate with a fresh sequence number.
pub(super) async fn authorize(api: &MorangoApi, session_id: &str, request: Request<'_>) -> ApiResult<()> {
    let db = api.engine().db();
    let session: SyncSession = session::active_sync_session(db, session_id).await?;
    if !session.signed_requests {
        return Ok(());
    }
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
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
    let path = request.uri.path_and_query().map(|p| p.as_str()).unwrap_or(request.uri.path());
    let text = canonical_request(request.method.as_str(), path, sequence, request.body, &session.id);
    if !client.verify(&text, signature) {
        return Err(ApiError::forbidden("the request signature does not verify"));
    }
    if !session::advance_sequence(db, &session.id, sequence).await? {
        return Err(ApiError::forbidden("replayed request: its sequence number was used already"));
    }
    Ok(())
}
