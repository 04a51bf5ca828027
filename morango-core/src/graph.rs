//! The compile-time dependency graph of syncable models.
//!
//! `#[derive(Syncable)]` gives every entity a hidden `static` [`Node`]; its edges point at other nodes through
//! [`NodeRef`]s taken from `<Target as Syncable>::NODE`. The `const fn` checks in this module walk those statics
//! during constant evaluation, so a dependency loop or an incomplete profile fails the build.
//!
//! Edges are raw pointers to `static`s: a `const` holding a *reference* to a static makes rustc evaluate the
//! static while checking the constant, so two models referring to each other would be an `E0391` cycle error
//! instead of our message. Raw pointers are not followed by that check.
//!
//! Nodes are compared by content (model name, profile and table), because comparing pointers is not possible in
//! constant evaluation. A node whose model name is empty is the placeholder the derive emits when it reported an
//! error of its own; the checks skip it so that one mistake gives one error.

use crate::model::Syncable;

/// One syncable model in the dependency graph.
#[derive(Debug)]
pub struct Node {
    /// Morango model name (empty for the placeholder of a model whose derive failed).
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
        // SAFETY: built by `new` from a `&'static Node` (the private `UNUSED` value is never read).
        unsafe { &*self.0 }
    }

    /// A value that only fills array slots before they are overwritten; never dereferenced.
    const UNUSED: NodeRef = NodeRef(core::ptr::null());
}

/// Why one model depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// A foreign key to another model (the target is applied first).
    BelongsTo,
    /// The one allowed self-referential foreign key (a tree; parents are applied first).
    SelfRef,
    /// A many-to-many relation through this junction model, which must be a syncable model of the same profile.
    ///
    /// It does not order anything: the junction's own foreign keys already place it after both ends.
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

/// A syncable model serving as the junction of a many-to-many relation: every syncable entity. The trait exists
/// for its error message when a junction is not syncable.
#[diagnostic::on_unimplemented(
    message = "many-to-many relation through `{Self}`, which is not a syncable model",
    label = "this junction entity has no `#[derive(Syncable)]`",
    note = "Morango syncs a many-to-many relation as the rows of its junction table: give the junction entity `#[derive(Syncable)]` with the same `profile` as this model and list it in the same `profile!`"
)]
pub trait SyncableJunction: Syncable {}

impl<T: Syncable> SyncableJunction for T {}

/// The node of a junction entity (a `Via` edge target); requires the junction to be syncable.
pub const fn junction<J: SyncableJunction>() -> NodeRef {
    J::NODE
}

/// Joins the relation edges and the `depends_on` edges of a model into one array of length `N`.
pub const fn concat_edges<const N: usize>(first: &[Edge], second: &[Edge]) -> [Edge; N] {
    assert!(first.len() + second.len() == N, "concat_edges: wrong length");
    let placeholder = Edge { kind: EdgeKind::DependsOn, field: "", target: NodeRef::UNUSED };
    let mut out = [placeholder; N];
    let mut i = 0;
    while i < first.len() {
        out[i] = first[i];
        i += 1;
    }
    let mut j = 0;
    while j < second.len() {
        out[i + j] = second[j];
        j += 1;
    }
    out
}

// ----------------------------------------------------------------------------------------------------------------
// Messages shared by the compile-time checks and the run-time check of classic entities.

/// Why a junction must be a syncable model of the same profile (the first half of every junction message).
pub const JUNCTION_RULE: &str = "Morango syncs a many-to-many relation as the rows of its junction table";

/// What to do about a junction that is not a syncable model of the model's profile.
pub const JUNCTION_FIX: &str =
    "give the junction entity `#[derive(Syncable)]` with the same `profile` and list it in the same `profile!`";

/// The error for a many-to-many relation whose junction table is not a syncable model of `profile`. The run-time
/// check of classic entities (where `via` lives only in `Related::via()`) uses it, so its wording matches the
/// compile-time check of dense entities.
pub fn junction_error(model: &str, junction: &str, profile: &str) -> String {
    format!(
        "model `{model}` has a many-to-many relation through `{junction}`, which is not a syncable model of profile \
         `{profile}`: {JUNCTION_RULE}; {JUNCTION_FIX}"
    )
}

/// What to do about more than one self-referential foreign key (used by the derive and the const check).
pub const SELF_REF_FIX: &str = "Morango orders the records of a tree by one parent link: keep one self-referential \
     foreign key and store the other reference in a plain column that is not a relation";

