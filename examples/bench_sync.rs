//! How fast a sync moves records between two SQLite databases, next to the cheapest honest copy of the same rows.
//!
//! ```text
//! cargo run --release --example bench_sync              # 10 000 and 100 000 records, each in its own process
//! cargo run --release --example bench_sync -- 50000     # one size
//! BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432 cargo run --release --example bench_sync   # on PostgreSQL
//! ```
//!
//! The source database holds the school of `examples/school`: one facility, N/10 learners and 9 lesson-progress
//! rows per learner (N + 1 records). Timed, each on fresh databases (SQLite files in a temporary directory, or
//! PostgreSQL databases created and dropped on the server `BENCH_POSTGRES_URL` names):
//! - the first sync: an empty peer pulls (then pushes) everything: serialization on the source, queuing,
//!   transfer in chunks of 500, dequeuing and deserialization on the peer;
//! - a second sync with nothing changed;
//! - a third after 1 % of the source's records were edited;
//! - the floor: the application rows read from the source and inserted into fresh tables of a third database,
//!   500 rows per multi-row `INSERT`, all in one transaction.
//! - the first sync over HTTP, as two processes (`school serve` and `school sync`, built next to this program by
//!   `cargo build --release --examples`), from a fresh copy of the source;
//! - change tracking: the same rows inserted again, as the source was filled, into tables with Morango's triggers
//!   and into tables without (both inserts compute the record ids).
//!
//! Peak memory is the process's `VmHWM` (peak resident set size), printed after each step; it only grows, so
//! every size runs in a process of its own.

#[path = "school/entities.rs"]
mod entities;
#[path = "common/server_process.rs"]
mod server_process;

use std::collections::BTreeMap;
use std::error::Error;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use morango::{Engine, Filter, Progress, SyncEvent, SyncOptions, Syncable, TransferStage};
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::broadcast::{self, error::RecvError};

use entities::{FACILITY_DATA, classroom, facility, learner, lesson_progress};
use server_process::ServerProcess;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// Sizes run when none is given.
const DEFAULT_SIZES: [u64; 2] = [10_000, 100_000];

/// Rows per multi-row `INSERT`, when filling the source and in the floor copy (the engine's default chunk size).
const BATCH: u64 = 500;

/// Lesson-progress rows per learner.
const LESSONS_PER_LEARNER: u64 = 9;

/// Learners inserted per batch, with their progress rows: 50 + 450 rows.
const LEARNERS_PER_BATCH: u64 = BATCH / (LESSONS_PER_LEARNER + 1);

