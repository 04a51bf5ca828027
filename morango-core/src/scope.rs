//! Scope definitions (spec §3.5): the named templates a certificate's scope is expanded from.
//!
//! Scope definitions are never sent over the wire; both peers must hold the same ones. Applications ship them as a
//! Django-style fixture (a list of `{"model": "morango.scopedefinition", "pk": …, "fields": {…}}`, see
//! `fixtures/scopedefinitions.json`) and load it with [`load_fixture`] when they start.

use sea_orm::{ConnectionTrait, QueryResult};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::filter::{FilterError, Scope, parse_scope_params, safe_substitute};
use crate::sql::{self, text};

/// Longest scope-definition id, as Python Morango's column (`max_length=20`).
pub const MAX_ID_CHARS: usize = 20;

/// Longest profile name, as Python Morango's column (`max_length=20`).
pub const MAX_PROFILE_CHARS: usize = 20;

/// The model name a fixture entry must carry to be read as a scope definition.
const FIXTURE_MODEL: &str = "morango.scopedefinition";

/// Why scope definitions could not be loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    /// The fixture text is not a list of valid scope definitions.
    #[error("invalid scope definition fixture: {0}")]
    InvalidFixture(String),
    /// A database statement failed.
    #[error(transparent)]
    Db(#[from] crate::Error),
}

/// A named set of filter templates and the profile they belong to (Morango's `ScopeDefinition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeDefinition {
    /// The id certificates name in `scope_definition_id` (at most 20 characters), e.g. `full-facility`.
    pub id: String,
    /// The profile whose data the scope covers.
    pub profile: String,
    /// Incremented by the application whenever the definition changes.
    pub version: i32,
    /// The scope param that receives a root certificate's own id; empty when no root can be made from it.
    pub primary_scope_param_key: String,
    /// Human-readable description; may name scope params (`${user_id}`).
    pub description: String,
    /// Partitions readable only, one template per line.
    pub read_filter_template: String,
    /// Partitions writable only, one template per line.
    pub write_filter_template: String,
    /// Partitions readable and writable, one template per line.
    pub read_write_filter_template: String,
}

impl ScopeDefinition {
    /// The scope granted with these params: `read = read_write + read`, `write = read_write + write`, each template
    /// expanded with Python's `safe_substitute` (see [`Scope::from_templates`]).
    pub fn scope(&self, params: &Map<String, Value>) -> Scope {
        Scope::from_templates(
            &self.read_filter_template,
            &self.write_filter_template,
            &self.read_write_filter_template,
            params,
        )
    }

    /// The scope granted by a certificate's `scope_params` text, which must be JSON text of an object.
    pub fn scope_for(&self, scope_params: &str) -> Result<Scope, FilterError> {
        Ok(self.scope(&parse_scope_params(scope_params)?))
    }

    /// The description with the params substituted (`ScopeDefinition.get_description`).
    pub fn describe(&self, params: &Map<String, Value>) -> String {
        safe_substitute(&self.description, params)
    }

    fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() || self.id.chars().count() > MAX_ID_CHARS {
            return Err(format!("scope definition id {:?} must have 1 to {MAX_ID_CHARS} characters", self.id));
        }
        if self.profile.is_empty() || self.profile.chars().count() > MAX_PROFILE_CHARS {
            return Err(format!(
                "profile {:?} of {} must have 1 to {MAX_PROFILE_CHARS} characters",
                self.profile, self.id
            ));
        }
        if self.primary_scope_param_key.chars().count() > MAX_ID_CHARS {
            return Err(format!("primary_scope_param_key of {} is longer than {MAX_ID_CHARS} characters", self.id));
        }
        Ok(())
    }
}

/// One entry of a Django fixture.
#[derive(Deserialize)]
struct FixtureEntry {
    pk: String,
    fields: FixtureFields,
}

#[derive(Deserialize)]
struct FixtureFields {
    profile: String,
    version: i32,
    #[serde(default)]
    primary_scope_param_key: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    read_filter_template: String,
    #[serde(default)]
    write_filter_template: String,
    #[serde(default)]
    read_write_filter_template: String,
}

