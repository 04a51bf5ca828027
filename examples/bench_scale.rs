//! Many devices against one PostgreSQL-backed server, served by one process and then by two.
//!
//! ```text
//! cargo build --release --examples
//! BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432 ./target/release/examples/bench_scale        # 200 clients
//! BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432 ./target/release/examples/bench_scale 50     # 50 clients
//! ```
//!
//! For each number of server processes (1, then 2) on a fresh database, the program prepares the school of
//! `examples/school` on PostgreSQL (one facility, one learner per client with 9 lesson-progress rows each, all
//! serialized), starts the server processes (`examples/school serve`, built next to this program) and a client per
//! learner, each on its own SQLite file, assigned to the processes in turn. Each client first gets its certificate
//! (not timed: it makes an RSA key, which would measure the clients' processor). Then every client, all at once:
//! 1. syncs the single-user scope of its learner with the learner's credentials (pull, then push): the first sync
//!    pulls its learner and progress;
//! 2. records progress in 3 more lessons and syncs again: the second sync pushes them.
//!
//! Per run it prints the syncs per second (wall time of the whole run), the median, 99th percentile and slowest
//! sync, the failures, and the peak resident memory (`VmHWM`) of each server process. Then it checks that the
//! server holds every pushed record. A failed sync fails the program.

#[path = "school/entities.rs"]
#[allow(dead_code)] // the table list is for the other programs
mod entities;
#[path = "common/server_process.rs"]
mod server_process;

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use morango::client::{self, Credentials, SyncRequest};
use morango::{Engine, certificate};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    PaginatorTrait,
};
use serde_json::Map;

use entities::{FACILITY_DATA, facility, learner, lesson_progress};
use server_process::ServerProcess;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// Clients when none is given.
const DEFAULT_CLIENTS: usize = 200;
/// Lesson-progress rows per learner on the server.
const LESSONS: usize = 9;
/// Lesson-progress rows each client pushes.
const PUSHED: usize = 3;
/// The scope definitions of the school.
const SCOPE_DEFINITIONS: &str = include_str!("../fixtures/scopedefinitions.json");

fn main() -> ExitCode {
    let clients = match std::env::args().nth(1).map(|n| n.parse::<usize>()) {
        None => DEFAULT_CLIENTS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: bench_scale [number of clients]");
            return ExitCode::FAILURE;
        }
    };
    let Ok(server) = std::env::var("BENCH_POSTGRES_URL") else {
        eprintln!("set BENCH_POSTGRES_URL, for example postgres://postgres@127.0.0.1:5432");
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    println!("{clients} clients, each syncing its single-user scope twice (pull; then push {PUSHED} records)");
    println!(
        "{:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}  server peak RSS (MiB)",
        "processes", "syncs", "failed", "wall s", "syncs/s", "p50 s", "p99 s", "slowest s"
    );
    for processes in [1, 2] {
        match runtime.block_on(run(&server, processes, clients)) {
            Ok(row) => {
                failed |= row.failed > 0;
                row.print(processes);
            }
            Err(error) => {
                eprintln!("error with {processes} server processes: {error}");
                failed = true;
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// The figures of one run.
struct Row {
    syncs: Vec<Duration>,
    failed: usize,
    wall: Duration,
    server_rss_mib: Vec<f64>,
}

impl Row {
    fn print(&self, processes: usize) {
        let mut times = self.syncs.clone();
        times.sort();
        let at = |q: f64| times.get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
        let secs = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
        let rss: Vec<String> = self.server_rss_mib.iter().map(|m| format!("{m:.1}")).collect();
        println!(
            "{processes:>9} {:>7} {:>8} {:>8.2} {:>8.1} {:>8.3} {:>8.3} {:>9.3}  {}",
            times.len(),
            self.failed,
            self.wall.as_secs_f64(),
            times.len() as f64 / self.wall.as_secs_f64(),
            secs(at(0.5)),
            secs(at(0.99)),
            secs(times.last().copied()),
            rss.join(", ")
        );
    }
}

async fn run(server: &str, processes: usize, clients: usize) -> Result<Row> {
    let database = format!("morango_bench_scale_{}_{processes}", std::process::id());
    let admin = connect(&format!("{server}/postgres"), 2).await?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE \"{database}\"")).await?;
    let url = format!("{server}/{database}");
    let outcome = run_on(&url, processes, clients).await;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).await?;
    outcome
}

async fn run_on(url: &str, processes: usize, clients: usize) -> Result<Row> {
    let (facility_id, learners) = prepare_server(url, clients).await?;
    let dir = tempfile::tempdir()?;
    let mut devices = Vec::with_capacity(clients);
    for (i, (learner_id, username)) in learners.into_iter().enumerate() {
        devices.push(Device::open(&dir.path().join(format!("device{i}.sqlite3")), learner_id, username).await?);
    }
    let mut servers = Vec::with_capacity(processes);
    for _ in 0..processes {
        servers.push(ServerProcess::start(url)?);
    }
    // Not timed: each device gets its certificate (an RSA key of its own), one after the other.
    for (i, device) in devices.iter().enumerate() {
        device.enrol(&servers[i % servers.len()].url).await?;
    }
    let started = Instant::now();
    let runs = devices.iter().enumerate().map(|(i, device)| {
        let server_url = servers[i % servers.len()].url.clone();
        let facility_id = facility_id.clone();
        async move { device.two_syncs(&server_url, &facility_id).await }
    });
    let outcomes = futures::future::join_all(runs).await;
    let wall = started.elapsed();
    let server_rss_mib = servers.iter().map(ServerProcess::peak_rss_mib).collect();
    drop(servers);
    let mut syncs = Vec::new();
    let mut failed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(times) => syncs.extend(times),
            Err(error) => {
                failed += 1;
                eprintln!("a client failed: {error}");
            }
        }
    }
    for device in devices {
        device.engine.db().clone().close().await.ok();
    }
    let db = connect(url, 2).await?;
    let progress = lesson_progress::Entity::find().count(&db).await? as usize;
    db.close().await.ok();
    let expected = clients * (LESSONS + PUSHED);
    if failed == 0 && progress != expected {
        return Err(format!("the server holds {progress} lesson-progress rows, not {expected}").into());
    }
    Ok(Row { syncs, failed, wall, server_rss_mib })
}