/// What to do about a dependency loop.
pub const LOOP_FIX: &str = "Morango applies the records of a model after those of the models it refers to, so the \
     models of a profile must not form a loop: remove one of these foreign keys or `depends_on` declarations, or \
     keep that reference in a plain column that is not a relation";

// ----------------------------------------------------------------------------------------------------------------
// Const helpers.

/// A message built during constant evaluation (no allocation there), e.g. the text of a dependency loop.
pub struct Message {
    buf: [u8; MSG_CAP],
    len: usize,
}

const MSG_CAP: usize = 1536;

impl Message {
    const fn new() -> Self {
        Message { buf: [0; MSG_CAP], len: 0 }
    }

    /// Appends `s`, cutting it at a character boundary if the buffer is full.
    const fn push(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut n = bytes.len();
        if n > MSG_CAP - self.len {
            n = MSG_CAP - self.len;
            while n > 0 && (bytes[n] & 0xC0) == 0x80 {
                n -= 1;
            }
        }
        let mut i = 0;
        while i < n {
            self.buf[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
    }

    /// Appends `` `s` ``.
    const fn quoted(&mut self, s: &str) {
        self.push("`");
        self.push(s);
        self.push("`");
    }

    /// The text.
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => "(message not valid UTF-8)",
        }
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// -1, 0 or 1 as `a` sorts before, equal to or after `b` (byte order).
const fn str_cmp(a: &str, b: &str) -> i8 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return if a[i] < b[i] { -1 } else { 1 };
        }
        i += 1;
    }
    if a.len() == b.len() {
        0
    } else if a.len() < b.len() {
        -1
    } else {
        1
    }
}

/// Two nodes describe the same model.
const fn same(a: &Node, b: &Node) -> bool {
    str_eq(a.model_name, b.model_name) && str_eq(a.profile, b.profile) && str_eq(a.table, b.table)
}

/// `a` sorts strictly before `b` (by model name, then profile, then table).
const fn before(a: &Node, b: &Node) -> bool {
    let c = str_cmp(a.model_name, b.model_name);
    if c != 0 {
        return c < 0;
    }
    let c = str_cmp(a.profile, b.profile);
    if c != 0 {
        return c < 0;
    }
    str_cmp(a.table, b.table) < 0
}

const fn is_placeholder(node: &Node) -> bool {
    node.model_name.is_empty()
}

/// The edge points back at its own model.
const fn is_self_edge(from: &Node, edge: &Edge) -> bool {
    matches!(edge.kind, EdgeKind::SelfRef) || same(from, edge.target.get())
}

/// The edge orders its target before `from` (foreign keys and `depends_on`, self edges excluded).
const fn orders(from: &Node, edge: &Edge) -> bool {
    matches!(edge.kind, EdgeKind::BelongsTo | EdgeKind::DependsOn) && !is_self_edge(from, edge)
}

/// How an edge is described in messages.
const fn describe_kind(msg: &mut Message, edge: &Edge) {
    match edge.kind {
        EdgeKind::BelongsTo | EdgeKind::SelfRef => msg.push("a foreign key "),
        EdgeKind::Via => msg.push("a many-to-many relation "),
        EdgeKind::DependsOn => msg.push("a `depends_on` "),
    }
}

// ----------------------------------------------------------------------------------------------------------------
// Loops.

/// The most models one loop search looks at (models reachable from the model being checked).
const MAX_NODES: usize = 256;

/// The models reachable from one model through ordering edges; index 0 is the start.
struct Reach {
    nodes: [NodeRef; MAX_NODES],
    len: usize,
}

impl Reach {
    const fn index_of(&self, node: &Node) -> usize {
        let mut i = 0;
        while i < self.len {
            if same(self.nodes[i].get(), node) {
                return i;
            }
            i += 1;
        }
        MAX_NODES
    }

    const fn collect(start: NodeRef) -> Reach {
        let mut reach = Reach { nodes: [NodeRef::UNUSED; MAX_NODES], len: 1 };
        reach.nodes[0] = start;
        let mut next = 0;
        while next < reach.len {
            let node = reach.nodes[next].get();
            let mut e = 0;
            while e < node.edges.len() {
                let edge = &node.edges[e];
                if orders(node, edge)
                    && !is_placeholder(edge.target.get())
                    && reach.index_of(edge.target.get()) == MAX_NODES
                    && reach.len < MAX_NODES
                {
                    reach.nodes[reach.len] = edge.target;
                    reach.len += 1;
                }
                e += 1;
            }
            next += 1;
        }
        reach
    }

