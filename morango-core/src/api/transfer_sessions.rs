//! `transfersessions/` (spec §2.8): create, read, move through stages, close.

use axum::Json;
use axum::http::StatusCode;

use super::auth::{RequestHead, authorize};
use super::extract::{Body, PathId, PeerCapabilities, json_body};
use super::{ApiError, ApiResult, State, check_id};
use crate::capabilities;
use crate::filter::Filter;
use crate::server::{self, StageRequest, TransferRequest};
use crate::stage::{TransferStage, TransferStatus};
use crate::wire::{TransferSessionPatch, TransferSessionRequest, TransferSessionWire};

/// `POST transfersessions/`: without `ASYNC_OPERATIONS` (the legacy flow) the server also serializes and
/// queues before answering. 201 when the requested stage completed, 202 otherwise.
pub(super) async fn create(
    state: State,
    PeerCapabilities(peer): PeerCapabilities,
    head: RequestHead,
    Body(raw): Body,
) -> ApiResult<(StatusCode, Json<TransferSessionWire>)> {
    let api = &state.0;
    let body: TransferSessionRequest = json_body(&head.headers, &raw, api.settings().max_body_bytes)?;
    check_id(&body.id, "id")?;
    check_id(&body.sync_session_id, "sync_session_id")?;
    check_count(body.records_total, "records_total")?;
    authorize(api, &body.sync_session_id, &head, &raw).await?;
    let caps = api.effective(&peer);
    let request = TransferRequest {
        id: body.id,
        sync_session_id: body.sync_session_id,
        filter: Filter::parse(&body.filter),
        push: body.push,
        client_fsic: body.client_fsic,
        fsic_v2: caps.has(capabilities::FSIC_V2_FORMAT),
    };
    let mut ts = server::create_transfer(api.engine(), &request, &api.settings().transfer_limits).await?;
    if request.push && body.records_total.is_some() {
        let total = StageRequest { records_total: body.records_total, ..Default::default() };
        ts = server::proceed_to(api.engine(), &ts.id, &total, &api.settings().transfer_limits).await?;
    }
    if !caps.has(capabilities::ASYNC_OPERATIONS) {
        let to_queuing = StageRequest { stage: Some(TransferStage::Queuing), ..Default::default() };
        ts = server::proceed_to(api.engine(), &ts.id, &to_queuing, &api.settings().transfer_limits).await?;
    }
    let status = if ts.status == TransferStatus::Completed { StatusCode::CREATED } else { StatusCode::ACCEPTED };
    Ok((status, Json((&ts).into())))
}

/// A count a client reports must not be negative.
fn check_count(value: Option<i64>, name: &str) -> ApiResult<()> {
    match value {
        Some(n) if n < 0 => Err(ApiError::bad_request(format!("{name} must not be negative"))),
        _ => Ok(()),
    }
}

/// `GET transfersessions/<id>/`.
pub(super) async fn detail(
    state: State,
    PathId(id): PathId,
    head: RequestHead,
) -> ApiResult<Json<TransferSessionWire>> {
    check_id(&id, "the transfer session id")?;
    let ts = server::transfer_session(state.0.engine(), &id).await?;
    authorize(&state.0, &ts.sync_session_id, &head, &[]).await?;
    Ok(Json((&ts).into()))
}

/// `PATCH transfersessions/<id>/`: runs the server's part of every stage up to `transfer_stage`.
pub(super) async fn update(
    state: State,
    PathId(id): PathId,
    head: RequestHead,
    Body(body): Body,
) -> ApiResult<Json<TransferSessionWire>> {
    check_id(&id, "the transfer session id")?;
    let api = &state.0;
    let ts = server::transfer_session(api.engine(), &id).await?;
    authorize(api, &ts.sync_session_id, &head, &body).await?;
    let patch: TransferSessionPatch = json_body(&head.headers, &body, api.settings().max_body_bytes)?;
    for (value, name) in [
        (patch.records_total, "records_total"),
        (patch.records_transferred, "records_transferred"),
        (patch.records_refused, "records_refused"),
        (patch.bytes_sent, "bytes_sent"),
        (patch.bytes_received, "bytes_received"),
    ] {
        check_count(value, name)?;
    }
    let stage = match patch.transfer_stage.as_deref() {
        None => None,
        Some(name) => Some(name.parse::<TransferStage>().map_err(ApiError::bad_request)?),
    };
    let request = StageRequest {
        stage,
        client_fsic: patch.client_fsic,
        records_total: patch.records_total,
        records_transferred: patch.records_transferred,
        records_refused: patch.records_refused,
    };
    let ts = server::proceed_to(api.engine(), &id, &request, &api.settings().transfer_limits).await?;
    Ok(Json((&ts).into()))
}

/// `DELETE transfersessions/<id>/`: finishes (legacy flow) or abandons the transfer and removes its buffers.
pub(super) async fn close(state: State, PathId(id): PathId, head: RequestHead) -> ApiResult<StatusCode> {
    check_id(&id, "the transfer session id")?;
    let ts = server::transfer_session(state.0.engine(), &id).await?;
    authorize(&state.0, &ts.sync_session_id, &head, &[]).await?;
    server::close_transfer(state.0.engine(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
