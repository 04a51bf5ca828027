//! Profiles: the set of syncable models that sync together (Morango's `syncable_models` registry).

use std::fmt;

use crate::graph::NodeRef;
use crate::registry::SyncableModel;

/// A Morango profile: its name and its models in dependency order (foreign-key targets first).
///
/// Declare one with [`profile!`](crate::profile!); the declaration fails to compile when a member's foreign
/// key points outside the profile, when two members share a model name, or when the models form a loop.
pub struct Profile {
    name: &'static str,
    models: &'static [&'static dyn SyncableModel],
    nodes: &'static [NodeRef],
    order: &'static [usize],
}

impl Profile {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        models: &'static [&'static dyn SyncableModel],
        nodes: &'static [NodeRef],
        order: &'static [usize],
    ) -> Self {
        Profile { name, models, nodes, order }
    }

    /// The profile name, e.g. `"facilitydata"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The models in dependency order: every model comes after the models it references.
    pub fn models(&self) -> impl Iterator<Item = &'static dyn SyncableModel> + '_ {
        self.order.iter().map(|&i| self.models[i])
    }

    /// The model registered under a Morango model name.
    pub fn model(&self, model_name: &str) -> Option<&'static dyn SyncableModel> {
        self.models.iter().copied().find(|m| m.model_name() == model_name)
    }

    /// The compile-time graph nodes of the members, in declaration order.
    #[doc(hidden)]
    pub fn nodes(&self) -> &'static [NodeRef] {
        self.nodes
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("models", &self.models().map(|m| m.model_name()).collect::<Vec<_>>())
            .finish()
    }
}

/// Declares a [`Profile`]: `profile!(pub FACILITY_DATA = "facilitydata": [facility::Entity, learner::Entity]);`
///
/// The checks run at compile time: every member belongs to this profile, model names are unique, every
/// foreign-key target and junction is a member, and the dependency order exists.
#[macro_export]
macro_rules! profile {
    ($vis:vis $name:ident = $profile:literal : [$($entity:ty),+ $(,)?]) => {
        $vis static $name: $crate::Profile = $crate::Profile::__new(
            $profile,
            &[$( &$crate::__private::ModelOf::<$entity>::NEW ),+],
            &[$( <$entity as $crate::Syncable>::NODE ),+],
            &$crate::__private::graph::dependency_order(&[$( <$entity as $crate::Syncable>::NODE ),+]),
        );
        const _: () = match $crate::__private::graph::profile_problem(
            $profile,
            &[$( <$entity as $crate::Syncable>::NODE ),+],
        ) {
            Some(problem) => panic!("{}", problem.as_str()),
            None => (),
        };
    };
}

/// The check that needs SeaORM's run-time relation definitions: classic entities keep `Related::via` in code a
/// macro cannot see, but a many-to-many relation shows up as a `has_many` relation to its junction table. A
/// `has_many` target outside the profile whose table references two or more tables is such a junction, and
/// must be a syncable model of the profile; a local child table (one reference) is fine.
pub(crate) async fn check_runtime<C: sea_orm::ConnectionTrait>(db: &C, profile: &Profile) -> crate::error::Result<()> {
    let tables: Vec<&str> = profile.models().map(|m| m.table()).collect();
    let mut problems = shared_tables(profile);
    for model in profile.models() {
        for table in model.has_many_tables() {
            if !tables.contains(&table.as_str()) && referenced_tables(db, &table).await? >= 2 {
                problems.push(crate::graph::junction_error(model.model_name(), &table, profile.name()));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(crate::error::Error::Schema(problems.join("\n"))) }
}

/// Models that share a table must each say which of its rows are theirs, with distinct values of one column.
fn shared_tables(profile: &Profile) -> Vec<String> {
    let mut problems = Vec::new();
    let models: Vec<_> = profile.models().collect();
    for (i, model) in models.iter().enumerate() {
        for other in &models[i + 1..] {
            if model.table() != other.table() {
                continue;
            }
            let (a, b) = (model.model_name(), other.model_name());
            let fine = match (model.discriminator(), other.discriminator()) {
                (Some(x), Some(y)) => x.column == y.column && x.value != y.value,
                _ => false,
            };
            if !fine {
                problems.push(format!(
                    "models `{a}` and `{b}` share the table `{}`: give each `#[morango(discriminator(<field> = \"<value>\"))]` \
                     on the same field with different values, so that each syncs only its own rows",
                    model.table()
                ));
            }
        }
    }
    problems
}

/// How many distinct tables `table`'s foreign keys reference, from the database's own catalogue.
async fn referenced_tables<C: sea_orm::ConnectionTrait>(db: &C, table: &str) -> crate::error::Result<i64> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT COUNT(DISTINCT ccu.table_name) AS n FROM information_schema.table_constraints tc \
             JOIN information_schema.constraint_column_usage ccu \
             ON ccu.constraint_name = tc.constraint_name AND ccu.constraint_schema = tc.constraint_schema \
             WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_name = $1 AND tc.table_schema = current_schema()"
        }
        _ => "SELECT COUNT(DISTINCT \"table\") AS n FROM pragma_foreign_key_list($1)",
    };
    let row = crate::sql::query_one(db, "reading a table's foreign keys", sql, vec![crate::sql::text(table)]).await?;
    match row {
        Some(row) => crate::sql::get(&row, "n"),
        None => Ok(0),
    }
}
