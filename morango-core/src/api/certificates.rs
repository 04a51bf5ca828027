//! `certificates/`, `publickey/`, `certificatechain/` (spec §2.2–§2.4, §2.10–§2.11).

use super::{ApiError, ApiResult, State};

pub(super) async fn list(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
pub(super) async fn request(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
pub(super) async fn detail(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
pub(super) async fn shared_public_key(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
pub(super) async fn push_chain(_state: State) -> ApiResult<()> {
    Err(ApiError::not_found("todo"))
}
