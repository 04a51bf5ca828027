//! The sync command as an application grows it: its own routes served beside Morango's, its own subcommands, its own
//! names for facilities and credential fields in certificate requests, stage hooks on both sides, and the line of
//! timings `sync` ends with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use morango::api::{Account, CertificateAuthority, Credentials};
use morango::client::{FacilityNaming, NetworkSyncConnection, ServedFacility};
use morango::command::clap::{Arg, Command};
use morango::command::{BoxError, CommandError, SyncCommand};
use morango::hooks::{HookError, StageContext, StageHook};
use morango::stage::TransferStage;
use morango::{Engine, Error};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::fixtures;
use crate::on_both_backends;
use crate::schema::{self, learner, log};
use crate::support::{Backend, Peer};

on_both_backends!(an_application_adds_routes_subcommands_facility_names_and_hooks);

/// The id the application gives a facility, other than its dataset id (the characters reversed).
fn alias_of(dataset_id: &str) -> String {
    dataset_id.chars().rev().collect()
}

/// What the stage hooks saw: (instance side, moment, stage).
type Seen = Arc<Mutex<Vec<(&'static str, &'static str, TransferStage)>>>;

/// Notes every stage on its side; on the server, before serializing for a single user's device, gives that user a
/// log entry (as Kolibri's server creates a single-user device's lesson assignments).
struct Hooks {
    side: &'static str,
    seen: Seen,
}

#[async_trait::async_trait]
impl StageHook for Hooks {
    async fn before(&self, context: &StageContext, db: &DatabaseConnection) -> Result<(), HookError> {
        self.seen.lock().unwrap().push((self.side, "before", context.stage));
        let single_user =
            context.remote_certificate.as_ref().filter(|cert| cert.scope_definition_id() == "single-user");
        if context.stage == TransferStage::Serializing
            && context.is_server
            && context.is_producer()
            && let Some(cert) = single_user
        {
            let user = cert.params()?["user_id"].as_str().ok_or("no user_id")?.to_owned();
            let learner = fixtures::find_learner(db, &user).await.ok_or("no such learner")?;
            fixtures::log(db, &learner, "assigned before the pull").await;
        }
        Ok(())
    }

    async fn after(&self, context: &StageContext, _db: &DatabaseConnection) -> Result<(), HookError> {
        self.seen.lock().unwrap().push((self.side, "after", context.stage));
        Ok(())
    }
}

/// Facilities as the application's own endpoint lists them.
#[derive(Debug)]
struct PublicFacilities;

#[async_trait::async_trait]
impl FacilityNaming for PublicFacilities {
    async fn facilities(
        &self,
        connection: &NetworkSyncConnection<'_>,
        _dataset_ids: &[String],
    ) -> Result<Vec<ServedFacility>, Error> {
        let listed = connection.get_json("/api/public/facilities/").await?;
        let facilities = listed.as_array().ok_or_else(|| Error::Invalid("not a list".into()))?;
        Ok(facilities
            .iter()
            .map(|facility| ServedFacility {
                dataset_id: facility["dataset"].as_str().unwrap_or_default().to_owned(),
                id: facility["id"].as_str().unwrap_or_default().to_owned(),
                name: facility["name"].as_str().map(str::to_owned),
            })
            .collect())
    }
}

/// `admin` signs in with its password and the facility's own id (not its dataset id), as Kolibri's login wants.
struct FacilityLogin;

#[async_trait::async_trait]
impl CertificateAuthority for FacilityLogin {
    async fn authenticate(&self, credentials: &Credentials) -> Option<Account> {
        let facility = credentials.fields.get("facility")?;
        let known = credentials.fields.get("username")? == "admin" && credentials.password == "admin-password";
        (known && facility.len() == 32).then(|| Account { id: format!("admin@{facility}") })
    }

    async fn may_hold(&self, account: &Account, _definition: &str, params: &Map<String, Value>) -> bool {
        let dataset = params.get("facility_id").and_then(Value::as_str).unwrap_or_default();
        account.id == format!("admin@{}", alias_of(dataset))
    }
}

fn command(databases: &[(&str, &DatabaseConnection)], stop: &Arc<Notify>, seen: &Seen) -> SyncCommand {
    let databases: HashMap<String, DatabaseConnection> =
        databases.iter().map(|(name, db)| (name.to_string(), (*db).clone())).collect();
    let (stop, seen) = (stop.clone(), seen.clone());
    SyncCommand::new("school", move |location: String| {
        let db = databases.get(&location).cloned();
        let hooks = Hooks { side: if location == "server" { "server" } else { "client" }, seen: seen.clone() };
        async move {
            let db = db.ok_or_else(|| format!("no test database {location}"))?;
            Ok::<_, BoxError>(Engine::builder(db, &schema::FACILITY_DATA).stage_hook(hooks).open().await?)
        }
    })
    .authority(|_| Arc::new(FacilityLogin))
    .routes(|engine| {
        let db = engine.db().clone();
        axum::Router::new().route(
            "/api/public/facilities/",
            get(move || {
                let db = db.clone();
                async move {
                    let facilities = schema::facility::Entity::find().all(&db).await.unwrap_or_default();
                    let listed: Vec<Value> = facilities
                        .iter()
                        .map(|f| json!({"id": alias_of(&f.dataset_id), "dataset": f.dataset_id, "name": f.name}))
                        .collect();
                    Json(Value::Array(listed))
                }
            }),
        )
    })
    .subcommand(
        Command::new("add-learner").about("Adds a learner to the facility").arg(Arg::new("username").required(true)),
        |engine, args| async move {
            let username: &String = args.get_one("username").ok_or("a username")?;
            let facility = schema::facility::Entity::find().one(engine.db()).await?.ok_or("no facility")?;
            fixtures::learner(engine.db(), &facility, username).await;
            Ok(())
        },
    )
    .facility_naming(PublicFacilities)
    .on_new_facility(|db, root| async move {
        let facility = fixtures::facility_of_dataset(&db, "Riverside", root.id()).await;
        fixtures::learner(&db, &facility, "ada").await;
        Ok(())
    })
    .shutdown_signal(move || {
        let stop = stop.clone();
        async move { stop.notified().await }
    })
    .http_settings(morango::client::HttpSettings { retries: 1, ..Default::default() })
}

