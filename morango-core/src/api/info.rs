//! `GET morangoinfo/<anything>/` (spec §2.1).

use axum::Json;
use serde_json::Value;

use super::State;
use crate::wire::{InstanceInfo, MORANGO_VERSION};

pub(super) async fn morangoinfo(state: State) -> Json<InstanceInfo> {
    let api = &state.0;
    let id = api.engine().instance().id.clone();
    let mut extra = api.settings().instance_info.clone();
    for key in ["instance_hash", "instance_id", "system_os", "version", "capabilities"] {
        extra.remove(key);
    }
    Json(InstanceInfo {
        instance_hash: proquint(&id),
        instance_id: id,
        system_os: system_os().into(),
        version: MORANGO_VERSION.into(),
        capabilities: api.settings().advertised().names().map(str::to_owned).collect(),
        extra: extra.into_iter().filter(|(_, v)| !matches!(v, Value::Null)).collect(),
    })
}

/// Python's `platform.system()` names.
fn system_os() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "windows" => "Windows",
        other => other,
    }
}

/// The proquint of the first 32 bits of the instance id (`"vugan-torol"`), as Morango shows it.
fn proquint(id: &str) -> String {
    const CONSONANTS: &[u8; 16] = b"bdfghjklmnprstvz";
    const VOWELS: &[u8; 4] = b"aiou";
    let Ok(value) = u32::from_str_radix(id.get(..8).unwrap_or("0"), 16) else { return String::new() };
    let word = |w: u16| {
        let bits = [(w >> 12) & 15, (w >> 10) & 3, (w >> 6) & 15, (w >> 4) & 3, w & 15];
        [
            CONSONANTS[bits[0] as usize],
            VOWELS[bits[1] as usize],
            CONSONANTS[bits[2] as usize],
            VOWELS[bits[3] as usize],
            CONSONANTS[bits[4] as usize],
        ]
        .iter()
        .map(|b| char::from(*b))
        .collect::<String>()
    };
    format!("{}-{}", word((value >> 16) as u16), word(value as u16))
}

#[cfg(test)]
mod tests {
    #[test]
    fn instance_hash_matches_the_trace() {
        assert_eq!(super::proquint("ecc9dae718b8e8d6960ed52db6443b1b"), "vugan-torol");
    }
}
