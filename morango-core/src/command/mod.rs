//! The sync command an application embeds: `serve`, `sync`, `certs list` and `cleanup-syncs` (the management
//! commands Kolibri and Python Morango provide), built with clap around the application's profile and database.
//!
//! ```text
//! app serve --bind 0.0.0.0:8000                       # serve Morango's HTTP API
//! app sync --server http://10.0.0.5:8000/ --username admin --password …   # pull, then push
//! app sync --server … --username ada --password … --user <ada's id>     # one user's data only
//! app certs list                                       # this database's certificates
//! app cleanup-syncs --older-than 6h                    # remove what abandoned syncs left
//! app --db tablet.sqlite3 sync …                       # any command, on another database
//! ```
//!
//! The application says how to open its database (Morango's tables, its own tables and scope definitions
//! migrated, the [`Engine`] opened), who may obtain certificates ([`CertificateAuthority`]) and what to create for a
//! new facility:
//!
//! ```no_run
//! # extern crate morango_core as morango;
//! # async fn example(profile: &'static morango::Profile) -> std::process::ExitCode {
//! use morango::Engine;
//! use morango::command::{self, BoxError, SyncCommand};
//!
//! let command = SyncCommand::new("school", move |location: String| async move {
//!     let db = command::connect(&location).await?;
//!     morango::migration::migrate(&db).await?;
//!     // ... the application's tables, its scope definitions (morango::scope::load_fixture) ...
//!     Ok::<_, BoxError>(Engine::open(db, profile).await?)
//! })
//! .database_env("SCHOOL_DB")
//! .default_database(|_command| "school.sqlite3".into());
//! command.run(std::env::args_os()).await
//! # }
//! ```
//!
//! **Certificates.** `serve` on a database that owns no certificate of the profile creates a root certificate of the
//! full scope definition (a new facility, `full-facility` by default) and prints its id; the application's
//! [`SyncCommand::on_new_facility`] hook then creates the records that belong to it (Kolibri's facility dataset,
//! whose id is the certificate's, so that every partition of the facility starts with it). A database that owns
//! certificates is served as it is. `sync` reuses a certificate this database owns for the facility (or for the
//! user, with `--user`) and otherwise requests one from the server with `--username` and `--password`; it pulls
//! the certificate's read scope and pushes its write scope.
//!
//! **Growing it.** [`SyncCommand::routes`] serves the application's own routes beside Morango's API;
//! [`SyncCommand::subcommand`] adds its own subcommands (shown in `--help`, run on the same `--db`);
//! [`SyncCommand::facility_naming`] lets `--facility` take the application's facility ids and shapes certificate
//! requests; [`SyncServer`] is the server `serve` runs, for an application that starts one itself.
//!
//! **Stopping.** `serve --bind 127.0.0.1:0` listens on a free port; the address is printed as
//! `Listening on http://ADDR/`. It stops gracefully on Ctrl-C, or when the [`SyncCommand::shutdown_signal`]
//! future completes.
//!
//! **Output.** Results go to standard output; progress goes to standard error, as a bar per transfer at a
//! terminal and as log lines (tracing, `RUST_LOG` filters them) otherwise. A failure prints `error: …` and exits
//! with status 1; wrong arguments exit with status 2.

mod args;
mod progress;
mod server;

pub use server::SyncServer;

/// The clap the command is built with, for the application's own subcommands ([`SyncCommand::subcommand`]).
pub use clap;

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use serde_json::{Map, Value};

use crate::api::{Account, CertificateAuthority, Credentials, ServerSettings};
use crate::certificate::{self, Certificate, CertificateError};
use crate::cleanup;
use crate::client::{self, HttpSettings, SyncError, SyncOutcome, SyncRequest, SyncScopes};
use crate::engine::Engine;
use crate::error::Error;

use args::{CertsCommand, CleanupArgs, Cli, Command, ServeArgs, SyncArgs, format_duration};
use progress::ProgressView;