fn main() -> ExitCode {
    let result = match std::env::args().nth(1) {
        None => run_each_size_in_a_child(),
        Some(n) => match n.replace('_', "").parse::<u64>() {
            Ok(n) if n >= 10 => run_size(n),
            _ => Err(format!("expected a number of records (at least 10), got `{n}`").into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Re-runs this program once per default size, so that each peak memory figure is its own.
fn run_each_size_in_a_child() -> Result<()> {
    let exe = std::env::current_exe()?;
    for n in DEFAULT_SIZES {
        let status = Command::new(&exe).arg(n.to_string()).status()?;
        if !status.success() {
            return Err(format!("the run with {n} records failed ({status})").into());
        }
    }
    Ok(())
}

fn run_size(n: u64) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(bench(n))
}

async fn bench(n: u64) -> Result<()> {
    let mut databases = Databases::from_env()?;
    let learners = n / (LESSONS_PER_LEARNER + 1);
    let progress_rows = learners * LESSONS_PER_LEARNER;
    println!("== N = {n}: 1 facility, {learners} learners, {progress_rows} lesson progress rows, on {databases} ==");
    let result = bench_on(&mut databases, learners).await;
    databases.drop_all().await?;
    result
}

async fn bench_on(databases: &mut Databases, learners: u64) -> Result<()> {
    let source = open_peer(databases.connect("source").await?).await?;
    let started = Instant::now();
    let records = fill(source.db(), learners, &morango::ids::random_id()).await?;
    let fill_time = started.elapsed();
    println!("source filled in {:.2} s; VmHWM {:.1} MiB", fill_time.as_secs_f64(), peak_rss_mib());

    let peer = open_peer(databases.connect("peer").await?).await?;
    let options = SyncOptions::new(Filter::everything());

    // Marks between the steps, for tools that watch the process (`strace -e trace=fsync,write` counts the fsyncs
    // of each step by these lines).
    println!("first sync:");
    let first = timed_sync(&peer, &source, &options).await?;
    let first_memory = peak_rss_mib();
    println!("no-op sync:");
    let second = timed_sync(&peer, &source, &options).await?;
    let second_memory = peak_rss_mib();
    let changed = edit_one_percent(source.db(), records).await?;
    println!("incremental sync:");
    let third = timed_sync(&peer, &source, &options).await?;
    let third_memory = peak_rss_mib();
    println!("floor copy:");

    let floor_db = databases.connect("floor").await?;
    entities::create_tables(&floor_db).await?;
    let started = Instant::now();
    let copied = floor_copy(source.db(), &floor_db).await?;
    let floor = started.elapsed();
    let floor_memory = peak_rss_mib();

    if first.pulled != records || copied != records || second.pulled != 0 || third.pulled != changed {
        return Err(format!(
            "unexpected counts: {records} records, first sync pulled {}, second {}, third {} of {changed} edited, \
             floor copied {copied}",
            first.pulled, second.pulled, third.pulled
        )
        .into());
    }
    let peer_rows = count_rows(peer.db()).await?;
    if peer_rows != records {
        return Err(format!("the peer holds {peer_rows} application rows after the sync, not {records}").into());
    }
    println!("first sync over HTTP:");
    let http = http_first_sync(databases, learners, records).await?;
    let checks = time_record_checks(peer.db()).await?;
    let overhead = tracking_overhead(databases, learners).await?;

    // records/s: the records each step moved (the whole source for the first sync and the floor, the edited ones
    // for the third sync; the no-op moves none and shows the whole source over its time).
    println!("{:<24} {:>10} {:>14} {:>19}", "", "seconds", "records/s", "VmHWM after (MiB)");
    for (what, time, moved, memory) in [
        ("first sync", first.total, records, first_memory),
        ("second sync (no-op)", second.total, records, second_memory),
        ("third sync (1 % edited)", third.total, changed, third_memory),
        ("floor copy", floor, records, floor_memory),
    ] {
        let rate = moved as f64 / time.as_secs_f64();
        println!("{what:<24} {:>10.3} {:>14.0} {:>19.1}", time.as_secs_f64(), rate, memory);
    }
    match &http {
        Some(http) => println!(
            "{:<24} {:>10.3} {:>14.0}   server {:.1}, client {:.1}",
            "first sync over HTTP",
            http.total.as_secs_f64(),
            records as f64 / http.total.as_secs_f64(),
            http.server_rss_mib,
            http.client_rss_mib
        ),
        None => println!("first sync over HTTP: skipped, `school` is not built next to this program"),
    }
    println!("first sync / floor: {:.1}x", first.total.as_secs_f64() / floor.as_secs_f64());
    if let Some(http) = &http {
        println!("first sync over HTTP / floor: {:.1}x", http.total.as_secs_f64() / floor.as_secs_f64());
    }
    println!(
        "record checks (validation of every received record, inside the first sync): {:.3} s, {:.1} % of it",
        checks.as_secs_f64(),
        100.0 * checks.as_secs_f64() / first.total.as_secs_f64()
    );
    println!(
        "change tracking: the source's rows inserted into tracked tables {:.3} s, into untracked tables {:.3} s: \
         {:.2}x",
        overhead.tracked.as_secs_f64(),
        overhead.untracked.as_secs_f64(),
        overhead.tracked.as_secs_f64() / overhead.untracked.as_secs_f64()
    );
    for (what, sync) in [("first sync", &first), ("no-op sync", &second), ("1 % incremental sync", &third)] {
        println!("{what} by stage (pull, then push):");
        for ((push, stage), time) in &sync.stages {
            if time.as_micros() >= 500 {
                let direction = if *push { "push" } else { "pull" };
                println!("  {direction} {:<14} {:>8.3} s", stage.as_str(), time.as_secs_f64());
            }
        }
    }
    Ok(())
}

/// Edits 1 % of the source's records (lesson-progress rows, in id order), as the application would; returns how
/// many.
async fn edit_one_percent(db: &DatabaseConnection, records: u64) -> Result<u64> {
    let edits = (records / 100).max(1);
    let sql = "UPDATE lessonprogress SET progress = progress + 1 WHERE id IN \
        (SELECT id FROM lessonprogress ORDER BY id LIMIT ?)";
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => sql.replace('?', "$1"),
        _ => sql.to_owned(),
    };
    let backend = db.get_database_backend();
    let edited = db.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [(edits as i64).into()])).await?;
    Ok(edited.rows_affected())
}

