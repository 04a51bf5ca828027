//! The Rust side: the example school's profile on an SQLite (or PostgreSQL) database, served with `morango::api::router` or syncing
//! with `morango::client::sync`, as the example's `serve` and `sync` commands do.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use morango::Engine;
use morango::api::{self, Account, CertificateAuthority, Credentials, MorangoApi, ServerSettings};
use morango::certificate;
use morango::client::{self, SyncOutcome, SyncRequest};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectOptions, Database, EntityTrait, IntoActiveModel};
use serde_json::{Map, Value};

use crate::support::{Backend, TestDb};

use super::entities::{self, FACILITY_DATA, classroom, facility, learner, lesson_progress};

/// The accounts that may request certificates from a Rust server, as the Python project's `User` model decides:
/// a superuser any scope, a learner's account the single-user scope of that learner.
#[derive(Default)]
pub struct Accounts {
    users: RwLock<HashMap<String, (String, Option<String>)>>,
}

impl Accounts {
    pub fn add(&self, username: &str, password: &str, learner_id: Option<&str>) {
        self.users.write().unwrap().insert(username.into(), (password.into(), learner_id.map(str::to_owned)));
    }
}

#[async_trait::async_trait]
impl CertificateAuthority for Accounts {
    async fn authenticate(&self, credentials: &Credentials) -> Option<Account> {
        let username = credentials.fields.get("username")?;
        let users = self.users.read().ok()?;
        let (password, _) = users.get(username)?;
        (*password == credentials.password).then(|| Account { id: username.clone() })
    }

    async fn may_hold(&self, account: &Account, scope_definition_id: &str, params: &Map<String, Value>) -> bool {
        let Ok(users) = self.users.read() else { return false };
        match users.get(&account.id) {
            Some((_, None)) => true,
            Some((_, Some(learner))) => {
                scope_definition_id == "single-user"
                    && params.get("user_id").and_then(Value::as_str) == Some(learner.as_str())
            }
            None => false,
        }
    }
}

/// Records per chunk on both sides (the Python client gets `--chunk-size` too), so that every transfer of the seeded
/// facility takes several pages.
pub const CHUNK_SIZE: u64 = 4;

/// Where a Rust instance keeps its database.
enum Storage {
    /// The directory holding the SQLite file (removed when dropped).
    Sqlite {
        _dir: super::python::Dir,
    },
    Postgres(TestDb),
}

/// One Rust instance: the school's tables on SQLite, the engine, and its server once started.
pub struct RustInstance {
    api: Arc<MorangoApi>,
    pub accounts: Arc<Accounts>,
    server: Option<(String, tokio::task::JoinHandle<()>)>,
    storage: Option<Storage>,
}

