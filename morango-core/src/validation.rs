//! Validation of received records (spec §5.6, §4.4), one record at a time: a record is what it claims to be, or it
//! is refused alone while the rest of its chunk goes on.
//!
//! For a model this side declares, the record's partition, source id and id are recomputed from its own fields with
//! the model's templates or functions ([`crate::Syncable::record_identity`]); the copies of them inside the record
//! JSON must agree too. A hard deletion (no fields left) and a record of a model this side does not declare are
//! checked as Python Morango checks every record (its id from its partition, source id and model name); the latter
//! is then kept, relayed and counted. Only a chunk
//! that is malformed as a whole (records of another transfer, one record twice) is refused whole.
//!
//! Python Morango 0.8.15 writes two record shapes that only differ from ours by the payload a hard deletion
//! should have erased: a conflict between a local hard deletion and an incoming edit keeps the edit in
//! `conflicting_serialized_data`, and its PostgreSQL backend, when an incoming hard deletion conflicts, empties
//! `serialized` but leaves `hard_deleted` unset. Both are accepted as hard deletions, with the payload erased.

use std::collections::HashSet;

use serde_json::Value as Json;

use crate::buffer::BufferRecord;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ids::{is_valid_id, sha2_uuid};
use crate::model::{Record, columns};
use crate::profile::Profile;
use crate::refused::Refusal;

/// A chunk of received records after validation.
#[derive(Debug, Default)]
pub struct Checked {
    /// The records to stage (hard deletions with their payload erased).
    pub accepted: Vec<BufferRecord>,
    /// The records refused.
    pub refused: Vec<Refusal>,
}

/// Longest accepted source id, model name and partition (Python Morango's column sizes; partition is generous).
const MAX_SOURCE_ID: usize = 96;
const MAX_MODEL_NAME: usize = 40;
const MAX_PARTITION: usize = 1024;

/// Checks a chunk of records received for `transfer`: the chunk as a whole (an error: nothing of it may be
/// written), then every record on its own. This is what every receiver runs on every chunk before staging it.
pub fn check_chunk(records: Vec<BufferRecord>, transfer: &str, filter: &Filter, profile: &Profile) -> Result<Checked> {
    let mut seen = HashSet::with_capacity(records.len());
    for record in &records {
        if record.transfer_session != transfer {
            return Err(Error::Invalid(format!("record {} belongs to another transfer session", record.model_uuid)));
        }
        if !seen.insert(record.model_uuid.as_str()) {
            return Err(Error::Invalid(format!("record {} appears twice in one chunk", record.model_uuid)));
        }
    }
    let mut checked = Checked::default();
    for record in records {
        match check_record(record, filter, profile) {
            Ok(record) => checked.accepted.push(record),
            Err(refusal) => checked.refused.push(*refusal),
        }
    }
    Ok(checked)
}

/// One record: the record to stage, or why it is refused.
fn check_record(mut record: BufferRecord, filter: &Filter, profile: &Profile) -> Result<BufferRecord, Box<Refusal>> {
    if let Err(reason) = check_envelope(&record, filter) {
        return Err(Box::new(refusal(&record, reason)));
    }
    erase_hard_deleted_payload(&mut record);
    let model = profile.model(&record.model_name);
    let outcome = if record.hard_deleted {
        check_claimed_id(&record, model)
    } else {
        match (serde_json::from_str::<Json>(&record.serialized), model) {
            (Ok(Json::Object(fields)), Some(model)) => check_identity(&record, &fields, model),
            (Ok(Json::Object(_)), None) => check_claimed_id(&record, None),
            _ => Err("serialized data is not a JSON object".to_owned()),
        }
    };
    match outcome {
        Ok(()) => Ok(record),
        Err(reason) => Err(Box::new(refusal(&record, reason))),
    }
}

fn refusal(record: &BufferRecord, reason: String) -> Refusal {
    Refusal {
        model_uuid: record.model_uuid.clone(),
        model_name: record.model_name.clone(),
        partition: record.partition.clone(),
        source_id: record.source_id.clone(),
        last_saved_instance: record.last_saved_instance.clone(),
        last_saved_counter: record.last_saved_counter,
        reason,
    }
}

