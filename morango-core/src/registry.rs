//! The runtime view of a syncable model: what the engine does with rows of a concrete entity type.
//!
//! The `profile!` macro registers one [`ModelOf<E>`] per member; the stages work with `&dyn SyncableModel`
//! so that everything that does not need the concrete type is written once, with set-based SQL.

use std::marker::PhantomData;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Iterable, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, RelationType, TransactionTrait,
};

use crate::error::{DbContext, Result};
use crate::filter::Filter;
use crate::model::{
    Bookkeeping, Conflict, Discriminator, IdError, Record, RecordIdentity, Resolution, Syncable, columns,
};

/// A row of an application table that holds changes not yet serialized into the store.
#[derive(Debug)]
pub struct AppRow {
    /// The record id.
    pub id: String,
    /// The row's record JSON (known fields only).
    pub record: Record,
    /// `_morango_partition`.
    pub partition: String,
    /// `_morango_source_id`.
    pub source_id: String,
}

/// A record to write into an application table.
#[derive(Debug)]
pub struct IncomingRow {
    /// The record id.
    pub id: String,
    /// The record JSON from the store.
    pub record: Record,
    /// The store row's partition.
    pub partition: String,
    /// The store row's source id.
    pub source_id: String,
}

/// A foreign key of a model, read from its SeaORM relation definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The JSON key (field name) holding the referenced id.
    pub field: &'static str,
    /// The referenced table.
    pub target_table: String,
    /// The referenced column.
    pub target_column: String,
    /// True for the model's self-referential foreign key (a tree).
    pub self_ref: bool,
}

/// A syncable model as the engine sees it at run time (object safe, one per profile member).
#[async_trait::async_trait]
pub trait SyncableModel: Send + Sync {
    /// Morango model name.
    fn model_name(&self) -> &'static str;
    /// The profile the model declares.
    fn profile(&self) -> &'static str;
    /// The application table.
    fn table(&self) -> &'static str;
    /// JSON keys of the synced fields.
    fn fields(&self) -> &'static [&'static str];
    /// Morango's `compute_namespaced_id` for this model.
    fn compute_namespaced_id(&self, partition_template: &str, source_id: &str) -> String;
    /// The partition template and source id the model computes from a record's fields.
    fn record_identity(&self, record: &Record) -> std::result::Result<RecordIdentity, IdError>;
    /// Which rows of a shared table are the model's (`#[morango(discriminator(...))]`).
    fn discriminator(&self) -> Option<Discriminator>;
    /// True when the model has a conflict hook.
    fn has_conflict_hook(&self) -> bool;
    /// Runs the model's conflict hook.
    fn resolve_conflict(&self, conflict: &Conflict<'_>) -> Resolution;
    /// Foreign keys to other tables (and the self-reference), from the entity's relations.
    fn foreign_keys(&self) -> Vec<ForeignKey>;
    /// The database column holding `field` (SeaORM names the column of a field `_morango_x` `morango_x`
    /// unless `column_name` says otherwise).
    fn column(&self, field: &str) -> String;
    /// Tables reached by `has_many` relations (a classic-format junction shows up here).
    fn has_many_tables(&self) -> Vec<String>;
    /// Up to `limit` dirty rows with ids after `after`, in id order, restricted to partitions under `filter`.
    async fn dirty_rows(
        &self,
        txn: &DatabaseTransaction,
        after: Option<&str>,
        limit: u64,
        filter: Option<&Filter>,
    ) -> Result<Vec<AppRow>>;
    /// Upserts records into the application table; returns, per record in order, `None` on success or the
    /// error text. Never fails as a whole for a bad record: each failure is isolated in a savepoint.
    async fn apply(&self, txn: &DatabaseTransaction, rows: &[IncomingRow]) -> Result<Vec<Option<String>>>;
}

/// The [`SyncableModel`] of entity `E`.
pub struct ModelOf<E>(PhantomData<fn() -> E>);

impl<E> ModelOf<E> {
    /// The value the `profile!` macro registers.
    pub const NEW: Self = ModelOf(PhantomData);
}

