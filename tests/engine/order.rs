//! Record order: a producer sends the records of the models others refer to first, and a receiver applies each
//! chunk as it arrives; a record that arrives before its parent (a Python peer sends in its own order) waits in the
//! store and is applied by the deserializing stage. Within a model, records leave in the order the store received
//! them, so that a relay passes them on in the order their sender chose.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use morango::capabilities::Capabilities;
use morango::peer::{LocalPeer, Peer as SyncPeer};
use morango::server::{StageRequest, TransferRequest};
use morango::session::TransferSession;
use morango::{BufferRecord, Filter, SyncClient};
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::fixtures;
use crate::on_both_backends;
use crate::schema::{self, Tables, group, learner, log};
use crate::support::{Backend, Peer};

on_both_backends!(
    records_leave_parents_first_and_are_applied_as_they_arrive,
    records_that_arrive_before_their_parents_are_applied_by_the_deserializing_stage,
    a_relay_sends_a_models_records_in_the_order_it_received_them,
);

/// A local peer that notes every record it hands out, can hand the whole queue out in reverse (children first),
/// and can drop the connection after a number of pages.
struct Watched<'a> {
    inner: LocalPeer<'a>,
    reversed: bool,
    pages_left: AtomicUsize,
    sent: Mutex<Vec<String>>,
    sent_ids: Mutex<Vec<(String, String)>>,
    queue: Mutex<Option<Vec<BufferRecord>>>,
}

impl<'a> Watched<'a> {
    fn new(engine: &'a morango::Engine, reversed: bool, pages: usize) -> Self {
        Watched {
            inner: LocalPeer::new(engine),
            reversed,
            pages_left: pages.into(),
            sent: Mutex::default(),
            sent_ids: Mutex::default(),
            queue: Mutex::default(),
        }
    }

    async fn page(&self, id: &str, offset: i64, limit: i64) -> morango::Result<Vec<BufferRecord>> {
        if !self.reversed {
            return self.inner.pull_buffers(id, offset, limit).await;
        }
        if self.queue.lock().unwrap().is_none() {
            let mut all = Vec::new();
            loop {
                let page = self.inner.pull_buffers(id, all.len() as i64, 100).await?;
                if page.is_empty() {
                    break;
                }
                all.extend(page);
            }
            all.reverse();
            *self.queue.lock().unwrap() = Some(all);
        }
        let queue = self.queue.lock().unwrap();
        let all = queue.as_ref().unwrap();
        let start = (offset as usize).min(all.len());
        Ok(all[start..(start + limit as usize).min(all.len())].to_vec())
    }
}

#[async_trait::async_trait]
impl SyncPeer for Watched<'_> {
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
        self.inner.update_transfer_session(id, request).await
    }
    async fn pull_buffers(&self, id: &str, offset: i64, limit: i64) -> morango::Result<Vec<BufferRecord>> {
        if self.pages_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return Err(morango::Error::Transport { url: "local".into(), message: "connection reset".into() });
        }
        let page = self.page(id, offset, limit).await?;
        self.sent.lock().unwrap().extend(page.iter().map(|r| r.model_name.clone()));
        self.sent_ids.lock().unwrap().extend(page.iter().map(|r| (r.model_name.clone(), r.model_uuid.clone())));
        Ok(page)
    }
    async fn push_buffers(&self, id: &str, records: &[BufferRecord]) -> morango::Result<Vec<morango::Refusal>> {
        self.inner.push_buffers(id, records).await
    }
    async fn close_transfer_session(&self, id: &str) -> morango::Result<()> {
        self.inner.close_transfer_session(id).await
    }
}

/// A facility with learners, their logs and a three-level group tree, on `a`; an empty `b` taking chunks of 3.
async fn facility_and_empty_peer(backend: Backend) -> (Peer, Peer) {
    let a = Peer::new(backend).await;
    let b = Peer::with(backend, Tables::Current, &schema::FACILITY_DATA, 3).await;
    let facility = fixtures::facility(a.db(), "Riverside").await;
    for i in 0..4 {
        let learner = fixtures::learner(a.db(), &facility, &format!("learner {i}")).await;
        fixtures::log(a.db(), &learner, "intro").await;
        fixtures::log(a.db(), &learner, "fractions").await;
    }
    let root = fixtures::group(a.db(), &facility, "school", None).await;
    let class = fixtures::group(a.db(), &facility, "class", Some(&root)).await;
    fixtures::group(a.db(), &facility, "team", Some(&class)).await;
    (a, b)
}

async fn applied(b: &Peer) -> (u64, u64, u64) {
    (
        learner::Entity::find().count(b.db()).await.unwrap(),
        log::Entity::find().count(b.db()).await.unwrap(),
        group::Entity::find().count(b.db()).await.unwrap(),
    )
}

