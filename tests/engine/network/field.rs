//! Syncs as they go in the field: partial scopes that converge and then move nothing, syncs that stop halfway and
//! are run again, clients that start over, transfers left idle, buffers bounded per certificate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::Request;
use futures::StreamExt;
use morango::api::ServerSettings;
use morango::client::{self, Credentials, SyncRequest};
use morango::server::TransferLimits;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Statement};

use super::harness::{Client, Server, Users, Wants};
use crate::fixtures;
use crate::on_both_backends;
use crate::schema::{learner, log};
use crate::support::Backend;

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

/// Rows a server holds for unfinished transfers, and its active transfers.
async fn leftovers(db: &DatabaseConnection) -> (i64, i64) {
    let rows = count(
        db,
        "SELECT (SELECT COUNT(*) FROM morango_buffer) + (SELECT COUNT(*) FROM morango_recordmaxcounterbuffer) \
         + (SELECT COUNT(*) FROM morango_transferqueue) AS n",
    )
    .await;
    let active = count(db, "SELECT COUNT(*) AS n FROM morango_transfersession WHERE active = true").await;
    (rows, active)
}

on_both_backends!(a_single_user_device_converges_and_then_moves_nothing);

async fn a_single_user_device_converges_and_then_moves_nothing(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let bob = fixtures::learner(server.db(), &server.facility, "bob").await;
    fixtures::log(server.db(), &ada, "ada's video").await;
    fixtures::log(server.db(), &bob, "bob's video").await;
    // A full-facility device writes too, so the server's knowledge spans several instances.
    let office = Client::enrol(backend, &server, Wants::Facility).await;
    office.sync(&server).await;
    let facility = crate::schema::facility::Entity::find().one(office.peer.db()).await.unwrap().unwrap();
    fixtures::learner(office.peer.db(), &facility, "cy").await;
    let office_ada = fixtures::find_learner(office.peer.db(), &ada.id).await.unwrap();
    fixtures::log(office.peer.db(), &office_ada, "set by the office").await;
    office.sync(&server).await;

    let server = server.with_users(Users::new().learner("ada", &ada.id));
    let tablet = Client::enrol(backend, &server, Wants::Learner { username: "ada", learner_id: &ada.id }).await;
    let first = tablet.sync(&server).await;
    assert_eq!(first.pull.unwrap().records_transferred, 4, "the facility, ada, her two logs");
    let mine = fixtures::find_learner(tablet.peer.db(), &ada.id).await.unwrap();
    fixtures::log(tablet.peer.db(), &mine, "done on the tablet").await;
    let second = tablet.sync(&server).await;
    assert_eq!(second.push.unwrap().records_transferred, 1);
    for round in 0..3 {
        let again = tablet.sync(&server).await;
        let (pull, push) = (again.pull.unwrap(), again.push.unwrap());
        assert_eq!((pull.records_transferred, push.records_transferred), (0, 0), "round {round}: {pull:?} {push:?}");
    }
    // The office's next sync brings the tablet's log, and then nothing more either.
    office.sync(&server).await;
    let quiet = office.sync(&server).await;
    assert_eq!((quiet.pull.unwrap().records_transferred, quiet.push.unwrap().records_transferred), (0, 0));
    assert_eq!(log::Entity::find().count(office.peer.db()).await.unwrap(), 4);
    tablet.finish().await;
    office.finish().await;
    server.finish().await;
}

on_both_backends!(a_new_transfer_of_the_same_client_supersedes_its_unfinished_one);

async fn a_new_transfer_of_the_same_client_supersedes_its_unfinished_one(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    for i in 0..9 {
        fixtures::learner(server.db(), &server.facility, &format!("learner {i}")).await;
    }
    let tablet = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 3).await;
    // A pull that stops after two pages, in a session that is never used again (a client killed mid-pull that
    // starts over without resuming, as Python clients do).
    let abandoned = tablet.open(&server).await;
    let cut = super::sync::CutAfter::new(abandoned.peer(), 2);
    let interrupted = morango::SyncClient::attach(&tablet.peer.engine, &cut, abandoned.id().into(), cut.capabilities());
    assert!(interrupted.pull(&server.facility_filter()).await.is_err());
    let (rows, active) = leftovers(server.db()).await;
    assert!(rows > 0 && active == 1, "the server holds the unfinished pull: {rows} rows, {active} active");

    let fresh = tablet.open(&server).await;
    let client = fresh.client(&tablet.peer.engine);
    let report = client.pull(&server.facility_filter()).await.unwrap();
    assert_eq!(report.records_transferred, 10);
    client.close().await.unwrap();
    assert_eq!(leftovers(server.db()).await, (0, 0), "the new pull dropped the old one's queue");
    tablet.finish().await;
    server.finish().await;
}