/// `substr(column, 1, <prefix length>) = prefix` for any prefix: a case-sensitive, wildcard-free prefix test.
fn partition_under(column: &str, filter: &Filter) -> sea_orm::Condition {
    let mut any = sea_orm::Condition::any();
    for prefix in filter.prefixes() {
        let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let head =
            Func::cust(Alias::new("substr")).args([Expr::col(Alias::new(column)), Expr::val(1), Expr::val(length)]);
        any = any.add(Expr::expr(head).eq(prefix.clone()));
    }
    any
}

#[async_trait::async_trait]
impl<E: Syncable> SyncableModel for ModelOf<E> {
    fn model_name(&self) -> &'static str {
        E::MODEL_NAME
    }

    fn profile(&self) -> &'static str {
        E::PROFILE
    }

    fn table(&self) -> &'static str {
        E::default().table_name()
    }

    fn fields(&self) -> &'static [&'static str] {
        E::FIELDS
    }

    fn compute_namespaced_id(&self, partition_template: &str, source_id: &str) -> String {
        E::compute_namespaced_id(partition_template, source_id, E::MODEL_NAME)
    }

    fn record_identity(&self, record: &Record) -> std::result::Result<RecordIdentity, IdError> {
        if let Some(discriminator) = E::DISCRIMINATOR
            && !discriminator.matches(record)
        {
            return Err(IdError::Custom(format!(
                "its `{}` is not \"{}\", which marks a {} row",
                discriminator.field,
                discriminator.value,
                E::MODEL_NAME
            )));
        }
        E::record_identity(record)
    }

    fn discriminator(&self) -> Option<Discriminator> {
        E::DISCRIMINATOR
    }

    fn has_conflict_hook(&self) -> bool {
        E::HAS_CONFLICT_HOOK
    }

    fn resolve_conflict(&self, conflict: &Conflict<'_>) -> Resolution {
        E::resolve_conflict(conflict)
    }

    fn foreign_keys(&self) -> Vec<ForeignKey> {
        let table = self.table();
        <E::Relation as Iterable>::iter()
            .map(|relation| relation.def())
            // SeaORM's `belongs_to` builds a `HasOne` definition that is not the owner side.
            .filter(|def| !def.is_owner && def.rel_type == RelationType::HasOne)
            .filter_map(|def| {
                let column = single_column(&def.from_col)?;
                let field = column_field::<E>(&column)?;
                let target_table = table_name(&def.to_tbl)?;
                let target_column = single_column(&def.to_col)?;
                Some(ForeignKey { field, self_ref: target_table == table, target_table, target_column })
            })
            .collect()
    }

    fn column(&self, field: &str) -> String {
        db_column::<E>(field)
    }

    fn has_many_tables(&self) -> Vec<String> {
        <E::Relation as Iterable>::iter()
            .map(|relation| relation.def())
            .filter(|def| def.rel_type == RelationType::HasMany)
            .filter_map(|def| table_name(&def.to_tbl))
            .collect()
    }

    async fn dirty_rows(
        &self,
        txn: &DatabaseTransaction,
        after: Option<&str>,
        limit: u64,
        filter: Option<&Filter>,
    ) -> Result<Vec<AppRow>> {
        let mut select = E::find()
            .filter(Expr::cust(crate::tracking::dirty_condition(&db_column::<E>(columns::DIRTY_BIT))))
            .order_by_asc(Expr::col(Alias::new(columns::ID)))
            .limit(limit);
        if let Some(after) = after {
            select = select.filter(Expr::col(Alias::new(columns::ID)).gt(after));
        }
        if let Some(filter) = filter {
            select = select.filter(partition_under(&db_column::<E>(columns::PARTITION), filter));
        }
        if let Some(discriminator) = E::DISCRIMINATOR {
            select = select.filter(Expr::col(Alias::new(discriminator.column)).eq(discriminator.value));
        }
        if txn.get_database_backend() == DbBackend::Postgres {
            // An application write racing with serialization waits instead of losing its dirty bit.
            select = select.lock_exclusive();
        }
        let models = select.all(txn).await.context(|| format!("reading dirty rows of `{}`", E::MODEL_NAME))?;
        Ok(models
            .iter()
            .map(|model| {
                let record = E::to_record(model);
                let text = |key: &str| record.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                AppRow {
                    id: E::record_id(model).to_owned(),
                    partition: text(columns::PARTITION),
                    source_id: text(columns::SOURCE_ID),
                    record,
                }
            })
            .collect())
    }

    async fn apply(&self, txn: &DatabaseTransaction, rows: &[IncomingRow]) -> Result<Vec<Option<String>>> {
        let mut outcome: Vec<Option<String>> = vec![None; rows.len()];
        let mut parsed = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match E::from_record(&row.record) {
                Ok(mut model) => {
                    E::set_bookkeeping(
                        &mut model,
                        Bookkeeping {
                            id: Some(row.id.clone()),
                            source_id: Some(row.source_id.clone()),
                            partition: Some(row.partition.clone()),
                        },
                    );
                    parsed.push((i, model));
                }
                Err(errors) => outcome[i] = Some(errors.to_string()),
            }
        }
        if parsed.is_empty() {
            return Ok(outcome);
        }
        let batch: Vec<E::ActiveModel> = parsed.iter().map(|(_, model)| model.clone()).collect();
        if upsert::<E>(txn, batch).await.is_err() {
            // Some row broke a constraint: apply one by one so that only the bad rows stay behind.
            for (i, model) in &parsed {
                if let Err(error) = upsert::<E>(txn, vec![model.clone()]).await {
                    outcome[*i] = Some(error.to_string());
                }
            }
        }
        // The upsert leaves alone rows the application changed meanwhile (they are dirty); the record stays
        // waiting, and the next serialization settles it as an app-level conflict (the local edit wins).
        let ids: Vec<&str> = parsed.iter().map(|(i, _)| rows[*i].id.as_str()).collect();
        let changed = dirty_among::<E>(txn, &ids).await?;
        for (i, _) in &parsed {
            if outcome[*i].is_none() && changed.contains(&rows[*i].id) {
                outcome[*i] = Some("changed locally during the sync; the local edit is kept".into());
            }
        }
        Ok(outcome)
    }
}

