//! What `#[derive(Syncable)]` implements for an entity: Morango's per-model knowledge.
//!
//! The derive writes an implementation of [`Syncable`] for the entity; the engine only talks to models
//! through this trait (and [`crate::profile::Profile`], which lists a profile's models).

use sea_orm::{ActiveValue, EntityTrait};
use serde_json::{Map, Value};

use crate::graph::NodeRef;
use crate::ids;

/// Names of the bookkeeping columns every syncable table carries (Morango's own names).
pub mod columns {
    /// The record id: 32 lowercase hex characters.
    pub const ID: &str = "id";
    /// The source id the record id was computed from; serialized.
    pub const SOURCE_ID: &str = "_morango_source_id";
    /// The record's partition (`${id}` already replaced); serialized.
    pub const PARTITION: &str = "_morango_partition";
    /// True while the row holds changes not yet serialized into the store; never serialized.
    pub const DIRTY_BIT: &str = "_morango_dirty_bit";
}

/// A JSON object holding one record's fields, in Morango's record JSON shape.
pub type Record = Map<String, Value>;

/// A SeaORM entity whose rows Morango syncs. Implemented by `#[derive(Syncable)]` on the `Model`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a syncable model",
    label = "this entity has no `#[derive(Syncable)]`",
    note = "add `#[derive(Syncable)]` and `#[morango(profile = \"...\", model_name = \"...\")]` to its `Model`, or remove the relation to it"
)]
pub trait Syncable:
    EntityTrait<Model: Send + Sync, ActiveModel: Send + Sync> + Default + Send + Sync + 'static
{
    /// Morango's model name (`morango_model_name`), unique within the profile.
    const MODEL_NAME: &'static str;
    /// The profile this model belongs to (e.g. `"facilitydata"`).
    const PROFILE: &'static str;
    /// JSON keys of the synced fields, in record order (`id`, `_morango_source_id`, `_morango_partition`, then
    /// the model's own fields in declaration order, without local fields and the dirty bit).
    const FIELDS: &'static [&'static str];
    /// Database column names of the same fields, in the same order. They differ from [`Syncable::FIELDS`] where
    /// `#[sea_orm(column_name = "...")]` renames a column, and for the bookkeeping fields, whose leading underscore
    /// SeaORM drops (`_morango_partition` is stored in `morango_partition`).
    const SYNCED_COLUMNS: &'static [&'static str];
    /// Database column names of `#[morango(local)]` fields: written on insert with their default, never updated
    /// by sync and never serialized.
    const LOCAL_COLUMNS: &'static [&'static str];
    /// This model's node in the compile-time dependency graph.
    #[doc(hidden)]
    const NODE: NodeRef;
    /// True when the model declared `#[morango(on_conflict = ...)]`.
    const HAS_CONFLICT_HOOK: bool = false;
    /// `#[morango(discriminator(field = "value"))]`: the model's rows are those of its table whose `field` holds
    /// `value` (several models in one table, as Kolibri keeps facilities, classrooms and groups).
    const DISCRIMINATOR: Option<Discriminator> = None;

    /// The partition template of a record about to be inserted; may contain the literal `${id}`.
    fn partition_template(model: &Self::ActiveModel) -> Result<String, IdError>;

    /// The source id of a record about to be inserted; `None` means "random" (a uuid4 hex).
    fn source_id(model: &Self::ActiveModel) -> Result<Option<String>, IdError>;

    /// Morango's `compute_namespaced_id`: the record id from its partition template, source id and model name.
    /// Override it with `#[morango(id_fn = path)]`, e.g. when a root record's id must equal a certificate id.
    fn compute_namespaced_id(partition_template: &str, source_id: &str, model_name: &str) -> String {
        ids::sha2_uuid(&[partition_template, source_id, model_name])
    }

    /// The record id of a model.
    fn record_id(model: &Self::Model) -> &str;

    /// Reads the id, source id and partition of an active model (`None` where not set).
    fn bookkeeping(model: &Self::ActiveModel) -> Bookkeeping;

    /// Stores the id, source id and partition into an active model before it is inserted.
    fn set_bookkeeping(model: &mut Self::ActiveModel, bookkeeping: Bookkeeping);

    /// Serializes a row into Morango's record JSON (keys are [`Syncable::FIELDS`]).
    fn to_record(model: &Self::Model) -> Record;

    /// Builds an active model from record JSON: every column `Set`, missing keys take the field's default,
    /// unknown keys are ignored, the dirty bit is `false`. Errors name every field that could not be read.
    fn from_record(record: &Record) -> Result<Self::ActiveModel, FieldErrors>;

    /// The per-model conflict hook. The default is Morango's behaviour: the local version wins and the incoming
    /// JSON is recorded in `conflicting_serialized_data`.
    fn resolve_conflict(_conflict: &Conflict<'_>) -> Resolution {
        Resolution::KeepLocal
    }

    /// The partition template and source id this model computes from a record's own fields: what a received record
    /// must claim. The derive reads only the template fields; this default builds the whole active model and calls
    /// [`Syncable::partition_template`] and [`Syncable::source_id`] (for `partition_fn` / `source_id_fn`).
    fn record_identity(record: &Record) -> Result<RecordIdentity, IdError> {
        let model = Self::from_record(record).map_err(|errors| IdError::Custom(errors.to_string()))?;
        Ok(RecordIdentity {
            partition_template: Self::partition_template(&model)?,
            source_id: Self::source_id(&model)?,
        })
    }
}

