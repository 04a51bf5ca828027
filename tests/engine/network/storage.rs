//! A server whose disk fills up: the client is told so (507, "out of space"), the database is not corrupted, and
//! once there is space again the same sync goes on and completes.
//!
//! The disk is a small tmpfs mounted for the test (SQLite's file on it, or a PostgreSQL tablespace on it), which
//! needs root. Without root the test is skipped and says so, unless `MORANGO_FULL_DISK_REQUIRED=1` (`.ci/run`
//! sets it) makes that a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use morango::api::ServerSettings;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, PaginatorTrait, Statement};

use super::harness::{Client, Server, Users, Wants};
use crate::on_both_backends;
use crate::schema::{self, Tables, learner};
use crate::support::{Backend, Peer, TestDb, postgres_base};

/// A tmpfs of a few megabytes, mounted until [`SmallDisk::remove`]; for PostgreSQL also a tablespace on it.
pub struct SmallDisk {
    dir: PathBuf,
    tablespace: String,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes`, owned by the PostgreSQL server's user when `backend` is PostgreSQL.
    pub async fn mount(backend: Backend, megabytes: u32) -> Option<SmallDisk> {
        // Kept (not a TempDir): deleting the files under PostgreSQL's feet before its database is dropped breaks the
        // server's checkpoints.
        let dir = tempfile::tempdir().expect("temporary directory").keep();
        let mut options = format!("size={megabytes}M,mode=0700");
        if backend == Backend::Postgres {
            let id = |flag: &str| {
                let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
                out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            };
            match (id("-u"), id("-g")) {
                (Some(uid), Some(gid)) => options.push_str(&format!(",uid={uid},gid={gid}")),
                _ => return SmallDisk::unavailable("there is no `postgres` user to own the tablespace"),
            }
        }
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(&dir).output();
        match mounted {
            Ok(out) if out.status.success() => {}
            Ok(out) => return SmallDisk::unavailable(&String::from_utf8_lossy(&out.stderr)),
            Err(error) => return SmallDisk::unavailable(&error.to_string()),
        }
        let tablespace = format!("morango_test_{}", morango::ids::random_id());
        let disk = SmallDisk { dir, tablespace };
        if backend == Backend::Postgres {
            let location = disk.path().display().to_string();
            admin(&format!("CREATE TABLESPACE {} LOCATION '{location}'", disk.tablespace)).await;
        }
        Some(disk)
    }

    fn unavailable(why: &str) -> Option<SmallDisk> {
        if std::env::var("MORANGO_FULL_DISK_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("a small tmpfs is needed for the full-disk tests and cannot be mounted: {why}");
        }
        // Past the harness's capture: a skip must be seen.
        let _ = writeln!(std::io::stderr(), "full-disk test skipped: cannot mount a small tmpfs ({})", why.trim());
        None
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn tablespace(&self) -> &str {
        &self.tablespace
    }

    /// Gives the disk more room.
    fn grow(&self, megabytes: u32) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}M")])
            .arg(self.path())
            .status()
            .expect("remount");
        assert!(status.success(), "remount the tmpfs");
    }

    /// Drops the databases on the disk and its tablespace, unmounts it and removes its directory.
    async fn remove(self, backend: Backend) {
        if backend == Backend::Postgres {
            let db = sea_orm::Database::connect(format!("{}/postgres", postgres_base())).await.expect("PostgreSQL");
            let on_disk = db
                .query_all_raw(Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT d.datname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace \
                     WHERE t.spcname = $1",
                    [self.tablespace.clone().into()],
                ))
                .await
                .unwrap();
            for row in on_disk {
                let name: String = row.try_get("", "datname").unwrap();
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
            }
            db.execute_unprepared(&format!("DROP TABLESPACE IF EXISTS {}", self.tablespace)).await.unwrap();
            db.close().await.ok();
        }
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

async fn admin(sql: &str) {
    let db = sea_orm::Database::connect(format!("{}/postgres", postgres_base())).await.expect("PostgreSQL");
    db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await.ok();
}

on_both_backends!(a_full_disk_is_answered_with_507_corrupts_nothing_and_the_sync_goes_on_later);

async fn a_full_disk_is_answered_with_507_corrupts_nothing_and_the_sync_goes_on_later(backend: Backend) {
    // PostgreSQL's new database alone takes about 8 MB of its tablespace.
    let size = if backend == Backend::Postgres { 16 } else { 2 };
    let Some(disk) = SmallDisk::mount(backend, size).await else { return };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(fill_the_disk(backend, &disk))).await;
    disk.remove(backend).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn fill_the_disk(backend: Backend, disk: &SmallDisk) {
    let peer = Peer::on(TestDb::on_disk(backend, disk).await, Tables::Current, &schema::FACILITY_DATA, 500).await;
    let server = Server::start_on(peer, ServerSettings::default(), Users::new(), |router| router).await;
    let tablet = Client::enrol_with_chunk_size(backend, &server, Wants::Facility, 20).await;
    tablet.sync(&server).await;
    let facility = schema::facility::Entity::find().one(tablet.peer.db()).await.unwrap().unwrap();
    for i in 0..400 {
        // Hex of random ids: PostgreSQL compresses repeated text to nothing.
        let big: String = (0..625).map(|_| morango::ids::random_id()).collect();
        learner::ActiveModel {
            facility_id: Set(facility.id.clone()),
            username: Set(format!("learner {i}")),
            full_name: Set(format!("{i} {big}")),
            score: Set(0.0),
            active: Set(true),
            birth_date: Set(None),
            joined_at: Set(None),
            ..Default::default()
        }
        .insert(tablet.peer.db())
        .await
        .unwrap();
    }
    let session = tablet.open(&server).await;
    let client = session.client(&tablet.peer.engine);
    let full = client.push(&server.facility_filter()).await.expect_err("8 MB do not fit on the server's disk");
    let message = full.to_string();
    assert!(message.contains("507") && message.contains("out of space"), "{message}");

    // Nothing is corrupted: the database checks out and still answers.
    if backend == Backend::Sqlite {
        let check = server.db().query_one_raw(Statement::from_string(backend_of(&server), "PRAGMA integrity_check"));
        let row = check.await.unwrap().unwrap();
        assert_eq!(row.try_get::<String>("", "integrity_check").unwrap(), "ok");
    }
    // Chunks that fit were stored and applied together, the rest not at all: nothing half applied.
    let applied = learner::Entity::find().count(server.db()).await.unwrap();
    let stored = server.db().query_one_raw(Statement::from_string(
        backend_of(&server),
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN dirty_bit THEN 1 ELSE 0 END), 0) AS dirty FROM morango_store \
         WHERE model_name = 'learner'",
    ));
    let stored = stored.await.unwrap().unwrap();
    let (n, dirty): (i64, i64) = (stored.try_get("", "n").unwrap(), stored.try_get("", "dirty").unwrap());
    assert!(applied < 400, "the disk filled before the end");
    assert_eq!((applied as i64, 0), (n, dirty), "every stored learner is applied, and stored clean");
    super::harness::connect(&tablet.peer, &server).await;

    // Space again: the same push goes on from where it stopped and completes.
    disk.grow(256);
    let report = client.push(&server.facility_filter()).await.expect("the push completes once there is space");
    assert_eq!(report.records_total, 400);
    client.close().await.unwrap();
    assert_eq!(learner::Entity::find().count(server.db()).await.unwrap(), 400);
    tablet.finish().await;
    server.finish().await;
}

fn backend_of(server: &Server) -> sea_orm::DbBackend {
    server.db().get_database_backend()
}

/// A PostgreSQL database turned read-only under a running server (a replica promoted the wrong way, an operator's
/// `default_transaction_read_only`): the client is told so with a 503 that says it, and nothing breaks for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_answered_with_503() {
    if !Backend::Postgres.enabled() {
        return eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
    }
    let server = Server::start(Backend::Postgres, ServerSettings::default(), Users::new()).await;
    let tablet = Client::enrol(Backend::Postgres, &server, Wants::Facility).await;
    tablet.sync(&server).await;
    let facility = schema::facility::Entity::find().one(tablet.peer.db()).await.unwrap().unwrap();
    crate::fixtures::learner(tablet.peer.db(), &facility, "ada").await;
    let session = tablet.open(&server).await;
    let client = session.client(&tablet.peer.engine);
    let name = server_database(&server).await;
    let read_only = |on: bool| format!("ALTER DATABASE {name} SET default_transaction_read_only = {on}");
    admin(&read_only(true)).await;
    // The server's pooled connections reconnect and get the new default.
    admin(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    let refused = client.push(&server.facility_filter()).await.expect_err("the server cannot write");
    let message = refused.to_string();
    assert!(message.contains("503") && message.contains("read-only"), "{message}");
    admin(&read_only(false)).await;
    admin(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    let report = client.push(&server.facility_filter()).await.expect("the push goes on once it can write");
    assert_eq!(report.records_total, 1);
    client.close().await.unwrap();
    assert_eq!(learner::Entity::find().count(server.db()).await.unwrap(), 1);
    tablet.finish().await;
    server.finish().await;
}

async fn server_database(server: &Server) -> String {
    let row = server.db().query_one_raw(Statement::from_string(backend_of(server), "SELECT current_database() AS n"));
    row.await.unwrap().unwrap().try_get("", "n").unwrap()
}
