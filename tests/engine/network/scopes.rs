//! Property: partial scopes converge, and then stop. Over HTTP on loopback, a facility server `S` serves a
//! full-facility device `A`, a second full-facility device `F` and a learner's single-user tablet `U1`; `A` serves
//! as a middle device the single-user tablet `U2` of another learner (a relay with a subset filter). Random
//! creations, edits and deletions, each within the device's write scope, and random syncs; then rounds of syncs
//! until one moves nothing, which must come. At the end every store holds exactly what its scope allows of the
//! facility server's store, version for version, and everything in it is applied.

use morango::Filter;
use morango::api::ServerSettings;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, ModelTrait, QueryOrder};

use super::harness::{Client, Server, Users, Wants};
use crate::fixtures;
use crate::on_both_backends;
use crate::schema::{learner, log};
use crate::support::Backend;

/// The devices: 0 = S, 1 = A, 2 = F, 3 = U1 (learner 0), 4 = U2 (learner 1).
const DEVICES: usize = 5;
/// Who syncs with whom: (client, server).
const LINKS: [(usize, usize); 4] = [(3, 0), (4, 1), (1, 0), (2, 0)];
const LEARNERS: [&str; 3] = ["ada", "bob", "cy"];

#[derive(Debug, Clone)]
enum Op {
    /// A new log of a learner (a single-user tablet writes only its own learner's).
    Log { device: usize, learner: usize },
    /// Edits the n-th log the device holds.
    EditLog { device: usize, nth: usize, progress: u8 },
    /// Deletes the n-th log the device holds.
    DeleteLog { device: usize, nth: usize },
    /// Renames a learner (full-facility devices only).
    Rename { device: usize, learner: usize, name: u8 },
    /// A sync over one link.
    Sync { link: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let device = 0..DEVICES;
    prop_oneof![
        (device.clone(), 0..LEARNERS.len()).prop_map(|(device, learner)| Op::Log { device, learner }),
        (device.clone(), 0..8usize, any::<u8>()).prop_map(|(device, nth, progress)| Op::EditLog {
            device,
            nth,
            progress
        }),
        (device.clone(), 0..8usize).prop_map(|(device, nth)| Op::DeleteLog { device, nth }),
        (0..3usize, 0..LEARNERS.len(), any::<u8>()).prop_map(|(device, learner, name)| Op::Rename {
            device,
            learner,
            name
        }),
        (0..LINKS.len()).prop_map(|link| Op::Sync { link }),
        (0..LINKS.len()).prop_map(|link| Op::Sync { link }),
    ]
}

on_both_backends!(partial_scopes_and_relays_converge_and_then_move_nothing);

async fn partial_scopes_and_relays_converge_and_then_move_nothing(backend: Backend) {
    let cases = if backend == Backend::Sqlite { 6 } else { 3 };
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(), 1..24), |ops| {
            handle.block_on(run(backend, ops)).map_err(TestCaseError::fail)
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// The devices of one case, as servers and clients.
struct Devices {
    s: Server,
    a: Server,
    f: Client,
    u1: Client,
    u2: Client,
    learners: Vec<learner::Model>,
}

impl Devices {
    async fn set_up(backend: Backend) -> Devices {
        let s = Server::start(backend, ServerSettings::default(), Users::new()).await;
        let mut learners = Vec::new();
        for name in LEARNERS {
            let learner = fixtures::learner(s.db(), &s.facility, name).await;
            fixtures::log(s.db(), &learner, "first video").await;
            learners.push(learner);
        }
        let s = s.with_users(Users::new().learner("ada", &learners[0].id));
        let a = Client::enrol(backend, &s, Wants::Facility).await;
        a.sync(&s).await;
        let a = Server::relay(a, ServerSettings::default(), Users::new().learner("bob", &learners[1].id)).await;
        let f = Client::enrol(backend, &s, Wants::Facility).await;
        let u1 = Client::enrol(backend, &s, Wants::Learner { username: "ada", learner_id: &learners[0].id }).await;
        let u2 = Client::enrol(backend, &a, Wants::Learner { username: "bob", learner_id: &learners[1].id }).await;
        let devices = Devices { s, a, f, u1, u2, learners };
        for link in 0..LINKS.len() {
            devices.sync(link).await;
        }
        devices
    }

    fn db(&self, device: usize) -> &sea_orm::DatabaseConnection {
        match device {
            0 => self.s.db(),
            1 => self.a.db(),
            2 => self.f.peer.db(),
            3 => self.u1.peer.db(),
            _ => self.u2.peer.db(),
        }
    }

    /// The learner a device may write for, if it is a single-user tablet.
    fn own_learner(&self, device: usize) -> Option<usize> {
        match device {
            3 => Some(0),
            4 => Some(1),
            _ => None,
        }
    }

    /// Syncs a link; returns the records it moved.
    async fn sync(&self, link: usize) -> i64 {
        let report = match LINKS[link] {
            (3, 0) => self.u1.sync(&self.s).await,
            (4, 1) => self.u2.sync(&self.a).await,
            (1, 0) => self.a_as_client().sync(&self.s).await,
            _ => self.f.sync(&self.s).await,
        };
        [report.pull, report.push].into_iter().flatten().map(|t| t.records_transferred).sum()
    }

    /// `A` is served, but it syncs with `S` as a client too, with the same certificate.
    fn a_as_client(&self) -> AsClient<'_> {
        AsClient(&self.a)
    }

    async fn finish(self) {
        for client in [self.f, self.u1, self.u2] {
            client.finish().await;
        }
        self.a.finish().await;
        self.s.finish().await;
    }
}

/// A served device syncing as the client of another server.
struct AsClient<'a>(&'a Server);

