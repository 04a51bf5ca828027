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

/// The checks that need SeaORM's runtime relation definitions (classic entities keep `Related::via` in code a
/// macro cannot see): a `has_many` relation must lead to a member of the profile, because a many-to-many
/// junction has to be a syncable model of the same profile.
pub(crate) fn check_runtime(profile: &Profile) -> crate::error::Result<()> {
    let tables: Vec<&str> = profile.models().map(|m| m.table()).collect();
    let mut problems = Vec::new();
    for model in profile.models() {
        for table in model.has_many_tables() {
            if !tables.contains(&table.as_str()) {
                problems.push(crate::graph::junction_error(model.model_name(), &table, profile.name()));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(crate::error::Error::Schema(problems.join("\n"))) }
}