    /// `result[i]`: model `i` can reach the start through ordering edges.
    const fn leads_back(&self) -> [bool; MAX_NODES] {
        let mut back = [false; MAX_NODES];
        let mut changed = true;
        while changed {
            changed = false;
            let mut i = 0;
            while i < self.len {
                if !back[i] {
                    let node = self.nodes[i].get();
                    let mut e = 0;
                    while e < node.edges.len() {
                        let edge = &node.edges[e];
                        if orders(node, edge) {
                            let j = self.index_of(edge.target.get());
                            if j == 0 || (j < MAX_NODES && back[j]) {
                                back[i] = true;
                                changed = true;
                                break;
                            }
                        }
                        e += 1;
                    }
                }
                i += 1;
            }
        }
        back
    }
}

/// An earlier ordering edge of `node` already goes to the same model (two foreign keys to one model are one
/// dependency).
const fn duplicate_edge(node: &Node, e: usize) -> bool {
    let mut j = 0;
    while j < e {
        if orders(node, &node.edges[j]) && same(node.edges[j].target.get(), node.edges[e].target.get()) {
            return true;
        }
        j += 1;
    }
    false
}

/// The `k`-th loop (in search order) through `start` whose other members all sort after `start`, or the number
/// of such loops when there are at most `k`.
const fn find_loop(start: NodeRef, k: usize) -> Result<Message, usize> {
    let reach = Reach::collect(start);
    let back = reach.leads_back();
    if !back[0] {
        return Err(0);
    }
    let first = start.get();
    let mut path = [0usize; MAX_NODES];
    let mut next_edge = [0usize; MAX_NODES];
    let mut depth = 1;
    let mut found = 0;
    while depth > 0 {
        let v = path[depth - 1];
        let node = reach.nodes[v].get();
        let e = next_edge[depth - 1];
        if e >= node.edges.len() {
            depth -= 1;
            continue;
        }
        next_edge[depth - 1] = e + 1;
        let edge = &node.edges[e];
        if !orders(node, edge) || duplicate_edge(node, e) {
            continue;
        }
        let w = reach.index_of(edge.target.get());
        if w == 0 {
            if found == k {
                return Ok(loop_message(&reach, &path, &next_edge, depth));
            }
            found += 1;
            continue;
        }
        if w == MAX_NODES || !back[w] || !before(first, reach.nodes[w].get()) {
            continue;
        }
        let mut on_path = false;
        let mut d = 0;
        while d < depth {
            if path[d] == w {
                on_path = true;
            }
            d += 1;
        }
        if on_path || depth == MAX_NODES {
            continue;
        }
        path[depth] = w;
        next_edge[depth] = 0;
        depth += 1;
    }
    Err(found)
}

const fn loop_message(
    reach: &Reach,
    path: &[usize; MAX_NODES],
    next_edge: &[usize; MAX_NODES],
    depth: usize,
) -> Message {
    let mut msg = Message::new();
    msg.push("dependency loop among syncable models: ");
    let mut d = 0;
    while d < depth {
        msg.push(reach.nodes[path[d]].get().model_name);
        msg.push(" -> ");
        d += 1;
    }
    msg.push(reach.nodes[path[0]].get().model_name);
    msg.push(" (through ");
    let mut d = 0;
    while d < depth {
        let node = reach.nodes[path[d]].get();
        if d > 0 {
            msg.push(", ");
        }
        msg.push("`");
        msg.push(node.model_name);
        msg.push(".");
        msg.push(node.edges[next_edge[d] - 1].field);
        msg.push("`");
        d += 1;
    }
    msg.push("); ");
    msg.push(LOOP_FIX);
    msg
}

// ----------------------------------------------------------------------------------------------------------------
// The checks the derive and `profile!` emit.

