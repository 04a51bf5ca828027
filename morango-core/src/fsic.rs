//! Filter-specific instance counters (spec §6).
//!
//! An FSIC summarises, for a sync filter, which records a database already holds: for each partition, the
//! highest counter of every instance up to which it has everything. Both peers compute one from their
//! `DatabaseMaxCounter` (DMC) rows; the producer then sends the records that the directional diff asks for.
//!
//! Two formats exist: v2 `{"super": {P: {I: C}}, "sub": {P: {I: C}}}` when both peers advertise
//! `FSIC_V2_FORMAT`, and the legacy v1 `{I: C}`.
//!
//! Deliberate differences from Python Morango:
//! * [`expand_for_use`] does not modify its input (Python's `expand_fsic_for_use` rewrites the caller's `sub`).
//! * [`dmc_updates_v2`] / [`dmc_updates_v1`] only list the rows to upsert; the engine applies them with "only if
//!   higher", so counters never move down (spec §15 W4; Python overwrites higher counters with lower ones).
//! * After a v2 receive the engine claims [`claims_v2`], the sender's FSIC expanded for the filter, not only its
//!   raw `sub` part, so that partial-scope devices learn their peer's counters and the next sync moves nothing.
//! * Partition prefix tests are plain, case-sensitive string prefixes everywhere. Python's SQL uses `LIKE`, which
//!   on SQLite ignores ASCII case and treats `_`/`%` in stored partitions as wildcards (§15); the engine's
//!   `is_backed` queries must use the same plain prefix test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

use crate::filter::Filter;
use crate::ids::is_valid_id;
use crate::json::dumps;

/// Counters per instance: instance id → counter.
pub type InstanceCounters = BTreeMap<String, i64>;

/// A v1 (legacy) FSIC: instance id → counter, for the whole filter.
pub type FsicV1 = InstanceCounters;

/// Counters per partition: partition → instance counters (an expanded v2 FSIC, or a v2 diff).
pub type PartitionCounters = BTreeMap<String, InstanceCounters>;

/// A v2 FSIC as exchanged on the wire (JSON keys `"super"` and `"sub"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsicV2 {
    /// DMC partitions that are strict prefixes of a filter prefix (knowledge covering the whole filter prefix).
    pub super_partitions: PartitionCounters,
    /// DMC partitions inside the filter (the filter prefixes themselves included).
    pub sub_partitions: PartitionCounters,
}

/// One `DatabaseMaxCounter` row: this database has every record of `instance_id` up to `counter` under the
/// partition prefix `partition`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DmcRow {
    /// The partition prefix (`""` = the whole database).
    pub partition: String,
    /// The instance whose writes are counted.
    pub instance_id: String,
    /// The instance's counter.
    pub counter: i64,
}

/// Why an FSIC received from a peer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsicError {
    /// The text is not JSON.
    #[error("FSIC is not valid JSON: {0}")]
    InvalidJson(String),
    /// A value that must be a JSON object is something else.
    #[error("FSIC {location} must be a JSON object")]
    NotAnObject {
        /// Where in the FSIC (e.g. `sub["abc"]`).
        location: String,
    },
    /// A v2 FSIC lacks `"super"` or `"sub"`.
    #[error("FSIC v2 is missing the \"{0}\" key")]
    MissingKey(&'static str),
    /// An instance id is not 32 lowercase hex characters.
    #[error("FSIC {location} has an invalid instance id {instance_id:?}")]
    InvalidInstanceId {
        /// Where in the FSIC.
        location: String,
        /// The offending key.
        instance_id: String,
    },
    /// A counter is not a non-negative integer that fits in an `i64`.
    #[error("FSIC {location} has an invalid counter {value} for instance {instance_id}")]
    InvalidCounter {
        /// Where in the FSIC.
        location: String,
        /// The instance the counter belongs to.
        instance_id: String,
        /// The offending value, as JSON.
        value: String,
    },
    /// A `sub` partition lies outside the transfer session's filter (Morango's `MorangoInvalidFSICPartition`).
    #[error("Partition '{partition}' is not in filter")]
    PartitionOutsideFilter {
        /// The offending partition.
        partition: String,
    },
}

// ---------------------------------------------------------------------------------------------------------------
// Calculation

