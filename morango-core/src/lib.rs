//! The Morango sync engine for SeaORM: store, counters, FSIC, merge, serialization and sync sessions.
//!
//! Application code normally uses the `morango` facade crate, which re-exports this crate together with
//! `#[derive(Syncable)]`.

#![warn(missing_docs)]

extern crate self as morango;

#[cfg(feature = "server")]
pub mod api;
mod buffer;
pub mod capabilities;
#[cfg(feature = "network")]
pub mod certificate;
pub mod cleanup;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "cli")]
pub mod command;
pub mod controller;
mod dequeue;
mod deserialize;
mod dmc;
mod engine;
pub mod error;
pub mod events;
mod fault;
pub mod filter;
pub mod fsic;
pub mod graph;
pub mod hooks;
pub mod ids;
pub mod instance;
pub mod json;
pub mod migration;
pub mod model;
#[cfg(feature = "network")]
pub mod nonce;
pub mod peer;
pub mod profile;
mod queue;
pub mod refused;
pub mod registry;
#[cfg(feature = "network")]
pub mod scope;
mod serialize;
pub mod server;
pub mod session;
mod sql;
pub mod stage;
mod tracking;
mod transfer;
pub mod validation;
pub mod value;
#[cfg(feature = "network")]
pub mod wire;

pub use buffer::{BufferRecord, RmcbRecord};
#[cfg(feature = "network")]
pub use certificate::{Certificate, CertificateError, PrivateKey, PublicKey, RootTrust};
pub use cleanup::{CleanupReport, cleanup_syncs};
pub use controller::{SyncClient, SyncOptions, SyncReport, TransferReport, sync_local};
pub use dequeue::DequeueReport;
pub use deserialize::DeserializeReport;
pub use engine::{DEFAULT_CHUNK_SIZE, Engine};
pub use error::{Error, Result, StorageFailure};
pub use events::{Progress, SyncEvent};
pub use filter::Filter;
pub use instance::Instance;
pub use model::{
    Bookkeeping, Conflict, Discriminator, FieldError, FieldErrors, IdError, MorangoValue, Record, RecordIdentity,
    Resolution, SyncDefault, Syncable, TemplateValue,
};
pub use profile::Profile;
pub use refused::{Refusal, RefusedRecord, refused_records};
pub use registry::{assign_ids, insert_many};
#[cfg(feature = "network")]
pub use scope::ScopeDefinition;
pub use serialize::SerializeReport;
pub use stage::{TransferStage, TransferStatus};
pub use tracking::hard_delete;

#[doc(hidden)]
pub mod __private {
    pub use crate::graph;
    pub use crate::model::{record_template_field, template_field};
    pub use crate::registry::{ModelOf, before_save};
    pub use async_trait;
    pub use sea_orm;
    pub use serde_json;

    use crate::model::{FieldError, Record};

    /// Reads one field of incoming record JSON for the generated `from_record`: `parse` applied to the value under
    /// `key`, or `default()` when the key is missing; `None` after recording a [`FieldError`] when the value does
    /// not fit. (`parse` is `<T as MorangoValue>::from_json`, named at the call site so that a type without
    /// `MorangoValue` gives one error, shared with `to_record`.)
    pub fn read_field<T>(
        record: &Record,
        key: &'static str,
        errors: &mut Vec<FieldError>,
        parse: fn(&serde_json::Value) -> Result<T, String>,
        default: impl FnOnce() -> T,
    ) -> Option<T> {
        match record.get(key) {
            None => Some(default()),
            Some(value) => match parse(value) {
                Ok(value) => Some(value),
                Err(message) => {
                    errors.push(FieldError { field: key, message });
                    None
                }
            },
        }
    }
}