/// An error of the application's own code (opening the database, setting up a facility).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Opener = Arc<dyn Fn(String) -> BoxFuture<Result<Engine, BoxError>> + Send + Sync>;
type AuthorityFactory = Arc<dyn Fn(&Engine) -> Arc<dyn CertificateAuthority> + Send + Sync>;
type FacilityHook = Arc<dyn Fn(DatabaseConnection, Certificate) -> BoxFuture<Result<(), BoxError>> + Send + Sync>;
type Shutdown = Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>;
type RoutesFactory = Arc<dyn Fn(&Engine) -> axum::Router + Send + Sync>;
type AppRunner = Arc<dyn Fn(Engine, clap::ArgMatches) -> BoxFuture<Result<(), BoxError>> + Send + Sync>;
type DefaultDatabase = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The arguments are wrong, or `--help` or `--version` was asked for (clap's message says which).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// No `--db`, no environment variable and no default said which database to use.
    #[error("no database: give --db PATH{}", .env.as_ref().map(|name| format!(" or set {name}")).unwrap_or_default())]
    NoDatabase {
        /// The environment variable the application reads, if any.
        env: Option<String>,
    },
    /// The application could not open the database.
    #[error("cannot open the database {location}: {source}")]
    Open {
        /// The `--db` value.
        location: String,
        /// Why.
        source: BoxError,
    },
    /// The server could not listen on the address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The `--bind` value.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    /// The application's setup of a new facility failed.
    #[error("setting up the new facility {facility} failed: {source}")]
    NewFacility {
        /// The new root certificate's id.
        facility: String,
        /// Why.
        source: BoxError,
    },
    /// The sync failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// One of the application's own subcommands failed.
    #[error("{command} failed: {source}")]
    App {
        /// The subcommand's name.
        command: String,
        /// Why.
        source: BoxError,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] Error),
    /// Writing the results failed.
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

impl From<CertificateError> for CommandError {
    fn from(error: CertificateError) -> Self {
        CommandError::Engine(error.into())
    }
}

impl CommandError {
    /// The process exit status: clap's for usage errors (0 after `--help`, 2 for wrong arguments), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(error) => u8::try_from(error.exit_code()).unwrap_or(2),
            _ => 1,
        }
    }
}

/// The sync command of one application: its name, how it opens its database, who may obtain certificates, and
/// the scope definitions it syncs. See the [module documentation](self).
pub struct SyncCommand {
    name: &'static str,
    about: Option<String>,
    version: Option<&'static str>,
    open: Opener,
    database_env: Option<String>,
    default_database: Option<DefaultDatabase>,
    scopes: SyncScopes,
    instance_info: Map<String, Value>,
    server_settings: ServerSettings,
    http: HttpSettings,
    authority: Option<AuthorityFactory>,
    on_new_facility: Option<FacilityHook>,
    shutdown: Option<Shutdown>,
    routes: Option<RoutesFactory>,
    subcommands: Vec<(clap::Command, AppRunner)>,
    naming: Arc<dyn client::FacilityNaming>,
}

