//! `nonces/` and `syncsessions/` (spec §2.5–§2.7, §3.7).

use super::{ApiError, ApiResult, State};

pub(super) async fn nonce(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
pub(super) async fn create(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
pub(super) async fn detail(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
pub(super) async fn close(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
