//! `certificates/`, `publickey/`, `certificatechain/` (spec §2.2–§2.4, §2.10–§2.11).

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::Value;

use super::extract::{Body, PathId, QueryMap, json_body, json_value};
use super::{ApiError, ApiResult, Credentials, State, check_chain_text, check_id};
use crate::certificate::{self, Certificate};
use crate::filter::parse_scope_params;
use crate::wire::CertificateRequest;

fn wire(certificates: Vec<Certificate>) -> Json<Vec<Value>> {
    Json(certificates.iter().map(Certificate::to_wire).collect())
}

/// `GET certificates/?profile=…&primary_partition=…&ancestors_of=…`: certificates this server owns, or the chain
/// of one it owns.
pub(super) async fn list(state: State, QueryMap(query): QueryMap) -> ApiResult<Json<Vec<Value>>> {
    let db = state.0.engine().db();
    let profile = query.get("profile").map(String::as_str);
    let certificates = if let Some(id) = query.get("ancestors_of") {
        check_id(id, "ancestors_of")?;
        certificate::ancestors_of(db, id, profile).await?
    } else if let Some(id) = query.get("primary_partition") {
        check_id(id, "primary_partition")?;
        certificate::primary_partition(db, id, profile).await?
    } else {
        certificate::owned(db, profile).await?
    };
    Ok(wire(certificates))
}

/// `GET certificates/<id>/`: one certificate this server owns.
pub(super) async fn detail(state: State, PathId(id): PathId) -> ApiResult<Json<Value>> {
    check_id(&id, "the certificate id")?;
    match certificate::get(state.0.engine().db(), &id).await? {
        Some(cert) if cert.has_private_key() => Ok(Json(cert.to_wire())),
        _ => Err(ApiError::not_found(format!("no certificate {id}"))),
    }
}

/// `POST certificates/`: a certificate signing request, authenticated with HTTP Basic; the application decides
/// whether the user may hold the requested scope.
pub(super) async fn request(state: State, headers: HeaderMap, Body(body): Body) -> ApiResult<Response> {
    let api = &state.0;
    let Some(credentials) = basic_credentials(&headers) else {
        return Ok(unauthorized("Authentication credentials were not provided."));
    };
    let Some(account) = api.authority.authenticate(&credentials).await else {
        return Ok(unauthorized("Invalid credentials."));
    };
    let request: CertificateRequest = json_body(&headers, &body, api.settings().max_body_bytes)?;
    check_id(&request.parent, "parent")?;
    let params = parse_scope_params(&request.scope_params).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !api.authority.may_hold(&account, &request.scope_definition, &params).await {
        return Err(ApiError::forbidden("You do not have permission to perform this action."));
    }
    let issued = certificate::issue(api.engine().db(), &request).await?;
    Ok((StatusCode::CREATED, Json(issued.to_wire())).into_response())
}

fn unauthorized(detail: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, detail).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"api\""));
    response
}

/// HTTP Basic credentials; a username of `k=v&k=v` becomes several fields (no URL decoding, as Morango).
fn basic_credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    let fields: BTreeMap<String, String> = if username.contains('=') {
        username.split('&').filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))).collect()
    } else {
        BTreeMap::from([("username".to_owned(), username.to_owned())])
    };
    Some(Credentials { fields, password: password.to_owned() })
}

/// `GET publickey/`: the shared key clients push certificates for; only when pushing is allowed.
pub(super) async fn shared_public_key(state: State) -> ApiResult<Json<Vec<Value>>> {
    let api = &state.0;
    if !api.settings().allow_certificate_pushing {
        return Err(ApiError::forbidden("This server does not accept pushed certificates."));
    }
    let key = certificate::get_or_create_shared_key(api.engine().db()).await?;
    Ok(Json(vec![key.to_wire()]))
}

/// `POST certificatechain/`: a chain whose new last certificate a client signed for this server's shared key.
/// Enforces the setting Python Morango forgets to check here (spec §15 W5).
pub(super) async fn push_chain(
    state: State,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let api = &state.0;
    if !api.settings().allow_certificate_pushing {
        return Err(ApiError::forbidden("This server does not accept pushed certificates."));
    }
    // The body is a JSON string whose content is the JSON list (Morango double-encodes it); accept the list too.
    let value = json_value(&headers, &body, api.settings().max_body_bytes)?;
    let chain = certificate::parse_chain_value(&value).and_then(|chain| check_chain_text(&chain));
    if let Err(error) = chain {
        return Err(ApiError::forbidden(certificate::PushError::Chain(error).to_string()));
    }
    let roots = if api.settings().trust_new_roots {
        certificate::RootTrust::AcceptNewRoots
    } else {
        certificate::RootTrust::KnownRootsOnly
    };
    certificate::accept_pushed_chain(api.engine().db(), &value, roots).await.map_err(|error| match error {
        certificate::PushError::Chain(_) | certificate::PushError::Nonce(_) => ApiError::forbidden(error.to_string()),
        certificate::PushError::SharedKeyNotUsed => ApiError::bad_request(error.to_string()),
        certificate::PushError::Certificate(e) => {
            ApiError::certificate(StatusCode::BAD_REQUEST, e.error_class(), e.to_string())
        }
        certificate::PushError::Db(e) => ApiError::from(e),
    })?;
    Ok((StatusCode::CREATED, Json(Value::String("Certificate chain has been saved".into()))))
}
