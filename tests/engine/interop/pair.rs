//! A Python instance and a Rust instance, one serving the facility and the other syncing with it, so that a scenario
//! reads the same in both directions.

use std::path::Path;

use serde_json::{Value, json};

use super::python::{Caps, PyDb, PyInstance, PyServer};
use super::rust_instance::RustInstance;
use super::state::State;
use crate::support::Backend;

/// Who serves and who syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `morango::client::sync` against the Python server.
    RustClient,
    /// Python Morango's client against `morango::api::router`.
    PythonClient,
}

/// The admin account on both sides (a superuser: any scope).
pub const ADMIN: (&str, &str) = ("admin", "admin");

/// What one transfer moved: (records queued, records that arrived).
pub type Moved = Option<(i64, i64)>;

/// What one sync did.
#[derive(Debug, Clone)]
pub struct Synced {
    pub certificate_id: String,
    pub certificate_requested: bool,
    pub pull: Moved,
    pub push: Moved,
}

/// Who a sync runs as.
#[derive(Debug, Clone, Copy)]
pub enum As<'a> {
    /// The whole facility, with the admin's credentials if a certificate is needed.
    Admin,
    /// The whole facility, with only a certificate this side already holds.
    Stored,
    /// One learner's scope, with this account (username = password) if a certificate is needed.
    Learner { username: &'a str, learner_id: &'a str },
    /// The whole facility with these credentials (expected to be refused).
    Credentials(&'a str, &'a str),
    /// A learner's scope with these credentials (expected to be refused).
    LearnerWith { learner_id: &'a str, username: &'a str, password: &'a str },
}

/// The two instances of a scenario.
pub struct Pair {
    pub direction: Direction,
    pub py: PyInstance,
    pub py_server: Option<PyServer>,
    pub rust: RustInstance,
    pub rust_url: Option<String>,
    /// The facility id (its root certificate's id), on the serving side.
    pub facility: String,
    /// The ids the serving side's seed created: `classrooms`, `learners`, `lessonprogress` by name.
    pub ids: Value,
}

impl Pair {
    /// A serving side with a seeded facility, accounts `admin` (superuser) and `ada` (ada's single-user scope), and
    /// an empty client side; the Rust instance is on `backend`.
    pub async fn on(python: &Path, direction: Direction, caps: Caps, backend: Backend) -> Pair {
        Pair::with_python_on(python, direction, caps, backend, PyDb::Sqlite).await
    }

    /// [`Pair::on`], with the Python instance's database on `py_db`.
    pub async fn with_python_on(
        python: &Path,
        direction: Direction,
        caps: Caps,
        backend: Backend,
        py_db: PyDb,
    ) -> Pair {
        let py = PyInstance::on(python, "py", caps, py_db);
        let mut rust = RustInstance::new(backend, caps.for_rust_server()).await;
        let (facility, ids, py_server, rust_url) = match direction {
            Direction::RustClient => {
                let created = py.run(&["create_facility", "--name", "Riverside Primary"]).await;
                let facility = created["facility_id"].as_str().unwrap().to_owned();
                let ids = py.run(&["seed", &facility]).await;
                py.run(&["add_user", ADMIN.0, ADMIN.1, "--superuser"]).await;
                let ada = ids["learners"]["ada"].as_str().unwrap();
                py.run(&["add_user", "ada", "ada", "--learner-id", ada]).await;
                let server = py.serve().await;
                (facility, ids, Some(server), None)
            }
            Direction::PythonClient => {
                let facility = rust.create_facility("Riverside Primary").await;
                let ids = rust.seed(&facility).await;
                rust.accounts.add(ADMIN.0, ADMIN.1, None);
                rust.accounts.add("ada", "ada", ids["learners"]["ada"].as_str());
                let url = rust.serve().await;
                (facility, ids, None, Some(url))
            }
        };
        Pair { direction, py, py_server, rust, rust_url, facility, ids }
    }

