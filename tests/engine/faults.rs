//! The kill matrix: a server and a client as two processes over loopback HTTP, the client or the server killed (an
//! injected abort, as `kill -9` stops a process: no destructor, no answer, no rollback but the database's own) at
//! every stage of a pull and of a push, at its start, inside it just before its transaction commits, and after its
//! work before it is recorded, on SQLite and PostgreSQL. After each kill the sync is simply run again (the server
//! restarted first if it was the one killed). Then:
//! - the rerun completes, resuming the crashed transfer where it stopped (the records it had stored are not moved
//!   again);
//! - both sides hold the same records, applied, with the same versions (nothing lost or duplicated);
//! - the server holds no buffered or queued rows and no active transfer.
//!
//! The processes are this test binary run again as `faults::peer_process` (an ignored test that plays the role its
//! environment gives it), so the children have this crate's schema and the crash points (feature
//! `fault-injection`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use morango::api::{self, Account, CertificateAuthority, Credentials, MorangoApi, ServerSettings};
use morango::client::{self, HttpSettings, SyncRequest};
use morango::{Engine, certificate};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryOrder, Statement};
use serde_json::{Map, Value, json};

use crate::fixtures;
use crate::schema::{self, FACILITY_DATA, Tables, learner};
use crate::support::{Backend, postgres_base};

/// Records per chunk on both sides, so that every transfer takes several.
const CHUNK: u64 = 3;
/// Learners created before each sync (three chunks and a bit).
pub(crate) const NEW_RECORDS: usize = 8;

/// Where a crash is injected: the process, the direction of the sync, the point (see morango-core's `fault`).
#[derive(Debug, Clone, Copy)]
struct Kill {
    server: bool,
    push: bool,
    point: &'static str,
}

const fn client(push: bool, point: &'static str) -> Kill {
    Kill { server: false, push, point }
}

const fn server(push: bool, point: &'static str) -> Kill {
    Kill { server: true, push, point }
}

const PULL: bool = false;
const PUSH: bool = true;

const MATRIX: &[Kill] = &[
    client(PULL, "serializing.start"),
    client(PULL, "serialize.commit"),
    client(PULL, "queuing.end"),
    client(PULL, "transferring.start"),
    client(PULL, "receive.commit@2"),
    client(PULL, "transferring.end"),
    client(PULL, "dequeue.commit"),
    client(PULL, "dequeuing.end"),
    client(PULL, "deserialize.commit"),
    client(PULL, "deserializing.end"),
    client(PULL, "cleanup.start"),
    client(PUSH, "serializing.end"),
    client(PUSH, "queue.commit"),
    client(PUSH, "queuing.end"),
    client(PUSH, "send@2"),
    client(PUSH, "transferring.end"),
    client(PUSH, "dequeuing.start"),
    client(PUSH, "deserializing.start"),
    client(PUSH, "cleanup.start"),
    server(PULL, "serializing.start"),
    server(PULL, "serialize.commit"),
    server(PULL, "queue.commit"),
    server(PULL, "queuing.end"),
    server(PULL, "page@2"),
    server(PULL, "transferring.end"),
    server(PULL, "cleanup.start"),
    server(PUSH, "serializing.end"),
    server(PUSH, "queuing.end"),
    server(PUSH, "receive.commit@2"),
    server(PUSH, "transferring.end"),
    server(PUSH, "dequeue.commit"),
    server(PUSH, "dequeuing.end"),
    server(PUSH, "deserialize.commit"),
    server(PUSH, "deserializing.end"),
    server(PUSH, "cleanup.start"),
];

/// What a process says when it aborts at `point` (`name@n`: the n-th time at `name`).
fn injected(point: &str) -> String {
    format!("fault injected at {}", point.split('@').next().unwrap_or(point))
}

/// The longest a sync process may take (a hung one is killed and the kill reported as failed).
const SYNC_TIME: Duration = Duration::from_secs(90);

