//! The Morango sync engine for SeaORM: store, counters, FSIC, merge, serialization and sync sessions.
//!
//! Application code normally uses the `morango` facade crate, which re-exports this crate together with
//! `#[derive(Syncable)]`.

extern crate self as morango;

pub mod filter;
pub mod fsic;
pub mod graph;
pub mod ids;
pub mod json;
pub mod model;
pub mod profile;
pub mod registry;
pub mod value;

pub use model::{
    Bookkeeping, Conflict, FieldError, FieldErrors, IdError, MorangoValue, Record, Resolution, SyncDefault, Syncable,
    TemplateValue,
};
pub use profile::Profile;

#[doc(hidden)]
pub mod __private {
    pub use crate::graph;
    pub use crate::model::template_field;
    pub use crate::registry::{ModelOf, before_save};
    pub use async_trait;
    pub use sea_orm;
    pub use serde_json;
}