/// Computes this database's v2 FSIC for `filter` from its DMC rows (spec §6.2,
/// `calculate_filter_specific_instance_counters(v2_format=True)`).
///
/// `sub` takes the DMC partitions that start with a filter prefix, `super` those that are a strict prefix of a
/// filter prefix. A row counts only if `is_backed(partition, instance_id)` (Morango's "FSIC reduction"): for a
/// producer, some Store row under the partition was last saved by the instance; for a receiver, some
/// RecordMaxCounter of the instance belongs to a Store row under the partition. Redundant counters are then
/// removed ([`remove_redundant_instance_counters`]). Should two rows share a partition and instance, the higher
/// counter is used.
pub fn calculate_v2(rows: &[DmcRow], filter: &Filter, is_backed: impl Fn(&str, &str) -> bool) -> FsicV2 {
    let prefixes = filter.prefixes();
    let is_sub = |partition: &str| prefixes.iter().any(|prefix| partition.starts_with(prefix.as_str()));
    let is_super =
        |partition: &str| prefixes.iter().any(|prefix| prefix.starts_with(partition) && prefix.as_str() != partition);

    let mut fsic = FsicV2::default();
    for row in rows {
        let (sub, sup) = (is_sub(&row.partition), is_super(&row.partition));
        if !(sub || sup) || !is_backed(&row.partition, &row.instance_id) {
            continue;
        }
        if sub {
            raise(&mut fsic.sub_partitions, &row.partition, &row.instance_id, row.counter);
        }
        if sup {
            raise(&mut fsic.super_partitions, &row.partition, &row.instance_id, row.counter);
        }
    }
    remove_redundant_instance_counters(&mut fsic);
    fsic
}

/// Computes this database's v1 FSIC for `filter` (spec §6.1). For each filter prefix, the DMC rows whose
/// partition is a prefix of it give a max counter per instance; a producer takes the union of instances with the
/// max over prefixes, a receiver only the instances every prefix has, with the min. No reduction in v1.
pub fn calculate_v1(rows: &[DmcRow], filter: &Filter, is_producer: bool) -> FsicV1 {
    let per_prefix: Vec<FsicV1> = filter
        .prefixes()
        .iter()
        .map(|prefix| {
            let mut maxes = FsicV1::new();
            for row in rows.iter().filter(|row| prefix.starts_with(row.partition.as_str())) {
                raise_counter(&mut maxes, &row.instance_id, row.counter);
            }
            maxes
        })
        .collect();

    let all_instances: BTreeSet<&String> = per_prefix.iter().flat_map(BTreeMap::keys).collect();
    let counter_in = |maxes: &FsicV1, instance: &str| maxes.get(instance).copied().unwrap_or(0);
    all_instances
        .into_iter()
        .filter(|instance| is_producer || per_prefix.iter().all(|maxes| maxes.contains_key(*instance)))
        .filter_map(|instance| {
            let counters = per_prefix.iter().map(|maxes| counter_in(maxes, instance));
            let value = if is_producer { counters.max() } else { counters.min() };
            value.map(|v| (instance.clone(), v))
        })
        .collect()
}

