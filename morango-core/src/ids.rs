//! Morango's identifiers (spec §4): `sha2_uuid`, instance ids and record ids.

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::model::IdError;

/// The placeholder a partition template uses for the record's own id.
pub const ID_PLACEHOLDER: &str = "${id}";

/// The salt Morango appends before hashing system and node ids (`_do_salted_hash`).
const SALTED_HASH_SALT: &str = "::b88281f3-302c-4def-bb87-043f681e4183";

/// Morango's `sha2_uuid`: the first 32 hex characters of SHA-256 over the arguments joined with `"::"`.
pub fn sha2_uuid(parts: &[&str]) -> String {
    let mut hex = lowercase_hex(&Sha256::digest(parts.join("::").as_bytes()));
    hex.truncate(32);
    hex
}

/// Morango's `_do_salted_hash`: `""` for an empty value, else the first 20 hex characters of SHA-1 over the
/// lowercased value followed by Morango's fixed salt. Used for the system id and the node (MAC) id.
pub fn salted_hash(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    let salted = format!("{value}{SALTED_HASH_SALT}").to_lowercase();
    let mut hex = lowercase_hex(&Sha1::digest(salted.as_bytes()));
    hex.truncate(20);
    hex
}

/// The 0.5+ instance id: `sha2_uuid(database_id, system_id, node_id)`, where `system_id` and `node_id` are the
/// already salted hashes ([`salted_hash`]) of the raw system id and MAC address.
pub fn instance_id(database_id: &str, system_id: &str, node_id: &str) -> String {
    sha2_uuid(&[database_id, system_id, node_id])
}

/// A fresh random id: a uuid4 as 32 lowercase hex characters (session ids, database ids, random source ids).
pub fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// True for exactly 32 lowercase hex characters, the form of every Morango id on the wire.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A record's id and partition from its partition template, source id and model name (Morango's
/// `calculate_uuid` with the default `compute_namespaced_id`): `id = sha2_uuid(template, source_id,
/// model_name)` with the template hashed as written, then every `${id}` in the template replaced by `id`.
/// Returns `(id, partition)`; an empty source id is an error, as in Morango.
pub fn record_id(partition_template: &str, source_id: &str, model_name: &str) -> Result<(String, String), IdError> {
    if source_id.is_empty() {
        return Err(IdError::EmptySourceId);
    }
    let id = sha2_uuid(&[partition_template, source_id, model_name]);
    let partition = partition_template.replace(ID_PLACEHOLDER, &id);
    Ok((id, partition))
}

/// The receiver's model-uuid check (spec §4.4): puts `${id}` back where the id appears in `partition`, recomputes
/// the id with `compute_namespaced_id(template, source_id, model_name)` and compares it with `model_uuid`.
pub fn model_uuid_matches(
    model_uuid: &str,
    partition: &str,
    source_id: &str,
    model_name: &str,
    compute_namespaced_id: fn(&str, &str, &str) -> String,
) -> bool {
    let template = partition.replace(model_uuid, ID_PLACEHOLDER);
    compute_namespaced_id(&template, source_id, model_name) == model_uuid
}

fn lowercase_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}