/// Reads a Django-style fixture: the `morango.scopedefinition` entries of a JSON list (other models are skipped).
pub fn parse_fixture(json_text: &str) -> Result<Vec<ScopeDefinition>, ScopeError> {
    let entries: Vec<Value> =
        serde_json::from_str(json_text).map_err(|e| ScopeError::InvalidFixture(format!("not a JSON list: {e}")))?;
    let mut definitions: Vec<ScopeDefinition> = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        if !entry.get("model").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case(FIXTURE_MODEL)) {
            continue;
        }
        let entry: FixtureEntry =
            serde_json::from_value(entry).map_err(|e| ScopeError::InvalidFixture(format!("entry {index}: {e}")))?;
        let FixtureFields {
            profile,
            version,
            primary_scope_param_key,
            description,
            read_filter_template,
            write_filter_template,
            read_write_filter_template,
        } = entry.fields;
        let definition = ScopeDefinition {
            id: entry.pk,
            profile,
            version,
            primary_scope_param_key,
            description,
            read_filter_template,
            write_filter_template,
            read_write_filter_template,
        };
        definition.validate().map_err(ScopeError::InvalidFixture)?;
        if definitions.iter().any(|d| d.id == definition.id) {
            return Err(ScopeError::InvalidFixture(format!("scope definition {} appears twice", definition.id)));
        }
        definitions.push(definition);
    }
    Ok(definitions)
}

/// What [`load_fixture`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Definitions that were missing and were added.
    pub inserted: usize,
    /// Definitions that existed with other values and were updated.
    pub updated: usize,
    /// Definitions already stored exactly as in the fixture.
    pub unchanged: usize,
}

/// Loads a scope-definition fixture (see [`parse_fixture`]) into the database: missing definitions are inserted,
/// changed ones updated, identical ones left alone, so it can run at every start.
pub async fn load_fixture<C: ConnectionTrait>(db: &C, json_text: &str) -> Result<LoadReport, ScopeError> {
    let mut report = LoadReport::default();
    for definition in parse_fixture(json_text)? {
        match get(db, &definition.id).await? {
            None => {
                insert(db, &definition).await?;
                report.inserted += 1;
            }
            Some(stored) if stored == definition => report.unchanged += 1,
            Some(_) => {
                update(db, &definition).await?;
                report.updated += 1;
            }
        }
    }
    Ok(report)
}

/// Inserts or replaces one scope definition.
pub async fn save<C: ConnectionTrait>(db: &C, definition: &ScopeDefinition) -> Result<(), ScopeError> {
    definition.validate().map_err(ScopeError::InvalidFixture)?;
    if get(db, &definition.id).await?.is_some() { update(db, definition).await } else { insert(db, definition).await }
}

/// The scope definition with this id, if the database has it.
pub async fn get<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<ScopeDefinition>, crate::Error> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return Ok(None);
    }
    let row = sql::query_one(
        db,
        "reading a scope definition",
        &format!("SELECT {COLUMNS} FROM morango_scopedefinition WHERE id = $1"),
        vec![text(id)],
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every scope definition in the database, by id.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<Vec<ScopeDefinition>, crate::Error> {
    let rows = sql::query(
        db,
        "reading scope definitions",
        &format!("SELECT {COLUMNS} FROM morango_scopedefinition ORDER BY id"),
        vec![],
    )
    .await?;
    rows.iter().map(from_row).collect()
}

const COLUMNS: &str = "id, profile, version, primary_scope_param_key, description, read_filter_template, \
                       write_filter_template, read_write_filter_template";

fn from_row(row: &QueryResult) -> Result<ScopeDefinition, crate::Error> {
    Ok(ScopeDefinition {
        id: sql::get(row, "id")?,
        profile: sql::get(row, "profile")?,
        version: sql::get(row, "version")?,
        primary_scope_param_key: sql::get(row, "primary_scope_param_key")?,
        description: sql::get(row, "description")?,
        read_filter_template: sql::get(row, "read_filter_template")?,
        write_filter_template: sql::get(row, "write_filter_template")?,
        read_write_filter_template: sql::get(row, "read_write_filter_template")?,
    })
}

async fn insert<C: ConnectionTrait>(db: &C, d: &ScopeDefinition) -> Result<(), ScopeError> {
    sql::exec(
        db,
        "adding a scope definition",
        &format!("INSERT INTO morango_scopedefinition ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        values(d),
    )
    .await?;
    Ok(())
}

async fn update<C: ConnectionTrait>(db: &C, d: &ScopeDefinition) -> Result<(), ScopeError> {
    sql::exec(
        db,
        "updating a scope definition",
        "UPDATE morango_scopedefinition SET profile = $2, version = $3, primary_scope_param_key = $4, \
         description = $5, read_filter_template = $6, write_filter_template = $7, read_write_filter_template = $8 \
         WHERE id = $1",
        values(d),
    )
    .await?;
    Ok(())
}

fn values(d: &ScopeDefinition) -> Vec<sea_orm::Value> {
    vec![
        text(&d.id),
        text(&d.profile),
        d.version.into(),
        text(&d.primary_scope_param_key),
        text(&d.description),
        text(&d.read_filter_template),
        text(&d.write_filter_template),
        text(&d.read_write_filter_template),
    ]
}