/// What every record must satisfy, whatever its model: ids, sizes, text, the filter and its history.
fn check_envelope(record: &BufferRecord, filter: &Filter) -> Result<(), String> {
    if !is_valid_id(&record.model_uuid) || !is_valid_id(&record.last_saved_instance) {
        return Err("ids must be 32 lowercase hex characters".into());
    }
    if record.last_saved_counter < 0 {
        return Err("negative counter".into());
    }
    if record.source_id.is_empty() || record.source_id.chars().count() > MAX_SOURCE_ID {
        return Err(format!("source id must have 1 to {MAX_SOURCE_ID} characters"));
    }
    if record.model_name.is_empty() || record.model_name.chars().count() > MAX_MODEL_NAME {
        return Err(format!("model name must have 1 to {MAX_MODEL_NAME} characters"));
    }
    if record.partition.chars().count() > MAX_PARTITION {
        return Err("partition too long".into());
    }
    if !record._self_ref_fk.is_empty() && !is_valid_id(&record._self_ref_fk) {
        return Err("_self_ref_fk must be empty or an id".into());
    }
    let texts = [&record.serialized, &record.partition, &record.source_id, &record.model_name, &record.profile];
    if texts.into_iter().chain([&record.conflicting_serialized_data]).any(|t| t.contains('\0')) {
        return Err("text must not contain NUL characters".into());
    }
    if !filter.contains_partition(&record.partition) {
        return Err(format!("partition `{}` is outside the transfer's filter", record.partition));
    }
    let mut covers_version = false;
    let mut instances = HashSet::with_capacity(record.rmcb_list.len());
    for rmcb in &record.rmcb_list {
        if rmcb.transfer_session != record.transfer_session || rmcb.model_uuid != record.model_uuid {
            return Err("a record-max counter names another record or transfer".into());
        }
        if !instances.insert(rmcb.instance_id.as_str()) {
            return Err("two record-max counters name the same instance".into());
        }
        if !is_valid_id(&rmcb.instance_id) || rmcb.counter < 0 {
            return Err("invalid record-max counter".into());
        }
        covers_version |= rmcb.instance_id == record.last_saved_instance && rmcb.counter >= record.last_saved_counter;
    }
    if !covers_version {
        return Err("its record-max counters do not include its own version".into());
    }
    Ok(())
}

/// A hard deletion carries no data and is a deletion. Python Morango's hard-delete-versus-edit conflict keeps the
/// edit in the conflict history, and its PostgreSQL backend marks an incoming hard deletion in a conflict only by
/// emptying `serialized`: both become plain hard deletions.
fn erase_hard_deleted_payload(record: &mut BufferRecord) {
    if record.serialized.is_empty() {
        record.hard_deleted = true;
    }
    if record.hard_deleted {
        record.deleted = true;
        if !record.serialized.is_empty() && record.serialized != "{}" {
            record.serialized = "{}".into();
        }
        record.conflicting_serialized_data.clear();
    }
}

/// Morango's own check (spec §4.4), for a record without fields to check (a hard deletion) or of a model this side
/// does not declare: the id is computed from the partition it claims (its own id replaced by `${id}`), the source
/// id and the model name, by the model's `compute_namespaced_id` when it is declared here.
fn check_claimed_id(record: &BufferRecord, model: Option<&dyn crate::registry::SyncableModel>) -> Result<(), String> {
    let template = record.partition.replace(&record.model_uuid, "${id}");
    let id = match model {
        Some(model) => model.compute_namespaced_id(&template, &record.source_id),
        None => sha2_uuid(&[&template, &record.source_id, &record.model_name]),
    };
    if id == record.model_uuid {
        Ok(())
    } else {
        Err("does not match the id computed from its partition, source id and model name".into())
    }
}

/// The record is what its own fields say: the model computes the same partition, source id and id from them, and
/// the copies inside the record JSON agree with the record.
fn check_identity(
    record: &BufferRecord,
    fields: &Record,
    model: &dyn crate::registry::SyncableModel,
) -> Result<(), String> {
    let identity =
        model.record_identity(fields).map_err(|e| format!("its fields give no partition or source id: {e}"))?;
    let source_id = identity.source_id.as_deref().unwrap_or(&record.source_id);
    let id = model.compute_namespaced_id(&identity.partition_template, source_id);
    let partition = identity.partition_template.replace("${id}", &id);
    if partition != record.partition {
        return Err(format!("its fields give the partition `{partition}`, not `{}`", record.partition));
    }
    if source_id != record.source_id {
        return Err(format!("its fields give the source id `{source_id}`, not `{}`", record.source_id));
    }
    if id != record.model_uuid {
        return Err("does not match the id computed from its partition, source id and model name".into());
    }
    for (key, claimed) in [
        (columns::ID, &record.model_uuid),
        (columns::PARTITION, &record.partition),
        (columns::SOURCE_ID, &record.source_id),
    ] {
        if fields.get(key).is_some_and(|value| value.as_str() != Some(claimed.as_str())) {
            return Err(format!("its JSON `{key}` differs from the record's"));
        }
    }
    Ok(())
}