/// Which rows of a table shared by several models belong to one of them: those whose `field` holds `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discriminator {
    /// The field's JSON key.
    pub field: &'static str,
    /// Its database column.
    pub column: &'static str,
    /// The value that marks the model's rows.
    pub value: &'static str,
}

impl Discriminator {
    /// Whether `record` is one of the model's rows.
    pub fn matches(&self, record: &Record) -> bool {
        record.get(self.field).and_then(Value::as_str) == Some(self.value)
    }
}

/// What a model computes from a record's fields: its partition template (possibly with the literal `${id}`) and its
/// source id (`None` when the model draws source ids at random, so any source id fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIdentity {
    /// The partition template.
    pub partition_template: String,
    /// The source id, unless random.
    pub source_id: Option<String>,
}

/// The three identifying values a syncable row carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bookkeeping {
    /// The record id.
    pub id: Option<String>,
    /// `_morango_source_id`.
    pub source_id: Option<String>,
    /// `_morango_partition`.
    pub partition: Option<String>,
}

/// Why a record id could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A field used by the partition or source-id template has no value.
    #[error("field `{0}` must be set before the record id can be computed")]
    FieldNotSet(&'static str),
    /// Morango rejects empty source ids.
    #[error("the source id is empty; Morango requires a non-empty source id")]
    EmptySourceId,
    /// An application-defined `partition_fn` / `source_id_fn` failed.
    #[error("{0}")]
    Custom(String),
}

/// A field of an incoming record that could not be converted to the local column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON key.
    pub field: &'static str,
    /// What was wrong with its value.
    pub message: String,
}

/// All field errors of one record.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct FieldErrors(pub Vec<FieldError>);

/// A conflict between the local version of a record and an incoming one that does not contain it.
#[derive(Debug)]
pub struct Conflict<'a> {
    /// The record id.
    pub id: &'a str,
    /// The local record JSON.
    pub local: &'a Record,
    /// The incoming record JSON.
    pub incoming: &'a Record,
}

/// What a conflict hook decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Keep the local data (Morango's behaviour).
    KeepLocal,
    /// Take the incoming data.
    TakeIncoming,
    /// Store this merged record.
    Merged(Record),
}

impl Resolution {
    /// The record JSON to store instead of the local one (`None`: keep the local one).
    pub(crate) fn replacement(self, incoming: &Record) -> Option<String> {
        match self {
            Resolution::KeepLocal => None,
            Resolution::TakeIncoming => Some(crate::json::dumps(&Value::Object(incoming.clone()))),
            Resolution::Merged(record) => Some(crate::json::dumps(&Value::Object(record))),
        }
    }
}

/// A field type that Morango can write to and read from record JSON the way Django's encoder does.
///
/// Implemented for strings, integers, floats, booleans, `Option<T>`, chrono date/time types, `uuid::Uuid` and
/// `serde_json::Value`. Implement it for your own column types (e.g. an `ActiveEnum`) to sync them.
///
/// When one field of a common type must be written differently (another application's format), give that field a
/// codec instead: `#[morango(with = my_codec)]` names a module with
/// `fn to_json(value: &T) -> serde_json::Value` and `fn from_json(value: &serde_json::Value) -> Result<T, String>`
/// (Kolibri writes its timezone-aware datetimes as `"2026-01-01 10:00:00.000000(Etc/UTC)"`).
#[diagnostic::on_unimplemented(
    message = "Morango cannot write `{Self}` to record JSON",
    label = "unsupported field type",
    note = "implement `morango::MorangoValue` for it, or mark the field `#[morango(local)]` to keep it out of sync"
)]
pub trait MorangoValue: Sized {
    /// The JSON value Django's `DjangoJSONEncoder` would write for this value.
    fn to_json(&self) -> Value;
    /// Reads the value from record JSON.
    fn from_json(value: &Value) -> Result<Self, String>;
}

/// A field type usable in a partition or source-id template (`${field}`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in a partition or source-id template",
    note = "use a string, integer or uuid field, or compute the value with `partition_fn` / `source_id_fn`"
)]
pub trait TemplateValue {
    /// The text substituted for `${field}`; `None` when there is no value.
    fn template_text(&self) -> Option<String>;
}

/// A synced field type that has a value to use when a peer with an older schema omits the field.
#[diagnostic::on_unimplemented(
    message = "synced field of type `{Self}` has no default value",
    label = "a peer with an older schema may omit this field",
    note = "make the field an `Option<_>`, implement `Default` for its type, or add `#[morango(default = <expr>)]`"
)]
pub trait SyncDefault {
    /// The value used when incoming record JSON lacks the field.
    fn sync_default() -> Self;
}

impl<T: Default> SyncDefault for T {
    fn sync_default() -> Self {
        T::default()
    }
}

/// Reads a template field from record JSON, as [`template_field`] reads it from an active model: the value under
/// `key`, parsed as the field's type; a missing, unreadable or `None` value is an error naming the field.
pub fn record_template_field<V>(record: &Record, key: &str, field: &'static str) -> Result<String, IdError>
where
    V: TemplateValue + MorangoValue,
{
    let value = record.get(key).ok_or(IdError::FieldNotSet(field))?;
    let value = V::from_json(value).map_err(|message| IdError::Custom(format!("field `{field}`: {message}")))?;
    value.template_text().ok_or(IdError::FieldNotSet(field))
}

/// Reads a template field of an active model; an unset or `None` value is an error naming the field.
pub fn template_field<V>(value: &ActiveValue<V>, field: &'static str) -> Result<String, IdError>
where
    V: TemplateValue + Into<sea_orm::Value>,
{
    value.try_as_ref().and_then(TemplateValue::template_text).ok_or(IdError::FieldNotSet(field))
}