impl RustInstance {
    /// A new, empty instance (Morango's tables, the school's, the scope definitions) on `backend`, whose server has
    /// these capabilities. Records move in chunks of [`CHUNK_SIZE`].
    pub async fn new(backend: Backend, capabilities: morango::capabilities::Capabilities) -> RustInstance {
        let (db, storage) = match backend {
            Backend::Sqlite => {
                let dir = super::python::Dir::new("interop-rust-");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("db.sqlite3").display());
                let mut options = ConnectOptions::new(url);
                options.sqlx_logging(false);
                (Database::connect(options).await.expect("open SQLite"), Storage::Sqlite { _dir: dir })
            }
            Backend::Postgres => {
                let test_db = TestDb::new(Backend::Postgres).await;
                (test_db.db.clone(), Storage::Postgres(test_db))
            }
        };
        morango::migration::migrate(&db).await.expect("Morango's tables");
        entities::create_tables(&db).await.expect("the school's tables");
        morango::scope::load_fixture(&db, include_str!("../../../fixtures/scopedefinitions.json"))
            .await
            .expect("scope definitions");
        let engine = Engine::builder(db, &FACILITY_DATA).chunk_size(CHUNK_SIZE).open().await.expect("engine");
        let accounts = Arc::new(Accounts::default());
        // A Rust server trusts only the roots it knows (it issues the certificates itself).
        let settings = ServerSettings { capabilities, ..ServerSettings::default() };
        let api = MorangoApi::new(engine, settings, accounts.clone());
        RustInstance { api, accounts, server: None, storage: Some(storage) }
    }

    /// Stops the server and drops a PostgreSQL database.
    pub async fn finish(mut self) {
        if let Some((_, task)) = self.server.take() {
            task.abort();
        }
        if let Some(Storage::Postgres(test_db)) = self.storage.take() {
            test_db.finish().await;
        }
    }

    pub fn engine(&self) -> &Engine {
        self.api.engine()
    }

    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        self.engine().db()
    }

    /// A facility of this instance: a new full-facility root certificate, and the facility whose id is its id.
    pub async fn create_facility(&self, name: &str) -> String {
        let root = certificate::generate_root(self.db(), "full-facility", &Map::new()).await.expect("root certificate");
        facility::ActiveModel { dataset_id: Set(root.id().to_owned()), name: Set(name.into()), ..Default::default() }
            .insert(self.db())
            .await
            .expect("facility");
        root.id().to_owned()
    }

    /// The same records as the Python project's `seed` command: a classroom with a group inside it, three learners
    /// and lesson progress using every field type. Returns the ids by the same names.
    pub async fn seed(&self, facility_id: &str) -> Value {
        let db = self.db();
        let class3 = self.classroom(facility_id, "Class 3", None).await;
        let circle = self.classroom(facility_id, "Reading circle", Some(&class3)).await;
        let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d);
        let mut learners = Map::new();
        for (username, full_name, classroom, birth, points, active) in [
            ("ada", "Ada Lovelace", Some(&class3), date(2015, 12, 10), 12, true),
            ("alan", "Alan Turing", Some(&circle), date(2016, 6, 23), 0, true),
            ("grace", "Grace Hopper", None, None, -3, false),
        ] {
            let learner = learner::ActiveModel {
                facility_id: Set(facility_id.into()),
                username: Set(username.into()),
                full_name: Set(full_name.into()),
                classroom_id: Set(classroom.cloned()),
                birth_date: Set(birth),
                points: Set(points),
                active: Set(active),
                ..Default::default()
            }
            .insert(db)
            .await
            .expect("learner");
            learners.insert(username.into(), learner.id.into());
        }
        let at = |text: &str| Some(text.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
        let mut progress = Map::new();
        for (username, lesson, value, started, details) in [
            (
                "ada",
                "Counting",
                1.0,
                at("2024-03-01T09:30:15.123456Z"),
                Some(serde_json::json!({"answers": [1, 2, 3], "hints": 0, "note": "caf\u{e9} \u{2713}"})),
            ),
            ("ada", "Fractions", 0.1, None, None),
            (
                "alan",
                "Shapes",
                0.333,
                at("2024-03-02T23:59:59.999Z"),
                Some(serde_json::json!({"nested": {"ok": true, "ratio": 2.5}})),
            ),
        ] {
            let row = lesson_progress::ActiveModel {
                facility_id: Set(facility_id.into()),
                learner_id: Set(learners[username].as_str().unwrap().into()),
                lesson: Set(lesson.into()),
                progress: Set(value),
                started_at: Set(started),
                details: Set(details),
                ..Default::default()
            }
            .insert(db)
            .await
            .expect("lesson progress");
            progress.insert(format!("{username}:{lesson}"), row.id.into());
        }
        serde_json::json!({
            "classrooms": {"Class 3": class3, "Reading circle": circle},
            "learners": learners,
            "lessonprogress": progress,
        })
    }

    async fn classroom(&self, facility_id: &str, name: &str, parent: Option<&str>) -> String {
        classroom::ActiveModel {
            facility_id: Set(facility_id.into()),
            parent_id: Set(parent.map(str::to_owned)),
            name: Set(name.into()),
            ..Default::default()
        }
        .insert(self.db())
        .await
        .expect("classroom")
        .id
    }

    /// Renames a learner and sets their points (an ordinary SeaORM update).
    pub async fn edit_learner(&self, id: &str, full_name: &str, points: i32) {
        let row = learner::Entity::find_by_id(id).one(self.db()).await.unwrap().expect("learner");
        let mut row = row.into_active_model();
        row.full_name = Set(full_name.into());
        row.points = Set(points);
        row.update(self.db()).await.expect("update learner");
    }

    /// Adds a learner; returns the id.
    pub async fn add_learner(&self, facility_id: &str, username: &str, classroom_id: Option<&str>) -> String {
        learner::ActiveModel {
            facility_id: Set(facility_id.into()),
            username: Set(username.into()),
            full_name: Set(format!("{username} (added on Rust)")),
            classroom_id: Set(classroom_id.map(str::to_owned)),
            birth_date: Set(chrono::NaiveDate::from_ymd_opt(2017, 1, 31)),
            points: Set(7),
            active: Set(true),
            ..Default::default()
        }
        .insert(self.db())
        .await
        .expect("learner")
        .id
    }

    /// Records a learner's progress in a new lesson; returns the id.
    pub async fn add_progress(&self, facility_id: &str, learner_id: &str, lesson: &str, progress: f64) -> String {
        lesson_progress::ActiveModel {
            facility_id: Set(facility_id.into()),
            learner_id: Set(learner_id.into()),
            lesson: Set(lesson.into()),
            progress: Set(progress),
            started_at: Set(Some("2024-05-06T07:08:09.010Z".parse().unwrap())),
            details: Set(Some(serde_json::json!({"from": "rust", "steps": [0.5, 1.0]}))),
            ..Default::default()
        }
        .insert(self.db())
        .await
        .expect("lesson progress")
        .id
    }

    /// Sets a lesson progress value.
    pub async fn edit_progress(&self, id: &str, progress: f64) {
        let row = lesson_progress::Entity::find_by_id(id).one(self.db()).await.unwrap().expect("lesson progress");
        let mut row = row.into_active_model();
        row.progress = Set(progress);
        row.update(self.db()).await.expect("update lesson progress");
    }

    /// Deletes a learner (soft: the deletion syncs, the record JSON stays in the store).
    pub async fn delete_learner(&self, id: &str) {
        learner::Entity::delete_by_id(id).exec(self.db()).await.expect("delete learner");
    }

    /// Hard-deletes a lesson progress record: erased here and on every peer the deletion reaches.
    pub async fn hard_delete_progress(&self, id: &str) {
        morango::hard_delete::<lesson_progress::Entity, _>(self.db(), id).await.expect("hard delete");
    }

    /// Serves the API on a free loopback port; returns its base URL.
    pub async fn serve(&mut self) -> String {
        if let Some((url, _)) = &self.server {
            return url.clone();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let router = api::router(self.api.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        self.server = Some((url.clone(), task));
        url
    }

    /// Syncs with the server at `url` as the example's `sync` command does (CSR with `credentials` when no stored
    /// certificate fits, pull, push).
    pub async fn sync(
        &self,
        url: &str,
        facility: &str,
        user: Option<&str>,
        credentials: Option<(&str, &str)>,
    ) -> Result<SyncOutcome, client::SyncError> {
        self.sync_directions(url, facility, user, credentials, true).await
    }

    /// [`RustInstance::sync`], pulling only if `pull`.
    pub async fn sync_directions(
        &self,
        url: &str,
        facility: &str,
        user: Option<&str>,
        credentials: Option<(&str, &str)>,
        pull: bool,
    ) -> Result<SyncOutcome, client::SyncError> {
        let request = SyncRequest {
            pull,
            facility: Some(facility.to_owned()),
            user: user.map(str::to_owned),
            credentials: credentials.map(|(username, password)| client::Credentials {
                username: username.into(),
                password: password.into(),
            }),
            ..SyncRequest::default()
        };
        client::sync(self.engine(), url, &request).await
    }
}

impl Drop for RustInstance {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.server {
            task.abort();
        }
    }
}