async fn run(command: &SyncCommand, args: &[&str]) -> Result<String, CommandError> {
    let mut out = Vec::new();
    command.execute(std::iter::once("school").chain(args.iter().copied()), &mut out).await?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

/// The `Listening on` address of a `serve` writing to `output`.
async fn listening(output: &super::command::Output) -> String {
    for _ in 0..600 {
        if let Some(url) = output.text().lines().find_map(|line| line.strip_prefix("Listening on ")) {
            return url.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve printed no address:\n{}", output.text());
}

async fn an_application_adds_routes_subcommands_facility_names_and_hooks(backend: Backend) {
    let office = Peer::new(backend).await;
    let tablet = Peer::new(backend).await;
    let stop = Arc::new(Notify::new());
    let seen = Seen::default();
    let command = Arc::new(command(&[("server", office.db()), ("tablet", tablet.db())], &stop, &seen));

    let help = run(&command, &["--help"]).await.expect_err("help");
    assert!(help.to_string().contains("add-learner") && help.to_string().contains("Adds a learner"), "{help}");

    let output = super::command::Output::default();
    let serving = tokio::spawn({
        let (command, output) = (command.clone(), output.clone());
        async move { command.execute(["school", "--db", "server", "serve", "--bind", "127.0.0.1:0"], output).await }
    });
    let url = listening(&output).await;
    let facility = schema::facility::Entity::find().one(office.db()).await.unwrap().expect("the new facility");
    let alias = alias_of(&facility.dataset_id);

    // Its subcommand runs on the database it names.
    run(&command, &["--db", "server", "add-learner", "alan"]).await.expect("add-learner");
    let learners = learner::Entity::find().filter(learner::Column::Username.eq("alan")).count(office.db()).await;
    assert_eq!(learners.unwrap(), 1);
    let failed = run(&command, &["--db", "nowhere", "add-learner", "x"]).await.expect_err("no such database");
    assert!(matches!(failed, CommandError::Open { .. }), "{failed:?}");

    // `--facility` takes the application's id; the certificate request names the facility by it.
    let unknown = run(&command, &["--db", "tablet", "sync", "--server", &url, "--facility", &"0".repeat(32)]).await;
    let unknown = unknown.expect_err("an unknown facility");
    assert!(
        unknown.to_string().contains(&format!("Riverside ({alias}, dataset {})", facility.dataset_id)),
        "{unknown}"
    );
    // The application's route is served beside Morango's API (after a sync: reqwest's TLS
    // provider is the one the client installs).
    let listed: Value = reqwest::get(format!("{url}api/public/facilities/")).await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([{"id": alias, "dataset": facility.dataset_id, "name": "Riverside"}]));

    let ada =
        learner::Entity::find().filter(learner::Column::Username.eq("ada")).one(office.db()).await.unwrap().unwrap();
    let args = ["--db", "tablet", "sync", "--server", &url, "--facility", &alias, "--username", "admin"];
    let out = run(&command, &[&args[..], &["--password", "admin-password", "--user", &ada.id]].concat())
        .await
        .expect("a single-user sync");
    assert!(out.contains(&format!("Synced facility {} with", facility.dataset_id)), "{out}");

    // The server's hook gave ada a log entry before serializing what she pulls, and it arrived with the pull.
    let logs = log::Entity::find().filter(log::Column::LearnerId.eq(ada.id.as_str())).all(tablet.db()).await.unwrap();
    assert_eq!(logs.iter().map(|l| l.content.as_str()).collect::<Vec<_>>(), ["assigned before the pull"]);
    // Both sides ran their hooks around every stage of the pull and the push, each stage before, then after.
    let seen = seen.lock().unwrap().clone();
    for side in ["client", "server"] {
        let stages: Vec<_> =
            seen.iter().filter(|(s, ..)| *s == side).map(|(_, moment, stage)| (*moment, *stage)).collect();
        let once: Vec<_> =
            TransferStage::ALL.iter().flat_map(|stage| [("before", *stage), ("after", *stage)]).collect();
        assert_eq!(stages, [once.clone(), once].concat(), "{side}: the pull's stages, then the push's");
    }

    // The sync ends with its timings.
    let last = out.lines().last().expect("output");
    assert!(
        last.starts_with("Took ") && last.contains("pull ") && last.contains("push ") && last.contains(" records/s"),
        "{out}"
    );

    stop.notify_one();
    let stopped = tokio::time::timeout(Duration::from_secs(60), serving).await.expect("serve stops");
    stopped.expect("the serve task").expect("serve ends without error");
    tablet.finish().await;
    office.finish().await;
}
