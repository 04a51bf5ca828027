//! Database and instance ids, and the instance counter (spec §4.2–§4.3).

use sea_orm::{ConnectionTrait, Value};
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::ids;
use crate::sql::{self, get, text};

/// The identity this database writes under: Morango's current `InstanceIDModel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `sha2_uuid(database_id, system_id, node_id)`.
    pub id: String,
    /// The random id of this database (`DatabaseIDModel`).
    pub database_id: String,
    /// Salted hash of the machine id (`MORANGO_SYSTEM_ID` overrides it).
    pub system_id: String,
    /// Salted hash of a MAC address (`MORANGO_NODE_ID` overrides it).
    pub node_id: String,
}

impl Instance {
    /// Loads the current instance of the database, creating the database id and the instance row when needed.
    /// `system` and `node` are the raw ids (see [`system_source`] and [`node_source`]).
    pub async fn current<C: ConnectionTrait>(db: &C, system: &str, node: &str) -> Result<Instance> {
        let database_id = database_id(db).await?;
        let system_id = ids::salted_hash(system);
        let node_id = ids::salted_hash(node);
        let id = ids::instance_id(&database_id, &system_id, &node_id);
        let exists = sql::query_one(
            db,
            "looking up the instance id",
            "SELECT id FROM morango_instanceidmodel WHERE id = $1",
            vec![text(&id)],
        )
        .await?
        .is_some();
        sql::exec(
            db,
            "retiring old instance ids",
            "UPDATE morango_instanceidmodel SET current = $1 WHERE id <> $2",
            vec![false.into(), text(&id)],
        )
        .await?;
        if exists {
            sql::exec(
                db,
                "marking the instance current",
                "UPDATE morango_instanceidmodel SET current = $1 WHERE id = $2",
                vec![true.into(), text(&id)],
            )
            .await?;
        } else {
            sql::exec(
                db,
                "creating the instance id",
                "INSERT INTO morango_instanceidmodel (id, platform, hostname, sysversion, node_id, counter, current, \
                 db_path, system_id, database_id) VALUES ($1, $2, '', $3, $4, 0, $5, '', $6, $7)",
                vec![
                    text(&id),
                    text(std::env::consts::OS),
                    text(concat!("morango-rs ", env!("CARGO_PKG_VERSION"))),
                    text(&node_id),
                    true.into(),
                    text(&system_id),
                    text(&database_id),
                ],
            )
            .await?;
        }
        Ok(Instance { id, database_id, system_id, node_id })
    }

    /// The instance JSON sent as `instance` / `server_instance` (§4.3), with `extra` application info (such as
    /// Kolibri's `"kolibri"` version) appended. Hostname and database path are left empty: peers treat the
    /// JSON as opaque and need only the `id` (Python Morango sends both, a privacy leak).
    pub fn to_json(&self, extra: &Map<String, Json>) -> String {
        let mut map = Map::new();
        map.insert("id".into(), Json::String(self.id.clone()));
        map.insert("platform".into(), Json::String(std::env::consts::OS.into()));
        map.insert("hostname".into(), Json::String(String::new()));
        map.insert("sysversion".into(), Json::String(concat!("morango-rs ", env!("CARGO_PKG_VERSION")).into()));
        map.insert("node_id".into(), Json::String(self.node_id.clone()));
        map.insert("database".into(), Json::String(self.database_id.clone()));
        map.insert("db_path".into(), Json::String(String::new()));
        map.insert("system_id".into(), Json::String(self.system_id.clone()));
        for (key, value) in extra {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
        crate::json::dumps(&Json::Object(map))
    }
}

/// Increments the instance counter and returns the new value (once per serialization run and per dequeue).
pub(crate) async fn next_counter<C: ConnectionTrait>(db: &C, instance_id: &str) -> Result<i64> {
    let row = sql::query_one(
        db,
        "incrementing the instance counter",
        "UPDATE morango_instanceidmodel SET counter = counter + 1 WHERE id = $1 RETURNING counter",
        vec![text(instance_id)],
    )
    .await?
    .ok_or_else(|| Error::Schema(format!("instance {instance_id} is missing from morango_instanceidmodel")))?;
    get(&row, "counter")
}

async fn database_id<C: ConnectionTrait>(db: &C) -> Result<String> {
    let row = sql::query_one(
        db,
        "reading the database id",
        "SELECT id FROM morango_databaseidmodel WHERE current = $1",
        vec![true.into()],
    )
    .await?;
    if let Some(row) = row {
        return get(&row, "id");
    }
    let id = ids::random_id();
    sql::exec(
        db,
        "creating the database id",
        "INSERT INTO morango_databaseidmodel (id, current, date_generated) VALUES ($1, $2, $3)",
        vec![text(&id), true.into(), Value::ChronoDateTimeUtc(Some(chrono::Utc::now()))],
    )
    .await?;
    Ok(id)
}

/// The raw system id: `MORANGO_SYSTEM_ID` (at least 3 characters) or the machine id.
pub fn system_source() -> String {
    env_override("MORANGO_SYSTEM_ID")
        .or_else(|| std::fs::read_to_string("/etc/machine-id").ok().map(|s| s.trim().to_owned()))
        .unwrap_or_default()
}

/// The raw node id: `MORANGO_NODE_ID` (at least 3 characters) or the first globally administered MAC address.
pub fn node_source() -> String {
    env_override("MORANGO_NODE_ID").or_else(first_mac).unwrap_or_default()
}

fn env_override(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| v.len() >= 3)
}

fn first_mac() -> Option<String> {
    let mut interfaces: Vec<_> = std::fs::read_dir("/sys/class/net").ok()?.filter_map(|e| e.ok()).collect();
    interfaces.sort_by_key(|e| e.file_name());
    interfaces.into_iter().filter(|e| e.file_name() != "lo").find_map(|entry| {
        let mac = std::fs::read_to_string(entry.path().join("address")).ok()?.trim().to_lowercase();
        let first = u8::from_str_radix(mac.get(0..2)?, 16).ok()?;
        let locally_administered = first & 0b10 != 0;
        (mac != "00:00:00:00:00:00" && !locally_administered).then_some(mac)
    })
}

/// The instance counter's current value.
pub(crate) async fn current_counter<C: ConnectionTrait>(db: &C, instance_id: &str) -> Result<i64> {
    let row = sql::query_one(
        db,
        "reading the instance counter",
        "SELECT counter FROM morango_instanceidmodel WHERE id = $1",
        vec![text(instance_id)],
    )
    .await?
    .ok_or_else(|| Error::Schema(format!("instance {instance_id} is missing from morango_instanceidmodel")))?;
    get(&row, "counter")
}
