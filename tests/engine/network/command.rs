//! The sync command run in process: its arguments, `serve` and `sync` as two "processes" on loopback, single-user
//! certificates, `--no-push`, `certs list` and `cleanup-syncs`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use morango::api::{Account, CertificateAuthority, Credentials};
use morango::command::{BoxError, CommandError, SyncCommand};
use morango::server::{self, StageRequest, TransferRequest};
use morango::{Engine, Filter, TransferStage};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Statement};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::fixtures::{self, find_learner, rename_learner};
use crate::on_both_backends;
use crate::schema::{self, learner};
use crate::support::{Backend, Peer};

/// The command of the test application: `--db <name>` opens one of `databases`; `admin` (password
/// `admin-password`) may hold any certificate; a new facility gets the learners `ada` and `alan`; `serve` stops
/// when `stop` is notified.
fn command(databases: &[(&str, &DatabaseConnection)], stop: &Arc<Notify>) -> SyncCommand {
    let databases: HashMap<String, DatabaseConnection> =
        databases.iter().map(|(name, db)| (name.to_string(), (*db).clone())).collect();
    let stop = stop.clone();
    SyncCommand::new("school", move |location: String| {
        let db = databases.get(&location).cloned();
        async move {
            let db = db.ok_or_else(|| format!("no test database {location}"))?;
            Ok::<_, BoxError>(Engine::open(db, &schema::FACILITY_DATA).await?)
        }
    })
    .authority(|_| Arc::new(Admin))
    .on_new_facility(|db, root| async move {
        let facility = fixtures::facility_of_dataset(&db, "Riverside", root.id()).await;
        fixtures::learner(&db, &facility, "ada").await;
        fixtures::learner(&db, &facility, "alan").await;
        Ok(())
    })
    .shutdown_signal(move || {
        let stop = stop.clone();
        async move { stop.notified().await }
    })
    .http_settings(morango::client::HttpSettings { retries: 1, ..Default::default() })
}

/// The application's accounts: `admin` (password `admin-password`) may hold any certificate.
struct Admin;

#[async_trait::async_trait]
impl CertificateAuthority for Admin {
    async fn authenticate(&self, credentials: &Credentials) -> Option<Account> {
        let admin = credentials.fields.get("username")? == "admin" && credentials.password == "admin-password";
        admin.then(|| Account { id: "admin".into() })
    }

    async fn may_hold(&self, account: &Account, _scope_definition_id: &str, _params: &Map<String, Value>) -> bool {
        account.id == "admin"
    }
}

/// Output written by a command that may still be running.
#[derive(Clone, Default)]
pub(super) struct Output(Arc<Mutex<Vec<u8>>>);