/// A first sync over HTTP: its wall time and each process's peak resident memory.
struct HttpSync {
    total: Duration,
    server_rss_mib: f64,
    client_rss_mib: f64,
}

/// The scope definitions of the school (the server's root certificate needs them).
const SCOPE_DEFINITIONS: &str = include_str!("../fixtures/scopedefinitions.json");

/// The first sync over HTTP with the school's sync command, as two processes: `school serve` on a database filled
/// like the source (a root certificate for its facility, the rows not yet serialized), and `school sync --username
/// admin` pulling the whole facility into an empty database. The time runs from starting the client process to its
/// exit: its start, its certificate request (an RSA key) and the sync. `None` when `school` is not built next to
/// this program (`cargo build --release --examples`).
async fn http_first_sync(databases: &mut Databases, learners: u64, records: u64) -> Result<Option<HttpSync>> {
    let school = std::env::current_exe()?.with_file_name("school");
    if !school.exists() {
        return Ok(None);
    }
    let server_url = databases.create("http_server").await?;
    let server_engine = open_peer(plain_connect(server_url.clone()).await?).await?;
    morango::scope::load_fixture(server_engine.db(), SCOPE_DEFINITIONS).await?;
    let root = morango::certificate::generate_root(server_engine.db(), "full-facility", &Default::default()).await?;
    fill(server_engine.db(), learners, root.id()).await?;
    server_engine.db().clone().close().await?;
    drop(server_engine);
    let server = ServerProcess::start(&server_url)?;

    let client_url = databases.create("http_client").await?;
    // Under `/usr/bin/time -v` where there is one, for the client's peak memory.
    let mut client = if std::path::Path::new("/usr/bin/time").exists() {
        let mut time = Command::new("/usr/bin/time");
        time.arg("-v").arg(&school);
        time
    } else {
        Command::new(&school)
    };
    client
        .args(["sync", "--server", &server.url, "--username", "admin", "--password", "admin"])
        .env("SCHOOL_DB", &client_url)
        .env("RUST_LOG", "warn");
    let started = Instant::now();
    let output = client.output()?;
    let total = started.elapsed();
    let server_rss_mib = server.peak_rss_mib();
    drop(server);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("`school sync` failed ({}): {stderr}", output.status).into());
    }
    let client_rss_mib = stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|kib| kib.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0);
    let client_db = plain_connect(client_url).await?;
    let pulled = count_rows(&client_db).await?;
    client_db.close().await?;
    if pulled != records {
        return Err(format!("the HTTP client holds {pulled} application rows after its sync, not {records}").into());
    }
    Ok(Some(HttpSync { total, server_rss_mib, client_rss_mib }))
}