async fn records_leave_parents_first_and_are_applied_as_they_arrive(backend: Backend) {
    let (a, b) = facility_and_empty_peer(backend).await;
    // Four pages of three: the facility, the learners, then records of the models that refer to them.
    let watched = Watched::new(&a.engine, false, 4);
    let session = SyncClient::connect(&b.engine, &watched, Capabilities::all()).await.unwrap();
    assert!(session.pull(&Filter::everything()).await.is_err(), "the connection dropped after four pages");
    let sent = watched.sent.lock().unwrap().clone();
    let rank = |name: &String| schema::FACILITY_DATA.models().position(|m| m.model_name() == name).unwrap();
    assert_eq!(sent.len(), 12);
    assert!(sent.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])), "parents leave first: {sent:?}");
    assert_eq!(sent[0], "facility");
    let received = |model: &str| sent.iter().filter(|m| *m == model).count() as u64;
    assert_eq!(received("learner"), 4, "all learners leave before the models that refer to them: {sent:?}");
    // Everything received was applied before the transfer ended, and stored clean.
    assert_eq!(applied(&b).await, (received("learner"), received("contentlog"), received("learnergroup")));
    assert!(b.store_snapshot().await.iter().all(|row| !row.dirty_bit));

    let healthy = LocalPeer::new(&a.engine);
    let resumed = SyncClient::attach(&b.engine, &healthy, session.id().to_owned(), Capabilities::all());
    let report = resumed.pull(&Filter::everything()).await.unwrap();
    assert_eq!(report.records_total, 16);
    assert_eq!(applied(&b).await, (4, 8, 3));
    resumed.close().await.unwrap();
    a.finish().await;
    b.finish().await;
}

async fn records_that_arrive_before_their_parents_are_applied_by_the_deserializing_stage(backend: Backend) {
    let (a, b) = facility_and_empty_peer(backend).await;
    // Children first: two pages of logs and groups whose parents have not arrived.
    let watched = Watched::new(&a.engine, true, 2);
    let session = SyncClient::connect(&b.engine, &watched, Capabilities::all()).await.unwrap();
    assert!(session.pull(&Filter::everything()).await.is_err(), "the connection dropped after two pages");
    let sent = watched.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 6);
    assert!(sent.iter().all(|m| m == "contentlog" || m == "learnergroup"), "{sent:?}");
    // The groups of the first pages are the tree's lower levels: nothing of either could be applied yet.
    assert_eq!(applied(&b).await, (0, 0, 0));
    let waiting = b.store_snapshot().await;
    assert_eq!(waiting.len(), 6);
    assert!(waiting.iter().all(|row| row.dirty_bit), "records that could not be applied wait in the store");

    let everything = Watched::new(&a.engine, true, usize::MAX);
    let resumed = SyncClient::attach(&b.engine, &everything, session.id().to_owned(), Capabilities::all());
    resumed.pull(&Filter::everything()).await.unwrap();
    assert_eq!(applied(&b).await, (4, 8, 3));
    let stored = b.store_snapshot().await;
    assert_eq!(stored.len(), 16);
    assert!(stored.iter().all(|row| !row.dirty_bit && row.deserialization_error.is_none()));
    resumed.close().await.unwrap();
    a.finish().await;
    b.finish().await;
}

/// The learner ids a watched peer handed out, in order.
fn learners_sent(watched: &Watched<'_>) -> Vec<String> {
    let sent = watched.sent_ids.lock().unwrap();
    sent.iter().filter(|(model, _)| model == "learner").map(|(_, id)| id.clone()).collect()
}

async fn a_relay_sends_a_models_records_in_the_order_it_received_them(backend: Backend) {
    let (a, b) = facility_and_empty_peer(backend).await;
    // `b` receives `a`'s records in the reverse of `a`'s order, then `c` pulls them from `b`.
    let from_a = Watched::new(&a.engine, true, usize::MAX);
    let session = SyncClient::connect(&b.engine, &from_a, Capabilities::all()).await.unwrap();
    session.pull(&Filter::everything()).await.expect("b pulls from a");
    session.close().await.unwrap();
    let received = learners_sent(&from_a);
    let mut by_id = received.clone();
    by_id.sort();
    assert_ne!(received, by_id, "the test needs an order other than the ids'");

    let c = Peer::new(backend).await;
    let from_b = Watched::new(&b.engine, false, usize::MAX);
    let session = SyncClient::connect(&c.engine, &from_b, Capabilities::all()).await.unwrap();
    session.pull(&Filter::everything()).await.expect("c pulls from b");
    session.close().await.unwrap();
    assert_eq!(learners_sent(&from_b), received, "b passes the learners on in the order it received them");
    assert_eq!(applied(&c).await, (4, 8, 3));
    a.finish().await;
    b.finish().await;
    c.finish().await;
}