/// The `k`-th problem of `node`: a `Via` junction of another profile, more than one self-referential foreign key,
/// then each dependency loop whose smallest member (by model name) is `node`. The derive evaluates this for `k` in
/// `0..4` in `const` items that panic with the message, so each loop is reported once.
pub const fn node_problem(node: NodeRef, k: usize) -> Option<Message> {
    let me = node.get();
    if is_placeholder(me) {
        return None;
    }
    let mut k = k;

    // Junctions of another profile.
    let mut e = 0;
    while e < me.edges.len() {
        let edge = &me.edges[e];
        let target = edge.target.get();
        if matches!(edge.kind, EdgeKind::Via) && !is_placeholder(target) && !str_eq(target.profile, me.profile) {
            if k == 0 {
                let mut msg = Message::new();
                msg.push("model ");
                msg.quoted(me.model_name);
                msg.push(" has a many-to-many relation ");
                msg.quoted(edge.field);
                msg.push(" through junction model ");
                msg.quoted(target.model_name);
                msg.push(" of profile ");
                msg.quoted(target.profile);
                msg.push(", but the junction must be a syncable model of profile ");
                msg.quoted(me.profile);
                msg.push(": ");
                msg.push(JUNCTION_RULE);
                msg.push("; ");
                msg.push(JUNCTION_FIX);
                return Some(msg);
            }
            k -= 1;
        }
        e += 1;
    }

    // More than one self-referential foreign key.
    let mut self_refs = 0;
    let mut e = 0;
    while e < me.edges.len() {
        if is_self_foreign_key(me, &me.edges[e]) {
            self_refs += 1;
        }
        e += 1;
    }
    if self_refs > 1 {
        if k == 0 {
            let mut msg = Message::new();
            msg.push("model ");
            msg.quoted(me.model_name);
            msg.push(" has more than one self-referential foreign key (");
            let mut first = true;
            let mut e = 0;
            while e < me.edges.len() {
                if is_self_foreign_key(me, &me.edges[e]) {
                    if !first {
                        msg.push(", ");
                    }
                    msg.quoted(me.edges[e].field);
                    first = false;
                }
                e += 1;
            }
            msg.push("); ");
            msg.push(SELF_REF_FIX);
            return Some(msg);
        }
        k -= 1;
    }

    match find_loop(node, k) {
        Ok(msg) => Some(msg),
        Err(_) => None,
    }
}

const fn is_self_foreign_key(node: &Node, edge: &Edge) -> bool {
    matches!(edge.kind, EdgeKind::BelongsTo | EdgeKind::SelfRef) && is_self_edge(node, edge)
}

/// Panics (a compile error when evaluated in a `const`) with the [`node_problem`] `k` of `node`, if any.
pub const fn check_node(node: NodeRef, k: usize) {
    if let Some(msg) = node_problem(node, k) {
        panic!("{}", msg.as_str());
    }
}

/// The first problem of a profile: a member of another profile, two members with one model name, or an edge to a
/// model that is not a member.
pub const fn profile_problem(profile: &str, members: &[NodeRef]) -> Option<Message> {
    let mut i = 0;
    while i < members.len() {
        let m = members[i].get();
        if !is_placeholder(m) && !str_eq(m.profile, profile) {
            let mut msg = Message::new();
            msg.push("model ");
            msg.quoted(m.model_name);
            msg.push(" is listed in the profile ");
            msg.quoted(profile);
            msg.push(" but declares `profile = \"");
            msg.push(m.profile);
            msg.push("\"`: every model of a profile must name it; write `#[morango(profile = \"");
            msg.push(profile);
            msg.push("\")]` on the model or remove it from this `profile!`");
            return Some(msg);
        }
        i += 1;
    }

    let mut i = 0;
    while i < members.len() {
        let a = members[i].get();
        let mut j = i + 1;
        while j < members.len() {
            let b = members[j].get();
            if !is_placeholder(a) && str_eq(a.model_name, b.model_name) {
                let mut msg = Message::new();
                msg.push("profile ");
                msg.quoted(profile);
                if str_eq(a.table, b.table) {
                    msg.push(" lists model ");
                    msg.quoted(a.model_name);
                    msg.push(" twice: list each entity once");
                } else {
                    msg.push(" has two models named ");
                    msg.quoted(a.model_name);
                    msg.push(" (tables ");
                    msg.quoted(a.table);
                    msg.push(" and ");
                    msg.quoted(b.table);
                    msg.push(
                        "): model names identify records between devices and must be unique within a profile; \
                         give one of them another `model_name`",
                    );
                }
                return Some(msg);
            }
            j += 1;
        }
        i += 1;
    }

    let mut i = 0;
    while i < members.len() {
        let m = members[i].get();
        let mut e = 0;
        while e < m.edges.len() {
            let edge = &m.edges[e];
            let t = edge.target.get();
            let reported_by_node = matches!(edge.kind, EdgeKind::Via) && !str_eq(t.profile, m.profile);
            if !is_self_edge(m, edge) && !is_placeholder(t) && !reported_by_node && !is_member(members, t) {
                let mut msg = Message::new();
                msg.push("model ");
                msg.quoted(m.model_name);
                msg.push(" of profile ");
                msg.quoted(profile);
                msg.push(" has ");
                describe_kind(&mut msg, edge);
                msg.quoted(edge.field);
                msg.push(" to model ");
                msg.quoted(t.model_name);
                if str_eq(t.profile, profile) {
                    msg.push(", which is not listed in this `profile!`: add its entity (table ");
                    msg.quoted(t.table);
                    msg.push(") to the list");
                } else {
                    msg.push(" of profile ");
                    msg.quoted(t.profile);
                    msg.push(": a model can only depend on models of its own profile; remove the relation or ");
                    msg.push("move both models into one profile");
                }
                return Some(msg);
            }
            e += 1;
        }
        i += 1;
    }
    None
}

