//! Test databases on SQLite and PostgreSQL, and peers built on them.
//!
//! Every engine test runs once per backend. `MORANGO_TEST_BACKENDS` (default `sqlite,postgres`) chooses which;
//! PostgreSQL is reached at `MORANGO_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`), and every
//! test database is a fresh `morango_test_*` database, dropped when the peer is finished.

use std::time::Duration;

use morango::{Engine, Filter, Profile, SyncOptions, SyncReport};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::schema::{self, Tables};

/// A database backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Whether `MORANGO_TEST_BACKENDS` selects this backend.
    pub fn enabled(self) -> bool {
        let wanted = std::env::var("MORANGO_TEST_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
        let name = match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        wanted.split(',').any(|b| b.trim() == name)
    }
}

/// Runs `$name(Backend)` as two tests, `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::support::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if Backend::Sqlite.enabled() { super::$name(Backend::Sqlite).await } else { eprintln!("skipped: sqlite not in MORANGO_TEST_BACKENDS") }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if Backend::Postgres.enabled() { super::$name(Backend::Postgres).await } else { eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS") }
            }
        }
    )+};
}

/// The PostgreSQL server the tests use: a URL without a database name.
pub fn postgres_base() -> String {
    std::env::var("MORANGO_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh, empty database.
pub struct TestDb {
    pub db: DatabaseConnection,
    backend: Backend,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let name = format!("morango_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("db.sqlite3").display());
                let db = Database::connect(options(url)).await.expect("open SQLite");
                TestDb { db, backend, name, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let admin = Database::connect(options(format!("{}/postgres", postgres_base())))
                    .await
                    .expect("PostgreSQL must be running (see README: Tests)");
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                admin.close().await.ok();
                let db =
                    Database::connect(options(format!("{}/{name}", postgres_base()))).await.expect("open PostgreSQL");
                TestDb { db, backend, name, _dir: None }
            }
        }
    }

    /// A fresh, empty database on `disk`: an SQLite file in its directory, or a PostgreSQL database in its
    /// tablespace.
    pub async fn on_disk(backend: Backend, disk: &crate::network::storage::SmallDisk) -> TestDb {
        let name = format!("morango_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", disk.path().join(format!("{name}.sqlite3")).display());
                let db = Database::connect(options(url)).await.expect("open SQLite");
                TestDb { db, backend, name, _dir: None }
            }
            Backend::Postgres => {
                let admin =
                    Database::connect(options(format!("{}/postgres", postgres_base()))).await.expect("PostgreSQL");
                let create = format!("CREATE DATABASE {name} TABLESPACE {}", disk.tablespace());
                admin.execute_unprepared(&create).await.expect("create a database on the small disk");
                admin.close().await.ok();
                let db =
                    Database::connect(options(format!("{}/{name}", postgres_base()))).await.expect("open PostgreSQL");
                TestDb { db, backend, name, _dir: None }
            }
        }
    }

    /// Closes the connection and drops a PostgreSQL test database.
    pub async fn finish(self) {
        self.db.close().await.ok();
        if self.backend == Backend::Postgres
            && let Ok(admin) = Database::connect(options(format!("{}/postgres", postgres_base()))).await
        {
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await.ok();
            admin.close().await.ok();
        }
    }
}

fn options(url: String) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options.max_connections(4).min_connections(1).acquire_timeout(Duration::from_secs(30)).sqlx_logging(false);
    options
}

/// One peer: a database with Morango's tables, the application tables and an engine.
pub struct Peer {
    pub engine: Engine,
    test_db: Option<TestDb>,
}

impl Peer {
    /// A peer with the current test schema.
    pub async fn new(backend: Backend) -> Peer {
        Peer::with(backend, Tables::Current, &schema::FACILITY_DATA, 500).await
    }

    /// A peer with a schema, profile and chunk size.
    pub async fn with(backend: Backend, tables: Tables, profile: &'static Profile, chunk_size: u64) -> Peer {
        Peer::on(TestDb::new(backend).await, tables, profile, chunk_size).await
    }

    /// A peer on a database made elsewhere.
    pub async fn on(test_db: TestDb, tables: Tables, profile: &'static Profile, chunk_size: u64) -> Peer {
        morango::migration::migrate(&test_db.db).await.expect("Morango migrations");
        schema::create_tables(&test_db.db, tables).await.expect("application tables");
        let definitions = include_str!("../../../fixtures/scopedefinitions.json");
        morango::scope::load_fixture(&test_db.db, definitions).await.expect("scope definitions");
        let engine =
            Engine::builder(test_db.db.clone(), profile).chunk_size(chunk_size).open().await.expect("open engine");
        Peer { engine, test_db: Some(test_db) }
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.engine.db()
    }