/// The time the receiver's record checks take for every record of a store, in chunks of 500 as they arrive: the
/// records read back from the store (not timed), then `morango::validation::check_chunk` on each chunk (timed).
async fn time_record_checks(db: &DatabaseConnection) -> Result<Duration> {
    let transfer = morango::ids::random_id();
    let filter = Filter::everything();
    let mut checked = Duration::ZERO;
    let mut after = String::new();
    loop {
        let rows = db
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                db.get_database_backend(),
                match db.get_database_backend() {
                    sea_orm::DbBackend::Postgres => STORE_PAGE.replace('?', "$1"),
                    _ => STORE_PAGE.to_owned(),
                },
                [after.clone().into()],
            ))
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("", "id")?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("", "id")?;
            let (instance, counter): (String, i64) =
                (row.try_get("", "last_saved_instance")?, row.try_get("", "last_saved_counter")?);
            records.push(morango::BufferRecord {
                serialized: row.try_get("", "serialized")?,
                deleted: row.try_get("", "deleted")?,
                last_saved_instance: instance.clone(),
                last_saved_counter: counter,
                hard_deleted: row.try_get("", "hard_deleted")?,
                partition: row.try_get("", "partition")?,
                source_id: row.try_get("", "source_id")?,
                model_name: row.try_get("", "model_name")?,
                conflicting_serialized_data: row.try_get("", "conflicting_serialized_data")?,
                model_uuid: id.clone(),
                transfer_session: transfer.clone(),
                profile: row.try_get("", "profile")?,
                rmcb_list: vec![morango::RmcbRecord {
                    transfer_session: transfer.clone(),
                    model_uuid: id,
                    instance_id: instance,
                    counter,
                }],
                _self_ref_fk: row.try_get("", "_self_ref_fk")?,
            });
        }
        let started = Instant::now();
        let outcome = morango::validation::check_chunk(records, &transfer, &filter, &FACILITY_DATA)?;
        checked += started.elapsed();
        if !outcome.refused.is_empty() {
            return Err(format!("the checks refused records of a clean sync: {:?}", outcome.refused[0]).into());
        }
    }
    Ok(checked)
}

/// The next 500 store rows by id.
const STORE_PAGE: &str = "SELECT id, serialized, deleted, hard_deleted, last_saved_instance, last_saved_counter, \
    partition, source_id, model_name, conflicting_serialized_data, profile, _self_ref_fk FROM morango_store \
    WHERE id > ? ORDER BY id LIMIT 500";

/// A database with Morango's tables and the school's, and an engine with the default chunk size.
async fn open_peer(db: DatabaseConnection) -> Result<Engine> {
    morango::migration::migrate(&db).await?;
    entities::create_tables(&db).await?;
    Ok(Engine::open(db, &FACILITY_DATA).await?)
}

/// Where a run's databases live.
enum Databases {
    /// SQLite files in this temporary directory.
    Sqlite(tempfile::TempDir),
    /// Databases created on this PostgreSQL server (a URL without a database name), and their names.
    Postgres { server: String, created: Vec<String> },
}

impl Databases {
    /// PostgreSQL when `BENCH_POSTGRES_URL` is set, SQLite otherwise.
    fn from_env() -> Result<Databases> {
        Ok(match std::env::var("BENCH_POSTGRES_URL") {
            Ok(server) => Databases::Postgres { server: server.trim_end_matches('/').to_owned(), created: vec![] },
            Err(_) => Databases::Sqlite(tempfile::Builder::new().prefix("morango-bench-").tempdir()?),
        })
    }

    /// A new, empty database called `name`.
    async fn connect(&mut self, name: &str) -> Result<DatabaseConnection> {
        plain_connect(self.create(name).await?).await
    }

