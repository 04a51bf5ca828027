//! The client side of Morango's HTTP protocol (what Python Morango's `NetworkSyncConnection` does).

pub mod http;
mod peer;

pub use http::{Http, HttpSettings};
pub use peer::HttpPeer;
