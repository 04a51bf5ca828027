//! A school keeps its records on the office computer; a tablet in the classroom works offline and syncs with
//! the office now and then. Both databases change between syncs, sometimes the same record, and Morango brings
//! them back to the same state.
//!
//! Run it with `cargo run --example school`: it creates two SQLite databases in a fresh temporary directory,
//! walks through a first sync, offline edits on both sides (one of them a conflict) and a second sync, and
//! shows what converged.
//!
//! With a command it runs Morango's sync command instead (`network.rs`), so that the office and the tablet can
//! be two processes syncing over HTTP: `cargo run --example school -- serve` in one terminal, `cargo run
//! --example school -- sync --server http://127.0.0.1:8000/ --username admin --password admin` in another.

mod entities;
mod network;

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use morango::{Engine, Filter, Progress, SyncEvent, SyncOptions};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, Statement,
};
use tokio::sync::broadcast::{self, error::TryRecvError};

use entities::{FACILITY_DATA, classroom, facility, learner, lesson_progress};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match std::env::args_os().nth(1) {
        None => demo().await,
        Some(command) if command == "demo" => demo().await,
        Some(_) => return network::command().run(std::env::args_os()).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// The whole story, on two databases in a new temporary directory.
async fn demo() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("morango-school-").tempdir()?.keep();
    println!("Databases: {}/{{office,tablet}}.sqlite3", dir.display());
    let office = Device::open("office", &dir.join("office.sqlite3")).await?;
    let mut tablet = Device::open("tablet", &dir.join("tablet.sqlite3")).await?;

    let school = facility::ActiveModel {
        name: Set("Riverside Primary".into()),
        dataset_id: Set(morango::ids::random_id()),
        ..Default::default()
    }
    .insert(office.db())
    .await?;
    let class = add_classroom(office.db(), &school, "Class 3", None).await?;
    add_classroom(office.db(), &school, "Reading circle", Some(&class)).await?;
    let ada = add_learner(office.db(), &school, "ada", "Ada Lovelace").await?;
    let alan = add_learner(office.db(), &school, "alan", "Alan Turing").await?;
    let grace = add_learner(office.db(), &school, "grace", "Grace Hopper").await?;
    println!("\noffice: set up {} with 2 classrooms and 3 learners", school.name);

    // Everything of the school: its partitions all start with the facility id.
    let whole_school = Filter::new([school.id.clone()]);
    tablet.sync_with(&office, &whole_school).await?;

    println!("\nOffline, both databases change:");
    for (learner, lesson, progress) in [(&ada, "Counting", 1.0), (&ada, "Fractions", 0.4), (&alan, "Shapes", 0.2)] {
        set_progress(tablet.db(), learner, lesson, progress).await?;
    }
    println!("  tablet: 3 lessons in progress for ada and alan");
    let (office_name, tablet_name) = ("Ada King", "Augusta Ada Lovelace");
    rename_learner(office.db(), &ada.id, office_name).await?;
    add_learner(office.db(), &school, "katherine", "Katherine Johnson").await?;
    println!("  office: renames ada to {office_name:?} and enrols katherine");
    rename_learner(tablet.db(), &ada.id, tablet_name).await?;
    set_progress(tablet.db(), &ada, "Fractions", 1.0).await?;
    set_progress(tablet.db(), &grace, "Counting", 0.5).await?;
    println!("  tablet: renames ada to {tablet_name:?}, ada finishes Fractions, grace starts Counting\n");

    tablet.sync_with(&office, &whole_school).await?;

    show_conflict(&office, &tablet, &ada.id, office_name, tablet_name).await?;
    show_convergence(&office, &tablet).await?;
    println!("\nThe databases stay in {} (open them with sqlite3).", dir.display());
    Ok(())
}

/// One device of the school: its database, the sync engine on it and its progress events.
struct Device {
    name: &'static str,
    engine: Engine,
    events: broadcast::Receiver<SyncEvent>,
}

