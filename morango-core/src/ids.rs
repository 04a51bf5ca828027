//! Morango's identifiers (spec §4): `sha2_uuid` and record ids.

use sha2::{Digest, Sha256};

/// Morango's `sha2_uuid`: the first 32 hex characters of SHA-256 over the arguments joined with `"::"`.
pub fn sha2_uuid(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("::").as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.truncate(32);
    hex
}
