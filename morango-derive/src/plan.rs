//! A validated model: everything `expand` needs, already known to be correct.

use syn::{Expr, Ident, LitStr, Path, Type};

use crate::relation::Relation;

/// A `Model` that passed validation.
pub struct ModelPlan<'a> {
    /// `Model`.
    pub model: &'a Ident,
    /// `model_name = "..."`.
    pub model_name: LitStr,
    /// `profile = "..."`.
    pub profile: LitStr,
    /// The table name (empty when `table_name` is missing; SeaORM reports that).
    pub table: String,
    /// How the partition template is computed.
    pub partition: IdSource<'a>,
    /// How the source id is computed (`None`: random).
    pub source_id: Option<IdSource<'a>>,
    /// `id_fn = path`.
    pub id_fn: Option<Path>,
    /// `on_conflict = path`.
    pub on_conflict: Option<Path>,
    /// `depends_on` entities.
    pub depends_on: Vec<Type>,
    /// `discriminator(field = "value")`: the field's JSON key, its column and the value.
    pub discriminator: Option<(String, String, LitStr)>,
    /// The synced fields in record order (`id`, source id, partition, then the rest).
    pub synced: Vec<PlanField<'a>>,
    /// The `#[morango(local)]` fields.
    pub local: Vec<PlanField<'a>>,
    /// The fields `id`, `_morango_source_id` and `_morango_partition`.
    pub bookkeeping: [&'a Ident; 3],
    /// `_morango_dirty_bit`.
    pub dirty_bit: &'a Ident,
    /// `#[morango(custom_behavior)]`: no `ActiveModelBehavior` impl.
    pub custom_behavior: bool,
}

/// A column the derive reads or writes.
pub struct PlanField<'a> {
    /// The Rust field.
    pub ident: &'a Ident,
    /// The JSON key.
    pub key: String,
    /// The database column.
    pub column: String,
    /// Its type.
    pub ty: &'a Type,
    /// `#[morango(default = expr)]`.
    pub default: Option<Expr>,
    /// `#[morango(with = path)]`: the codec module of its record JSON.
    pub with: Option<Path>,
}

/// Where a partition template or source id comes from.
pub enum IdSource<'a> {
    /// A `${field}` template.
    Template(LitStr, Vec<TemplatePiece<'a>>),
    /// `partition_fn = path` / `source_id_fn = path`.
    Function(Path),
}

/// A checked template piece.
pub enum TemplatePiece<'a> {
    /// Literal text (including a kept `${id}`).
    Text(String),
    /// The value of a field.
    Field(&'a Ident, String),
}

/// What is left to emit when validation failed, so that other derives and other models see no cascade of errors.
pub struct Fallback<'a> {
    /// `Model`.
    pub model: &'a Ident,
    /// `#[morango(custom_behavior)]`.
    pub custom_behavior: bool,
}

/// The relations of one entity that passed validation.
pub struct RelationsPlan {
    /// The relations that become graph edges.
    pub relations: Vec<Relation>,
}
