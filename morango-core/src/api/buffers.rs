//! `buffers/` (spec §2.9): pages of queued records for a pull, chunks of records for a push.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::{RequestHead, authorize};
use super::extract::{Body, QueryMap, json_value};
use super::{ApiError, ApiResult, State, check_id};
use crate::buffer::BufferRecord;
use crate::server::{self, MAX_PAGE};
use crate::wire::{BufferPage, PushAnswer};

/// `GET buffers/?transfer_session_id=…&limit=…&offset=…`: a page with `limit` (DRF's limit/offset shape),
/// the whole queue as a bare list without it — if it is small enough.
pub(super) async fn pull(state: State, head: RequestHead, QueryMap(query): QueryMap) -> ApiResult<Response> {
    let id =
        query.get("transfer_session_id").ok_or_else(|| ApiError::bad_request("transfer_session_id is required"))?;
    check_id(id, "transfer_session_id")?;
    let number = |key: &str| -> ApiResult<Option<i64>> {
        match query.get(key) {
            None => Ok(None),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Some(n)),
                _ => Err(ApiError::bad_request(format!("{key} must be a non-negative integer"))),
            },
        }
    };
    let offset = number("offset")?.unwrap_or(0);
    let engine = state.0.engine();
    let ts = server::transfer_session(engine, id).await?;
    authorize(&state.0, &ts.sync_session_id, &head, &[]).await?;
    let count = ts.records_total.unwrap_or(0);
    let Some(limit) = number("limit")? else {
        if count > MAX_PAGE {
            return Err(ApiError::bad_request(format!("{count} records are queued: page through them with limit")));
        }
        return Ok(Json(server::buffers(engine, id, 0, MAX_PAGE).await?).into_response());
    };
    let limit = limit.clamp(1, MAX_PAGE);
    let results = server::buffers(engine, id, offset, limit).await?;
    let link = |offset: i64| page_url(&head.uri, &head.headers, id, limit, offset);
    let next = (offset.saturating_add(limit) < count).then(|| link(offset.saturating_add(limit)));
    let previous = (offset > 0).then(|| link(offset.saturating_sub(limit).max(0)));
    Ok(Json(BufferPage { count, next, previous, results }).into_response())
}

fn page_url(uri: &Uri, headers: &HeaderMap, id: &str, limit: i64, offset: i64) -> String {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}{}?limit={limit}&offset={offset}&transfer_session_id={id}", uri.path())
}

/// `POST buffers/`: a JSON list of records (or one record), gzipped when the sender says so. 201 with the records
/// refused (each with its reason); the rest of the chunk is stored.
pub(super) async fn push(
    state: State,
    head: RequestHead,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<PushAnswer>)> {
    let api = &state.0;
    let value = json_value(&head.headers, &body, api.settings().max_body_bytes)?;
    let records: Vec<BufferRecord> = match value {
        Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request(format!("malformed record: {e}")))?,
        object @ Value::Object(_) => {
            vec![serde_json::from_value(object).map_err(|e| ApiError::bad_request(format!("malformed record: {e}")))?]
        }
        _ => return Err(ApiError::bad_request("expected a list of records")),
    };
    let Some(first) = records.first() else { return Err(ApiError::bad_request("no records")) };
    let id = first.transfer_session.clone();
    check_id(&id, "transfer_session")?;
    if records.iter().any(|r| r.transfer_session != id) {
        return Err(ApiError::forbidden("All pushed records must be associated with the same TransferSession."));
    }
    let ts = server::transfer_session(api.engine(), &id).await?;
    authorize(api, &ts.sync_session_id, &head, &body).await?;
    let (_, refused) = server::receive(api.engine(), &id, records).await?;
    Ok((StatusCode::CREATED, Json(PushAnswer { refused })))
}
