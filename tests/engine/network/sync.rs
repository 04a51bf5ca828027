//! Pull, push, conflicts and deletions over HTTP.

use morango::Filter;
use morango::api::ServerSettings;
use morango::capabilities::{self, Capabilities};
use morango::client::{HttpSettings, NetworkSyncConnection};
use sea_orm::{EntityTrait, ModelTrait, PaginatorTrait};

use super::harness::{Client, Server, Users, Wants, connect};
use crate::fixtures::{self, find_learner, rename_learner};
use crate::on_both_backends;
use crate::schema::{learner, log};
use crate::support::Backend;

on_both_backends!(a_full_facility_client_pulls_and_pushes_over_http);

async fn a_full_facility_client_pulls_and_pushes_over_http(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    fixtures::log(server.db(), &ada, "video").await;

    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    let first = tablet.sync(&server).await;
    assert_eq!(first.pull.unwrap().records_total, 3);
    assert_eq!(find_learner(tablet.peer.db(), &ada.id).await.unwrap().full_name, "ada Learner");

    rename_learner(tablet.peer.db(), &ada.id, "edited on the tablet").await;
    let second = tablet.sync(&server).await;
    assert_eq!(second.push.unwrap().records_total, 1);
    assert_eq!(find_learner(server.db(), &ada.id).await.unwrap().full_name, "edited on the tablet");
    tablet.finish().await;
    server.finish().await;
}

on_both_backends!(
    a_learner_receives_only_their_partitions_and_writes_only_theirs,
    conflicts_and_deletions_travel_over_http,
    a_network_pull_cut_after_two_chunks_resumes,
    ten_clients_sync_with_one_server_at_once_and_converge,
    a_client_without_async_operations_uses_the_legacy_flow,
);

async fn a_learner_receives_only_their_partitions_and_writes_only_theirs(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let bob = fixtures::learner(server.db(), &server.facility, "bob").await;
    fixtures::log(server.db(), &ada, "ada's video").await;
    fixtures::log(server.db(), &bob, "bob's video").await;
    let users = Users::new().learner("ada", &ada.id);
    let server = server.with_users(users);

    let tablet = Client::enrol(backend, &server, Wants::Learner { username: "ada", learner_id: &ada.id }).await;
    tablet.sync(&server).await;
    assert!(find_learner(tablet.peer.db(), &ada.id).await.is_some());
    assert!(find_learner(tablet.peer.db(), &bob.id).await.is_none(), "bob's data stays on the server");
    let logs = log::Entity::find().all(tablet.peer.db()).await.unwrap();
    assert_eq!(logs.iter().map(|l| l.content.as_str()).collect::<Vec<_>>(), ["ada's video"]);

    let mine = find_learner(tablet.peer.db(), &ada.id).await.unwrap();
    fixtures::log(tablet.peer.db(), &mine, "done on the tablet").await;
    tablet.sync(&server).await;
    assert_eq!(log::Entity::find().count(server.db()).await.unwrap(), 3, "her own log went up");

    // Pushing into Bob's partitions, or pulling them, is refused by the server.
    let session = tablet.open(&server).await;
    let client = session.client(&tablet.peer.engine);
    let bobs = Filter::new([format!("{}:user-rw:{}", server.root.id(), bob.id)]);
    let refused = client.push(&bobs).await.expect_err("outside her write scope");
    assert!(refused.to_string().contains("403"), "{refused}");
    let refused = client.pull(&bobs).await.expect_err("outside her read scope");
    assert!(refused.to_string().contains("403"), "{refused}");
    tablet.finish().await;
    server.finish().await;
}

async fn conflicts_and_deletions_travel_over_http(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let bob = fixtures::learner(server.db(), &server.facility, "bob").await;
    let (one, two) = (
        Client::enrol(backend, &server, Wants::Facility).await,
        Client::enrol(backend, &server, Wants::Facility).await,
    );
    one.sync(&server).await;
    two.sync(&server).await;

    rename_learner(one.peer.db(), &ada.id, "edited on one").await;
    rename_learner(two.peer.db(), &ada.id, "edited on two").await;
    find_learner(two.peer.db(), &bob.id).await.unwrap().delete(two.peer.db()).await.unwrap();
    one.sync(&server).await;
    two.sync(&server).await; // two pulls one's edit: a conflict; two's version wins and goes up
    one.sync(&server).await;

    for db in [server.db(), one.peer.db(), two.peer.db()] {
        assert_eq!(find_learner(db, &ada.id).await.unwrap().full_name, "edited on two");
        assert!(find_learner(db, &bob.id).await.is_none(), "the deletion reached everyone");
    }
    let row = one.peer.store(&ada.id).await.unwrap();
    assert!(row.conflicting_serialized_data.contains("edited on one"), "the losing edit is recorded");
    one.finish().await;
    two.finish().await;
    server.finish().await;
}

