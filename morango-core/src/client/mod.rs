//! The client side of Morango's HTTP protocol (what Python Morango's `NetworkSyncConnection` does).

mod connection;
pub mod http;
mod peer;
mod sync;

pub use connection::{Credentials, NetworkSession, NetworkSyncConnection};
pub use http::{Http, HttpSettings};
pub use peer::HttpPeer;
pub use sync::{DatasetNaming, FacilityNaming, ServedFacility, SyncError, SyncOutcome, SyncRequest, SyncScopes, sync};