impl AsClient<'_> {
    async fn sync(&self, server: &Server) -> morango::SyncReport {
        let engine = self.0.api.engine();
        let connection = morango::client::NetworkSyncConnection::connect(
            engine,
            &server.url,
            morango::capabilities::Capabilities::all(),
            morango::client::HttpSettings::default(),
        )
        .await
        .expect("connect");
        let session = connection.open_session(&self.0.root, &server.root).await.expect("sync session");
        let scope = morango::certificate::scope_of(engine.db(), &self.0.root).await.unwrap();
        let client = session.client(engine);
        let pull = client.pull(&scope.read).await.expect("pull");
        let push = client.push(&scope.write).await.expect("push");
        client.close().await.expect("close");
        morango::SyncReport { pull: Some(pull), push: Some(push) }
    }
}

async fn run(backend: Backend, ops: Vec<Op>) -> Result<(), String> {
    let devices = Devices::set_up(backend).await;
    for op in &ops {
        apply(&devices, op).await;
    }
    let mut quiet = false;
    for _ in 0..5 {
        let mut moved = 0;
        for link in 0..LINKS.len() {
            moved += devices.sync(link).await;
        }
        if moved == 0 {
            quiet = true;
            break;
        }
    }
    let result = if quiet { compare(&devices).await } else { Err("syncs still moved records after 5 rounds".into()) };
    devices.finish().await;
    result
}

async fn logs_of(db: &sea_orm::DatabaseConnection, learner: Option<&str>) -> Vec<log::Model> {
    let logs = log::Entity::find().order_by_asc(log::Column::Id).all(db).await.unwrap();
    logs.into_iter().filter(|l| learner.is_none_or(|id| l.learner_id == id)).collect()
}

async fn apply(devices: &Devices, op: &Op) {
    match *op {
        Op::Log { device, learner } => {
            let learner = devices.own_learner(device).unwrap_or(learner);
            let db = devices.db(device);
            if let Some(found) = fixtures::find_learner(db, &devices.learners[learner].id).await {
                fixtures::log(db, &found, "video").await;
            }
        }
        Op::EditLog { device, nth, progress } => {
            let own = devices.own_learner(device).map(|l| devices.learners[l].id.as_str());
            let logs = logs_of(devices.db(device), own).await;
            if let Some(found) = logs.get(nth % logs.len().max(1)).cloned() {
                let mut active = found.into_active_model();
                active.progress = Set(f64::from(progress) / 255.0);
                active.update(devices.db(device)).await.unwrap();
            }
        }
        Op::DeleteLog { device, nth } => {
            let own = devices.own_learner(device).map(|l| devices.learners[l].id.as_str());
            let logs = logs_of(devices.db(device), own).await;
            if let Some(found) = logs.get(nth % logs.len().max(1)).cloned() {
                found.delete(devices.db(device)).await.unwrap();
            }
        }
        Op::Rename { device, learner, name } => {
            let db = devices.db(device);
            if let Some(found) = fixtures::find_learner(db, &devices.learners[learner].id).await {
                let mut active = found.into_active_model();
                active.full_name = Set(format!("name {name}"));
                active.update(db).await.unwrap();
            }
        }
        Op::Sync { link } => {
            devices.sync(link).await;
        }
    }
}

/// Each store equals the facility server's, restricted to what the device may read; all of it is applied.
async fn compare(devices: &Devices) -> Result<(), String> {
    let (reference, _) = store(devices.s.db()).await;
    let facility = Filter::new([devices.s.facility.id.clone()]);
    let scopes =
        [facility.clone(), facility.clone(), facility, devices.u1.scope().await.read, devices.u2.scope().await.read];
    for (device, scope) in scopes.iter().enumerate() {
        let (held, unapplied) = store(devices.db(device)).await;
        let allowed: Vec<_> = reference.iter().filter(|(partition, _)| scope.contains_partition(partition)).collect();
        let held_refs: Vec<_> = held.iter().collect();
        if held_refs != allowed {
            return Err(format!("device {device} holds\n{held:#?}\nbut its scope allows\n{allowed:#?}"));
        }
        if unapplied > 0 {
            return Err(format!("device {device} left {unapplied} records unapplied"));
        }
        let learners = learner::Entity::find().all(devices.db(device)).await.unwrap().len();
        let expected = held.iter().filter(|(_, row)| row.model == "learner" && !row.deleted).count();
        if learners != expected {
            return Err(format!("device {device} has {learners} learner rows for {expected} live learner records"));
        }
    }
    Ok(())
}

/// A store row as compared: partition, then what must be identical.
#[derive(Debug, PartialEq)]
struct Row {
    id: String,
    model: String,
    serialized: String,
    deleted: bool,
    version: (String, i64),
    conflicts: String,
}

/// Every store row by id, with its partition, and how many are not applied yet.
async fn store(db: &sea_orm::DatabaseConnection) -> (Vec<(String, Row)>, usize) {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, model_name, partition, serialized, deleted, last_saved_instance, last_saved_counter, \
             conflicting_serialized_data, dirty_bit FROM morango_store ORDER BY id",
        ))
        .await
        .unwrap();
    let dirty = rows.iter().filter(|r| r.try_get::<bool>("", "dirty_bit").unwrap()).count();
    let rows = rows
        .iter()
        .map(|r| {
            let get = |c: &str| r.try_get::<String>("", c).unwrap();
            (
                get("partition"),
                Row {
                    id: get("id"),
                    model: get("model_name"),
                    serialized: get("serialized"),
                    deleted: r.try_get("", "deleted").unwrap(),
                    version: (get("last_saved_instance"), r.try_get("", "last_saved_counter").unwrap()),
                    conflicts: get("conflicting_serialized_data"),
                },
            )
        })
        .collect();
    (rows, dirty)
}