/// Panics unless every member belongs to `profile`, model names are unique and every edge target is a member.
pub const fn check_profile(profile: &str, members: &[NodeRef]) {
    if let Some(msg) = profile_problem(profile, members) {
        panic!("{}", msg.as_str());
    }
}

const fn is_member(members: &[NodeRef], node: &Node) -> bool {
    let mut i = 0;
    while i < members.len() {
        if same(members[i].get(), node) {
            return true;
        }
        i += 1;
    }
    false
}

/// The members in dependency order (targets first), as indexes into `members`; stable where unconstrained.
///
/// Foreign keys and `depends_on` edges order their targets first; self edges and `Via` edges order nothing (a
/// junction follows both ends through its own foreign keys). Edges to models outside `members` are ignored (the
/// `profile!` check reports them). On a loop (which `check_node` reports) the order is arbitrary.
pub const fn dependency_order<const N: usize>(members: &[NodeRef; N]) -> [usize; N] {
    let mut order = [0; N];
    let mut placed = [false; N];
    let mut pos = 0;
    while pos < N {
        let mut pick = N;
        let mut i = 0;
        while i < N {
            if !placed[i] && ready(members, &placed, i) {
                pick = i;
                break;
            }
            i += 1;
        }
        if pick == N {
            let mut i = 0;
            while i < N {
                if !placed[i] {
                    pick = i;
                    break;
                }
                i += 1;
            }
        }
        placed[pick] = true;
        order[pos] = pick;
        pos += 1;
    }
    order
}

/// Every member that member `i` depends on is already placed.
const fn ready<const N: usize>(members: &[NodeRef; N], placed: &[bool; N], i: usize) -> bool {
    let node = members[i].get();
    let mut e = 0;
    while e < node.edges.len() {
        let edge = &node.edges[e];
        if orders(node, edge) {
            let mut j = 0;
            while j < N {
                if !placed[j] && j != i && same(members[j].get(), edge.target.get()) {
                    return false;
                }
                j += 1;
            }
        }
        e += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: Node = Node { model_name: "a", profile: "p", table: "a", edges: &A_EDGES };
    static A_EDGES: [Edge; 1] = [Edge { kind: EdgeKind::BelongsTo, field: "b", target: NodeRef(&B) }];
    static B: Node = Node { model_name: "b", profile: "p", table: "b", edges: &[] };
    static C: Node = Node { model_name: "c", profile: "p", table: "c", edges: &C_EDGES };
    static C_EDGES: [Edge; 2] = [
        Edge { kind: EdgeKind::SelfRef, field: "parent", target: NodeRef(&C) },
        Edge { kind: EdgeKind::DependsOn, field: "depends_on", target: NodeRef(&A) },
    ];

    #[test]
    fn targets_come_first_and_unconstrained_models_keep_their_place() {
        const ORDER: [usize; 3] =
            dependency_order(&[NodeRef::new(&C), NodeRef::new(&A), NodeRef::new(&B)]);
        assert_eq!(ORDER, [2, 1, 0]);
        const KEEP: [usize; 2] = dependency_order(&[NodeRef::new(&B), NodeRef::new(&A)]);
        assert_eq!(KEEP, [0, 1]);
    }

    #[test]
    fn an_acyclic_graph_passes_the_checks() {
        const _: () = check_node(NodeRef::new(&C), 0);
        const _: () = check_profile("p", &[NodeRef::new(&A), NodeRef::new(&B), NodeRef::new(&C)]);
    }

    #[test]
    fn junction_error_names_model_junction_and_profile() {
        let text = junction_error("post", "post_tag", "blog");
        assert!(text.starts_with("model `post` has a many-to-many relation through `post_tag`, which is not"));
        assert!(text.contains(JUNCTION_FIX));
    }

    #[test]
    fn message_buffer_cuts_at_a_character_boundary() {
        let mut msg = Message::new();
        msg.push(&"é".repeat(MSG_CAP));
        assert!(msg.as_str().len() <= MSG_CAP);
        assert!(msg.as_str().chars().all(|c| c == 'é'));
    }
}