    /// Creates a new, empty database called `name` (an SQLite file is created when first opened); returns its URL.
    async fn create(&mut self, name: &str) -> Result<String> {
        Ok(match self {
            Databases::Sqlite(dir) => {
                format!("sqlite://{}?mode=rwc", dir.path().join(format!("{name}.sqlite3")).display())
            }
            Databases::Postgres { server, created } => {
                let database = format!("morango_bench_{}_{name}", std::process::id());
                let admin = plain_connect(format!("{server}/postgres")).await?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).await?;
                admin.execute_unprepared(&format!("CREATE DATABASE \"{database}\"")).await?;
                created.push(database.clone());
                format!("{server}/{database}")
            }
        })
    }

    /// Drops the PostgreSQL databases (the SQLite directory goes with `self`).
    async fn drop_all(self) -> Result<()> {
        if let Databases::Postgres { server, created } = self {
            let admin = plain_connect(format!("{server}/postgres")).await?;
            for database in created {
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).await?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Databases::Sqlite(_) => f.write_str("SQLite"),
            // Not the URL: it may hold a password.
            Databases::Postgres { .. } => f.write_str("PostgreSQL"),
        }
    }
}

async fn plain_connect(url: String) -> Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

/// The time the same rows take to insert with change tracking and without.
struct Overhead {
    tracked: Duration,
    untracked: Duration,
}

/// Fills two more databases with the source's rows, the same way ([`fill`]): one tracked (an engine opened on it:
/// the tables' triggers and dirty-row indexes), one untracked (only the tables). The record ids and dirty bits are
/// computed in both (`morango::insert_many` does it before SeaORM's `insert_many`), so the difference is what the
/// database does to track the rows.
async fn tracking_overhead(databases: &mut Databases, learners: u64) -> Result<Overhead> {
    let tracked_db = open_peer(databases.connect("tracked").await?).await?;
    let untracked_db = databases.connect("untracked").await?;
    entities::create_tables(&untracked_db).await?;
    let started = Instant::now();
    fill(tracked_db.db(), learners, &morango::ids::random_id()).await?;
    let tracked = started.elapsed();
    let started = Instant::now();
    fill(&untracked_db, learners, &morango::ids::random_id()).await?;
    let untracked = started.elapsed();
    Ok(Overhead { tracked, untracked })
}