impl SyncCommand {
    /// The command of the application `name` (shown in help and usage). `open` gets the database location (the
    /// `--db` value, the environment variable or the default) and returns the engine on a database whose Morango
    /// tables, application tables and scope definitions are in place; [`connect`] turns a location into a
    /// connection.
    pub fn new<F, Fut, E>(name: &'static str, open: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Engine, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let open: Opener = Arc::new(move |location| {
            let opening = open(location);
            Box::pin(async move { opening.await.map_err(Into::into) })
        });
        SyncCommand {
            name,
            about: None,
            version: None,
            open,
            database_env: None,
            default_database: None,
            scopes: SyncScopes::default(),
            instance_info: Map::new(),
            server_settings: ServerSettings::default(),
            http: HttpSettings::default(),
            authority: None,
            on_new_facility: None,
            shutdown: None,
            routes: None,
            subcommands: Vec::new(),
            naming: Arc::new(client::DatasetNaming),
        }
    }

    /// The description shown by `--help`.
    pub fn about(mut self, about: impl Into<String>) -> Self {
        self.about = Some(about.into());
        self
    }

    /// The version shown by `--version`.
    pub fn version(mut self, version: &'static str) -> Self {
        self.version = Some(version);
        self
    }

    /// An environment variable holding the database location, read when `--db` is not given.
    pub fn database_env(mut self, name: impl Into<String>) -> Self {
        self.database_env = Some(name.into());
        self
    }

    /// The database location when neither `--db` nor the environment variable gives one, by subcommand (`serve`,
    /// `sync`, `certs`, `cleanup-syncs`): e.g. a server database for `serve` and a client one otherwise.
    pub fn default_database(mut self, default: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.default_database = Some(Arc::new(default));
        self
    }

    /// The scope definitions and param names (Kolibri's by default: `full-facility`/`facility_id`,
    /// `single-user`/`user_id`).
    pub fn scopes(mut self, scopes: SyncScopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Application info for `morangoinfo` and the instance JSON of both roles (e.g. `"kolibri": "0.16.0"`).
    pub fn instance_info(mut self, info: Map<String, Value>) -> Self {
        self.instance_info = info;
        self
    }

    /// How `serve` behaves (capabilities, certificate pushing, body limits).
    pub fn server_settings(mut self, settings: ServerSettings) -> Self {
        self.server_settings = settings;
        self
    }

    /// How `sync` resolves `--facility` and sends a certificate request's credentials (by default a facility is
    /// named by its dataset id; see [`client::FacilityNaming`]).
    pub fn facility_naming(mut self, naming: impl client::FacilityNaming + 'static) -> Self {
        self.naming = Arc::new(naming);
        self
    }

    /// Timeouts and retries of `sync`.
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self
    }

    /// Who may obtain certificates from `serve` (certificate signing requests). Made from the served engine, so
    /// that it can look users up in the database. Without one, `serve` refuses every request.
    pub fn authority(
        mut self,
        authority: impl Fn(&Engine) -> Arc<dyn CertificateAuthority> + Send + Sync + 'static,
    ) -> Self {
        self.authority = Some(Arc::new(authority));
        self
    }

    /// Runs after `serve` created the root certificate of a new facility, to create the application's records
    /// for it (e.g. a facility whose id is the certificate's).
    pub fn on_new_facility<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(DatabaseConnection, Certificate) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.on_new_facility = Some(Arc::new(move |db, root| Box::pin(hook(db, root))));
        self
    }

    /// The application's own routes, which `serve` serves beside Morango's API (see [`SyncServer::routes`]): made
    /// from the served engine, so that they can read the database (e.g. the public endpoints a Kolibri client calls
    /// before it syncs).
    pub fn routes(mut self, routes: impl Fn(&Engine) -> axum::Router + Send + Sync + 'static) -> Self {
        self.routes = Some(Arc::new(routes));
        self
    }

    /// One of the application's own subcommands, shown in `--help` beside `serve` and `sync`: `run` gets the engine
    /// on the database (`--db`, the environment variable or the default for the subcommand's name) and the
    /// subcommand's arguments, and prints what it has to say itself.
    ///
    /// ```no_run
    /// # extern crate morango_core as morango;
    /// # fn example(command: morango::command::SyncCommand) -> morango::command::SyncCommand {
    /// use morango::command::clap::{Arg, Command};
    ///
    /// command.subcommand(
    ///     Command::new("rename-facility").about("Renames the facility").arg(Arg::new("name").required(true)),
    ///     |engine, args| async move {
    ///         let name: &String = args.get_one("name").expect("required");
    ///         println!("renaming to {name} in {}", engine.profile().name());
    ///         Ok(())
    ///     },
    /// )
    /// # }
    /// ```
    pub fn subcommand<F, Fut>(mut self, command: clap::Command, run: F) -> Self
    where
        F: Fn(Engine, clap::ArgMatches) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.subcommands.push((command, Arc::new(move |engine, args| Box::pin(run(engine, args)))));
        self
    }

    /// What stops `serve` gracefully instead of Ctrl-C; without it, `serve` runs until Ctrl-C or until the process
    /// ends.
    pub fn shutdown_signal<F, Fut>(mut self, signal: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shutdown = Some(Arc::new(move || Box::pin(signal())));
        self
    }

    /// Runs the command line `args` (the program name first, as `std::env::args_os()`): results to standard output,
    /// errors to standard error, progress and logs as the module documentation says. Sets up a tracing subscriber
    /// (`RUST_LOG`, default `info`) unless the application installed one.
    pub async fn run<I, T>(&self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        init_logging();
        match self.execute(args, std::io::stdout()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(CommandError::Usage(error)) => {
                let _ = error.print();
                ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(error.exit_code())
            }
        }
    }

    /// Runs the command line `args`, writing results to `out`; errors (including wrong arguments and `--help`) are
    /// returned, not printed. `serve` returns when its shutdown signal fires.
    pub async fn execute<I, T, W>(&self, args: I, mut out: W) -> Result<(), CommandError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
        W: Write + Send,
    {
        let cli = match self.parse(args)? {
            Parsed::Builtin(cli) => cli,
            Parsed::App { db, name, run, args } => {
                let engine = self.open_engine(db, &name).await?;
                return run(engine, args).await.map_err(|source| CommandError::App { command: name, source });
            }
        };
        let engine = self.open_engine(cli.db.clone(), cli.command.name()).await?;
        match cli.command {
            Command::Serve(args) => self.serve(engine, &args, &mut out).await,
            Command::Sync(args) => self.sync(&engine, &args, &mut out).await,
            Command::Certs { command: CertsCommand::List } => list_certificates(&engine, &mut out).await,
            Command::CleanupSyncs(args) => cleanup_syncs(&engine, &args, &mut out).await,
        }
    }

    /// The command line: one of the built-in subcommands, or one of the application's with its arguments.
    fn parse<I, T>(&self, args: I) -> Result<Parsed, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Cli::command().name(self.name).bin_name(self.name);
        if let Some(about) = &self.about {
            command = command.about(about.clone());
        }
        if let Some(version) = self.version {
            command = command.version(version);
        }
        if let Some(env) = &self.database_env {
            command = command.after_help(format!("The database is --db, or ${env} when --db is not given."));
        }
        for (subcommand, _) in &self.subcommands {
            command = command.subcommand(subcommand.clone());
        }
        let matches = command.try_get_matches_from(args)?;
        if let Some((name, args)) = matches.subcommand()
            && let Some((_, run)) = self.subcommands.iter().find(|(subcommand, _)| subcommand.get_name() == name)
        {
            let db = matches.get_one::<String>("db").cloned();
            return Ok(Parsed::App { db, name: name.to_owned(), run: run.clone(), args: args.clone() });
        }
        Cli::from_arg_matches(&matches).map(Parsed::Builtin)
    }

    /// Opens the engine on `--db`, else the environment variable, else the default for the subcommand.
    async fn open_engine(&self, db: Option<String>, subcommand: &str) -> Result<Engine, CommandError> {
        let location = self.location(db, subcommand)?;
        (self.open)(location.clone()).await.map_err(|source| CommandError::Open { location, source })
    }

    /// `--db`, else the environment variable, else the default for the subcommand.
    fn location(&self, db: Option<String>, subcommand: &str) -> Result<String, CommandError> {
        let from_env =
            || self.database_env.as_ref().and_then(|name| std::env::var(name).ok()).filter(|v| !v.is_empty());
        db.or_else(from_env)
            .or_else(|| self.default_database.as_ref().map(|default| default(subcommand)))
            .ok_or_else(|| CommandError::NoDatabase { env: self.database_env.clone() })
    }

    async fn serve(&self, engine: Engine, args: &ServeArgs, out: impl Write + Send) -> Result<(), CommandError> {
        let authority: Arc<dyn CertificateAuthority> = match &self.authority {
            Some(make) => make(&engine),
            None => {
                tracing::warn!("the application has no certificate authority: certificate requests are refused");
                Arc::new(NoCertificates)
            }
        };
        let mut settings = self.server_settings.clone();
        settings.instance_info.extend(self.instance_info.clone());
        if let Some(n) = args.max_connections {
            settings.max_connections = n as usize;
        }
        if let Some(timeout) = args.header_timeout {
            settings.header_timeout = timeout;
        }
        if let Some(idle) = args.transfer_idle_timeout {
            settings.transfer_limits.idle_timeout = idle;
        }
        if let Some(bytes) = args.max_buffered_bytes {
            settings.transfer_limits.max_buffered_bytes_per_certificate = bytes;
        }
        let listener = tokio::net::TcpListener::bind(&args.bind)
            .await
            .map_err(|source| CommandError::Bind { addr: args.bind.clone(), source })?;
        let routes = self.routes.as_ref().map(|make| make(&engine));
        let mut server = SyncServer::new(engine, authority).settings(settings).scopes(self.scopes.clone());
        if let Some(routes) = routes {
            server = server.routes(routes);
        }
        if let Some(hook) = self.on_new_facility.clone() {
            server = server.on_new_facility(move |db, root| hook(db, root));
        }
        let shutdown = self.shutdown.clone();
        let signal = async move {
            match shutdown {
                Some(signal) => signal().await,
                None => {
                    // Ctrl-C (SIGINT) stops the server gracefully; if the signal cannot be watched, run on.
                    if tokio::signal::ctrl_c().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        server.serve(listener, signal, out).await
    }

    async fn sync(&self, engine: &Engine, args: &SyncArgs, out: &mut (impl Write + Send)) -> Result<(), CommandError> {
        let request = SyncRequest {
            facility: args.facility.clone(),
            user: args.user.clone(),
            credentials: match (&args.username, &args.password) {
                (Some(username), Some(password)) => {
                    Some(client::Credentials { username: username.clone(), password: password.clone() })
                }
                _ => None,
            },
            pull: !args.no_pull,
            push: !args.no_push,
            naming: self.naming.clone(),
            scopes: self.scopes.clone(),
            instance_info: self.instance_info.clone(),
            http: self.http.clone(),
            ..SyncRequest::default()
        };
        let mut events = engine.subscribe();
        let mut view = ProgressView::new(std::io::stderr().is_terminal());
        let started = std::time::Instant::now();
        let syncing = client::sync(engine, &args.server, &request);
        tokio::pin!(syncing);
        let result = loop {
            tokio::select! {
                result = &mut syncing => break result,
                event = events.recv() => if let Ok(event) = event { view.show(&event) },
            }
        };
        while let Ok(event) = events.try_recv() {
            view.show(&event);
        }
        view.finish();
        let outcome = result?;
        print_outcome(&outcome, args, out)?;
        writeln!(out, "{}", timings(&outcome, started.elapsed()))?;
        Ok(())
    }
}

/// Connects to a database location: a URL (`sqlite://…`, `postgres://…`, `postgresql://…`, `mysql://…`) as it is,
/// anything else as the path of an SQLite file, created if missing. SQL statement logging is off.
pub async fn connect(location: &str) -> Result<DatabaseConnection, DbErr> {
    let url = if location.contains("://") || location.starts_with("sqlite:") {
        location.to_owned()
    } else {
        format!("sqlite://{location}?mode=rwc")
    };
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    Database::connect(options).await
}

fn print_outcome(outcome: &SyncOutcome, args: &SyncArgs, out: &mut impl Write) -> std::io::Result<()> {
    let cert = &outcome.client_certificate;
    writeln!(
        out,
        "Synced facility {} with {} (server instance {}).",
        outcome.facility, args.server, outcome.server_instance_id
    )?;
    let how = if outcome.certificate_requested { "issued by the server now" } else { "stored" };
    writeln!(out, "Certificate {} ({} {}), {how}.", cert.id(), cert.scope_definition_id(), cert.scope_params())?;
    let line = |report: &Option<crate::TransferReport>, skipped: bool, verb: &str, noun: &str| match report {
        Some(report) => match report.records_transferred {
            1 => format!("{verb} 1 record."),
            n => format!("{verb} {n} records."),
        },
        None if skipped => format!("{noun} skipped (--no-{}).", noun.to_lowercase()),
        None => format!("{noun} skipped: the certificate does not allow it."),
    };
    writeln!(out, "{}", line(&outcome.pull, args.no_pull, "Pulled", "Pull"))?;
    writeln!(out, "{}", line(&outcome.push, args.no_push, "Pushed", "Push"))?;
    let unknown = outcome.pull.as_ref().map_or(0, |pull| pull.records_of_unknown_models);
    if unknown > 0 {
        writeln!(out, "Kept {unknown} records of models this application does not declare (relayed, not applied).")?;
    }
    out.flush()
}

/// `Took 2.41 s: pull 1.80 s (555 records/s), push 0.31 s (10 records/s).`
fn timings(outcome: &SyncOutcome, total: std::time::Duration) -> String {
    let directions: Vec<String> = [("pull", &outcome.pull), ("push", &outcome.push)]
        .into_iter()
        .filter_map(|(name, report)| {
            let report = report.as_ref()?;
            let seconds = report.elapsed.as_secs_f64();
            let rate = report.records_transferred as f64 / seconds.max(1e-3);
            Some(format!("{name} {seconds:.2} s ({rate:.0} records/s)"))
        })
        .collect();
    match directions.is_empty() {
        true => format!("Took {:.2} s.", total.as_secs_f64()),
        false => format!("Took {:.2} s: {}.", total.as_secs_f64(), directions.join(", ")),
    }
}

async fn list_certificates(engine: &Engine, out: &mut (impl Write + Send)) -> Result<(), CommandError> {
    let profile = engine.profile().name();
    let owned = certificate::owned(engine.db(), Some(profile)).await?;
    if owned.is_empty() {
        writeln!(out, "This database owns no certificates of profile {profile}.")?;
        return Ok(());
    }
    writeln!(out, "{:<32}  {:<20}  {:<32}  PARAMS", "ID", "SCOPE", "PARENT")?;
    for cert in &owned {
        let parent = cert.parent_id().unwrap_or("(root)");
        writeln!(
            out,
            "{:<32}  {:<20}  {:<32}  {}",
            cert.id(),
            cert.scope_definition_id(),
            parent,
            cert.scope_params()
        )?;
    }
    Ok(())
}

async fn cleanup_syncs(engine: &Engine, args: &CleanupArgs, out: &mut (impl Write + Send)) -> Result<(), CommandError> {
    let report = cleanup::cleanup_syncs(engine, args.older_than).await?;
    writeln!(out, "Cleaned up sessions idle for more than {}:", format_duration(args.older_than))?;
    for (what, count) in [
        ("transfer sessions closed", report.transfer_sessions),
        ("queued records deleted", report.queued),
        ("buffered records deleted", report.buffers),
        ("buffered record-max-counters deleted", report.record_max_counter_buffers),
        ("sync sessions closed", report.sync_sessions),
        ("expired nonces deleted", report.nonces),
        ("old sessions and refusals deleted", report.history),
    ] {
        writeln!(out, "  {what:<38} {count}")?;
    }
    Ok(())
}

/// A parsed command line.
enum Parsed {
    /// `serve`, `sync`, `certs`, `cleanup-syncs`.
    Builtin(Cli),
    /// One of the application's subcommands.
    App {
        /// `--db`.
        db: Option<String>,
        /// The subcommand's name.
        name: String,
        /// What runs it.
        run: AppRunner,
        /// Its arguments.
        args: clap::ArgMatches,
    },
}

/// The authority of an application that gave none: nobody obtains a certificate.
struct NoCertificates;

#[async_trait::async_trait]
impl CertificateAuthority for NoCertificates {
    async fn authenticate(&self, _credentials: &Credentials) -> Option<Account> {
        None
    }

    async fn may_hold(&self, _account: &Account, _scope_definition_id: &str, _params: &Map<String, Value>) -> bool {
        false
    }
}

/// Log lines to standard error, filtered by `RUST_LOG` (default: `info`, without the migrator's notes), unless a
/// subscriber is installed.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sea_orm_migration=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