on_both_backends!(transfers_idle_too_long_are_closed_by_the_server);

async fn transfers_idle_too_long_are_closed_by_the_server(backend: Backend) {
    let limits = TransferLimits { idle_timeout: std::time::Duration::from_secs(60), ..TransferLimits::default() };
    let settings = ServerSettings { transfer_limits: limits, ..ServerSettings::default() };
    let server = Server::start(backend, settings, Users::new()).await;
    for i in 0..9 {
        fixtures::learner(server.db(), &server.facility, &format!("learner {i}")).await;
    }
    let tablet = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 3).await;
    let session = tablet.open(&server).await;
    let cut = super::sync::CutAfter::new(session.peer(), 1);
    let interrupted = morango::SyncClient::attach(&tablet.peer.engine, &cut, session.id().into(), cut.capabilities());
    assert!(interrupted.pull(&server.facility_filter()).await.is_err());
    assert!(leftovers(server.db()).await.0 > 0);
    // Idle for two minutes: the next transfer anyone creates closes it first.
    let past = chrono::Utc::now() - chrono::Duration::minutes(2);
    let backend_of = server.db().get_database_backend();
    let sql = match backend_of {
        sea_orm::DbBackend::Postgres => "UPDATE morango_transfersession SET last_activity_timestamp = $1",
        _ => "UPDATE morango_transfersession SET last_activity_timestamp = ?",
    };
    server.db().execute_raw(Statement::from_sql_and_values(backend_of, sql, [past.into()])).await.unwrap();
    let other = Client::enrol(backend, &server, Wants::Facility).await;
    other.sync(&server).await;
    assert_eq!(leftovers(server.db()).await, (0, 0), "the idle pull was closed and its queue dropped");

    // Its client comes back: the server no longer has the transfer, so the pull starts over and completes.
    let report = session.client(&tablet.peer.engine).pull(&server.facility_filter()).await.expect("started over");
    assert_eq!(report.records_transferred, 10);
    assert_eq!(learner::Entity::find().count(tablet.peer.db()).await.unwrap(), 9);
    other.finish().await;
    tablet.finish().await;
    server.finish().await;
}

on_both_backends!(
    a_certificates_unfinished_transfers_are_bounded_in_bytes,
    two_pulls_queued_at_once_share_their_certificates_bound
);

/// Pushed chunks are merged as they arrive: a push holds nothing on the server, however large. What a pull leaves
/// queued is bounded per client certificate: past the limit the server answers 507 and drops the queue.
async fn a_certificates_unfinished_transfers_are_bounded_in_bytes(backend: Backend) {
    let limits = TransferLimits { max_buffered_bytes_per_certificate: 2_000, ..TransferLimits::default() };
    let settings = ServerSettings { transfer_limits: limits, ..ServerSettings::default() };
    let server = Server::start(backend, settings, Users::new()).await;
    let tablet = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 5).await;
    tablet.sync(&server).await;
    let facility = crate::schema::facility::Entity::find().one(tablet.peer.db()).await.unwrap().unwrap();
    for i in 0..40 {
        fixtures::learner(tablet.peer.db(), &facility, &format!("learner {i}")).await;
    }
    let held = || {
        count(server.db(), "SELECT CAST(COALESCE(SUM(bytes_buffered), 0) AS BIGINT) AS n FROM morango_transfersession")
    };
    let session = tablet.open(&server).await;
    let client = session.client(&tablet.peer.engine);
    let pushed = client.push(&server.facility_filter()).await.expect("a push holds nothing, whatever its size");
    assert_eq!(pushed.records_transferred, 40);
    assert_eq!(held().await, 0);
    let laptop = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 5).await;
    let session = laptop.open(&server).await;
    let client = session.client(&laptop.peer.engine);
    let refused = client.pull(&server.facility_filter()).await.expect_err("a queue larger than the limit");
    let message = refused.to_string();
    assert!(message.contains("507") && message.contains("2000 bytes"), "{message}");
    assert_eq!(held().await, 0);
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM morango_transferqueue").await, 0, "the queue was dropped");
    tablet.finish().await;
    laptop.finish().await;
    server.finish().await;
}

