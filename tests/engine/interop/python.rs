//! The Python Morango 0.8.15 side: instances of the Django project in `tests/interop/`, each with its own SQLite
//! database and capability settings, driven through its management commands, and its server on a free loopback
//! port.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use serde_json::Value;

/// Where the interop venv is looked for when `MORANGO_INTEROP_PYTHON` is not set (`.ci/run` creates it).
const DEFAULT_VENV: &str = "tests/interop/.venv";

fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The venv's Python, or `None` (with the reason printed) when there is none: the interop tests are then skipped,
/// unless `MORANGO_INTEROP_REQUIRED=1` (set by `.ci/run`), which makes a missing venv a failure.
pub fn python() -> Option<PathBuf> {
    let path = match std::env::var_os("MORANGO_INTEROP_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_VENV).join("bin/python"),
    };
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "skipped: no Python Morango venv at {} (run .ci/run, or: python3 -m venv {DEFAULT_VENV} && \
         {DEFAULT_VENV}/bin/pip install -r tests/interop/requirements.txt; MORANGO_INTEROP_PYTHON names another)",
        path.display()
    );
    if std::env::var("MORANGO_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("{message} — but MORANGO_INTEROP_REQUIRED=1");
    }
    // Once per run, and straight to stderr: the test harness captures `eprintln!` of passing tests, and a skip must
    // be seen.
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        let _ = writeln!(std::io::stderr(), "interop tests {message}");
    });
    None
}

/// The Python side's Morango capabilities (its settings `MORANGO_DISALLOW_ASYNC_OPERATIONS`,
/// `MORANGO_DISABLE_FSIC_V2_FORMAT`, and GZIP_BUFFER_POST taken out of its set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub async_operations: bool,
    pub fsic_v2: bool,
    pub gzip: bool,
}

impl Caps {
    /// Everything 0.8.15 has: the stage-by-stage flow, FSIC v2 and gzipped pushes (Kolibri 0.15+).
    pub const ALL: Caps = Caps { async_operations: true, fsic_v2: true, gzip: true };
    /// Nothing: the legacy flow (the server runs stages inside create/delete), FSIC v1, plain JSON pushes.
    pub const LEGACY: Caps = Caps { async_operations: false, fsic_v2: false, gzip: false };
    /// Async stages with v1 FSICs and no gzip.
    pub const ASYNC_FSIC_V1: Caps = Caps { async_operations: true, fsic_v2: false, gzip: false };
    /// The legacy flow with v2 FSICs and gzip.
    pub const LEGACY_FSIC_V2: Caps = Caps { async_operations: false, fsic_v2: true, gzip: true };

    /// The same capabilities for a Rust server: what a Python server with these settings advertises. A Python client
    /// must only meet a server whose capabilities are a subset of its own: Python Morango 0.8.15's client gives its
    /// local and network contexts the *server's* list (`CompositeSessionContext.__init__` → `_update_attrs`, not
    /// intersected with its own; spec §15 W7, still there in 0.8.15), so with FSIC v2 disabled it computes v2 FSICs
    /// while its header asks for v1, and fails (`KeyError: 'sub'` in `update_fsics`) against a Python 0.8.15
    /// server just the same.
    pub fn for_rust_server(&self) -> morango::capabilities::Capabilities {
        use morango::capabilities::{ASYNC_OPERATIONS, Capabilities, FSIC_V2_FORMAT, GZIP_BUFFER_POST};
        let mut caps = Capabilities::all();
        for (on, name) in
            [(self.async_operations, ASYNC_OPERATIONS), (self.fsic_v2, FSIC_V2_FORMAT), (self.gzip, GZIP_BUFFER_POST)]
        {
            if !on {
                caps = caps.without(name);
            }
        }
        caps
    }

    fn env(&self) -> [(&'static str, &'static str); 3] {
        let flag = |on: bool| if on { "1" } else { "0" };
        [
            ("INTEROP_ASYNC", flag(self.async_operations)),
            ("INTEROP_FSIC_V2", flag(self.fsic_v2)),
            ("INTEROP_GZIP", flag(self.gzip)),
        ]
    }
}

/// A migrated database every instance starts from (migrating takes a second; copying does not). It holds no
/// database id yet, so every copy becomes a Morango instance of its own.
fn template(python: &Path) -> PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop");
            std::fs::create_dir_all(&dir).expect("template directory");
            let key = template_key();
            let path = dir.join(format!("template-{key:016x}.sqlite3"));
            if !path.exists() {
                let building = dir.join(format!("template-{key:016x}.{}.building", std::process::id()));
                let _ = std::fs::remove_file(&building);
                let out = Command::new(python)
                    .current_dir(project_dir())
                    .args(["manage.py", "migrate", "-v0"])
                    .env("INTEROP_DB", &building)
                    .output()
                    .expect("run manage.py migrate");
                assert!(out.status.success(), "manage.py migrate failed:\n{}", String::from_utf8_lossy(&out.stderr));
                std::fs::rename(&building, &path).expect("template in place");
            }
            path
        })
        .clone()
}

