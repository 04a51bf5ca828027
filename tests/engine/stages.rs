//! A transfer's stages hold up whichever server process a request reaches: a stage asked for twice at once (a
//! client's retry reaching another process while the first still works) runs twice in turn, never interleaved, and
//! leaves one result; a stage PostgreSQL aborts for colliding with another transaction runs again, and past a few
//! tries the request fails as "try again later" with the stage left to run again.

use std::time::Duration;

use morango::server::{self, StageRequest, TransferLimits, TransferRequest};
use morango::stage::{TransferStage, TransferStatus};
use morango::{Filter, StorageFailure};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait, Value};

use crate::fixtures;
use crate::support::{Backend, Peer};

/// Learners on the server: its facility pull queues them and the facility.
const LEARNERS: i64 = 5;

fn to_queuing() -> StageRequest {
    StageRequest { stage: Some(TransferStage::Queuing), ..Default::default() }
}

/// A server with a facility of learners and a pull of it that is created (initializing done) but not queued.
async fn server_with_a_pull(backend: Backend) -> (Peer, String) {
    let server = Peer::new(backend).await;
    let facility = fixtures::facility(server.db(), "Riverside").await;
    for i in 0..LEARNERS {
        fixtures::learner(server.db(), &facility, &format!("learner {i}")).await;
    }
    let sync_session = morango::ids::random_id();
    let client_instance = r#"{"id": "0123456789abcdef0123456789abcdef"}"#;
    server::open_sync_session(&server.engine, &sync_session, client_instance, "local").await.expect("sync session");
    let request = TransferRequest {
        id: morango::ids::random_id(),
        sync_session_id: sync_session,
        filter: Filter::new([facility.id.clone()]),
        push: false,
        client_fsic: "{}".into(),
        fsic_v2: true,
    };
    let ts = server::create_transfer(&server.engine, &request, &TransferLimits::default()).await.expect("transfer");
    (server, ts.id)
}

async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await.expect(sql);
}

async fn number(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    db.query_one_raw(statement).await.expect(sql).expect("one row").try_get("", "n").expect("n")
}

async fn queued(db: &DatabaseConnection, id: &str) -> i64 {
    number(db, "SELECT COUNT(*) AS n FROM morango_transferqueue WHERE transfer_session_id = $1", vec![id.into()]).await
}

/// Two requests for the same stage at once, both held up inside it: each answers once the stage is done, and the
/// transfer holds one queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_asked_for_twice_at_once_leaves_one_queue() {
    if !Backend::Postgres.enabled() {
        return eprintln!(
            "SKIPPED (loudly): postgres not in MORANGO_TEST_BACKENDS, concurrent stage requests not tested"
        );
    }
    let (server, id) = server_with_a_pull(Backend::Postgres).await;
    let limits = TransferLimits::default();
    let request = to_queuing();
    // The queue table is held by another transaction until both requests wait inside the stage.
    let holder = server.db().begin().await.expect("a transaction");
    holder.execute_unprepared("LOCK TABLE morango_transferqueue IN ACCESS EXCLUSIVE MODE").await.expect("lock");
    let release = async {
        let waiting = "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                       AND wait_event_type = 'Lock'";
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while number(server.db(), waiting, vec![]).await < 2 {
            assert!(tokio::time::Instant::now() < deadline, "both requests reach the stage");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        holder.rollback().await.expect("release the queue table");
    };
    let (first, second, ()) = tokio::join!(
        server::proceed_to(&server.engine, &id, &request, &limits),
        server::proceed_to(&server.engine, &id, &request, &limits),
        release,
    );
    for answer in [first, second] {
        let ts = answer.expect("both requests complete");
        assert_eq!(
            (ts.stage, ts.status, ts.records_total),
            (TransferStage::Queuing, TransferStatus::Completed, Some(LEARNERS + 1))
        );
    }
    assert_eq!(queued(server.db(), &id).await, LEARNERS + 1, "one queue");
    server.finish().await;
}

/// A stage whose transaction PostgreSQL aborts as a serialization failure (as a colliding transaction makes it do)
/// runs again; when it keeps colliding the request fails as a storage conflict (the API answers 503), the stage is
/// left pending, and the client's next request runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_that_collides_with_another_transaction_runs_again() {
    if !Backend::Postgres.enabled() {
        return eprintln!("SKIPPED (loudly): postgres not in MORANGO_TEST_BACKENDS, transaction conflicts not tested");
    }
    let (server, id) = server_with_a_pull(Backend::Postgres).await;
    let limits = TransferLimits::default();
    // Every statement writing the queue collides while the sequence `attempts` is within `collisions.upto`.
    server
        .db()
        .execute_unprepared(
            "CREATE SEQUENCE attempts; CREATE TABLE collisions (upto BIGINT NOT NULL); \
             INSERT INTO collisions VALUES (1000); \
             CREATE FUNCTION collide() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF nextval('attempts') <= (SELECT upto FROM collisions) THEN \
                 RAISE EXCEPTION 'injected collision' USING ERRCODE = 'serialization_failure'; \
               END IF; RETURN NULL; END $$; \
             CREATE TRIGGER collide BEFORE INSERT ON morango_transferqueue \
               FOR EACH STATEMENT EXECUTE FUNCTION collide();",
        )
        .await
        .expect("the colliding trigger");
    let attempts = || number(server.db(), "SELECT last_value AS n FROM attempts", vec![]);

    let error = server::proceed_to(&server.engine, &id, &to_queuing(), &limits).await.expect_err("always collides");
    assert_eq!(error.storage_failure(), Some(StorageFailure::Conflict), "{error}");
    let tries = attempts().await;
    assert!(tries > 1, "the stage ran again before giving up ({tries} tries)");
    let ts = server::transfer_session(&server.engine, &id).await.expect("still there");
    assert_eq!((ts.stage, ts.status), (TransferStage::Queuing, TransferStatus::Pending));
    assert_eq!(queued(server.db(), &id).await, 0);

    // Two more collisions, then none: the next request runs the stage again until it passes.
    execute(server.db(), "UPDATE collisions SET upto = $1", vec![(tries + 2).into()]).await;
    let ts = server::proceed_to(&server.engine, &id, &to_queuing(), &limits).await.expect("passes on its third try");
    assert_eq!((ts.stage, ts.status), (TransferStage::Queuing, TransferStatus::Completed));
    assert_eq!(attempts().await, tries + 3);
    assert_eq!(queued(server.db(), &id).await, LEARNERS + 1);
    server.finish().await;
}
