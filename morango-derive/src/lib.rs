//! `#[derive(Syncable)]` and `#[derive(SyncableRelations)]` for SeaORM entities.
//!
//! Use them through the `morango` crate, which re-exports them. The macro works in three steps, each in its own
//! module: `ast` reads what the user wrote, `valid` checks it (reporting every error at once) and `expand`
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

/// Makes a SeaORM entity a Morango syncable model: implements `morango::Syncable` for `Entity` and
/// `ActiveModelBehavior` for `ActiveModel` (record ids are assigned on insert).
///
/// Put it on the entity's `Model`, next to `DeriveEntityModel`:
///
/// ```ignore
/// #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
/// #[sea_orm(table_name = "learner")]
/// #[morango(profile = "facilitydata", model_name = "facilityuser",
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
/// The `id: String` primary key and the three bookkeeping fields are required, with these names and types.
/// Relations: in the classic and `#[sea_orm::compact_model]` formats add `#[derive(SyncableRelations)]` to
/// `enum Relation`; with `#[sea_orm::model]` nothing more is needed (the derive also runs on the generated
/// `ModelEx`, where it reads the relation fields).
///
/// Model keys, in `#[morango(...)]` on the struct:
/// - `profile = "..."` (required): the profile the model syncs in.
/// - `model_name = "..."` (required): Morango's model name, unique within the profile.
/// - `partition = "..."` or `partition_fn = path` (one is required): a template where `${field}` is a field of
///   the model and `${id}` the record id, or a `fn(&ActiveModel) -> Result<String, morango::IdError>`.
/// - `source_id = "..."` or `source_id_fn = path`: the same for the source id; without either, the source id is
///   random.
/// - `id_fn = path`: a `fn(&str, &str, &str) -> String` replacing Morango's `compute_namespaced_id`
///   (arguments: partition template, source id, model name).
/// - `on_conflict = path`: a `fn(&morango::Conflict) -> morango::Resolution`.
/// - `depends_on = "super::x::Entity"` (repeatable, or `depends_on = ["...", "..."]`): apply this model's records
///   after those of another model it refers to without a foreign key.
/// - `discriminator(field = "value")`: the table is shared with other models (same `table_name`); this model's
///   rows are those whose `field` holds `value` (Kolibri's collections: `discriminator(kind = "classroom")`). Each
///   model serializes, deletes and applies only its rows; a received record with another value is refused. Every
///   model of a shared table needs one, on the same field (the engine checks when it opens).
/// - `custom_behavior`: do not implement `ActiveModelBehavior`; call `morango::registry::assign_ids` from your own
///   `before_save` on insert.
///
/// Field keys, in `#[morango(...)]` on a field:
/// - `local`: never synced; written with its default when a record arrives.
/// - `default = expr`: the value when a peer's record lacks the field (otherwise `None` for `Option`, or
///   `Default::default()`).
/// - `with = path`: the field's record JSON is written by `path::to_json(&T) -> serde_json::Value` and read by
///   `path::from_json(&serde_json::Value) -> Result<T, String>` instead of `MorangoValue`
///   (e.g. Kolibri's `DateTimeTzField` text, or JSON kept as a string).
/// - `not_generic_fk`: the field pair `x_type` + `x_id` (or `content_type` + `object_id`) is not a generic
///   foreign key.
///
/// Rejected at compile time, with a message saying what to write instead: missing keys, unknown keys, template
/// fields the model lacks, a database-generated or non-`String` id, missing or mistyped bookkeeping fields,
/// synced fields without a default, generic foreign keys, relations to non-syncable entities, more than one
/// self-referential foreign key, many-to-many relations through a junction that is not a syncable model of the
/// same profile, and dependency loops. `morango::profile!` also checks that a profile is closed under foreign keys
/// and has unique model names.
#[proc_macro_derive(Syncable, attributes(morango))]
pub fn derive_syncable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::syncable(&input).into()
}

/// Shows Morango the `belongs_to` relations of a classic-format (or `#[sea_orm::compact_model]`) `enum Relation`:
/// implements `SyncRelations`, which `#[derive(Syncable)]` on the `Model` uses for the dependency graph.
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
