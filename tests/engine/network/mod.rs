//! Sync over HTTP: instances in one test process, each an axum server on a loopback port with its own database,
//! and clients that discover certificates, request one, open a session and pull and push.

mod app;
mod command;
mod field;
mod forgery;
mod harness;
mod scopes;
mod security;
pub mod storage;
mod sync;