/// The child's exit status, if it exits within `limit`.
async fn exited(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// Kills run at once (the children mostly wait on each other).
const PARALLEL: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_any_stage_converges_when_run_again_on_sqlite() {
    kill_matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_any_stage_converges_when_run_again_on_postgres() {
    if !Backend::Postgres.enabled() {
        return eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
    }
    kill_matrix(Backend::Postgres).await;
}

async fn kill_matrix(backend: Backend) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let base = Bases::create(backend, dir.path()).await;
    let mut failures = Vec::new();
    // `MORANGO_KILLS=<words>` runs only the kills whose point or side contains one of them (while debugging).
    let only = std::env::var("MORANGO_KILLS").ok();
    let matrix: Vec<Kill> = MATRIX
        .iter()
        .copied()
        .filter(|kill| only.as_ref().is_none_or(|words| words.split(',').any(|w| format!("{kill:?}").contains(w))))
        .collect();
    for batch in matrix.chunks(PARALLEL) {
        let runs = batch.iter().enumerate().map(|(i, kill)| {
            let base = &base;
            let dir = dir.path();
            async move { (kill, run(base, dir, *kill, i).await) }
        });
        for (kill, outcome) in futures::future::join_all(runs).await {
            if let Err(message) = outcome {
                failures.push(format!("{kill:?}: {message}"));
            }
        }
    }
    base.drop_all().await;
    assert!(failures.is_empty(), "{} of {} kills went wrong:\n{}", failures.len(), matrix.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------------------------
// Databases

/// One database of the matrix: an SQLite file or a PostgreSQL database.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) backend: Backend,
    pub(crate) url: String,
    pub(crate) name: String,
}

impl Store {
    pub(crate) fn new(backend: Backend, dir: &Path, name: &str) -> Store {
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join(format!("{name}.sqlite3")).display()),
            Backend::Postgres => format!("{}/{name}", postgres_base()),
        };
        Store { backend, url, name: name.to_owned() }
    }

    /// A copy of this (closed) database under another name.
    async fn copy(&self, dir: &Path, name: &str) -> Store {
        let copy = Store::new(self.backend, dir, name);
        match self.backend {
            Backend::Sqlite => {
                // The write-ahead log too: a killed server leaves its last commits there.
                for suffix in ["", "-wal"] {
                    let from = dir.join(format!("{}.sqlite3{suffix}", self.name));
                    if from.exists() {
                        std::fs::copy(from, dir.join(format!("{name}.sqlite3{suffix}"))).expect("copy the database");
                    }
                }
            }
            Backend::Postgres => {
                admin(&format!("CREATE DATABASE {name} TEMPLATE {}", self.name)).await;
            }
        }
        copy
    }

    pub(crate) async fn connect(&self) -> DatabaseConnection {
        let mut options = ConnectOptions::new(self.url.clone());
        options.max_connections(2).sqlx_logging(false);
        Database::connect(options).await.expect("connect to a matrix database")
    }

    pub(crate) async fn create(backend: Backend, dir: &Path, name: &str) -> Store {
        let store = Store::new(backend, dir, name);
        if backend == Backend::Postgres {
            admin(&format!("CREATE DATABASE {name}")).await;
        }
        store
    }

    pub(crate) async fn drop(&self) {
        if self.backend == Backend::Postgres {
            admin(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
        }
    }
}

async fn admin(sql: &str) {
    let db = Database::connect(format!("{}/postgres", postgres_base())).await.expect("PostgreSQL");
    db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await.ok();
}

/// An engine on a matrix database (Morango's tables, the test schema and scope definitions in place).
pub(crate) async fn engine(store: &Store) -> Engine {
    engine_at(&store.url).await
}

async fn engine_at(url: &str) -> Engine {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(4).sqlx_logging(false);
    let db = Database::connect(options).await.expect("connect to a matrix database");
    morango::migration::migrate(&db).await.expect("migrations");
    if db.execute_unprepared("SELECT 1 FROM learner").await.is_err() {
        schema::create_tables(&db, Tables::Current).await.expect("tables");
    }
    morango::scope::load_fixture(&db, include_str!("../../fixtures/scopedefinitions.json")).await.expect("scopes");
    // Two pages per commit: a pull of four pages commits twice, so `receive.commit@2` kills it after one batch.
    Engine::builder(db, &FACILITY_DATA).chunk_size(CHUNK).pages_per_commit(2).open().await.expect("engine")
}

/// A server's database: a root certificate, its facility, three learners with a content log each.
pub(crate) async fn seed_server(store: &Store) {
    let engine = engine(store).await;
    let root = certificate::generate_root(engine.db(), "full-facility", &Map::new()).await.unwrap();
    let facility = fixtures::facility_of_dataset(engine.db(), "Riverside", root.id()).await;
    for name in ["ada", "bob", "cy"] {
        let learner = fixtures::learner(engine.db(), &facility, name).await;
        fixtures::log(engine.db(), &learner, "first video").await;
    }
    engine.db().clone().close().await.ok();
}

/// The server and client databases every kill starts from: a facility with learners, and a client that holds a
/// full-facility certificate and everything the server had.
struct Bases {
    server: Store,
    client: Store,
    prefix: String,
    /// PostgreSQL copies a template database for one `CREATE DATABASE` at a time.
    copying: tokio::sync::Mutex<()>,
}

impl Bases {
    async fn create(backend: Backend, dir: &Path) -> Bases {
        let prefix = format!("morango_test_{}", morango::ids::random_id());
        let server = Store::create(backend, dir, &format!("{prefix}_s")).await;
        let client_store = Store::create(backend, dir, &format!("{prefix}_c")).await;
        seed_server(&server).await;
        let bases = Bases { server, client: client_store, prefix, copying: tokio::sync::Mutex::new(()) };
        // The client's first sync, through the processes themselves.
        let mut server = Peer::serve(&bases.server, dir, "base", None).await;
        let outcome = Peer::sync(&bases.client, dir, "base", &server.url, PULL, None, true).await;
        assert!(outcome.status.success(), "the first sync failed:\n{}", outcome.stderr);
        server.stop();
        bases
    }

    async fn drop_all(&self) {
        if self.server.backend == Backend::Postgres {
            let db = Database::connect(format!("{}/postgres", postgres_base())).await.unwrap();
            let like = format!("{}%", self.prefix);
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT datname FROM pg_database WHERE datname LIKE $1",
                    [like.into()],
                ))
                .await
                .unwrap();
            for row in rows {
                let name: String = row.try_get("", "datname").unwrap();
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok();
            }
            db.close().await.ok();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// One kill

async fn run(base: &Bases, dir: &Path, kill: Kill, slot: usize) -> Result<(), String> {
    let tag = format!("k{}", morango::ids::random_id()[..8].to_owned());
    let (server_store, client_store) = {
        let _copying = base.copying.lock().await;
        (
            base.server.copy(dir, &format!("{}_{tag}_s", base.prefix)).await,
            base.client.copy(dir, &format!("{}_{tag}_c", base.prefix)).await,
        )
    };
    let result = kill_and_rerun(&server_store, &client_store, dir, &tag, kill, slot).await;
    server_store.drop().await;
    client_store.drop().await;
    result
}

async fn kill_and_rerun(
    server_store: &Store,
    client_store: &Store,
    dir: &Path,
    tag: &str,
    kill: Kill,
    _slot: usize,
) -> Result<(), String> {
    // New records on the side that sends.
    let sender = if kill.push { client_store } else { server_store };
    {
        let engine = engine(sender).await;
        let facility = schema::facility::Entity::find().one(engine.db()).await.unwrap().expect("the facility");
        for i in 0..NEW_RECORDS {
            fixtures::learner(engine.db(), &facility, &format!("new {i}")).await;
        }
        engine.db().clone().close().await.ok();
    }
    let fault = Some(kill.point);
    let mut server = Peer::serve(server_store, dir, tag, if kill.server { fault } else { None }).await;
    let crashed =
        Peer::sync(client_store, dir, tag, &server.url, kill.push, if kill.server { None } else { fault }, false).await;
    if kill.server {
        server.wait_for_abort(kill.point).await?;
        if crashed.status.success() {
            return Err("the sync succeeded although its server was killed".into());
        }
        server = Peer::serve(server_store, dir, tag, None).await;
    } else if !crashed.aborted(kill.point) {
        return Err(format!("the client was not killed at {}: {}\n{}", kill.point, crashed.status, crashed.stderr));
    }

    let rerun = Peer::sync(client_store, dir, tag, &server.url, kill.push, None, false).await;
    if !rerun.status.success() {
        return Err(format!("the rerun failed: {}\n{}", rerun.status, rerun.stderr));
    }
    let report: Value = serde_json::from_str(&rerun.stdout_report).map_err(|e| format!("report: {e}"))?;
    server.stop();
    check(server_store, client_store, &report, kill).await
}

/// What must hold once the rerun completed.
async fn check(server_store: &Store, client_store: &Store, report: &Value, kill: Kill) -> Result<(), String> {
    let (server, client) = (server_store.connect().await, client_store.connect().await);
    let outcome = async {
        // The crashed transfer went on where it stopped: the rerun asked for the records from the count it had
        // stored (a pulled page is stored and counted in one transaction), and the receiver counted each record
        // once.
        let before = &report["before"];
        if let Some(crashed) = before["transfer"].as_str() {
            if report["transfer"] != crashed {
                return Err(format!("the rerun started a new transfer instead of resuming {crashed}: {report}"));
            }
            let early = ["initializing", "serializing", "queuing", "transferring"];
            if !kill.push
                && early.contains(&before["stage"].as_str().unwrap_or_default())
                && before["staged"] != before["transferred"]
            {
                return Err(format!("the crashed pull had stored other records than it counted: {report}"));
            }
        }
        let transfer = report["transfer"].as_str().unwrap_or_default();
        let counted = count(
            &server,
            &format!("SELECT records_transferred AS n FROM morango_transfersession WHERE id = '{transfer}'"),
        )
        .await;
        if Some(counted) != report["records_total"].as_i64() {
            return Err(format!("the server counted {counted} records moved: {report}"));
        }
        let expected = 3 + NEW_RECORDS;
        for (side, db) in [("server", &server), ("client", &client)] {
            let learners = learner::Entity::find().order_by_asc(learner::Column::Id).all(db).await.unwrap();
            if learners.len() != expected {
                return Err(format!("the {side} holds {} learners, not {expected}", learners.len()));
            }
        }
        let (on_server, on_client) = (applied(&server).await, applied(&client).await);
        if on_server != on_client {
            return Err("the two sides hold different learners".into());
        }
        let (store_s, store_c) = (versions(&server).await, versions(&client).await);
        if store_s != store_c {
            return Err(format!("the stores differ:\n server {store_s:?}\n client {store_c:?}"));
        }
        let left = count(
            &server,
            "SELECT (SELECT COUNT(*) FROM morango_buffer) + (SELECT COUNT(*) FROM morango_recordmaxcounterbuffer) \
             + (SELECT COUNT(*) FROM morango_transferqueue) AS n",
        )
        .await;
        let active = count(&server, "SELECT COUNT(*) AS n FROM morango_transfersession WHERE active = true").await;
        if (left, active) != (0, 0) {
            return Err(format!("the server holds {left} buffered rows and {active} active transfers"));
        }
        let dirty = count(&client, "SELECT COUNT(*) AS n FROM morango_store WHERE dirty_bit = true").await
            + count(&server, "SELECT COUNT(*) AS n FROM morango_store WHERE dirty_bit = true").await;
        if dirty != 0 {
            return Err(format!("{dirty} store records are not applied"));
        }
        Ok(())
    }
    .await;
    server.close().await.ok();
    client.close().await.ok();
    outcome
}

pub(crate) async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

pub(crate) async fn applied(db: &DatabaseConnection) -> Vec<(String, String)> {
    let learners = learner::Entity::find().order_by_asc(learner::Column::Id).all(db).await.unwrap();
    learners.into_iter().map(|l| (l.id, l.full_name)).collect()
}

/// Every store record's version and flags.
pub(crate) async fn versions(db: &DatabaseConnection) -> Vec<(String, String, i64, bool)> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, last_saved_instance, last_saved_counter, deleted FROM morango_store ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "id").unwrap(),
                r.try_get("", "last_saved_instance").unwrap(),
                r.try_get("", "last_saved_counter").unwrap(),
                r.try_get("", "deleted").unwrap(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// The processes

/// A child process of this test binary, playing a role.
pub(crate) struct Peer {
    child: Child,
    pub(crate) url: String,
    stderr: PathBuf,
}

/// A finished sync process.
pub(crate) struct Finished {
    pub(crate) status: std::process::ExitStatus,
    pub(crate) stderr: String,
    stdout_report: String,
}

impl Finished {
    /// True when the process died of the abort injected at `point`.
    fn aborted(&self, point: &str) -> bool {
        !self.status.success() && self.stderr.contains(&injected(point))
    }
}

fn child(role: &str, store: &Store, fault: Option<&str>) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args(["faults::peer_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("MORANGO_FAULT_ROLE", role)
        .env("MORANGO_FAULT_DB", &store.url)
        .env("RUST_BACKTRACE", "0")
        .env_remove("MORANGO_FAULT");
    if let Some(point) = fault {
        command.env("MORANGO_FAULT", point);
    }
    command
}

impl Peer {
    /// Starts a server process on `store` and waits until it listens.
    pub(crate) async fn serve(store: &Store, dir: &Path, tag: &str, fault: Option<&str>) -> Peer {
        let url_file = dir.join(format!("{tag}-{}.url", morango::ids::random_id()));
        let stderr = dir.join(format!("{tag}-{}.server.log", morango::ids::random_id()));
        let child = child("serve", store, fault)
            .env("MORANGO_FAULT_URL_FILE", &url_file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("server log"))
            .spawn()
            .expect("start the server process");
        let started = Instant::now();
        let url = loop {
            if let Ok(url) = std::fs::read_to_string(&url_file)
                && url.ends_with('\n')
            {
                break url.trim().to_owned();
            }
            if started.elapsed() > Duration::from_secs(60) {
                panic!("the server did not start:\n{}", std::fs::read_to_string(&stderr).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Peer { child, url, stderr }
    }

    /// Runs a sync process to its end.
    pub(crate) async fn sync(
        store: &Store,
        dir: &Path,
        tag: &str,
        url: &str,
        push: bool,
        fault: Option<&str>,
        both: bool,
    ) -> Finished {
        let report = dir.join(format!("{tag}-{}.report", morango::ids::random_id()));
        let log = dir.join(format!("{tag}-{}.sync.log", morango::ids::random_id()));
        let mut child = child("sync", store, fault)
            .env("MORANGO_FAULT_SERVER", url)
            .env(
                "MORANGO_FAULT_DIRECTION",
                if both {
                    "both"
                } else if push {
                    "push"
                } else {
                    "pull"
                },
            )
            .env("MORANGO_FAULT_REPORT", &report)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("sync log"))
            .spawn()
            .expect("run the sync process");
        let status = match exited(&mut child, SYNC_TIME).await {
            Some(status) => status,
            None => {
                let _ = child.kill();
                child.wait().expect("the killed sync process")
            }
        };
        Finished {
            status,
            stderr: std::fs::read_to_string(&log).unwrap_or_default(),
            stdout_report: std::fs::read_to_string(&report).unwrap_or_default(),
        }
    }

    /// Waits (a little) for the server process to die of the abort injected at `point`.
    async fn wait_for_abort(&mut self, point: &str) -> Result<(), String> {
        let status = exited(&mut self.child, Duration::from_secs(10)).await;
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        match status {
            Some(status) if !status.success() && log.contains(&injected(point)) => Ok(()),
            _ => Err(format!("the server was not killed at {point}: {status:?}\n{log}")),
        }
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The role a child process plays: serve a database, or sync one with a server and write what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of the kill matrix, not a test of its own"]
async fn peer_process() {
    let role = std::env::var("MORANGO_FAULT_ROLE").expect("run by the kill matrix");
    let engine = engine_at(&std::env::var("MORANGO_FAULT_DB").expect("a database")).await;
    match role.as_str() {
        "serve" => serve_role(engine).await,
        _ => sync_role(engine).await,
    }
}

struct Admin;

#[async_trait::async_trait]
impl CertificateAuthority for Admin {
    async fn authenticate(&self, credentials: &Credentials) -> Option<Account> {
        (credentials.fields.get("username").map(String::as_str) == Some("admin") && credentials.password == "admin")
            .then(|| Account { id: "admin".into() })
    }

    async fn may_hold(&self, _: &Account, _: &str, _: &Map<String, Value>) -> bool {
        true
    }
}

async fn serve_role(engine: Engine) {
    let settings = ServerSettings::default();
    let api = MorangoApi::new(engine, settings.clone(), std::sync::Arc::new(Admin));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/\n", listener.local_addr().unwrap());
    let file = std::env::var("MORANGO_FAULT_URL_FILE").expect("where to say the URL");
    let partial = format!("{file}.partial");
    std::fs::write(&partial, url).unwrap();
    std::fs::rename(&partial, &file).unwrap();
    api::serve(listener, api::router(api.clone()), &settings, std::future::pending()).await.unwrap();
}

async fn sync_role(engine: Engine) {
    let server = std::env::var("MORANGO_FAULT_SERVER").expect("the server");
    let direction = std::env::var("MORANGO_FAULT_DIRECTION").expect("the direction");
    let push = direction == "push";
    // What an unfinished transfer in this direction had done before this run: its stage, the records it counted
    // as moved, and (pulls) the records it had stored.
    let before = engine
        .db()
        .query_one_raw(Statement::from_sql_and_values(
            engine.db().get_database_backend(),
            match engine.db().get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT t.id, t.records_transferred, t.transfer_stage, (SELECT COUNT(*) FROM morango_store s \
                     WHERE s.last_transfer_session_id = t.id) AS staged FROM morango_transfersession t \
                     WHERE t.active = true AND t.push = $1"
                }
                _ => {
                    "SELECT t.id, t.records_transferred, t.transfer_stage, (SELECT COUNT(*) FROM morango_store s \
                     WHERE s.last_transfer_session_id = t.id) AS staged FROM morango_transfersession t \
                     WHERE t.active = true AND t.push = ?"
                }
            },
            [push.into()],
        ))
        .await
        .unwrap()
        .map(|row| {
            json!({"transfer": row.try_get::<String>("", "id").unwrap(),
                   "transferred": row.try_get::<i64>("", "records_transferred").unwrap(),
                   "staged": row.try_get::<i64>("", "staged").unwrap(),
                   "stage": row.try_get::<String>("", "transfer_stage").unwrap()})
        });
    let request = SyncRequest {
        credentials: Some(client::Credentials { username: "admin".into(), password: "admin".into() }),
        pull: direction != "push",
        push: direction != "pull",
        http: HttpSettings { retries: 1, backoff: Duration::from_millis(50), ..HttpSettings::default() },
        ..SyncRequest::default()
    };
    let outcome = client::sync(&engine, &server, &request).await.unwrap_or_else(|e| panic!("sync failed: {e}"));
    let transfer = if push { outcome.push } else { outcome.pull };
    let report = match transfer {
        Some(t) => json!({
            "transfer": t.transfer_session_id,
            "records_total": t.records_total,
            "records_transferred": t.records_transferred,
            "before": before,
        }),
        None => json!({}),
    };
    std::fs::write(std::env::var("MORANGO_FAULT_REPORT").expect("where to report"), report.to_string()).unwrap();
}