impl Device {
    /// Opens (creating it if needed) the SQLite database at `path` with Morango's tables and the school's.
    async fn open(name: &'static str, path: &Path) -> Result<Device> {
        let mut options = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
        options.sqlx_logging(false);
        let db = Database::connect(options).await?;
        morango::migration::migrate(&db).await?;
        entities::create_tables(&db).await?;
        let engine = Engine::open(db, &FACILITY_DATA).await?;
        let events = engine.subscribe();
        Ok(Device { name, engine, events })
    }

    fn db(&self) -> &DatabaseConnection {
        self.engine.db()
    }

    /// Pulls from and pushes to `server` the partitions under `filter`, printing one line per transfer.
    async fn sync_with(&mut self, server: &Device, filter: &Filter) -> Result<()> {
        println!("{} syncs with {}:", self.name, server.name);
        let result = morango::sync_local(&self.engine, &server.engine, &SyncOptions::new(filter.clone())).await;
        self.print_transfers();
        result?;
        Ok(())
    }

    /// Prints the transfers whose events arrived since the last call, one line each: direction, records moved
    /// and the stages completed.
    fn print_transfers(&mut self) {
        let mut transfers: Vec<Transfer> = Vec::new();
        loop {
            let event = match self.events.try_recv() {
                Ok(event) => event,
                Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            };
            let index = match transfers.iter().position(|t| t.id == event.transfer_session_id) {
                Some(index) => index,
                None => {
                    transfers.push(Transfer {
                        id: event.transfer_session_id.clone(),
                        push: event.push,
                        ..Default::default()
                    });
                    transfers.len() - 1
                }
            };
            transfers[index].update(event);
        }
        for transfer in transfers {
            let direction = if transfer.push { "push" } else { "pull" };
            println!("  {direction} {:>3} records: {}", transfer.records, transfer.stages.join(" › "));
        }
    }
}

/// What the events of one transfer said.
#[derive(Default)]
struct Transfer {
    id: String,
    push: bool,
    records: u64,
    stages: Vec<String>,
}

impl Transfer {
    fn update(&mut self, event: SyncEvent) {
        match event.progress {
            Progress::Started => {}
            Progress::InProgress { total, .. } => self.records = total,
            Progress::Completed => self.stages.push(event.stage.to_string()),
            Progress::Errored(message) => self.stages.push(format!("{} failed: {message}", event.stage)),
        }
    }
}

async fn add_classroom(
    db: &DatabaseConnection,
    school: &facility::Model,
    name: &str,
    parent: Option<&classroom::Model>,
) -> Result<classroom::Model> {
    let classroom = classroom::ActiveModel {
        facility_id: Set(school.id.clone()),
        parent_id: Set(parent.map(|p| p.id.clone())),
        name: Set(name.into()),
        ..Default::default()
    };
    Ok(classroom.insert(db).await?)
}

async fn add_learner(
    db: &DatabaseConnection,
    school: &facility::Model,
    username: &str,
    full_name: &str,
) -> Result<learner::Model> {
    let learner = learner::ActiveModel {
        facility_id: Set(school.id.clone()),
        username: Set(username.into()),
        full_name: Set(full_name.into()),
        ..Default::default()
    };
    Ok(learner.insert(db).await?)
}

async fn rename_learner(db: &DatabaseConnection, id: &str, full_name: &str) -> Result<()> {
    let learner = learner::Entity::find_by_id(id).one(db).await?.ok_or_else(|| format!("no learner {id}"))?;
    let mut learner = learner.into_active_model();
    learner.full_name = Set(full_name.into());
    learner.update(db).await?;
    Ok(())
}

/// Records how far a learner got in a lesson: updates the learner's row for the lesson, or adds one.
async fn set_progress(db: &DatabaseConnection, learner: &learner::Model, lesson: &str, progress: f64) -> Result<()> {
    let existing = lesson_progress::Entity::find()
        .filter(lesson_progress::Column::LearnerId.eq(&learner.id))
        .filter(lesson_progress::Column::Lesson.eq(lesson))
        .one(db)
        .await?;
    match existing {
        Some(row) => {
            let mut row = row.into_active_model();
            row.progress = Set(progress);
            row.update(db).await?;
        }
        None => {
            let row = lesson_progress::ActiveModel {
                facility_id: Set(learner.facility_id.clone()),
                learner_id: Set(learner.id.clone()),
                lesson: Set(lesson.into()),
                progress: Set(progress),
                ..Default::default()
            };
            row.insert(db).await?;
        }
    }
    Ok(())
}

