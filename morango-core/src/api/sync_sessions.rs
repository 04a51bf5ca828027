//! `nonces/` and `syncsessions/` (spec §2.5–§2.7, §3.7): the handshake in which the client proves it holds its
//! certificate's key, and the server proves it holds its own.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};

use super::auth::{RequestHead, authorize};
use super::extract::{Body, PathId, PeerCapabilities, json_body};
use super::{ApiError, ApiResult, State, check_chain_text, check_id};
use crate::capabilities;
use crate::certificate::{self, RootTrust};
use crate::nonce;
use crate::session::{self, SyncSession};
use crate::wire::{NonceWire, SyncSessionCreated, SyncSessionRequest, SyncSessionWire};

/// `POST nonces/`: a one-time value to sign, valid for a minute.
pub(super) async fn nonce(state: State) -> ApiResult<(StatusCode, Json<NonceWire>)> {
    let nonce = nonce::create(state.0.engine().db(), "").await?;
    Ok((StatusCode::CREATED, Json(nonce.to_wire())))
}

/// `POST syncsessions/`: verify the client's chain, its signature of `"<nonce>:<id>"` and the nonce; answer with
/// the server certificate's signature of the same message.
pub(super) async fn create(
    state: State,
    PeerCapabilities(peer): PeerCapabilities,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<SyncSessionCreated>)> {
    let api = &state.0;
    let db = api.engine().db();
    let request: SyncSessionRequest = json_body(&headers, &body, api.settings().max_body_bytes)?;
    check_id(&request.id, "id")?;
    check_id(&request.client_certificate_id, "client_certificate_id")?;
    check_id(&request.server_certificate_id, "server_certificate_id")?;
    check_id(&request.nonce, "nonce")?;
    crate::server::check_instance_json(&request.instance).map_err(ApiError::from)?;
    let refused = |error: certificate::CertificateError| {
        ApiError::certificate(
            StatusCode::FORBIDDEN,
            error.error_class(),
            format!("Saving certificate chain has failed: {error}"),
        )
    };
    let chain = certificate::parse_chain(&request.certificate_chain).map_err(refused)?;
    check_chain_text(&chain).map_err(refused)?;
    let roots = if api.settings().trust_new_roots { RootTrust::AcceptNewRoots } else { RootTrust::KnownRootsOnly };
    // Verified in memory: nothing is stored unless the signature and the nonce check out too.
    let verified = certificate::verify_certificate_chain(db, &chain, Some(&request.client_certificate_id), roots)
        .await
        .map_err(refused)?;
    let client = verified.leaf().clone();
    let server = certificate::get(db, &request.server_certificate_id)
        .await?
        .filter(|cert| cert.has_private_key())
        .ok_or_else(|| ApiError::bad_request("Requested certificate does not exist!"))?;
    if client.profile() != server.profile() || request.profile != client.profile() {
        return Err(ApiError::bad_request("Certificates must both be associated with the same profile"));
    }
    if server.profile() != api.engine().profile().name() {
        return Err(ApiError::bad_request("This server does not sync that profile"));
    }
    let signed = api.effective(&peer).has(capabilities::SIGNED_REQUESTS);
    if api.settings().require_signed_requests && !signed {
        return Err(ApiError::forbidden(format!(
            "this server requires the {} capability (a client that signs its requests)",
            capabilities::SIGNED_REQUESTS
        )));
    }
    let message = format!("{}:{}", request.nonce, request.id);
    if !client.verify(&message, &request.signature) {
        return Err(ApiError::forbidden("Client certificate failed to verify signature"));
    }
    nonce::consume(db, &request.nonce).await.map_err(|_| ApiError::forbidden("Nonce is not valid"))?;
    verified.save(db).await.map_err(refused)?;
    let server_instance = api.engine().instance().to_json(&api.settings().instance_info);
    session::create_sync_session(
        db,
        &SyncSession {
            id: request.id.clone(),
            is_server: true,
            profile: server.profile().to_owned(),
            connection_kind: "network".into(),
            client_certificate_id: Some(client.id().to_owned()),
            server_certificate_id: Some(server.id().to_owned()),
            signed_requests: signed,
            client_instance_json: request.instance.clone(),
            server_instance_json: server_instance.clone(),
            active: true,
        },
    )
    .await
    .map_err(|_| ApiError::bad_request("a sync session with this id exists already"))?;
    let signature = server.sign(&message)?;
    let signed_requests = if signed {
        Some(server.sign(&crate::wire::signed_requests_message(&request.nonce, &request.id))?)
    } else {
        None
    };
    Ok((StatusCode::CREATED, Json(SyncSessionCreated { signature, server_instance, signed_requests })))
}

/// `GET syncsessions/<id>/`: an open session (used to check that a session can be resumed).
pub(super) async fn detail(state: State, PathId(id): PathId, head: RequestHead) -> ApiResult<Json<SyncSessionWire>> {
    check_id(&id, "the sync session id")?;
    authorize(&state.0, &id, &head, &[]).await?;
    let session = session::active_sync_session(state.0.engine().db(), &id).await?;
    Ok(Json(SyncSessionWire {
        id: session.id,
        active: session.active,
        profile: session.profile,
        connection_kind: session.connection_kind,
        client_certificate: session.client_certificate_id,
        server_certificate: session.server_certificate_id,
        client_instance: session.client_instance_json,
        server_instance: session.server_instance_json,
    }))
}

/// `DELETE syncsessions/<id>/`: closes the session and abandons its unfinished transfers.
pub(super) async fn close(state: State, PathId(id): PathId, head: RequestHead) -> ApiResult<StatusCode> {
    check_id(&id, "the sync session id")?;
    authorize(&state.0, &id, &head, &[]).await?;
    crate::server::close_sync_session(state.0.engine(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