    /// Python B: a second Python instance that obtained a certificate of the facility from this pair's Python
    /// server (a CSR, no records) and serves it too, with the admin account.
    pub async fn second_python_server(&self, python: &Path) -> (PyInstance, PyServer) {
        let b = PyInstance::new(python, "b", self.py.caps);
        let csr = ["sync", &self.url(), &self.facility, "--username", ADMIN.0, "--password", ADMIN.1];
        let out = b.run(&[&csr[..], &["--no-pull", "--no-push"]].concat()).await;
        assert_eq!(out["certificate_requested"], true);
        b.run(&["add_user", ADMIN.0, ADMIN.1, "--superuser"]).await;
        let server = b.serve().await;
        (b, server)
    }

    /// A seeded id: `id("learners", "ada")`.
    pub fn id(&self, kind: &str, name: &str) -> String {
        self.ids[kind][name].as_str().unwrap_or_else(|| panic!("no {kind} {name} in {}", self.ids)).to_owned()
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        match self.direction {
            Direction::RustClient => self.py_server.as_ref().unwrap().url.clone(),
            Direction::PythonClient => self.rust_url.clone().unwrap(),
        }
    }

    /// The client syncs with the server (pull, then push); panics with both sides' evidence when it fails.
    pub async fn sync(&self, who: As<'_>) -> Synced {
        match self.try_sync(who).await {
            Ok(synced) => synced,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// The same, returning the failure.
    pub async fn try_sync(&self, who: As<'_>) -> Result<Synced, String> {
        self.try_sync_directions(who, true).await
    }

    /// The client pushes with its stored certificate, without pulling first: the server merges the client's
    /// changes against its own unsynced ones.
    pub async fn push_only(&self) -> Synced {
        self.try_sync_directions(As::Stored, false).await.unwrap_or_else(|failure| panic!("{failure}"))
    }

    async fn try_sync_directions(&self, who: As<'_>, pull: bool) -> Result<Synced, String> {
        let url = self.url();
        let (user, credentials): (Option<&str>, Option<(&str, &str)>) = match who {
            As::Admin => (None, Some(ADMIN)),
            As::Stored => (None, None),
            As::Learner { username, learner_id } => (Some(learner_id), Some((username, username))),
            As::Credentials(username, password) => (None, Some((username, password))),
            As::LearnerWith { learner_id, username, password } => (Some(learner_id), Some((username, password))),
        };
        match self.direction {
            Direction::RustClient => {
                let outcome =
                    self.rust.sync_directions(&url, &self.facility, user, credentials, pull).await.map_err(|e| {
                        let mut message = format!("rust sync with {url} failed: {e}");
                        let mut source = std::error::Error::source(&e);
                        while let Some(cause) = source {
                            message.push_str(&format!("\n  caused by: {cause}"));
                            source = cause.source();
                        }
                        let log = self.py_server.as_ref().map(|s| s.log_tail(60)).unwrap_or_default();
                        format!("{message}\nPython server log (last lines):\n{log}")
                    })?;
                let moved =
                    |r: &Option<morango::TransferReport>| r.as_ref().map(|r| (r.records_total, r.records_transferred));
                Ok(Synced {
                    certificate_id: outcome.client_certificate.id().to_owned(),
                    certificate_requested: outcome.certificate_requested,
                    pull: moved(&outcome.pull),
                    push: moved(&outcome.push),
                })
            }
            Direction::PythonClient => {
                let chunk = super::rust_instance::CHUNK_SIZE.to_string();
                let mut args = vec!["sync".to_owned(), url, self.facility.clone(), "--chunk-size".into(), chunk];
                if let Some((username, password)) = credentials {
                    args.extend(["--username".into(), username.into(), "--password".into(), password.into()]);
                }
                if let Some(user) = user {
                    args.extend(["--user".into(), user.into()]);
                }
                if !pull {
                    args.push("--no-pull".into());
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = self.py.try_run(&args).await?;
                let moved = |v: &Value| {
                    (!v.is_null()).then(|| {
                        (v["records_total"].as_i64().unwrap_or(0), v["records_transferred"].as_i64().unwrap_or(0))
                    })
                };
                Ok(Synced {
                    certificate_id: out["certificate_id"].as_str().unwrap().to_owned(),
                    certificate_requested: out["certificate_requested"].as_bool().unwrap(),
                    pull: moved(&out["pull"]),
                    push: moved(&out["push"]),
                })
            }
        }
    }

    /// Stops both sides and drops the Rust side's PostgreSQL database.
    pub async fn finish(self) {
        drop(self.py_server);
        self.rust.finish().await;
    }

    /// Both sides' states: (Python, Rust).
    pub async fn states(&self) -> (State, State) {
        (State::of_python(&self.py).await, State::of_rust(&self.rust).await)
    }

    /// The side that serves, then the client side, as sides to edit on.
    pub fn server_side(&self) -> Side<'_> {
        match self.direction {
            Direction::RustClient => Side::Python(&self.py),
            Direction::PythonClient => Side::Rust(&self.rust),
        }
    }

    pub fn client_side(&self) -> Side<'_> {
        match self.direction {
            Direction::RustClient => Side::Rust(&self.rust),
            Direction::PythonClient => Side::Python(&self.py),
        }
    }
}

/// One side, to make the same application changes on either.
#[derive(Clone, Copy)]
pub enum Side<'a> {
    Python(&'a PyInstance),
    Rust(&'a RustInstance),
}

impl Side<'_> {
    pub async fn edit_learner(&self, id: &str, full_name: &str, points: i32) {
        match self {
            Side::Python(py) => {
                let fields = json!({"full_name": full_name, "points": points}).to_string();
                py.run(&["edit", "learner", id, &fields]).await;
            }
            Side::Rust(rust) => rust.edit_learner(id, full_name, points).await,
        }
    }

    pub async fn add_learner(&self, facility: &str, username: &str, classroom: Option<&str>) -> String {
        match self {
            Side::Python(py) => {
                let fields = json!({
                    "facility_id": facility, "username": username, "full_name": format!("{username} (added on Python)"),
                    "classroom_id": classroom, "birth_date": "2017-01-31", "points": 7, "active": true,
                })
                .to_string();
                py.run(&["create", "learner", &fields]).await["id"].as_str().unwrap().to_owned()
            }
            Side::Rust(rust) => rust.add_learner(facility, username, classroom).await,
        }
    }

    pub async fn add_progress(&self, facility: &str, learner: &str, lesson: &str, progress: f64) -> String {
        match self {
            Side::Python(py) => {
                let fields = json!({
                    "facility_id": facility, "learner_id": learner, "lesson": lesson, "progress": progress,
                    "started_at": "2024-05-06T07:08:09.010Z", "details": {"from": "python", "steps": [0.5, 1.0]},
                })
                .to_string();
                py.run(&["create", "lessonprogress", &fields]).await["id"].as_str().unwrap().to_owned()
            }
            Side::Rust(rust) => rust.add_progress(facility, learner, lesson, progress).await,
        }
    }

    pub async fn edit_progress(&self, id: &str, progress: f64) {
        match self {
            Side::Python(py) => {
                py.run(&["edit", "lessonprogress", id, &json!({"progress": progress}).to_string()]).await;
            }
            Side::Rust(rust) => rust.edit_progress(id, progress).await,
        }
    }

    pub async fn delete_learner(&self, id: &str) {
        match self {
            Side::Python(py) => {
                py.run(&["delete", "learner", id]).await;
            }
            Side::Rust(rust) => rust.delete_learner(id).await,
        }
    }

    /// Serializes the side's changes into its store now (Python: as Kolibri does between syncs).
    pub async fn serialize(&self) {
        match self {
            Side::Python(py) => {
                py.run(&["serialize"]).await;
            }
            Side::Rust(rust) => {
                rust.engine().serialize(None).await.expect("serialize");
            }
        }
    }

    pub async fn hard_delete_progress(&self, id: &str) {
        match self {
            Side::Python(py) => {
                py.run(&["delete", "lessonprogress", id, "--hard"]).await;
            }
            Side::Rust(rust) => rust.hard_delete_progress(id).await,
        }
    }
}