async fn a_network_pull_cut_after_two_chunks_resumes(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    for i in 0..9 {
        fixtures::learner(server.db(), &server.facility, &format!("learner {i}")).await;
    }
    let tablet = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 3).await;
    let session = tablet.open(&server).await;
    let cut = CutAfter::new(session.peer(), 2);
    let interrupted = morango::SyncClient::attach(&tablet.peer.engine, &cut, session.id().into(), cut.capabilities());
    assert!(interrupted.pull(&server.facility_filter()).await.is_err(), "the connection dropped after two pages");
    // The two pages (the facility first, then 5 learners) were applied as they arrived.
    assert_eq!(learner::Entity::find().count(tablet.peer.db()).await.unwrap(), 5);

    let resumed = connect(&tablet.peer, &server).await.resume_session(session.id()).await.expect("resumable");
    let report = resumed.client(&tablet.peer.engine).pull(&server.facility_filter()).await.expect("resumed pull");
    assert_eq!((report.records_total, report.records_transferred), (10, 10));
    assert_eq!(learner::Entity::find().count(tablet.peer.db()).await.unwrap(), 9);
    tablet.finish().await;
    server.finish().await;
}

async fn ten_clients_sync_with_one_server_at_once_and_converge(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(Client::enrol(backend, &server, Wants::Facility).await);
    }
    let work = clients.iter().enumerate().map(|(i, client)| {
        let server = &server;
        async move {
            client.sync(server).await;
            let facility = crate::schema::facility::Entity::find().one(client.peer.db()).await.unwrap().unwrap();
            fixtures::learner(client.peer.db(), &facility, &format!("from client {i}")).await;
            client.sync(server).await;
        }
    });
    futures::future::join_all(work).await;
    // One more round, in turn, so that everyone has what the others pushed.
    for client in &clients {
        client.sync(&server).await;
    }
    let expected = learner::Entity::find().count(server.db()).await.unwrap();
    assert_eq!(expected, 10);
    for client in &clients {
        assert_eq!(learner::Entity::find().count(client.peer.db()).await.unwrap(), expected);
        let versions: Vec<_> = client.peer.store_snapshot().await.into_iter().map(|r| r.converged_view()).collect();
        let on_server = server_store(&server).await;
        assert_eq!(versions, on_server, "every client holds the server's versions");
    }
    for client in clients {
        client.finish().await;
    }
    server.finish().await;
}

async fn a_client_without_async_operations_uses_the_legacy_flow(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    let legacy = Capabilities::all().without(capabilities::ASYNC_OPERATIONS).without(capabilities::FSIC_V2_FORMAT);
    let sync = |expect_pull: i64, expect_push: i64| {
        let (tablet, server, legacy) = (&tablet, &server, legacy.clone());
        async move {
            let connection =
                NetworkSyncConnection::connect(&tablet.peer.engine, &server.url, legacy, HttpSettings::default())
                    .await
                    .unwrap();
            assert!(!connection.capabilities().has(capabilities::ASYNC_OPERATIONS));
            let session = connection.open_session(&tablet.certificate, &server.root).await.unwrap();
            let client = session.client(&tablet.peer.engine);
            let filter = server.facility_filter();
            assert_eq!(client.pull(&filter).await.unwrap().records_total, expect_pull);
            assert_eq!(client.push(&filter).await.unwrap().records_total, expect_push);
            client.close().await.unwrap();
        }
    };
    sync(2, 0).await;
    rename_learner(tablet.peer.db(), &ada.id, "edited, legacy").await;
    sync(0, 1).await;
    assert_eq!(find_learner(server.db(), &ada.id).await.unwrap().full_name, "edited, legacy");
    tablet.finish().await;
    server.finish().await;
}

