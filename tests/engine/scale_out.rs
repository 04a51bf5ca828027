//! Scaling a server out on PostgreSQL: two server processes on one database behind a load balancer that sends
//! every request to the other process in turn, so each transfer moves between them chunk by chunk. Clients (their
//! own processes, on SQLite) sync through it at the same time, in both directions, while the server's database is
//! written to; everyone converges, nothing is left behind.
//!
//! The processes are the kill matrix's (`faults::peer_process`): chunks of 3 records, two pages per commit.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use morango::certificate;
use sea_orm::EntityTrait;
use serde_json::Map;

use crate::faults::{self, NEW_RECORDS, Peer, Store};
use crate::fixtures;
use crate::schema;
use crate::support::Backend;

/// Client devices syncing at the same time.
const CLIENTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgres_database_serve_as_one() {
    if !Backend::Postgres.enabled() {
        return eprintln!("SKIPPED (loudly): postgres not in MORANGO_TEST_BACKENDS, two-process scale-out not tested");
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let prefix = format!("morango_test_{}", morango::ids::random_id());
    let server = Store::create(Backend::Postgres, dir.path(), &format!("{prefix}_s")).await;
    let clients: Vec<Store> =
        (0..CLIENTS).map(|i| Store::new(Backend::Sqlite, dir.path(), &format!("{prefix}_c{i}"))).collect();
    let outcome = scale_out(&server, &clients, dir.path()).await;
    server.drop().await;
    if let Err(message) = outcome {
        panic!("{message}");
    }
}

async fn scale_out(server: &Store, clients: &[Store], dir: &Path) -> Result<(), String> {
    faults::seed_server(server).await;
    // Both processes start at once (each installs change tracking and loads its instance on start).
    let (mut one, mut two) = tokio::join!(Peer::serve(server, dir, "one", None), Peer::serve(server, dir, "two", None));
    let balancer = RoundRobin::start(vec![one.url.clone(), two.url.clone()]).await;

    // Every client pulls the facility; then each creates learners, the server's own application does too, and
    // they all sync again (pull, then push) at the same time; a last round brings everyone's records to everyone.
    sync_all(clients, dir, &balancer.url, "first").await?;
    for (i, client) in clients.iter().enumerate() {
        add_learners(client, &format!("device {i}")).await;
    }
    add_learners(server, "office").await;
    sync_all(clients, dir, &balancer.url, "second").await?;
    sync_all(clients, dir, &balancer.url, "third").await?;
    one.stop();
    two.stop();

    let served = balancer.served();
    let transfers = balancer.transfers();
    eprintln!("requests per server process: {served:?}; transfers seen: {}", transfers.len());
    if served.iter().any(|n| *n < 20) {
        return Err(format!("the balancer did not spread the requests: {served:?}"));
    }
    let single: Vec<&String> = transfers.iter().filter(|(_, seen)| seen.len() < 2).map(|(id, _)| id).collect();
    if transfers.len() < 2 * CLIENTS || !single.is_empty() {
        return Err(format!(
            "of {} transfers, these stayed on one process (each should move between both): {single:?}",
            transfers.len()
        ));
    }
    converged(server, clients).await
}

/// Syncs every client (pull, then push) through `url`, all at once.
async fn sync_all(clients: &[Store], dir: &Path, url: &str, round: &str) -> Result<(), String> {
    let runs = clients.iter().enumerate().map(|(i, client)| async move {
        (i, Peer::sync(client, dir, &format!("{round}-{i}"), url, false, None, true).await)
    });
    for (i, finished) in futures::future::join_all(runs).await {
        if !finished.status.success() {
            return Err(format!("the {round} sync of client {i} failed: {}\n{}", finished.status, finished.stderr));
        }
    }
    Ok(())
}

/// Creates [`NEW_RECORDS`] learners, named after `whose`, in the facility of `store`.
async fn add_learners(store: &Store, whose: &str) {
    let db = store.connect().await;
    let facility = schema::facility::Entity::find().one(&db).await.unwrap().expect("the facility");
    for i in 0..NEW_RECORDS {
        fixtures::learner(&db, &facility, &format!("{whose} {i}")).await;
    }
    db.close().await.ok();
}

/// Every client holds exactly the server's records, applied, and the server keeps nothing of the transfers.
async fn converged(server: &Store, clients: &[Store]) -> Result<(), String> {
    let server_db = server.connect().await;
    let expected_learners = 3 + (clients.len() + 1) * NEW_RECORDS;
    let on_server = faults::applied(&server_db).await;
    if on_server.len() != expected_learners {
        return Err(format!("the server holds {} learners, not {expected_learners}", on_server.len()));
    }
    let store = faults::versions(&server_db).await;
    let leftovers = faults::count(
        &server_db,
        "SELECT (SELECT COUNT(*) FROM morango_buffer) + (SELECT COUNT(*) FROM morango_recordmaxcounterbuffer) \
         + (SELECT COUNT(*) FROM morango_transferqueue) \
         + (SELECT COUNT(*) FROM morango_transfersession WHERE active = true) \
         + (SELECT COUNT(*) FROM morango_store WHERE dirty_bit = true) AS n",
    )
    .await;
    server_db.close().await.ok();
    if leftovers != 0 {
        return Err(format!("the server holds {leftovers} buffered, queued, active or unapplied rows"));
    }
    for (i, client) in clients.iter().enumerate() {
        let db = client.connect().await;
        let (learners, versions) = (faults::applied(&db).await, faults::versions(&db).await);
        let unapplied = faults::count(&db, "SELECT COUNT(*) AS n FROM morango_store WHERE dirty_bit = true").await;
        db.close().await.ok();
        if learners != on_server {
            return Err(format!("client {i} holds {} learners, the server {}", learners.len(), on_server.len()));
        }
        if versions != store {
            return Err(format!("client {i}'s store differs from the server's"));
        }
        if unapplied != 0 {
            return Err(format!("client {i} left {unapplied} records unapplied"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The load balancer

/// An HTTP load balancer on loopback that sends each request to the next backend in turn (a transfer session's
/// requests alternate between the backends), and remembers which backends saw each transfer session.
struct RoundRobin {
    url: String,
    state: Arc<Balancer>,
    task: tokio::task::JoinHandle<()>,
}

/// The backends that served a transfer, and the last one.
type Served = (HashSet<usize>, Option<usize>);

struct Balancer {
    backends: Vec<String>,
    next: AtomicUsize,
    served: Vec<AtomicUsize>,
    /// Per transfer session: the backends that served it, and the last one.
    transfers: std::sync::Mutex<HashMap<String, Served>>,
    http: reqwest::Client,
}

impl RoundRobin {
    async fn start(backends: Vec<String>) -> RoundRobin {
        // Installs the TLS crypto provider reqwest is built to expect.
        morango::client::Http::new(&backends[0], morango::capabilities::Capabilities::all(), Default::default())
            .unwrap();
        let state = Arc::new(Balancer {
            served: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
            backends,
            next: AtomicUsize::new(0),
            transfers: Default::default(),
            http: reqwest::Client::builder()
                .no_gzip()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("the balancer's client"),
        });
        let router = axum::Router::new().fallback(forward).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        RoundRobin { url, state, task }
    }

    fn served(&self) -> Vec<usize> {
        self.state.served.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }

    fn transfers(&self) -> HashMap<String, HashSet<usize>> {
        self.state.transfers.lock().unwrap().iter().map(|(id, (seen, _))| (id.clone(), seen.clone())).collect()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The transfer session a request is about: `transfersessions/<id>/` or `transfer_session_id=<id>`.
fn transfer_of(path_and_query: &str) -> Option<String> {
    ["transfersessions/", "transfer_session_id="].iter().find_map(|marker| {
        let start = path_and_query.find(marker)? + marker.len();
        let id: String = path_and_query[start..].chars().take_while(char::is_ascii_hexdigit).collect();
        (id.len() == 32).then_some(id)
    })
}

async fn forward(State(balancer): State<Arc<Balancer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let mut backend = balancer.next.fetch_add(1, Ordering::SeqCst) % balancer.backends.len();
    if let Some(transfer) = transfer_of(&target) {
        // A transfer's next request goes to the process its last one did not (concurrent clients would otherwise
        // keep one transfer on one process by chance).
        let mut transfers = balancer.transfers.lock().unwrap();
        let (seen, last) = transfers.entry(transfer).or_default();
        if let Some(last) = last {
            backend = (*last + 1) % balancer.backends.len();
        }
        *last = Some(backend);
        seen.insert(backend);
    }
    balancer.served[backend].fetch_add(1, Ordering::SeqCst);
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let url = format!("{}{}", balancer.backends[backend].trim_end_matches('/'), target);
    let mut outgoing = balancer.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "connection" | "content-length" | "transfer-encoding") {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "connection" | "content-length" | "transfer-encoding") {
            response = response.header(name, value);
        }
    }
    match answer.bytes().await {
        Ok(bytes) => response.body(Body::from(bytes)).unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY)),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response {
    Response::builder().status(code).body(Body::empty()).expect("an empty response")
}

/// Starting one more server process must not wait for the syncs running on the others: a start finds the change
/// tracking already installed and leaves the tables alone (re-creating a trigger would wait for every open write
/// on its table, and make every later write wait behind it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_process_starts_while_another_writes() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if !Backend::Postgres.enabled() {
        return eprintln!("SKIPPED (loudly): postgres not in MORANGO_TEST_BACKENDS, start-up under load not tested");
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let store =
        Store::create(Backend::Postgres, dir.path(), &format!("morango_test_{}", morango::ids::random_id())).await;
    let running = faults::engine(&store).await;
    let root = certificate::generate_root(running.db(), "full-facility", &Map::new()).await.unwrap();
    fixtures::facility_of_dataset(running.db(), "Riverside", root.id()).await;
    // A write that stays open, as a long deserialization would.
    let writing = running.db().begin().await.unwrap();
    writing.execute_unprepared("UPDATE facility SET name = 'Riverside school'").await.unwrap();
    let started = tokio::time::timeout(Duration::from_secs(20), faults::engine(&store)).await;
    writing.rollback().await.unwrap();
    let db = running.db().clone();
    let triggers = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM pg_trigger WHERE tgname LIKE 'morango_%'",
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap_or_default();
    drop(running);
    db.close().await.ok();
    if let Ok(engine) = &started {
        engine.db().clone().close().await.ok();
    }
    store.drop().await;
    assert!(started.is_ok(), "opening a second engine waited for another connection's open write");
    assert!(triggers > 0, "change tracking is installed");
}