/// Changes when the project's schema or its pinned versions change.
fn template_key() -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for part in [
        include_str!("../../interop/school/models.py"),
        include_str!("../../interop/school/migrations/0001_initial.py"),
        include_str!("../../interop/requirements.txt"),
        include_str!("../../interop/interop_project/settings.py"),
        include_str!("../../../fixtures/scopedefinitions.json"),
    ] {
        for byte in part.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
        }
    }
    hash
}

/// Which database a Python instance uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyDb {
    /// An SQLite file (a copy of a migrated template).
    Sqlite,
    /// A new PostgreSQL database, migrated (Python Morango's PostgreSQL backend has SQL of its own).
    Postgres,
}

/// One Python Morango instance: a database, the capabilities its settings give it.
pub struct PyInstance {
    pub name: &'static str,
    python: PathBuf,
    dir: Dir,
    /// The SQLite file, or the PostgreSQL URL.
    db: String,
    /// The PostgreSQL database to drop at the end.
    postgres: Option<String>,
    pub caps: Caps,
}

impl PyInstance {
    /// A new instance with empty tables, on SQLite.
    pub fn new(python: &Path, name: &'static str, caps: Caps) -> PyInstance {
        PyInstance::on(python, name, caps, PyDb::Sqlite)
    }

    /// A new instance with empty tables, on `db`.
    pub fn on(python: &Path, name: &'static str, caps: Caps, db: PyDb) -> PyInstance {
        let dir = Dir::new(&format!("interop-{name}-"));
        let (db, postgres) = match db {
            PyDb::Sqlite => {
                let path = dir.path().join("db.sqlite3");
                std::fs::copy(template(python), &path).expect("copy the template database");
                (path.display().to_string(), None)
            }
            PyDb::Postgres => {
                let database = format!("morango_test_py_{}", morango::ids::random_id());
                psql(&format!("CREATE DATABASE {database}"));
                let url = format!("{}/{database}", crate::support::postgres_base());
                (url, Some(database))
            }
        };
        let instance = PyInstance { name, python: python.to_owned(), dir, db, postgres, caps };
        if instance.postgres.is_some() {
            let out = instance.command(&["migrate", "-v0"]).output().expect("run manage.py migrate");
            assert!(out.status.success(), "manage.py migrate failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        instance
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.python);
        command.current_dir(project_dir()).arg("manage.py").args(args).env("INTEROP_DB", &self.db);
        for (key, value) in self.caps.env() {
            command.env(key, value);
        }
        command
    }

    /// Runs a management command and returns the JSON object it printed last; panics with its output when it fails.
    pub async fn run(&self, args: &[&str]) -> Value {
        match self.try_run(args).await {
            Ok(value) => value,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// Runs a management command: the JSON it printed, or a description of the failure (with its stderr).
    pub async fn try_run(&self, args: &[&str]) -> Result<Value, String> {
        let mut command = self.command(args);
        let described = format!("python[{}] manage.py {}", self.name, args.join(" "));
        let out = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!("{described} failed ({}):\n{stderr}{stdout}", out.status));
        }
        let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        serde_json::from_str(last).map_err(|e| format!("{described} printed no JSON ({e}):\n{stdout}\n{stderr}"))
    }

    /// Serves Morango's API on a free loopback port until the returned server is dropped.
    pub async fn serve(&self) -> PyServer {
        let log_path = self.dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("server log");
        let mut command = self.command(&["serve", "--port", "0"]);
        command.stdout(Stdio::piped()).stderr(log).stdin(Stdio::null());
        let mut child = command.spawn().expect("start the Python server");
        let stdout = child.stdout.take().expect("stdout");
        let first_line = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).map(|_| line)
        });
        let line = tokio::time::timeout(Duration::from_secs(60), first_line).await;
        let url = match line {
            Ok(Ok(Ok(line))) if line.starts_with("Listening on ") => line["Listening on ".len()..].trim().to_owned(),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the Python server did not start ({other:?}):\n{}", read_log(&log_path));
            }
        };
        PyServer { child, url, log_path }
    }
}

impl Drop for PyInstance {
    fn drop(&mut self) {
        if let Some(database) = &self.postgres {
            psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
        }
    }
}

/// Runs one statement on the PostgreSQL server's `postgres` database.
fn psql(sql: &str) {
    let base = crate::support::postgres_base();
    let out = Command::new("psql")
        .args([format!("{base}/postgres").as_str(), "-qAtc", sql])
        .output()
        .expect("psql (PostgreSQL's client) must be installed");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A temporary directory, kept (and its path printed) when `MORANGO_INTEROP_KEEP=1`, for looking into a failure.
pub enum Dir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Dir {
    pub fn new(prefix: &str) -> Dir {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("temporary directory");
        if std::env::var("MORANGO_INTEROP_KEEP").is_ok_and(|v| v == "1") {
            let path = dir.keep();
            eprintln!("interop: keeping {}", path.display());
            Dir::Kept(path)
        } else {
            Dir::Temporary(dir)
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Dir::Temporary(dir) => dir.path(),
            Dir::Kept(path) => path,
        }
    }
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// A running Python Morango server (Django's threaded development server); stopped when dropped.
pub struct PyServer {
    child: Child,
    pub url: String,
    log_path: PathBuf,
}

impl PyServer {
    /// The server's log so far: one line per request, and the traceback of every server error.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