async fn server_store(server: &Server) -> Vec<(String, String, bool, bool, String, i64, String)> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = server
        .db()
        .query_all_raw(Statement::from_string(
            server.db().get_database_backend(),
            "SELECT * FROM morango_store ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "id").unwrap(),
                r.try_get("", "serialized").unwrap(),
                r.try_get("", "deleted").unwrap(),
                r.try_get("", "hard_deleted").unwrap(),
                r.try_get("", "last_saved_instance").unwrap(),
                r.try_get("", "last_saved_counter").unwrap(),
                r.try_get("", "conflicting_serialized_data").unwrap(),
            )
        })
        .collect()
}

/// The server as a client sees it, with the connection dropping after a number of record pages or chunks.
pub(super) struct CutAfter<'a> {
    inner: &'a morango::client::HttpPeer,
    pages: std::sync::atomic::AtomicUsize,
}

impl<'a> CutAfter<'a> {
    /// `inner`, failing every page and every pushed chunk after the first `pages`.
    pub(super) fn new(inner: &'a morango::client::HttpPeer, pages: usize) -> Self {
        CutAfter { inner, pages: pages.into() }
    }

    /// The capabilities of the session.
    pub(super) fn capabilities(&self) -> morango::capabilities::Capabilities {
        self.inner.capabilities()
    }
}

#[async_trait::async_trait]
impl morango::peer::Peer for CutAfter<'_> {
    async fn open_sync_session(&self, id: &str, instance: &str) -> morango::Result<String> {
        self.inner.open_sync_session(id, instance).await
    }
    async fn close_sync_session(&self, id: &str) -> morango::Result<()> {
        self.inner.close_sync_session(id).await
    }
    async fn create_transfer_session(
        &self,
        request: &morango::server::TransferRequest,
    ) -> morango::Result<morango::session::TransferSession> {
        self.inner.create_transfer_session(request).await
    }
    async fn transfer_session(&self, id: &str) -> morango::Result<morango::session::TransferSession> {
        self.inner.transfer_session(id).await
    }
    async fn update_transfer_session(
        &self,
        id: &str,
        request: &morango::server::StageRequest,
    ) -> morango::Result<morango::session::TransferSession> {
        self.inner.update_transfer_session(id, request).await
    }
    async fn pull_buffers(&self, id: &str, offset: i64, limit: i64) -> morango::Result<Vec<morango::BufferRecord>> {
        use std::sync::atomic::Ordering;
        if self.pages.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return Err(morango::Error::Transport { url: "cut".into(), message: "connection reset".into() });
        }
        self.inner.pull_buffers(id, offset, limit).await
    }
    async fn push_buffers(
        &self,
        id: &str,
        records: &[morango::BufferRecord],
    ) -> morango::Result<Vec<morango::Refusal>> {
        use std::sync::atomic::Ordering;
        if self.pages.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return Err(morango::Error::Transport { url: "cut".into(), message: "connection reset".into() });
        }
        self.inner.push_buffers(id, records).await
    }
    async fn close_transfer_session(&self, id: &str) -> morango::Result<()> {
        self.inner.close_transfer_session(id).await
    }
}

on_both_backends!(a_client_grants_the_server_a_certificate_by_pushing_it);

async fn a_client_grants_the_server_a_certificate_by_pushing_it(backend: Backend) {
    let settings = ServerSettings { allow_certificate_pushing: true, ..ServerSettings::default() };
    let server = Server::start(backend, settings, Users::new()).await;
    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    let connection = connect(&tablet.peer, &server).await;
    let params = serde_json::json!({"facility_id": server.root.id()});
    let serde_json::Value::Object(params) = params else { unreachable!() };
    let pushed = connection.push_certificate(&tablet.certificate, "read-only", &params).await.expect("pushed");
    assert_eq!(pushed.parent_id(), Some(tablet.certificate.id()));

    let on_server = morango::certificate::get(server.db(), pushed.id()).await.unwrap().expect("stored by the server");
    assert!(on_server.has_private_key(), "the server holds the shared private key for it");
    let servable = connection.server_certificates(None).await.unwrap();
    assert!(servable.iter().any(|c| c.id() == pushed.id()), "the server now serves with it");
    tablet.finish().await;
    server.finish().await;
}