/// A router that breaks off the answer to the `n`-th `GET buffers/` and counts every page asked for.
fn breaking_page(n: usize, pages: Arc<AtomicUsize>) -> impl FnOnce(axum::Router) -> axum::Router {
    move |router| {
        router.layer(axum::middleware::from_fn(move |request: Request<Body>, next: axum::middleware::Next| {
            let pages = pages.clone();
            async move {
                let page = request.uri().path().ends_with("/buffers/") && request.method() == axum::http::Method::GET;
                let response = next.run(request).await;
                if page && pages.fetch_add(1, Ordering::SeqCst) + 1 == n {
                    // Half the page, then the connection breaks.
                    let (parts, body) = response.into_parts();
                    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    let half = bytes.slice(..bytes.len() / 2);
                    let cut = async {
                        // Long enough for the server to send what it has.
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        Err(std::io::Error::other("cut"))
                    };
                    let broken = futures::stream::iter([Ok(half)]).chain(futures::stream::once(cut));
                    return axum::response::Response::from_parts(parts, Body::from_stream(broken));
                }
                response
            }
        }))
    }
}

on_both_backends!(a_sync_cut_by_the_network_is_resumed_by_running_it_again);

async fn a_sync_cut_by_the_network_is_resumed_by_running_it_again(backend: Backend) {
    let pages = Arc::new(AtomicUsize::new(0));
    let server =
        Server::start_wrapped(backend, ServerSettings::default(), Users::new(), breaking_page(3, pages.clone())).await;
    for i in 0..11 {
        fixtures::learner(server.db(), &server.facility, &format!("learner {i}")).await;
    }
    let tablet =
        crate::support::Peer::with(backend, crate::schema::Tables::Current, &crate::schema::FACILITY_DATA, 3).await;
    let request = SyncRequest {
        credentials: Some(Credentials { username: "admin".into(), password: "admin-password".into() }),
        ..SyncRequest::default()
    };
    let cut = client::sync(&tablet.engine, &server.url, &request).await.expect_err("the third page broke off");
    assert!(cut.to_string().contains("buffers"), "{cut}");
    assert_eq!(pages.load(Ordering::SeqCst), 3);

    let resumed = client::sync(&tablet.engine, &server.url, &request).await.expect("resumed");
    let pull = resumed.pull.unwrap();
    assert_eq!((pull.records_total, pull.records_transferred), (12, 12));
    // Two pages were stored before the cut: the rerun asked for the other two only.
    assert_eq!(pages.load(Ordering::SeqCst), 5, "pages asked for in both runs");
    assert_eq!(learner::Entity::find().count(tablet.engine.db()).await.unwrap(), 11);
    assert_eq!(leftovers(server.db()).await, (0, 0));
    let quiet = client::sync(&tablet.engine, &server.url, &request).await.unwrap();
    assert_eq!(quiet.pull.unwrap().records_transferred, 0);
    tablet.finish().await;
    server.finish().await;
}

on_both_backends!(cleaning_up_gives_the_space_of_abandoned_transfers_back);

