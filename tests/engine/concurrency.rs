//! Application writes that commit while a sync runs are never lost (PostgreSQL, where they can interleave;
//! SQLite has one writer at a time). The races are forced with locks held by a second connection.

use std::time::Duration;

use morango::{Filter, SyncOptions};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, ModelTrait, Statement, TransactionTrait};

use crate::fixtures::{self, find_learner, rename_learner};
use crate::schema::learner;
use crate::support::{Backend, Peer};

/// PostgreSQL only: SQLite serializes writers, so these interleavings cannot happen there.
macro_rules! on_postgres {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if crate::support::Backend::Postgres.enabled() {
                    super::$name(crate::support::Backend::Postgres).await
                } else {
                    eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS")
                }
            }
        }
    )+};
}

on_postgres!(a_deletion_committed_during_serialization_is_recorded, an_edit_committed_during_a_pull_survives);

fn statement(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let sql = if backend == DbBackend::Sqlite { sql.replace("$1", "?").replace("$2", "?") } else { sql.to_owned() };
    Statement::from_sql_and_values(backend, sql, values)
}

async fn a_deletion_committed_during_serialization_is_recorded(backend: Backend) {
    let a = Peer::new(backend).await;
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let bob = fixtures::learner(a.db(), &facility, "bob").await;
    let video = fixtures::log(a.db(), &ada, "video").await;
    a.engine.serialize(None).await.unwrap();
    video.clone().delete(a.db()).await.unwrap();
    // Serialization will stop at the log's store row, held by another transaction...
    let holder = a.db().begin().await.unwrap();
    let lock =
        statement(a.backend(), "SELECT id FROM morango_store WHERE id = $1 FOR UPDATE", vec![video.id.clone().into()]);
    holder.execute_raw(lock).await.unwrap();
    let serializing = async { a.engine.serialize(None).await.unwrap() };
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        // ...while the application deletes Bob, after serialization went past the learners.
        learner::Entity::delete_by_id(bob.id.clone()).exec(a.db()).await.unwrap();
        holder.commit().await.unwrap();
    };
    tokio::join!(serializing, meanwhile);
    a.engine.serialize(None).await.unwrap();
    assert!(a.store(&bob.id).await.unwrap().deleted, "Bob's deletion stayed queued and was recorded");
    a.finish().await;
}

async fn an_edit_committed_during_a_pull_survives(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    b.sync_all(&a).await;
    rename_learner(a.db(), &ada.id, "edited on A").await;
    // B's application edits Ada in a transaction that commits while B pulls A's version.
    let app = b.db().begin().await.unwrap();
    let edit = statement(
        b.backend(),
        "UPDATE learner SET full_name = $1 WHERE id = $2",
        vec!["edited on B".into(), ada.id.clone().into()],
    );
    app.execute_raw(edit).await.unwrap();
    let pull = SyncOptions::new(Filter::everything()).pull_only();
    let syncing = async { morango::sync_local(&b.engine, &a.engine, &pull).await.unwrap() };
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        app.commit().await.unwrap();
    };
    tokio::join!(syncing, meanwhile);
    b.engine.serialize(None).await.unwrap();
    assert_eq!(find_learner(b.db(), &ada.id).await.unwrap().full_name, "edited on B", "the local edit is kept");
    let row = b.store(&ada.id).await.unwrap();
    assert!(row.serialized.contains("edited on B"));
    assert!(row.conflicting_serialized_data.contains("edited on A"), "A's version is recorded as the conflict");
    a.finish().await;
    b.finish().await;
}
