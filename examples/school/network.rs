//! The school over the network: Morango's sync command ([`SyncCommand`]) embedded with the school's profile, so
//! that the office serves its database and a tablet syncs with it from another process.
//!
//! ```sh
//! cargo run --example school -- serve --bind 127.0.0.1:8000          # the office: school-office.sqlite3
//! cargo run --example school -- sync --server http://127.0.0.1:8000/ --username admin --password admin
//! cargo run --example school -- certs list                            # the tablet: school-tablet.sqlite3
//! cargo run --example school -- learners                              # the school's own subcommand
//! ```
//!
//! The first `serve` creates the school: a root certificate, the facility record whose id is the certificate's,
//! two classrooms and three learners. Demo accounts: `admin` (password `admin`) may hold any scope; each learner
//! (`ada`, `alan`, `grace`, password = username) may hold the single-user scope of themself
//! (`sync ... --user <learner id>`).

use std::sync::Arc;

use morango::Engine;
use morango::api::{Account, CertificateAuthority, Credentials};
use morango::certificate::Certificate;
use morango::command::{self, BoxError, SyncCommand};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, TransactionTrait,
};
use serde_json::{Map, Value};

use crate::entities::{self, FACILITY_DATA, classroom, facility, learner};

/// The scope definitions both sides must hold: `full-facility` and `single-user`, shaped like Kolibri's but with a
/// `facility_id` param (Kolibri 0.19.5's is `dataset_id`, see `SyncScopes::kolibri`).
const SCOPE_DEFINITIONS: &str = include_str!("../../fixtures/scopedefinitions.json");

/// The sync command of the school: `serve`, `sync`, `certs list`, `cleanup-syncs`, and the school's own `learners`.
pub fn command() -> SyncCommand {
    SyncCommand::new("school", open)
        .about(
            "The school's databases over the network: the office serves, tablets sync.\n\
             Run without arguments for the in-process demo.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .database_env("SCHOOL_DB")
        // Two processes in one directory: the office serves its database, every other command is the tablet's.
        .default_database(|command| {
            if command == "serve" { "school-office.sqlite3" } else { "school-tablet.sqlite3" }.into()
        })
        .authority(|engine: &Engine| Arc::new(Accounts { db: engine.db().clone() }) as Arc<dyn CertificateAuthority>)
        .on_new_facility(create_school)
        .subcommand(
            command::clap::Command::new("learners").about("The learners this database holds"),
            |engine, _args| list_learners(engine),
        )
}

/// `learners`: one line per learner of this database.
async fn list_learners(engine: Engine) -> Result<(), BoxError> {
    let learners = learner::Entity::find().all(engine.db()).await?;
    println!("{} learners:", learners.len());
    for learner in learners {
        println!("  {:<6} {}  {}", learner.username, learner.id, learner.full_name);
    }
    Ok(())
}

/// Opens (creating it if needed) a school database: Morango's tables, the school's, the scope definitions.
async fn open(location: String) -> Result<Engine, BoxError> {
    let db = command::connect(&location).await?;
    morango::migration::migrate(&db).await?;
    // Several server processes may start together on one PostgreSQL database: one at a time creates the tables
    // and loads the scope definitions.
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(hashtext('school:setup'))").await?;
    }
    entities::create_tables(&txn).await?;
    morango::scope::load_fixture(&txn, SCOPE_DEFINITIONS).await?;
    txn.commit().await?;
    Ok(Engine::open(db, &FACILITY_DATA).await?)
}

/// A new school for a new root certificate: the facility (its id is the certificate's), classrooms, learners.
async fn create_school(db: DatabaseConnection, root: Certificate) -> Result<(), BoxError> {
    let school = facility::ActiveModel {
        name: Set("Riverside Primary".into()),
        dataset_id: Set(root.id().to_owned()),
        ..Default::default()
    }
    .insert(&db)
    .await?;
    for name in ["Class 3", "Class 4"] {
        classroom::ActiveModel {
            facility_id: Set(school.id.clone()),
            parent_id: Set(None),
            name: Set(name.into()),
            ..Default::default()
        }
        .insert(&db)
        .await?;
    }
    println!("Created the school {:?} with 2 classrooms and these learners:", school.name);
    for (username, full_name) in [("ada", "Ada Lovelace"), ("alan", "Alan Turing"), ("grace", "Grace Hopper")] {
        let learner = learner::ActiveModel {
            facility_id: Set(school.id.clone()),
            username: Set(username.into()),
            full_name: Set(full_name.into()),
            ..Default::default()
        }
        .insert(&db)
        .await?;
        println!("  {username:<6} {}  (password: {username})", learner.id);
    }
    println!("  admin  (password: admin) may sync the whole school");
    Ok(())
}

/// The school's demo accounts: `admin`/`admin` may hold any certificate; a learner (password = username) may hold
/// the single-user certificate of themself.
struct Accounts {
    db: DatabaseConnection,
}

const ADMIN: &str = "admin";

#[async_trait::async_trait]
impl CertificateAuthority for Accounts {
    async fn authenticate(&self, credentials: &Credentials) -> Option<Account> {
        let username = credentials.fields.get("username")?;
        if credentials.password != *username {
            return None;
        }
        if username == ADMIN {
            return Some(Account { id: ADMIN.into() });
        }
        let mut query = learner::Entity::find().filter(learner::Column::Username.eq(username));
        if let Some(facility) = credentials.fields.get("facility") {
            query = query.filter(learner::Column::FacilityId.eq(facility));
        }
        let learner = query.one(&self.db).await.ok()??;
        Some(Account { id: learner.id })
    }

    /// Every parameter is checked: one left unchecked could be set to anything by the requester (a `facility_id`
    /// with extra segments would put the learner's write scope inside partitions everyone reads).
    async fn may_hold(&self, account: &Account, scope_definition_id: &str, params: &Map<String, Value>) -> bool {
        if account.id == ADMIN {
            return true;
        }
        let Ok(Some(learner)) = learner::Entity::find_by_id(account.id.clone()).one(&self.db).await else {
            return false;
        };
        let param = |key: &str| params.get(key).and_then(Value::as_str);
        scope_definition_id == "single-user"
            && params.len() == 2
            && param("user_id") == Some(learner.id.as_str())
            && param("facility_id") == Some(learner.facility_id.as_str())
    }
}