/// Shows which edit of a learner won on both devices and where the losing one went.
async fn show_conflict(office: &Device, tablet: &Device, id: &str, office_edit: &str, tablet_edit: &str) -> Result<()> {
    let mut names = Vec::new();
    for device in [office, tablet] {
        let learner =
            learner::Entity::find_by_id(id).one(device.db()).await?.ok_or_else(|| format!("no learner {id}"))?;
        names.push(learner.full_name);
    }
    println!("\nConflict: the office renamed ada to {office_edit:?}, the tablet to {tablet_edit:?}.");
    if names[0] != names[1] {
        return Err(format!("the devices disagree about ada: {:?} and {:?}", names[0], names[1]).into());
    }
    let why = match names[0].as_str() {
        name if name == tablet_edit => "the tablet received the conflict in its pull and kept its own edit",
        name if name == office_edit => "the office's edit won",
        _ => "a conflict hook merged the edits",
    };
    println!("  Both now say {:?}: {why}.", names[0]);
    let losing = store_row(office.db(), id).await?.conflicting_serialized_data;
    println!("  The losing version is kept in morango_store.conflicting_serialized_data (ids shortened):");
    for version in losing.lines() {
        println!("  {}", abbreviate_ids(version));
    }
    Ok(())
}

/// Row counts of every table on both devices, and whether their stores hold the same versions.
async fn show_convergence(office: &Device, tablet: &Device) -> Result<()> {
    println!("\n  {:<15} {:>6} {:>6}", "rows in", office.name, tablet.name);
    for table in entities::TABLES.into_iter().chain(["morango_store"]) {
        println!("  {table:<15} {:>6} {:>6}", count(office.db(), table).await?, count(tablet.db(), table).await?);
    }
    if store(office.db()).await? != store(tablet.db()).await? {
        return Err("the stores of the two devices hold different versions".into());
    }
    println!("  Both stores hold identical versions of every record: the devices converged.");
    Ok(())
}

/// What must be the same in the stores of two devices that converged.
#[derive(Debug, PartialEq, FromQueryResult)]
struct StoreRow {
    id: String,
    serialized: String,
    deleted: bool,
    hard_deleted: bool,
    last_saved_instance: String,
    last_saved_counter: i64,
    conflicting_serialized_data: String,
}

const STORE_ROW: &str = "SELECT id, serialized, deleted, hard_deleted, last_saved_instance, last_saved_counter, \
    conflicting_serialized_data FROM morango_store";

async fn store(db: &DatabaseConnection) -> Result<BTreeMap<String, StoreRow>> {
    let statement = Statement::from_string(db.get_database_backend(), STORE_ROW);
    let rows = StoreRow::find_by_statement(statement).all(db).await?;
    Ok(rows.into_iter().map(|row| (row.id.clone(), row)).collect())
}

async fn store_row(db: &DatabaseConnection, id: &str) -> Result<StoreRow> {
    let statement =
        Statement::from_sql_and_values(db.get_database_backend(), format!("{STORE_ROW} WHERE id = ?"), [id.into()]);
    Ok(StoreRow::find_by_statement(statement)
        .one(db)
        .await?
        .ok_or_else(|| format!("record {id} is not in the store"))?)
}

async fn count(db: &DatabaseConnection, table: &str) -> Result<i64> {
    let statement = Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {table}"));
    let row = db.query_one_raw(statement).await?.ok_or("COUNT(*) returned no row")?;
    Ok(row.try_get("", "n")?)
}

/// Shortens every 32-hex-digit id in `text` to its first 8 digits, so a record fits on a line.
fn abbreviate_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        let run = rest[start..].find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(rest.len() - start);
        out.push_str(&rest[..start]);
        let hex = &rest[start..start + run];
        if run == 32 {
            out.push_str(&hex[..8]);
            out.push('…');
        } else {
            out.push_str(hex);
        }
        rest = &rest[start + run..];
    }
    out.push_str(rest);
    out
}