/// Inserts one facility, `learners` learners and their lesson progress the way an application would (through
/// `morango::insert_many`, which computes the record ids), in batches; returns the number of records.
async fn fill(db: &DatabaseConnection, learners: u64, dataset_id: &str) -> Result<u64> {
    let txn = db.begin().await?;
    let school = facility::ActiveModel {
        name: Set("Riverside Primary".into()),
        dataset_id: Set(dataset_id.to_owned()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut learner_ids = Vec::with_capacity(BATCH as usize);
    let mut first = 0;
    while first < learners {
        let last = (first + LEARNERS_PER_BATCH).min(learners);
        let batch = (first..last)
            .map(|i| {
                morango::assign_ids::<learner::Entity>(learner::ActiveModel {
                    facility_id: Set(school.id.clone()),
                    username: Set(format!("learner{i:07}")),
                    full_name: Set(format!("Learner number {i}")),
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        learner_ids.clear();
        for model in &batch {
            learner_ids.push(model.id.clone().take().ok_or("assign_ids left a learner without an id")?);
        }
        morango::insert_many::<learner::Entity, _>(&txn, batch).await?;
        let progress: Vec<lesson_progress::ActiveModel> = learner_ids
            .iter()
            .flat_map(|learner_id| {
                let school_id = school.id.clone();
                (0..LESSONS_PER_LEARNER).map(move |lesson| lesson_progress::ActiveModel {
                    facility_id: Set(school_id.clone()),
                    learner_id: Set(learner_id.clone()),
                    lesson: Set(format!("lesson {lesson}")),
                    progress: Set(lesson as f64 / LESSONS_PER_LEARNER as f64),
                    ..Default::default()
                })
            })
            .collect();
        morango::insert_many::<lesson_progress::Entity, _>(&txn, progress).await?;
        first = last;
    }
    txn.commit().await?;
    Ok(1 + learners * (1 + LESSONS_PER_LEARNER))
}

/// What one timed sync did.
struct TimedSync {
    total: Duration,
    pulled: u64,
    /// Wall time per (push, stage), from the client's progress events.
    stages: BTreeMap<(bool, TransferStage), Duration>,
}

/// Syncs `client` with `server` and times it, stage by stage from the client's progress events.
async fn timed_sync(client: &Engine, server: &Engine, options: &SyncOptions) -> Result<TimedSync> {
    let events = client.subscribe();
    let timer = tokio::spawn(time_stages(events));
    let started = Instant::now();
    let report = morango::sync_local(client, server, options).await;
    let total = started.elapsed();
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            timer.abort();
            return Err(error.into());
        }
    };
    // Every event was sent before `sync_local` returned; the timer only has to catch up.
    let abort = timer.abort_handle();
    let stages = match tokio::time::timeout(Duration::from_secs(10), timer).await {
        Ok(stages) => stages?,
        Err(_) => {
            abort.abort();
            return Err("the progress events of the sync did not all arrive".into());
        }
    };
    let pulled = report.pull.map_or(0, |pull| u64::try_from(pull.records_total).unwrap_or(0));
    Ok(TimedSync { total, pulled, stages })
}

/// Collects the time between each stage's `Started` and its `Completed` until the last transfer's cleanup ends.
async fn time_stages(mut events: broadcast::Receiver<SyncEvent>) -> BTreeMap<(bool, TransferStage), Duration> {
    let mut started: BTreeMap<(bool, TransferStage), Instant> = BTreeMap::new();
    let mut stages = BTreeMap::new();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        };
        let key = (event.push, event.stage);
        match event.progress {
            Progress::Started => {
                started.insert(key, Instant::now());
            }
            Progress::Completed | Progress::Errored(_) => {
                if let Some(start) = started.remove(&key) {
                    *stages.entry(key).or_default() += start.elapsed();
                }
                let last_transfer_done = event.push && event.stage == TransferStage::Cleanup;
                if last_transfer_done || matches!(event.progress, Progress::Errored(_)) {
                    break;
                }
            }
            Progress::InProgress { .. } => {}
        }
    }
    stages
}

/// The floor: every application row of `source` copied into the same, empty tables of `target` in one
/// transaction, `BATCH` rows per `INSERT`, read in id order page by page. Returns the rows copied.
async fn floor_copy(source: &DatabaseConnection, target: &DatabaseConnection) -> Result<u64> {
    let txn = target.begin().await?;
    let copied = copy_table::<facility::Entity>(source, &txn).await?
        + copy_table::<classroom::Entity>(source, &txn).await?
        + copy_table::<learner::Entity>(source, &txn).await?
        + copy_table::<lesson_progress::Entity>(source, &txn).await?;
    txn.commit().await?;
    Ok(copied)
}

/// Copies one table of the floor, page by page; returns the rows copied.
async fn copy_table<E>(source: &DatabaseConnection, target: &DatabaseTransaction) -> Result<u64>
where
    E: Syncable,
    E::ActiveModel: From<E::Model>,
{
    use sea_orm::sea_query::ExprTrait as _;
    let mut after = String::new();
    let mut copied = 0;
    loop {
        let page = E::find()
            .filter(Expr::col(Alias::new("id")).gt(after.as_str()))
            .order_by_asc(Expr::col(Alias::new("id")))
            .limit(BATCH)
            .all(source)
            .await?;
        let Some(last) = page.last() else { return Ok(copied) };
        after = E::record_id(last).to_owned();
        copied += page.len() as u64;
        E::insert_many(page.into_iter().map(E::ActiveModel::from)).exec_without_returning(target).await?;
    }
}

/// Application rows in a database.
async fn count_rows(db: &DatabaseConnection) -> Result<u64> {
    let mut rows = 0;
    for table in entities::TABLES {
        let statement =
            sea_orm::Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {table}"));
        let row = db.query_one_raw(statement).await?.ok_or("COUNT(*) returned no row")?;
        rows += row.try_get::<i64>("", "n")? as u64;
    }
    Ok(rows)
}

/// The process's peak resident set size so far (`VmHWM` in `/proc/self/status`), in MiB; 0 where unavailable.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kib as f64 / 1024.0
}
