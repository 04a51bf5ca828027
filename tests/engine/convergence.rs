//! Property: three peers making random edits, deletions and syncs in random orders end with identical stores
//! and identical application tables once every pair has synced.

use morango::Filter;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, ModelTrait, QueryOrder};

use crate::fixtures;
use crate::on_both_backends;
use crate::schema::{facility, learner, log};
use crate::support::{Backend, Peer};

on_both_backends!(three_peers_converge_after_random_edits_deletes_and_syncs);

const USERNAMES: [&str; 4] = ["ada", "bob", "cy", "dee"];

#[derive(Debug, Clone)]
enum Op {
    /// Creates a learner (the same username on two peers is the same record: a concurrent creation).
    Create {
        peer: usize,
        user: usize,
    },
    Edit {
        peer: usize,
        user: usize,
        name: u8,
    },
    Delete {
        peer: usize,
        user: usize,
    },
    HardDelete {
        peer: usize,
        user: usize,
    },
    Log {
        peer: usize,
        user: usize,
    },
    /// `client` syncs with `server`, either everything or one learner's partitions.
    Sync {
        client: usize,
        server: usize,
        single_user: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let peer = 0..3usize;
    let user = 0..USERNAMES.len();
    prop_oneof![
        (peer.clone(), user.clone()).prop_map(|(peer, user)| Op::Create { peer, user }),
        (peer.clone(), user.clone(), any::<u8>()).prop_map(|(peer, user, name)| Op::Edit { peer, user, name }),
        (peer.clone(), user.clone()).prop_map(|(peer, user)| Op::Delete { peer, user }),
        (peer.clone(), user.clone()).prop_map(|(peer, user)| Op::HardDelete { peer, user }),
        (peer.clone(), user.clone()).prop_map(|(peer, user)| Op::Log { peer, user }),
        (peer.clone(), peer, proptest::option::of(user))
            .prop_filter("a peer does not sync with itself", |(c, s, _)| c != s)
            .prop_map(|(client, server, single_user)| Op::Sync { client, server, single_user }),
    ]
}

async fn three_peers_converge_after_random_edits_deletes_and_syncs(backend: Backend) {
    let cases = if backend == Backend::Sqlite { 24 } else { 8 };
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
            handle.block_on(run(backend, ops)).map_err(TestCaseError::fail)
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

async fn run(backend: Backend, ops: Vec<Op>) -> Result<(), String> {
    let peers = [Peer::new(backend).await, Peer::new(backend).await, Peer::new(backend).await];
    let facility = fixtures::facility(peers[0].db(), "Riverside").await;
    for peer in &peers[1..] {
        peer.sync_all(&peers[0]).await;
    }
    for op in &ops {
        apply(&peers, &facility, op).await;
    }
    // Sync every pair until a whole round moves nothing: cascades and conflicts mint versions on receipt.
    let mut quiet = false;
    for _ in 0..6 {
        quiet = true;
        for (client, server) in [(0, 1), (1, 2), (2, 0), (0, 2)] {
            let report = peers[client].sync_all(&peers[server]).await;
            let moved = [report.pull, report.push].into_iter().flatten().map(|t| t.records_total).sum::<i64>();
            quiet &= moved == 0;
        }
        if quiet {
            break;
        }
    }
    let result = if quiet { compare(&peers).await } else { Err("still transferring after six rounds".into()) };
    for peer in peers {
        peer.finish().await;
    }
    result
}

async fn apply(peers: &[Peer; 3], facility: &facility::Model, op: &Op) {
    let id = |user: usize| {
        morango::ids::record_id(
            &format!("{}:user-ro:${{id}}", facility.id),
            &format!("{}:{}", facility.id, USERNAMES[user]),
            "learner",
        )
        .unwrap()
        .0
    };
    match *op {
        Op::Create { peer, user } => {
            if fixtures::find_learner(peers[peer].db(), &id(user)).await.is_none() {
                fixtures::learner(peers[peer].db(), facility, USERNAMES[user]).await;
            }
        }
        Op::Edit { peer, user, name } => {
            if let Some(found) = fixtures::find_learner(peers[peer].db(), &id(user)).await {
                let mut active = found.into_active_model();
                active.full_name = Set(format!("name {name}"));
                active.score = Set(f64::from(name) / 7.0);
                active.update(peers[peer].db()).await.unwrap();
            }
        }
        Op::Delete { peer, user } => {
            if let Some(found) = fixtures::find_learner(peers[peer].db(), &id(user)).await {
                found.delete(peers[peer].db()).await.unwrap();
            }
        }
        Op::HardDelete { peer, user } => {
            morango::hard_delete::<learner::Entity, _>(peers[peer].db(), &id(user)).await.unwrap();
        }
        Op::Log { peer, user } => {
            if let Some(found) = fixtures::find_learner(peers[peer].db(), &id(user)).await {
                fixtures::log(peers[peer].db(), &found, "video").await;
            }
        }
        Op::Sync { client, server, single_user } => {
            let filter = match single_user {
                None => Filter::everything(),
                Some(user) => Filter::new([
                    format!("{}:user-ro:{}", facility.id, id(user)),
                    format!("{}:user-rw:{}", facility.id, id(user)),
                ]),
            };
            peers[client].sync(&peers[server], &filter).await;
        }
    }
}

async fn compare(peers: &[Peer; 3]) -> Result<(), String> {
    let mut stores = Vec::new();
    let mut apps = Vec::new();
    for peer in peers {
        let store: Vec<_> = peer.store_snapshot().await.iter().map(|row| row.converged_view()).collect();
        let learners: Vec<_> = learner::Entity::find()
            .order_by_asc(learner::Column::Id)
            .all(peer.db())
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.id, l.full_name, l.score.to_bits(), l.active))
            .collect();
        let logs: Vec<_> = log::Entity::find()
            .order_by_asc(log::Column::Id)
            .all(peer.db())
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.id, l.learner_id, l.content))
            .collect();
        if let Some(dirty) = peer.store_snapshot().await.iter().find(|row| row.dirty_bit) {
            return Err(format!("a record was left unapplied: {dirty:?}"));
        }
        stores.push(store);
        apps.push((learners, logs));
    }
    for i in 1..3 {
        if stores[i] != stores[0] {
            return Err(format!("store of peer {i} differs from peer 0:\n{:#?}\nvs\n{:#?}", stores[i], stores[0]));
        }
        if apps[i] != apps[0] {
            return Err(format!(
                "application tables of peer {i} differ from peer 0:\n{:?}\nvs\n{:?}",
                apps[i], apps[0]
            ));
        }
    }
    Ok(())
}
