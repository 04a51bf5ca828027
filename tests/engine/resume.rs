//! Interrupted transfers continue from their stored stage when the same sync session pulls or pushes again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use morango::capabilities::Capabilities;
use morango::peer::{LocalPeer, Peer as SyncPeer};
use morango::server::{StageRequest, TransferRequest};
use morango::session::TransferSession;
use morango::{BufferRecord, Filter, SyncClient, TransferStage};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};

use crate::fixtures;
use crate::on_both_backends;
use crate::schema::{self, Tables, learner};
use crate::support::{Backend, Peer};

on_both_backends!(
    an_interrupted_pull_resumes_from_its_stored_stage,
    a_staged_page_is_counted_with_it_and_the_pull_resumes_after_it,
    a_push_interrupted_after_queuing_resumes,
);

/// A local peer whose connection drops: after `pages` record pages, or once at `stage`.
struct Flaky<'a> {
    inner: LocalPeer<'a>,
    pages_left: AtomicUsize,
    fail_at: Option<TransferStage>,
    armed: AtomicBool,
}

impl<'a> Flaky<'a> {
    fn after_pages(engine: &'a morango::Engine, pages: usize) -> Self {
        Flaky { inner: LocalPeer::new(engine), pages_left: pages.into(), fail_at: None, armed: false.into() }
    }

    fn once_at(engine: &'a morango::Engine, stage: TransferStage) -> Self {
        Flaky { inner: LocalPeer::new(engine), pages_left: usize::MAX.into(), fail_at: Some(stage), armed: true.into() }
    }
}

fn reset() -> morango::Error {
    morango::Error::Transport { url: "local".into(), message: "connection reset".into() }
}

#[async_trait::async_trait]
impl SyncPeer for Flaky<'_> {
    async fn open_sync_session(&self, id: &str, instance: &str) -> morango::Result<String> {
        self.inner.open_sync_session(id, instance).await
    }
    async fn close_sync_session(&self, id: &str) -> morango::Result<()> {
        self.inner.close_sync_session(id).await
    }
    async fn create_transfer_session(&self, request: &TransferRequest) -> morango::Result<TransferSession> {
        self.inner.create_transfer_session(request).await
    }
    async fn transfer_session(&self, id: &str) -> morango::Result<TransferSession> {
        self.inner.transfer_session(id).await
    }
    async fn update_transfer_session(&self, id: &str, request: &StageRequest) -> morango::Result<TransferSession> {
        if request.stage.is_some() && request.stage == self.fail_at && self.armed.swap(false, Ordering::SeqCst) {
            return Err(reset());
        }
        self.inner.update_transfer_session(id, request).await
    }
    async fn pull_buffers(&self, id: &str, offset: i64, limit: i64) -> morango::Result<Vec<BufferRecord>> {
        if self.pages_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return Err(reset());
        }
        self.inner.pull_buffers(id, offset, limit).await
    }
    async fn push_buffers(&self, id: &str, records: &[BufferRecord]) -> morango::Result<Vec<morango::Refusal>> {
        self.inner.push_buffers(id, records).await
    }
    async fn close_transfer_session(&self, id: &str) -> morango::Result<()> {
        self.inner.close_transfer_session(id).await
    }
}

async fn server_and_client(backend: Backend) -> (Peer, Peer, schema::facility::Model) {
    let a = Peer::new(backend).await;
    let b = Peer::with(backend, Tables::Current, &schema::FACILITY_DATA, 3).await;
    let facility = fixtures::facility(a.db(), "Riverside").await;
    for i in 0..9 {
        fixtures::learner(a.db(), &facility, &format!("learner {i}")).await;
    }
    (a, b, facility)
}

async fn an_interrupted_pull_resumes_from_its_stored_stage(backend: Backend) {
    let (a, b, _) = server_and_client(backend).await;
    let flaky = Flaky::after_pages(&a.engine, 2);
    let session = SyncClient::connect(&b.engine, &flaky, Capabilities::all()).await.unwrap();
    let everything = Filter::everything();
    assert!(session.pull(&everything).await.is_err(), "the connection dropped after two pages");
    let session_id = session.id().to_owned();
    // Records leave parents first and are applied as they arrive: the two pages hold the facility and 5 learners.
    assert_eq!(schema::facility::Entity::find().count(b.db()).await.unwrap(), 1);
    assert_eq!(learner::Entity::find().count(b.db()).await.unwrap(), 5, "the received learners are applied");
    assert!(b.store_snapshot().await.iter().all(|row| !row.dirty_bit), "what was applied is stored clean");

    let healthy = LocalPeer::new(&a.engine);
    let resumed = SyncClient::attach(&b.engine, &healthy, session_id, Capabilities::all());
    let report = resumed.pull(&everything).await.unwrap();
    assert_eq!((report.records_total, report.records_transferred), (10, 10));
    assert_eq!(learner::Entity::find().count(b.db()).await.unwrap(), 9);
    let stored = b.store_snapshot().await;
    assert_eq!(stored.len(), 10);
    assert!(stored.iter().all(|row| !row.dirty_bit));
    resumed.close().await.unwrap();
    a.finish().await;
    b.finish().await;
}

async fn a_staged_page_is_counted_with_it_and_the_pull_resumes_after_it(backend: Backend) {
    let (a, b, _) = server_and_client(backend).await;
    let flaky = Flaky::after_pages(&a.engine, 1);
    let session = SyncClient::connect(&b.engine, &flaky, Capabilities::all()).await.unwrap();
    assert!(session.pull(&Filter::everything()).await.is_err(), "dropped after staging the first page");
    let healthy = LocalPeer::new(&a.engine);
    let session = SyncClient::attach(&b.engine, &healthy, session.id().to_owned(), Capabilities::all());
    // The page and its count were committed together: the resumed pull asks for the next page.
    let counted = b.db().query_one_raw(sea_orm::Statement::from_string(
        b.backend(),
        "SELECT records_transferred AS n, (SELECT COUNT(*) FROM morango_store s \
         WHERE s.last_transfer_session_id = t.id) AS staged FROM morango_transfersession t",
    ));
    let counted = counted.await.unwrap().unwrap();
    let (n, staged): (i64, i64) = (counted.try_get("", "n").unwrap(), counted.try_get("", "staged").unwrap());
    assert_eq!((n, staged), (3, 3));
    let report = session.pull(&Filter::everything()).await.expect("the resumed pull completes");
    assert_eq!(report.records_transferred, 10);
    assert_eq!(learner::Entity::find().count(b.db()).await.unwrap(), 9);
    a.finish().await;
    b.finish().await;
}

async fn a_push_interrupted_after_queuing_resumes(backend: Backend) {
    let (a, b, facility) = server_and_client(backend).await;
    b.sync_all(&a).await;
    fixtures::learner(b.db(), &facility, "new on the tablet").await;
    let flaky = Flaky::once_at(&a.engine, TransferStage::Queuing);
    let session = SyncClient::connect(&b.engine, &flaky, Capabilities::all()).await.unwrap();
    assert!(session.push(&Filter::everything()).await.is_err(), "dropped after queuing locally");
    let report = session.push(&Filter::everything()).await.expect("the resumed push completes");
    assert_eq!(report.records_total, 1);
    assert_eq!(learner::Entity::find().count(a.db()).await.unwrap(), 10);
    a.finish().await;
    b.finish().await;
}