/// Morango's `remove_redundant_instance_counters` (spec §6.2 step 4): removes `P[I]` wherever a partition key
/// that is a strict prefix of `P` (in `super` or `sub`; `sub` wins when a key is in both) has a counter for `I`
/// at least as high. Partitions left without counters are kept (`{}` tells the peer the partition exists).
pub fn remove_redundant_instance_counters(fsic: &mut FsicV2) {
    let mut merged = fsic.super_partitions.clone();
    merged.extend(fsic.sub_partitions.iter().map(|(k, v)| (k.clone(), v.clone())));

    for partitions in [&mut fsic.super_partitions, &mut fsic.sub_partitions] {
        for (partition, counters) in partitions.iter_mut() {
            for (prefix, prefix_counters) in &merged {
                if prefix == partition || !partition.starts_with(prefix.as_str()) {
                    continue;
                }
                counters.retain(|instance, counter| prefix_counters.get(instance).is_none_or(|c| *c < *counter));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Expansion and diffs

/// Morango's `expand_fsic_for_use` (spec §6.3), without modifying `fsic`: every filter prefix becomes a `sub`
/// key; each `sub` partition not inside another `sub` partition takes, per instance, the highest counter of the
/// `super` partitions that are its prefixes; partitions left empty are dropped. Returns the expanded `sub`.
pub fn expand_for_use(fsic: &FsicV2, filter: &Filter) -> PartitionCounters {
    let mut sub = fsic.sub_partitions.clone();
    for prefix in filter.prefixes() {
        sub.entry(prefix.clone()).or_default();
    }
    let subordinates: BTreeSet<String> = sub
        .keys()
        .filter(|key| sub.keys().any(|other| other != *key && key.starts_with(other.as_str())))
        .cloned()
        .collect();

    for (partition, counters) in sub.iter_mut() {
        if subordinates.contains(partition) {
            continue;
        }
        for (super_partition, super_counters) in &fsic.super_partitions {
            if partition.starts_with(super_partition.as_str()) {
                for (instance, counter) in super_counters {
                    if *counter > counters.get(instance).copied().unwrap_or(0) {
                        counters.insert(instance.clone(), *counter);
                    }
                }
            }
        }
    }
    sub.retain(|_, counters| !counters.is_empty());
    sub
}

/// Morango's `calculate_directional_fsic_diff_v2` (spec §6.4) over expanded FSICs: for each sender partition `P`
/// and instance `I` with counter `c`, `r` = the highest receiver counter for `I` under any receiver partition that
/// is a prefix of `P` (`P` itself included, 0 if none); when `r < c` the result has `P[I] = r`, meaning "send
/// records of `I` under `P` with a counter above `r`".
pub fn diff_v2(sender_expanded: &PartitionCounters, receiver_expanded: &PartitionCounters) -> PartitionCounters {
    let mut diff = PartitionCounters::new();
    for (partition, counters) in sender_expanded {
        for (instance, &sending) in counters {
            let receiving = receiver_expanded
                .iter()
                .filter(|(prefix, _)| partition.starts_with(prefix.as_str()))
                .filter_map(|(_, receiver_counters)| receiver_counters.get(instance).copied())
                .fold(0, i64::max);
            if receiving < sending {
                diff.entry(partition.clone()).or_default().insert(instance.clone(), receiving);
            }
        }
    }
    diff
}

/// Morango's `calculate_directional_fsic_diff` for v1: `{I: receiver[I] or 0}` for every sender instance whose
/// counter is higher than the receiver's.
pub fn diff_v1(sender: &FsicV1, receiver: &FsicV1) -> FsicV1 {
    sender
        .iter()
        .filter_map(|(instance, &sending)| {
            let receiving = receiver.get(instance).copied().unwrap_or(0);
            (receiving < sending).then(|| (instance.clone(), receiving))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Updating DatabaseMaxCounter after a receive (spec §6.6)

/// The DMC rows to upsert after receiving with a v2 FSIC: every `(P, I, C)` of the sender's raw `sub` (`super` is
/// ignored, as in Morango). Apply them with "only if higher" (§15 W4).
pub fn dmc_updates_v2(sender_raw: &FsicV2) -> Vec<DmcRow> {
    sender_raw
        .sub_partitions
        .iter()
        .flat_map(|(partition, counters)| {
            counters.iter().map(move |(instance, &counter)| DmcRow {
                partition: partition.clone(),
                instance_id: instance.clone(),
                counter,
            })
        })
        .collect()
}

/// What a receiver may claim after receiving with v2 FSICs: every `(P, I, C)` of the sender's FSIC *expanded* for
/// the filter ([`expand_for_use`]), so that counters the sender holds for a partition above the filter (its `super`
/// part, e.g. a whole facility for a single-user filter) count for the filter's prefixes too. The transfer sent
/// everything the receiver lacked under each expanded partition, so the receiver now has it. Python Morango keeps
/// only the raw `sub` part ([`dmc_updates_v2`]): a device syncing a narrower filter than its peer's knowledge then
/// never learns its peer's counters, and is sent the same records on every sync. A superset of Python's rows.
pub fn claims_v2(sender_raw: &FsicV2, filter: &Filter) -> Vec<DmcRow> {
    expand_for_use(sender_raw, filter)
        .into_iter()
        .flat_map(|(partition, counters)| {
            counters.into_iter().map(move |(instance_id, counter)| DmcRow {
                partition: partition.clone(),
                instance_id,
                counter,
            })
        })
        .collect()
}

/// The DMC rows to upsert after receiving with v1 FSICs: for every sender instance whose counter is higher than
/// in `receiver_own` (this database's receiver-side v1 FSIC for the filter, see [`calculate_v1`]) or unknown
/// there, one row per distinct filter prefix. Apply them with "only if higher" (§15 W4).
pub fn dmc_updates_v1(sender: &FsicV1, receiver_own: &FsicV1, filter: &Filter) -> Vec<DmcRow> {
    let prefixes: BTreeSet<&String> = filter.prefixes().iter().collect();
    sender
        .iter()
        .filter(|(instance, counter)| receiver_own.get(*instance).is_none_or(|own| **counter > *own))
        .flat_map(|(instance, &counter)| {
            prefixes.iter().map(move |prefix| DmcRow {
                partition: (*prefix).clone(),
                instance_id: instance.clone(),
                counter,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

/// Spec §6.5: every `sub` partition of a peer's FSIC must lie inside the transfer session's filter
/// (Morango's `MorangoInvalidFSICPartition`). Call it for both FSICs before expanding them.
pub fn check_partitions_within(fsic: &FsicV2, filter: &Filter) -> Result<(), FsicError> {
    match fsic.sub_partitions.keys().find(|partition| !filter.contains_partition(partition)) {
        Some(partition) => Err(FsicError::PartitionOutsideFilter { partition: partition.clone() }),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Wire format

impl FsicV2 {
    /// Parses and validates a v2 FSIC received as JSON text: both `"super"` and `"sub"` must be present (other
    /// keys are ignored), instance ids must be 32 lowercase hex characters and counters non-negative integers.
    pub fn from_json_text(text: &str) -> Result<FsicV2, FsicError> {
        let value: Value = serde_json::from_str(text).map_err(|e| FsicError::InvalidJson(e.to_string()))?;
        let object = as_object(&value, "")?;
        let section = |key: &'static str| -> Result<PartitionCounters, FsicError> {
            let section = object.get(key).ok_or(FsicError::MissingKey(key))?;
            parse_partitions(section, key)
        };
        Ok(FsicV2 { super_partitions: section("super")?, sub_partitions: section("sub")? })
    }

    /// The JSON value `{"super": {...}, "sub": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("super".to_owned(), partitions_to_json(&self.super_partitions));
        object.insert("sub".to_owned(), partitions_to_json(&self.sub_partitions));
        Value::Object(object)
    }

    /// The JSON text in Python `json.dumps` style, as a Python peer writes it.
    pub fn to_json_text(&self) -> String {
        dumps(&self.to_json())
    }
}

/// Parses and validates a v1 FSIC received as JSON text (`{I: C}`; `"{}"` is the empty FSIC).
pub fn v1_from_json_text(text: &str) -> Result<FsicV1, FsicError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FsicError::InvalidJson(e.to_string()))?;
    parse_counters(&value, "")
}

/// A v1 FSIC as JSON text in Python `json.dumps` style.
pub fn v1_to_json_text(fsic: &FsicV1) -> String {
    dumps(&counters_to_json(fsic))
}

fn as_object<'v>(value: &'v Value, location: &str) -> Result<&'v Map<String, Value>, FsicError> {
    value.as_object().ok_or_else(|| FsicError::NotAnObject { location: describe(location) })
}

fn describe(location: &str) -> String {
    if location.is_empty() { "top level".to_owned() } else { location.to_owned() }
}

fn parse_partitions(value: &Value, section: &str) -> Result<PartitionCounters, FsicError> {
    as_object(value, section)?
        .iter()
        .map(|(partition, counters)| {
            let location = format!("{section}[{partition:?}]");
            Ok((partition.clone(), parse_counters(counters, &location)?))
        })
        .collect()
}

fn parse_counters(value: &Value, location: &str) -> Result<InstanceCounters, FsicError> {
    as_object(value, location)?
        .iter()
        .map(|(instance, counter)| {
            if !is_valid_id(instance) {
                return Err(FsicError::InvalidInstanceId {
                    location: describe(location),
                    instance_id: instance.clone(),
                });
            }
            let parsed = counter.as_u64().and_then(|c| i64::try_from(c).ok());
            let counter = parsed.ok_or_else(|| FsicError::InvalidCounter {
                location: describe(location),
                instance_id: instance.clone(),
                value: counter.to_string(),
            })?;
            Ok((instance.clone(), counter))
        })
        .collect()
}

fn partitions_to_json(partitions: &PartitionCounters) -> Value {
    Value::Object(
        partitions.iter().map(|(partition, counters)| (partition.clone(), counters_to_json(counters))).collect(),
    )
}

fn counters_to_json(counters: &InstanceCounters) -> Value {
    Value::Object(
        counters.iter().map(|(instance, counter)| (instance.clone(), Value::Number(Number::from(*counter)))).collect(),
    )
}

/// Sets `map[partition][instance]` to `counter` unless it already holds a higher one.
fn raise(map: &mut PartitionCounters, partition: &str, instance: &str, counter: i64) {
    raise_counter(map.entry(partition.to_owned()).or_default(), instance, counter);
}

fn raise_counter(counters: &mut InstanceCounters, instance: &str, counter: i64) {
    let entry = counters.entry(instance.to_owned()).or_insert(counter);
    *entry = (*entry).max(counter);
}
