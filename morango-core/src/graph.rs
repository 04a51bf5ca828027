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
//! Nodes are compared by content (model name, profile and table, with a hash of them to make most comparisons one
//! step), because comparing pointers is not possible in constant evaluation. A node whose model name is empty is
//! the placeholder the derive emits when it reported an error of its own; the checks skip it so that one mistake
//! gives one error.
//!
//! Cost: a model outside any loop costs one walk over the models it reaches (only those whose name sorts after
//! its own), four times (one `const` per reportable problem). rustc stops a single constant evaluation after a few
//! million steps, so the walks use hash tables; a profile of tens of models adds well under a second to a build,
//! 250 models that all reach each other about half a minute.

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
    /// A hash of the three names, so that telling two nodes apart costs one comparison in constant evaluation.
    key: u64,
    /// A hash of the model name alone.
    name_key: u64,
}

impl Node {
    /// A node; the derive stores it in a hidden `static`.
    pub const fn new(
        model_name: &'static str,
        profile: &'static str,
        table: &'static str,
        edges: &'static [Edge],
    ) -> Self {
        let name_key = fnv(FNV_OFFSET, model_name.as_bytes());
        let mut key = fnv(name_key, &[0xff]);
        key = fnv(key, profile.as_bytes());
        key = fnv(key, &[0xff]);
        key = fnv(key, table.as_bytes());
        Node { model_name, profile, table, edges, key, name_key }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash`.
const fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
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
    note = "add `#[derive(SyncableRelations)]` to the entity's `enum Relation` (classic and `#[sea_orm::compact_model]` formats; `#[sea_orm::model]` entities need nothing more)"
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
    a.key == b.key && str_eq(a.model_name, b.model_name) && str_eq(a.profile, b.profile) && str_eq(a.table, b.table)
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
// Finding a node among many: an open-addressing table over node keys, so the checks stay linear in the size of the
// graph (rustc stops constant evaluations that take too many steps).

/// Table slots; more than twice the models one table holds, so probing always finds a free slot.
const SLOTS: usize = 1024;

/// The most models an [`Index`] holds.
const INDEX_CAP: usize = SLOTS / 2 - 1;

/// A list of nodes with a lookup by node.
struct Index {
    nodes: [NodeRef; INDEX_CAP],
    len: usize,
    /// Position + 1 of the node whose key hashes here (0: free).
    slots: [u16; SLOTS],
}

impl Index {
    const fn new() -> Self {
        Index { nodes: [NodeRef::UNUSED; INDEX_CAP], len: 0, slots: [0; SLOTS] }
    }

    /// The position of `node`, or `None`.
    const fn find(&self, node: &Node) -> Option<usize> {
        let mut slot = (node.key % SLOTS as u64) as usize;
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                return None;
            }
            let i = entry as usize - 1;
            if same(self.nodes[i].get(), node) {
                return Some(i);
            }
            slot = (slot + 1) % SLOTS;
        }
    }

    /// Appends `node` (the caller checked it is absent and that there is room) and returns its position.
    const fn push(&mut self, node: NodeRef) -> usize {
        let i = self.len;
        self.nodes[i] = node;
        self.len += 1;
        let mut slot = (node.get().key % SLOTS as u64) as usize;
        while self.slots[slot] != 0 {
            slot = (slot + 1) % SLOTS;
        }
        self.slots[slot] = self.len as u16;
        i
    }

    const fn is_full(&self) -> bool {
        self.len == INDEX_CAP
    }

    /// The members of a profile (duplicates are kept once; `None` when there are too many for the table).
    const fn of(members: &[NodeRef]) -> Option<Index> {
        let mut index = Index::new();
        let mut i = 0;
        while i < members.len() {
            if index.find(members[i].get()).is_none() {
                if index.is_full() {
                    return None;
                }
                index.push(members[i]);
            }
            i += 1;
        }
        Some(index)
    }
}