async fn connect(url: &str, connections: u32) -> Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).max_connections(connections);
    Ok(Database::connect(options).await?)
}

/// An engine on a school database: Morango's tables, the school's, the scope definitions.
async fn open(db: DatabaseConnection) -> Result<Engine> {
    morango::migration::migrate(&db).await?;
    entities::create_tables(&db).await?;
    morango::scope::load_fixture(&db, SCOPE_DEFINITIONS).await?;
    Ok(Engine::open(db, &FACILITY_DATA).await?)
}

/// The school on the server: a root certificate, its facility, a learner per client (`learner<i>`, password the
/// same) with their progress, all serialized. Returns the facility id and the learners' ids and usernames.
async fn prepare_server(url: &str, clients: usize) -> Result<(String, Vec<(String, String)>)> {
    let engine = open(connect(url, 4).await?).await?;
    let db = engine.db();
    let root = certificate::generate_root(db, "full-facility", &Map::new()).await?;
    let school = facility::ActiveModel {
        name: Set("Riverside Primary".into()),
        dataset_id: Set(root.id().to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let mut learners = Vec::with_capacity(clients);
    for i in 0..clients {
        let username = format!("learner{i}");
        let learner = learner::ActiveModel {
            facility_id: Set(school.id.clone()),
            username: Set(username.clone()),
            full_name: Set(format!("Learner {i}")),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let progress = (0..LESSONS).map(|lesson| progress(&school.id, &learner.id, &format!("lesson {lesson}")));
        morango::insert_many::<lesson_progress::Entity, _>(db, progress.collect()).await?;
        learners.push((learner.id, username));
    }
    engine.serialize(None).await?;
    db.clone().close().await.ok();
    Ok((school.id, learners))
}

fn progress(facility_id: &str, learner_id: &str, lesson: &str) -> lesson_progress::ActiveModel {
    lesson_progress::ActiveModel {
        facility_id: Set(facility_id.to_owned()),
        learner_id: Set(learner_id.to_owned()),
        lesson: Set(lesson.to_owned()),
        progress: Set(0.5),
        ..Default::default()
    }
}

/// A learner's device.
struct Device {
    engine: Engine,
    learner_id: String,
    username: String,
}

impl Device {
    async fn open(path: &std::path::Path, learner_id: String, username: String) -> Result<Device> {
        let db = connect(&format!("sqlite://{}?mode=rwc", path.display()), 1).await?;
        Ok(Device { engine: open(db).await?, learner_id, username })
    }

    /// What the device asks the server for: the single-user scope of its learner, with the learner's credentials.
    fn request(&self, pull_and_push: bool) -> SyncRequest {
        SyncRequest {
            user: Some(self.learner_id.clone()),
            credentials: Some(Credentials { username: self.username.clone(), password: self.username.clone() }),
            pull: pull_and_push,
            push: pull_and_push,
            ..SyncRequest::default()
        }
    }

    /// Gets the device's certificate (a sync that moves nothing).
    async fn enrol(&self, server: &str) -> Result<()> {
        client::sync(&self.engine, server, &self.request(false)).await?;
        Ok(())
    }

    /// Syncs, records progress, syncs again; returns the time of each sync.
    async fn two_syncs(&self, server: &str, facility_id: &str) -> Result<Vec<Duration>> {
        let request = self.request(true);
        let started = Instant::now();
        client::sync(&self.engine, server, &request).await?;
        let first = started.elapsed();
        let pushed = (0..PUSHED).map(|i| progress(facility_id, &self.learner_id, &format!("homework {i}")));
        morango::insert_many::<lesson_progress::Entity, _>(self.engine.db(), pushed.collect()).await?;
        let started = Instant::now();
        client::sync(&self.engine, server, &request).await?;
        Ok(vec![first, started.elapsed()])
    }
}
