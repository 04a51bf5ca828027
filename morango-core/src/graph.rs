//! The compile-time dependency graph of syncable models.
//!
//! `#[derive(Syncable)]` gives every entity a hidden `static` [`Node`]; its edges point at other nodes through
//! [`NodeRef`]s taken from `<Target as Syncable>::NODE`. The `const fn` checks in this module walk those statics
//! during constant evaluation, so a dependency loop or an incomplete profile fails the build.
//!
//! Edges are raw pointers to `static`s: a `const` holding a *reference* to a static makes rustc evaluate the
//! static while checking the constant, so two models referring to each other would be an `E0391` cycle error
//! instead of our message. Raw pointers are not followed by that check.

/// One syncable model in the dependency graph.
#[derive(Debug)]
pub struct Node {
    /// Morango model name.
    pub model_name: &'static str,
    /// Profile name.
    pub profile: &'static str,
    /// Table name.
    pub table: &'static str,
    /// Foreign keys, junctions and declared dependencies.
    pub edges: &'static [Edge],
}

/// A reference to a [`Node`] that lives in a `static`.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef(*const Node);

// SAFETY: a `NodeRef` only ever points at an immutable `static Node`.
unsafe impl Sync for NodeRef {}
unsafe impl Send for NodeRef {}

impl NodeRef {
    /// Refers to a node stored in a `static`.
    pub const fn new(node: &'static Node) -> Self {
        NodeRef(node as *const Node)
    }

    /// The node.
    pub const fn get(self) -> &'static Node {
        // SAFETY: built by `new` from a `&'static Node`.
        unsafe { &*self.0 }
    }
}

/// Why one model depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// A foreign key to another model (the target is applied first).
    BelongsTo,
    /// The one allowed self-referential foreign key (a tree; parents are applied first).
    SelfRef,
    /// A many-to-many relation through this junction model, which must be a syncable model of the same profile.
    Via,
    /// A `#[morango(depends_on = "...")]` ordering edge.
    DependsOn,
}

/// An edge of the dependency graph.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    /// What kind of dependency this is.
    pub kind: EdgeKind,
    /// The Rust field or relation that declares it (for messages).
    pub field: &'static str,
    /// The model depended upon.
    pub target: NodeRef,
}

/// The foreign keys of a model, seen by `#[derive(SyncableRelations)]` on a classic `enum Relation` or by
/// `#[derive(Syncable)]` on a dense-format `ModelEx`.
#[diagnostic::on_unimplemented(
    message = "Morango cannot see the relations of this entity",
    label = "`{Self}` does not implement `SyncRelations`",
    note = "add `#[derive(SyncableRelations)]` to `enum Relation` (classic entity format), or use `#[sea_orm::model]`"
)]
pub trait SyncRelations {
    /// The relation edges.
    const EDGES: &'static [Edge];
}

/// Panics (a compile error when evaluated in a `const`) with the `k`-th dependency loop whose smallest member
/// is `node`, and when a `Via` junction belongs to another profile.
pub const fn check_node(_node: NodeRef, _k: usize) {
    // implemented with the derive
}

/// Panics unless every member belongs to `profile`, model names are unique and every edge target is a member.
pub const fn check_profile(_profile: &str, _members: &[NodeRef]) {
    // implemented with the derive
}

/// The members in dependency order (targets first), as indexes into `members`; stable where unconstrained.
pub const fn dependency_order<const N: usize>(_members: &[NodeRef; N]) -> [usize; N] {
    let mut order = [0; N];
    let mut i = 0;
    while i < N {
        order[i] = i;
        i += 1;
    }
    order
}