impl Output {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `school <args>` to the end; its output, or its error.
async fn run(command: &SyncCommand, args: &[&str]) -> Result<String, CommandError> {
    let mut out = Vec::new();
    command.execute(std::iter::once("school").chain(args.iter().copied()), &mut out).await?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

/// `school --db server serve --bind 127.0.0.1:0` running in a task.
struct Serving {
    url: String,
    output: Output,
    task: tokio::task::JoinHandle<Result<(), CommandError>>,
}

impl Serving {
    async fn start(command: Arc<SyncCommand>) -> Serving {
        let output = Output::default();
        let task = tokio::spawn({
            let output = output.clone();
            async move {
                let args = ["school", "--db", "server", "serve", "--bind", "127.0.0.1:0"];
                command.execute(args, output).await
            }
        });
        for _ in 0..600 {
            if let Some(url) = output.text().lines().find_map(|line| line.strip_prefix("Listening on ")) {
                return Serving { url: url.to_owned(), output, task };
            }
            assert!(!task.is_finished(), "serve stopped early:\n{}", output.text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve printed no address:\n{}", output.text());
    }

    /// The facility the server announced: `Serving facility <id> (...)`.
    fn facility(&self) -> String {
        let text = self.output.text();
        let line = text.lines().find_map(|line| line.strip_prefix("Serving facility ")).expect("a facility line");
        line.split(' ').next().expect("an id").to_owned()
    }

    /// Fires the shutdown signal and waits for `serve` to return.
    async fn stop(self, stop: &Notify) {
        stop.notify_one();
        let stopped = tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("serve stops");
        stopped.expect("the serve task").expect("serve ends without error");
        assert!(self.output.text().ends_with("Stopped.\n"), "{}", self.output.text());
    }
}

async fn learner_named(db: &DatabaseConnection, username: &str) -> learner::Model {
    learner::Entity::find().filter(learner::Column::Username.eq(username)).one(db).await.unwrap().expect("learner")
}

#[tokio::test]
async fn wrong_arguments_are_refused_before_a_database_is_opened() {
    let command = SyncCommand::new("school", |location: String| async move {
        Err::<Engine, BoxError>(format!("{location} must not be opened").into())
    });
    let url = "http://127.0.0.1:9/";
    let cases: [(&[&str], &str); 7] = [
        (&["sync", "--server", "not a url", "--username", "admin", "--password", "x"], "is not a URL"),
        (&["sync", "--server", "ftp://example.org/"], "is not an http:// or https:// URL"),
        (&["sync", "--server", url, "--username", "admin"], "--password"),
        (&["sync", "--server", url, "--no-pull", "--no-push"], "cannot be used with"),
        (&["sync", "--server", url, "--facility", "Riverside"], "is not an id"),
        (&["cleanup-syncs", "--older-than", "5x"], "is not a duration"),
        (&["cleanup-syncs", "--older-than", "6"], "is not a duration"),
    ];
    for (args, expected) in cases {
        let error = run(&command, args).await.expect_err("refused");
        assert!(matches!(error, CommandError::Usage(_)), "{args:?}: {error:?}");
        assert_eq!(error.exit_code(), 2, "{args:?}");
        assert!(error.to_string().contains(expected), "{args:?}: {error}");
    }

    let help = run(&command, &["--help"]).await.expect_err("help is a clap error");
    assert_eq!(help.exit_code(), 0);
    assert!(help.to_string().contains("cleanup-syncs"), "{help}");

    let error = run(&command, &["certs", "list"]).await.expect_err("no database");
    assert!(matches!(error, CommandError::NoDatabase { .. }), "{error:?}");
    assert_eq!(error.exit_code(), 1);
    let error = run(&command, &["--db", "elsewhere", "certs", "list"]).await.expect_err("cannot open");
    assert_eq!(error.to_string(), "cannot open the database elsewhere: elsewhere must not be opened");
}

on_both_backends!(
    a_client_process_syncs_with_a_serving_process,
    a_user_sync_gets_a_single_user_certificate_and_only_that_users_data,
    cleanup_removes_abandoned_transfers_and_their_buffers_but_not_fresh_ones,
);

async fn a_client_process_syncs_with_a_serving_process(backend: Backend) {
    let office = Peer::new(backend).await;
    let tablet = Peer::new(backend).await;
    let stop = Arc::new(Notify::new());
    let command = Arc::new(command(&[("server", office.db()), ("tablet", tablet.db())], &stop));
    let serving = Serving::start(command.clone()).await;
    let facility = serving.facility();
    assert!(serving.output.text().contains(&format!("Created facility {facility}")), "{}", serving.output.text());
    let ada = learner_named(office.db(), "ada").await;

    let error = run(&command, &["--db", "tablet", "sync", "--server", &serving.url]).await.expect_err("no certificate");
    assert!(error.to_string().contains("a username and password are needed"), "{error}");

    let credentials = ["--username", "admin", "--password", "admin-password"];
    let first = run(&command, &[&["--db", "tablet", "sync", "--server", &serving.url], &credentials[..]].concat())
        .await
        .expect("first sync");
    assert!(first.contains(&format!("Synced facility {facility} with {}", serving.url)), "{first}");
    assert!(first.contains("issued by the server now"), "{first}");
    assert!(first.contains("Pulled 3 records.\nPushed 0 records."), "{first}");
    assert_eq!(find_learner(tablet.db(), &ada.id).await.expect("ada arrived").username, "ada");

    rename_learner(tablet.db(), &ada.id, "edited on the tablet").await;
    let second = run(&command, &["--db", "tablet", "sync", "--server", &serving.url]).await.expect("second sync");
    assert!(second.contains("), stored."), "the stored certificate is reused: {second}");
    assert!(second.contains("Pulled 0 records.\nPushed 1 record."), "{second}");
    assert_eq!(find_learner(office.db(), &ada.id).await.unwrap().full_name, "edited on the tablet");

    let certs = run(&command, &["--db", "tablet", "certs", "list"]).await.expect("certs list");
    let lines: Vec<&str> = certs.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the tablet's certificate: {certs}");
    let columns: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(columns[1..3], ["full-facility", facility.as_str()], "{certs}");
    assert_eq!(columns[3..].join(" "), format!("{{\"facility_id\": \"{facility}\"}}"));
    let office_certs = run(&command, &["--db", "server", "certs", "list"]).await.expect("certs list");
    let root: Vec<&str> = office_certs.lines().nth(1).expect("the root").split_whitespace().collect();
    assert_eq!(root[..3], [facility.as_str(), "full-facility", "(root)"], "{office_certs}");

    serving.stop(&stop).await;
    tablet.finish().await;
    office.finish().await;
}

async fn a_user_sync_gets_a_single_user_certificate_and_only_that_users_data(backend: Backend) {
    let office = Peer::new(backend).await;
    let tablet = Peer::new(backend).await;
    let stop = Arc::new(Notify::new());
    let command = Arc::new(command(&[("server", office.db()), ("tablet", tablet.db())], &stop));
    let serving = Serving::start(command.clone()).await;
    let ada = learner_named(office.db(), "ada").await;
    let alan = learner_named(office.db(), "alan").await;

    let args = ["--db", "tablet", "sync", "--server", &serving.url, "--username", "admin", "--password"];
    let out = run(&command, &[&args[..], &["admin-password", "--user", &ada.id, "--no-push"]].concat())
        .await
        .expect("single-user sync");
    assert!(
        out.contains(&format!(
            "(single-user {{\"facility_id\": \"{}\", \"user_id\": \"{}\"}})",
            serving.facility(),
            ada.id
        )),
        "{out}"
    );
    assert!(out.contains("Pulled 2 records.\nPush skipped (--no-push)."), "the facility and ada: {out}");
    assert!(find_learner(tablet.db(), &ada.id).await.is_some());
    assert!(find_learner(tablet.db(), &alan.id).await.is_none(), "alan is not ada's");

    let owned = morango::certificate::owned(tablet.db(), None).await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].scope_definition_id(), "single-user");
    assert_eq!(owned[0].params().unwrap()["user_id"], ada.id.as_str());

    let refused = run(&command, &["--db", "tablet", "sync", "--server", &serving.url, "--user", &alan.id])
        .await
        .expect_err("no certificate for alan");
    assert!(refused.to_string().contains("no certificate for single-user"), "{refused}");

    serving.stop(&stop).await;
    tablet.finish().await;
    office.finish().await;
}

/// A pull whose server side queued its records (their ids in the transfer's queue) and was then left alone.
struct Queued {
    sync_session: String,
    transfer: String,
}

async fn queued_pull(engine: &Engine, filter: &Filter) -> Queued {
    let sync_session = morango::ids::random_id();
    server::open_sync_session(
        engine,
        &sync_session,
        &format!(r#"{{"id": "{}"}}"#, morango::ids::random_id()),
        "network",
    )
    .await
    .unwrap();
    let request = TransferRequest {
        id: morango::ids::random_id(),
        sync_session_id: sync_session.clone(),
        filter: filter.clone(),
        push: false,
        client_fsic: "{}".into(),
        fsic_v2: true,
    };
    let transfer = server::create_transfer(engine, &request, &Default::default()).await.unwrap().id;
    let empty_fsic = r#"{"super": {}, "sub": {}}"#.to_owned();
    let stage =
        StageRequest { stage: Some(TransferStage::Queuing), client_fsic: Some(empty_fsic), ..Default::default() };
    server::proceed_to(engine, &transfer, &stage, &Default::default()).await.unwrap();
    Queued { sync_session, transfer }
}

async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Vec<sea_orm::QueryResult> {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Sqlite { sql.replace("$1", "?").replace("$2", "?") } else { sql.to_owned() };
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap()
}

/// Moves the last activity of a session row back by `hours`.
async fn idle_for(db: &DatabaseConnection, table: &str, id: &str, hours: i64) {
    let at = chrono::Utc::now() - chrono::Duration::hours(hours);
    let sql = format!("UPDATE {table} SET last_activity_timestamp = $1 WHERE id = $2");
    execute(db, &sql, vec![at.into(), id.into()]).await;
}

async fn count(db: &DatabaseConnection, table: &str, transfer: &str) -> i64 {
    let rows = execute(
        db,
        &format!("SELECT COUNT(*) AS n FROM {table} WHERE transfer_session_id = $1"),
        vec![transfer.into()],
    )
    .await;
    rows[0].try_get("", "n").unwrap()
}

async fn active(db: &DatabaseConnection, table: &str, id: &str) -> bool {
    let rows = execute(db, &format!("SELECT active FROM {table} WHERE id = $1"), vec![id.into()]).await;
    rows[0].try_get("", "active").unwrap()
}

async fn cleanup_removes_abandoned_transfers_and_their_buffers_but_not_fresh_ones(backend: Backend) {
    let office = Peer::new(backend).await;
    let facility = fixtures::facility(office.db(), "Riverside").await;
    let ada = fixtures::learner(office.db(), &facility, "ada").await;
    fixtures::log(office.db(), &ada, "video").await;
    let filter = Filter::new([facility.id.clone()]);
    let abandoned = queued_pull(&office.engine, &filter).await;
    let fresh = queued_pull(&office.engine, &filter).await;
    assert_eq!(count(office.db(), "morango_transferqueue", &abandoned.transfer).await, 3);
    assert_eq!(count(office.db(), "morango_transferqueue", &fresh.transfer).await, 3);
    idle_for(office.db(), "morango_transfersession", &abandoned.transfer, 7).await;
    idle_for(office.db(), "morango_syncsession", &abandoned.sync_session, 7).await;
    // An idle sync session whose transfer is busy stays open.
    idle_for(office.db(), "morango_syncsession", &fresh.sync_session, 7).await;

    let command = command(&[("server", office.db())], &Arc::new(Notify::new()));
    let out = run(&command, &["--db", "server", "cleanup-syncs"]).await.expect("cleanup");
    let expected = "Cleaned up sessions idle for more than 6h:\n\
                    \x20 transfer sessions closed               1\n\
                    \x20 queued records deleted                 3\n\
                    \x20 buffered records deleted               0\n\
                    \x20 buffered record-max-counters deleted   0\n\
                    \x20 sync sessions closed                   1\n";
    assert!(out.starts_with(expected), "{out}");
    assert_eq!(count(office.db(), "morango_transferqueue", &abandoned.transfer).await, 0);
    assert_eq!(count(office.db(), "morango_transferqueue", &fresh.transfer).await, 3);
    assert!(!active(office.db(), "morango_transfersession", &abandoned.transfer).await);
    assert!(!active(office.db(), "morango_syncsession", &abandoned.sync_session).await);
    assert!(active(office.db(), "morango_transfersession", &fresh.transfer).await);
    assert!(active(office.db(), "morango_syncsession", &fresh.sync_session).await);

    // A shorter expiration catches the other one too.
    let out = run(&command, &["--db", "server", "cleanup-syncs", "--older-than", "0s"]).await.expect("cleanup");
    assert!(out.contains("transfer sessions closed               1\n"), "{out}");
    assert_eq!(count(office.db(), "morango_transferqueue", &fresh.transfer).await, 0);
    assert!(!active(office.db(), "morango_syncsession", &fresh.sync_session).await);
    office.finish().await;
}