/// A pull abandoned halfway leaves its queue on the server; cleaning up drops it, and on SQLite the file shrinks
/// (incremental auto-vacuum). A push abandoned halfway leaves nothing to clean: each chunk went straight into the
/// server's store.
async fn cleaning_up_gives_the_space_of_abandoned_transfers_back(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let tablet = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 50).await;
    tablet.sync(&server).await;
    let facility = crate::schema::facility::Entity::find().one(tablet.peer.db()).await.unwrap().unwrap();
    for i in 0..1000 {
        fixtures::learner(tablet.peer.db(), &facility, &format!("learner {i}")).await;
    }
    // A push that stops after its first chunks: the server stored them, and holds nothing for the transfer.
    let session = tablet.open(&server).await;
    let cut = super::sync::CutAfter::new(session.peer(), 2);
    let pushing = morango::SyncClient::attach(&tablet.peer.engine, &cut, session.id().into(), cut.capabilities());
    let result = pushing.push(&server.facility_filter()).await;
    assert!(result.is_err(), "the connection dropped after two chunks: {result:?}");
    assert_eq!(leftovers(server.db()).await, (0, 1), "an unfinished push holds no rows");
    let stored =
        count(server.db(), "SELECT COUNT(*) AS n FROM morango_store WHERE last_transfer_session_id IS NOT NULL");
    assert_eq!(stored.await, 100, "the two chunks are in the server's store");
    tablet.sync(&server).await;
    // A pull by a new device that stops after its first pages: the server holds the rest of its queue.
    let laptop = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 50).await;
    let session = laptop.open(&server).await;
    let cut = super::sync::CutAfter::new(session.peer(), 2);
    let pulling = morango::SyncClient::attach(&laptop.peer.engine, &cut, session.id().into(), cut.capabilities());
    assert!(pulling.pull(&server.facility_filter()).await.is_err(), "the connection dropped after two pages");
    let queued = count(server.db(), "SELECT COUNT(*) AS n FROM morango_transferqueue").await;
    assert!(queued > 1000, "the server holds the pull's queue: {queued}");
    let pages = || async {
        if server.db().get_database_backend() != sea_orm::DbBackend::Sqlite {
            return 0;
        }
        morango::cleanup::reclaim_space(server.api.engine()).await.unwrap();
        count(server.db(), "SELECT page_count AS n FROM pragma_page_count()").await
    };
    let before = pages().await;
    let report = morango::cleanup_syncs(server.api.engine(), std::time::Duration::ZERO).await.unwrap();
    assert_eq!(report.queued, queued as u64);
    assert_eq!(leftovers(server.db()).await, (0, 0));
    let after = pages().await;
    if server.db().get_database_backend() == sea_orm::DbBackend::Sqlite {
        assert!(after < before, "the file shrank: {before} pages, then {after}");
    }
    tablet.finish().await;
    laptop.finish().await;
    server.finish().await;
}

/// The bound holds for pulls queued at the same time: each is checked, and its size recorded, before its queue is
/// committed, one certificate at a time. Of two pulls that each fit but not together, one is refused. (They pull
/// different filters: a pull of the same filter in another session supersedes the first.)
async fn two_pulls_queued_at_once_share_their_certificates_bound(backend: Backend) {
    // The facility (10 records of 100 bytes) fits in 1,500 bytes, and so do its 9 learners; both together do not.
    let limits = TransferLimits { max_buffered_bytes_per_certificate: 1_500, ..TransferLimits::default() };
    let settings = ServerSettings { transfer_limits: limits, ..ServerSettings::default() };
    let server = Server::start(backend, settings, Users::new()).await;
    for i in 0..9 {
        fixtures::learner(server.db(), &server.facility, &format!("learner {i}")).await;
    }
    let laptop = Client::enrol(backend, &server, Wants::Facility).await;
    let (one, two) = tokio::join!(laptop.open(&server), laptop.open(&server));
    async fn pull(
        session: &morango::client::NetworkSession,
        filter: morango::Filter,
    ) -> morango::Result<morango::session::TransferSession> {
        let request = morango::server::TransferRequest {
            id: morango::ids::random_id(),
            sync_session_id: session.id().to_owned(),
            filter,
            push: false,
            client_fsic: "{}".into(),
            fsic_v2: true,
        };
        let peer = session.peer();
        let created = morango::peer::Peer::create_transfer_session(peer, &request).await?;
        let to_queuing =
            morango::server::StageRequest { stage: Some(morango::stage::TransferStage::Queuing), ..Default::default() };
        morango::peer::Peer::update_transfer_session(peer, &created.id, &to_queuing).await
    }
    let learners = morango::Filter::new([format!("{}:user-ro", server.facility.id)]);
    let (first, second) = tokio::join!(pull(&one, server.facility_filter()), pull(&two, learners));
    let (queued, refused) = match (first, second) {
        (Ok(queued), Err(refused)) | (Err(refused), Ok(queued)) => (queued, refused),
        (first, second) => panic!("exactly one of two pulls must be refused: {first:?} / {second:?}"),
    };
    assert!(refused.to_string().contains("507"), "{refused}");
    let records = queued.records_total.expect("queued");
    assert!(records == 10 || records == 9, "{records} records queued");
    let held = "SELECT CAST(COALESCE(SUM(bytes_buffered), 0) AS BIGINT) AS n FROM morango_transfersession";
    assert_eq!(count(server.db(), held).await, records * 100, "the queued pull holds its bytes, the refused one none");
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM morango_transferqueue").await, records, "one queue");
    laptop.finish().await;
    server.finish().await;
}
