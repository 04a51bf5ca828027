//! The runtime view of a syncable model that the engine works with.

use std::marker::PhantomData;

use sea_orm::DbErr;

use crate::model::{Bookkeeping, IdError, Syncable};

/// A syncable model as the engine sees it at run time (object safe, one per profile member).
pub trait SyncableModel: Send + Sync {
    /// Morango model name.
    fn model_name(&self) -> &'static str;
}

/// The [`SyncableModel`] of entity `E`.
pub struct ModelOf<E>(PhantomData<fn() -> E>);

impl<E> ModelOf<E> {
    /// The value the `profile!` macro registers.
    pub const NEW: Self = ModelOf(PhantomData);
}

impl<E: Syncable> SyncableModel for ModelOf<E> {
    fn model_name(&self) -> &'static str {
        E::MODEL_NAME
    }
}

/// Computes the record id, source id and partition of a row about to be inserted (Morango's `calculate_uuid`).
/// `#[derive(Syncable)]` calls this from `ActiveModelBehavior::before_save`; call it from your own
/// `before_save` if you opted out with `#[morango(custom_behavior)]`.
pub fn assign_ids<E: Syncable>(mut model: E::ActiveModel) -> Result<E::ActiveModel, IdError> {
    let current = E::bookkeeping(&model);
    if current.id.is_some() && current.source_id.is_some() && current.partition.is_some() {
        return Ok(model);
    }
    let template = E::partition_template(&model)?;
    let source_id = match current.source_id {
        Some(source_id) => source_id,
        None => E::source_id(&model)?.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
    };
    if source_id.is_empty() {
        return Err(IdError::EmptySourceId);
    }
    let id = current.id.unwrap_or_else(|| E::compute_namespaced_id(&template, &source_id, E::MODEL_NAME));
    let partition = template.replace("${id}", &id);
    E::set_bookkeeping(&mut model, Bookkeeping { id: Some(id), source_id: Some(source_id), partition: Some(partition) });
    Ok(model)
}

/// The body of the generated `ActiveModelBehavior::before_save`: assigns ids on insert.
pub fn before_save<E: Syncable>(model: E::ActiveModel, insert: bool) -> Result<E::ActiveModel, DbErr> {
    if !insert {
        return Ok(model);
    }
    assign_ids::<E>(model).map_err(|e| DbErr::Custom(format!("{} ({}): {e}", E::MODEL_NAME, E::PROFILE)))
}