    pub fn backend(&self) -> DbBackend {
        self.db().get_database_backend()
    }

    /// Pulls from and pushes to `server` for `filter`.
    pub async fn sync(&self, server: &Peer, filter: &Filter) -> SyncReport {
        morango::sync_local(&self.engine, &server.engine, &SyncOptions::new(filter.clone())).await.expect("sync")
    }

    /// Pulls from and pushes to `server`, for the whole database.
    pub async fn sync_all(&self, server: &Peer) -> SyncReport {
        self.sync(server, &Filter::everything()).await
    }

    /// The store row of a record.
    pub async fn store(&self, id: &str) -> Option<StoreRow> {
        let rows = self.store_rows(Some(id)).await;
        rows.into_iter().next()
    }

    /// Every store row, by id.
    pub async fn store_snapshot(&self) -> Vec<StoreRow> {
        self.store_rows(None).await
    }

    async fn store_rows(&self, id: Option<&str>) -> Vec<StoreRow> {
        let (sql, values) = match id {
            Some(id) => ("SELECT * FROM morango_store WHERE id = $1 ORDER BY id", vec![id.into()]),
            None => ("SELECT * FROM morango_store ORDER BY id", vec![]),
        };
        let sql = if self.backend() == DbBackend::Sqlite { sql.replace("$1", "?") } else { sql.to_owned() };
        let rows =
            self.db().query_all_raw(Statement::from_sql_and_values(self.backend(), sql, values)).await.expect("store");
        rows.iter()
            .map(|r| StoreRow {
                id: r.try_get("", "id").unwrap(),
                serialized: r.try_get("", "serialized").unwrap(),
                deleted: r.try_get("", "deleted").unwrap(),
                hard_deleted: r.try_get("", "hard_deleted").unwrap(),
                last_saved_instance: r.try_get("", "last_saved_instance").unwrap(),
                last_saved_counter: r.try_get("", "last_saved_counter").unwrap(),
                conflicting_serialized_data: r.try_get("", "conflicting_serialized_data").unwrap(),
                dirty_bit: r.try_get("", "dirty_bit").unwrap(),
                deserialization_error: r.try_get("", "deserialization_error").unwrap(),
                partition: r.try_get("", "partition").unwrap(),
            })
            .collect()
    }

    /// The record JSON of a store row, parsed.
    pub async fn record(&self, id: &str) -> serde_json::Map<String, serde_json::Value> {
        let row = self.store(id).await.expect("store row");
        match serde_json::from_str(&row.serialized).expect("record JSON") {
            serde_json::Value::Object(map) => map,
            other => panic!("record {id} is not an object: {other}"),
        }
    }

    /// The instance counter now.
    pub async fn counter(&self) -> i64 {
        let stmt =
            Statement::from_string(self.backend(), "SELECT counter FROM morango_instanceidmodel WHERE current = true");
        let row = self.db().query_one_raw(stmt).await.expect("counter").expect("instance row");
        row.try_get("", "counter").unwrap()
    }

    /// The engine and the database, for a server that takes the engine over.
    pub fn split(mut self) -> (Engine, TestDb) {
        let db = self.test_db.take().expect("the database is there until finished");
        (self.engine, db)
    }

    /// Drops the database.
    pub async fn finish(mut self) {
        if let Some(db) = self.test_db.take() {
            db.finish().await;
        }
    }
}

/// A store row, as the tests compare it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRow {
    pub id: String,
    pub serialized: String,
    pub deleted: bool,
    pub hard_deleted: bool,
    pub last_saved_instance: String,
    pub last_saved_counter: i64,
    pub conflicting_serialized_data: String,
    pub dirty_bit: bool,
    pub deserialization_error: Option<String>,
    pub partition: String,
}

impl StoreRow {
    /// What must be identical on every peer once they converged.
    pub fn converged_view(&self) -> (String, String, bool, bool, String, i64, String) {
        (
            self.id.clone(),
            self.serialized.clone(),
            self.deleted,
            self.hard_deleted,
            self.last_saved_instance.clone(),
            self.last_saved_counter,
            self.conflicting_serialized_data.clone(),
        )
    }
}