/// Which of `ids` are dirty in the application table.
async fn dirty_among<E: Syncable>(
    txn: &DatabaseTransaction,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let mut values: Vec<sea_orm::Value> = vec![true.into()];
    values.extend(ids.iter().map(|id| crate::sql::text(*id)));
    let rows = crate::sql::query(
        txn,
        "checking for local changes",
        &format!(
            "SELECT {id} FROM {table} WHERE {dirty} = $1 AND {id} IN ({})",
            crate::sql::placeholders(2, ids.len()),
            id = crate::sql::ident(columns::ID),
            table = crate::sql::ident(E::default().table_name()),
            dirty = crate::sql::ident(&db_column::<E>(columns::DIRTY_BIT)),
        ),
        values,
    )
    .await?;
    rows.iter().map(|row| crate::sql::get(row, columns::ID)).collect()
}

/// One multi-row upsert inside a savepoint, so a failure leaves the surrounding transaction usable.
async fn upsert<E: Syncable>(txn: &DatabaseTransaction, models: Vec<E::ActiveModel>) -> std::result::Result<(), DbErr> {
    let savepoint = txn.begin().await?;
    let update: Vec<Alias> = E::SYNCED_COLUMNS.iter().filter(|c| **c != columns::ID).map(|c| Alias::new(*c)).collect();
    let mut on_conflict = OnConflict::column(Alias::new(columns::ID));
    on_conflict.update_columns(update).action_and_where(
        Expr::col((Alias::new(E::default().table_name()), Alias::new(db_column::<E>(columns::DIRTY_BIT)))).eq(false),
    );
    let result = E::insert_many(models).on_conflict(on_conflict).exec_without_returning(&savepoint).await;
    match result {
        Ok(_) => savepoint.commit().await,
        Err(error) => {
            savepoint.rollback().await?;
            Err(error)
        }
    }
}