// ----------------------------------------------------------------------------------------------------------------
// Loops.

/// The models reachable from a start model through ordering edges without passing a model that sorts before the
/// start: a loop whose smallest member is the start lies among them. Index 0 is the start.
struct Reach {
    index: Index,
    /// Some reached model has an ordering edge back to the start: there is a loop to report.
    closes: bool,
}

/// "Not found" for [`Reach::index_of`].
const MAX_NODES: usize = INDEX_CAP;

impl Reach {
    const fn index_of(&self, node: &Node) -> usize {
        match self.index.find(node) {
            Some(i) => i,
            None => MAX_NODES,
        }
    }

    const fn node(&self, i: usize) -> &'static Node {
        self.index.nodes[i].get()
    }

    /// One breadth-first walk; this is all the work a model outside any loop costs.
    const fn collect(start: NodeRef) -> Reach {
        let first = start.get();
        let mut reach = Reach { index: Index::new(), closes: false };
        reach.index.push(start);
        let mut next = 0;
        while next < reach.index.len {
            let node = reach.node(next);
            let mut e = 0;
            while e < node.edges.len() {
                let edge = &node.edges[e];
                let target = edge.target.get();
                if !orders(node, edge) || is_placeholder(target) {
                    // not an ordering edge
                } else if same(target, first) {
                    reach.closes = true;
                } else if before(first, target) && !reach.index.is_full() && reach.index.find(target).is_none() {
                    reach.index.push(edge.target);
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
            while i < self.index.len {
                if !back[i] {
                    let node = self.node(i);
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
    if !reach.closes {
        return Err(0);
    }
    let back = reach.leads_back();
    let first = start.get();
    let mut path = [0usize; MAX_NODES];
    let mut next_edge = [0usize; MAX_NODES];
    let mut depth = 1;
    let mut found = 0;
    while depth > 0 {
        let v = path[depth - 1];
        let node = reach.node(v);
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
        if w == MAX_NODES || !back[w] || !before(first, reach.node(w)) {
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
        msg.push(reach.node(path[d]).model_name);
        msg.push(" -> ");
        d += 1;
    }
    msg.push(reach.node(path[0]).model_name);
    msg.push(" (through ");
    let mut d = 0;
    while d < depth {
        let node = reach.node(path[d]);
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
            if !is_placeholder(a) && a.name_key == b.name_key && str_eq(a.model_name, b.model_name) {
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

    let index = Index::of(members);
    let mut i = 0;
    while i < members.len() {
        let m = members[i].get();
        let mut e = 0;
        while e < m.edges.len() {
            let edge = &m.edges[e];
            let t = edge.target.get();
            let reported_by_node = matches!(edge.kind, EdgeKind::Via) && !str_eq(t.profile, m.profile);
            let member = match &index {
                Some(index) => index.find(t).is_some(),
                None => is_member(members, t),
            };
            if !is_self_edge(m, edge) && !is_placeholder(t) && !reported_by_node && !member {
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

/// The first position of `node` in `members`, or `members.len()`.
const fn position(members: &[NodeRef], node: &Node) -> usize {
    let mut i = 0;
    while i < members.len() {
        if same(members[i].get(), node) {
            return i;
        }
        i += 1;
    }
    members.len()
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
    // depends[i][j]: member i must come after member j.
    let mut depends = [[false; N]; N];
    let mut waiting = [0usize; N];
    let index = Index::of(members);
    // first[p]: the first member at index position p.
    let mut first = [0usize; INDEX_CAP];
    if let Some(index) = &index {
        let mut i = N;
        while i > 0 {
            i -= 1;
            if let Some(p) = index.find(members[i].get()) {
                first[p] = i;
            }
        }
    }
    let mut i = 0;
    while i < N {
        let node = members[i].get();
        let mut e = 0;
        while e < node.edges.len() {
            let edge = &node.edges[e];
            if orders(node, edge) {
                let target = edge.target.get();
                let j = match &index {
                    Some(index) => match index.find(target) {
                        Some(p) => first[p],
                        None => N,
                    },
                    None => position(members, target),
                };
                if j < N && j != i && !depends[i][j] {
                    depends[i][j] = true;
                    waiting[i] += 1;
                }
            }
            e += 1;
        }
        i += 1;
    }

    let mut order = [0; N];
    let mut placed = [false; N];
    let mut pos = 0;
    while pos < N {
        // The first member in declaration order whose dependencies are placed; on a loop, the first unplaced one.
        let mut pick = N;
        let mut fallback = N;
        let mut i = 0;
        while i < N {
            if !placed[i] {
                if fallback == N {
                    fallback = i;
                }
                if waiting[i] == 0 {
                    pick = i;
                    break;
                }
            }
            i += 1;
        }
        if pick == N {
            pick = fallback;
        }
        placed[pick] = true;
        order[pos] = pick;
        pos += 1;
        let mut j = 0;
        while j < N {
            if depends[j][pick] {
                waiting[j] -= 1;
            }
            j += 1;
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn edge(kind: EdgeKind, field: &'static str, target: &'static Node) -> Edge {
        Edge { kind, field, target: NodeRef::new(target) }
    }

    fn problem(node: &'static Node, k: usize) -> Option<String> {
        node_problem(NodeRef::new(node), k).map(|m| m.as_str().to_owned())
    }

    fn profile(name: &str, members: &[&'static Node]) -> Option<String> {
        let refs: Vec<NodeRef> = members.iter().map(|n| NodeRef::new(n)).collect();
        profile_problem(name, &refs).map(|m| m.as_str().to_owned())
    }

    // An acyclic graph: a -> b, c -> c (tree), c -> a (depends_on).
    static A: Node = Node::new("a", "p", "a", &A_EDGES);
    static A_EDGES: [Edge; 1] = [edge(EdgeKind::BelongsTo, "b", &B)];
    static B: Node = Node::new("b", "p", "b", &[]);
    static C: Node = Node::new("c", "p", "c", &C_EDGES);
    static C_EDGES: [Edge; 2] = [edge(EdgeKind::SelfRef, "parent", &C), edge(EdgeKind::DependsOn, "depends_on", &A)];

    // Loops: x -> y -> z -> x and x -> y -> x (two loops through x), w -> w twice.
    static X: Node = Node::new("x", "q", "x", &X_EDGES);
    static X_EDGES: [Edge; 2] = [edge(EdgeKind::BelongsTo, "y", &Y), edge(EdgeKind::BelongsTo, "y_again", &Y)];
    static Y: Node = Node::new("y", "q", "y", &Y_EDGES);
    static Y_EDGES: [Edge; 2] = [edge(EdgeKind::BelongsTo, "z", &Z), edge(EdgeKind::DependsOn, "depends_on", &X)];
    static Z: Node = Node::new("z", "q", "z", &Z_EDGES);
    static Z_EDGES: [Edge; 1] = [edge(EdgeKind::BelongsTo, "x", &X)];
    static W: Node = Node::new("w", "q", "w", &W_EDGES);
    static W_EDGES: [Edge; 2] = [edge(EdgeKind::SelfRef, "parent", &W), edge(EdgeKind::BelongsTo, "other", &W)];

    // A junction of another profile, and a placeholder.
    static POST: Node = Node::new("post", "blog", "post", &POST_EDGES);
    static POST_EDGES: [Edge; 2] =
        [edge(EdgeKind::Via, "tags", &POST_TAG), edge(EdgeKind::BelongsTo, "broken", &BROKEN)];
    static POST_TAG: Node = Node::new("post_tag", "other", "post_tag", &[]);
    static BROKEN: Node = Node::new("", "", "", &[]);

    #[test]
    fn targets_come_first_and_unconstrained_models_keep_their_place() {
        const ORDER: [usize; 3] = dependency_order(&[NodeRef::new(&C), NodeRef::new(&A), NodeRef::new(&B)]);
        assert_eq!(ORDER, [2, 1, 0]);
        const KEEP: [usize; 2] = dependency_order(&[NodeRef::new(&B), NodeRef::new(&A)]);
        assert_eq!(KEEP, [0, 1]);
    }

    #[test]
    fn an_order_exists_even_with_a_loop() {
        let mut order = dependency_order(&[NodeRef::new(&Z), NodeRef::new(&Y), NodeRef::new(&X)]);
        order.sort();
        assert_eq!(order, [0, 1, 2]);
    }

    #[test]
    fn an_acyclic_graph_passes_the_checks() {
        const _: () = check_node(NodeRef::new(&C), 0);
        const _: () = check_profile("p", &[NodeRef::new(&A), NodeRef::new(&B), NodeRef::new(&C)]);
        for node in [&A, &B, &C] {
            assert_eq!((0..4).filter_map(|k| problem(node, k)).count(), 0);
        }
    }

    #[test]
    fn each_loop_is_reported_once_by_its_smallest_member() {
        let loops: Vec<String> = (0..4).filter_map(|k| problem(&X, k)).collect();
        assert_eq!(loops.len(), 2, "{loops:#?}");
        assert!(
            loops[0]
                .starts_with("dependency loop among syncable models: x -> y -> z -> x (through `x.y`, `y.z`, `z.x`); ")
        );
        assert!(
            loops[1]
                .starts_with("dependency loop among syncable models: x -> y -> x (through `x.y`, `y.depends_on`); ")
        );
        assert!(loops[0].ends_with(LOOP_FIX));
        assert_eq!(problem(&Y, 0), None);
        assert_eq!(problem(&Z, 0), None);
    }

    #[test]
    fn a_second_self_reference_is_a_problem() {
        let text = problem(&W, 0).expect("a problem");
        assert_eq!(
            text,
            format!("model `w` has more than one self-referential foreign key (`parent`, `other`); {SELF_REF_FIX}")
        );
        assert_eq!(problem(&W, 1), None);
        assert_eq!(problem(&C, 0), None, "one self reference is a tree");
    }

    #[test]
    fn a_junction_of_another_profile_is_a_problem_and_placeholders_are_skipped() {
        let text = problem(&POST, 0).expect("a problem");
        assert!(text.starts_with(
            "model `post` has a many-to-many relation `tags` through junction model `post_tag` of profile `other`"
        ));
        assert_eq!(problem(&POST, 1), None);
        assert_eq!(problem(&BROKEN, 0), None);
        assert_eq!(profile("blog", &[&POST, &BROKEN]), None, "reported by the node check, not again");
    }

    #[test]
    fn profile_problems_name_the_model_and_what_to_do() {
        assert_eq!(profile("p", &[&A, &B, &C]), None);
        let missing = profile("p", &[&A, &C]).expect("b is missing");
        assert_eq!(
            missing,
            "model `a` of profile `p` has a foreign key `b` to model `b`, which is not listed in this `profile!`: add \
             its entity (table `b`) to the list"
        );
        let wrong = profile("q", &[&X, &Y, &Z, &A]).expect("a is of profile p");
        assert!(wrong.starts_with("model `a` is listed in the profile `q` but declares `profile = \"p\"`"));
        let twice = profile("p", &[&A, &B, &A]).expect("a twice");
        assert_eq!(twice, "profile `p` lists model `a` twice: list each entity once");
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

    #[test]
    fn node_keys_tell_models_apart() {
        assert!(same(&A, &A));
        assert!(!same(&A, &B));
        assert!(before(&A, &B));
        let index = Index::of(&[NodeRef::new(&A), NodeRef::new(&B), NodeRef::new(&A)]).expect("fits");
        assert_eq!((index.len, index.find(&B), index.find(&C)), (2, Some(1), None));
    }
}
