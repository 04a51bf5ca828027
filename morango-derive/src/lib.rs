//! `#[derive(Syncable)]` and `#[derive(SyncableRelations)]` for SeaORM entities.
//!
//! Use them through the `morango` crate, which re-exports them. The macro works in three steps, each in its own
//! module: [`ast`] reads what the user wrote, [`valid`] checks it (reporting every error at once) and [`expand`]
//! generates code from a model known to be valid. Checks that need several entities at once (dependency loops,
//! profile membership) are emitted as `const` evaluations of `morango::__private::graph`.

mod ast;
mod attr;
mod errors;
mod expand;
mod naming;
mod plan;
mod relation;
mod template;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Makes a SeaORM entity a Morango syncable model.
///
/// Put it on the entity's `Model` (classic format or `#[sea_orm::model]`):
///
/// ```ignore
/// #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
/// #[sea_orm(table_name = "learner")]
/// #[morango(profile = "facilitydata", model_name = "learner",
///           partition = "${facility_id}:user-ro:${id}", source_id = "${facility_id}:${username}")]
/// pub struct Model {
///     #[sea_orm(primary_key, auto_increment = false)]
///     pub id: String,
///     pub _morango_source_id: String,
///     pub _morango_partition: String,
///     pub _morango_dirty_bit: bool,
///     pub facility_id: String,
///     pub username: String,
/// }
/// ```
///
/// Model keys: `profile`, `model_name`, `partition` (a `${field}` template; `${id}` is the record id) or
/// `partition_fn = path`, `source_id` (template) or `source_id_fn = path` (omitted: random), `id_fn = path`,
/// `on_conflict = path`, `depends_on = "super::x::Entity"` (repeatable, or a `[...]` list), `custom_behavior`.
/// Field keys: `local`, `default = expr`, `not_generic_fk`.
#[proc_macro_derive(Syncable, attributes(morango))]
pub fn derive_syncable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::syncable(&input).into()
}

/// Shows Morango the `belongs_to` relations of a classic-format `enum Relation`.
///
/// ```ignore
/// #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
/// pub enum Relation {
///     #[sea_orm(belongs_to = "super::facility::Entity", from = "Column::FacilityId", to = "super::facility::Column::Id")]
///     Facility,
/// }
/// ```
#[proc_macro_derive(SyncableRelations)]
pub fn derive_syncable_relations(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::syncable_relations(&input).into()
}