fn single_column(identity: &sea_orm::Identity) -> Option<String> {
    match identity {
        sea_orm::Identity::Unary(column) => Some(column.to_string()),
        _ => None,
    }
}

fn table_name(table: &sea_orm::sea_query::TableRef) -> Option<String> {
    match table {
        sea_orm::sea_query::TableRef::Table(name, _) => Some(name.1.to_string()),
        _ => None,
    }
}

/// The database column of a field: SeaORM drops a leading underscore unless `column_name` is given.
fn db_column<E: Syncable>(field: &str) -> String {
    use sea_orm::IdenStatic;
    let names: Vec<&'static str> = <E::Column as Iterable>::iter().map(|c| c.as_str()).collect();
    if let Some(i) = E::FIELDS.iter().position(|f| *f == field) {
        return E::SYNCED_COLUMNS[i].to_owned();
    }
    let trimmed = field.trim_start_matches('_');
    [field, trimmed].into_iter().find(|n| names.contains(n)).unwrap_or(field).to_owned()
}

fn column_field<E: Syncable>(column: &str) -> Option<&'static str> {
    E::SYNCED_COLUMNS.iter().position(|c| *c == column).map(|i| E::FIELDS[i])
}

/// Computes the record id, source id and partition of a row about to be inserted (Morango's `calculate_uuid`).
/// `#[derive(Syncable)]` calls this from `ActiveModelBehavior::before_save`; call it from your own
/// `before_save` if you opted out with `#[morango(custom_behavior)]`, and before `Entity::insert_many`.
pub fn assign_ids<E: Syncable>(mut model: E::ActiveModel) -> std::result::Result<E::ActiveModel, IdError> {
    let current = E::bookkeeping(&model);
    if current.id.is_some() && current.source_id.is_some() && current.partition.is_some() {
        return Ok(model);
    }
    let template = E::partition_template(&model)?;
    let source_id = match current.source_id {
        Some(source_id) => source_id,
        None => E::source_id(&model)?.unwrap_or_else(crate::ids::random_id),
    };
    if source_id.is_empty() {
        return Err(IdError::EmptySourceId);
    }
    let id = current.id.unwrap_or_else(|| E::compute_namespaced_id(&template, &source_id, E::MODEL_NAME));
    let partition = template.replace("${id}", &id);
    E::set_bookkeeping(
        &mut model,
        Bookkeeping { id: Some(id), source_id: Some(source_id), partition: Some(partition) },
    );
    Ok(model)
}

/// The body of the generated `ActiveModelBehavior::before_save`: on insert, assigns the ids and marks the row
/// dirty (the change-tracking triggers keep it dirty on every later write).
pub fn before_save<E: Syncable>(model: E::ActiveModel, insert: bool) -> std::result::Result<E::ActiveModel, DbErr> {
    if !insert {
        return Ok(model);
    }
    let mut model =
        assign_ids::<E>(model).map_err(|e| DbErr::Custom(format!("{} ({}): {e}", E::MODEL_NAME, E::PROFILE)))?;
    let dirty = db_column::<E>(columns::DIRTY_BIT);
    if let Some(column) = <E::Column as Iterable>::iter().find(|c| sea_orm::IdenStatic::as_str(c) == dirty)
        && model.get(column).is_not_set()
    {
        model.set(column, true.into());
    }
    Ok(model)
}

/// Inserts many rows at once, computing their record ids first (SeaORM's `insert_many` runs no hooks).
pub async fn insert_many<E, C>(db: &C, models: Vec<E::ActiveModel>) -> std::result::Result<(), DbErr>
where
    E: Syncable,
    C: ConnectionTrait,
{
    let models =
        models.into_iter().map(|model| before_save::<E>(model, true)).collect::<std::result::Result<Vec<_>, _>>()?;
    if models.is_empty() {
        return Ok(());
    }
    E::insert_many(models).exec_without_returning(db).await.map(|_| ())
}
