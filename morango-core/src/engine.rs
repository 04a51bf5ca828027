//! [`Engine`]: one database, one profile, the instance that writes to it.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard, broadcast};

use crate::deserialize::DeserializeReport;
use crate::error::{DbContext, Error, Result};
use crate::events::SyncEvent;
use crate::filter::Filter;
use crate::hooks::StageHook;
use crate::instance::{self, Instance};
use crate::profile::Profile;
use crate::serialize::SerializeReport;
use crate::sql::{self, text};

/// The longest a sync waits for another one to release the database.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The default number of records per chunk, as in Python Morango.
pub const DEFAULT_CHUNK_SIZE: u64 = 500;

/// The default number of pulled pages merged in one transaction.
pub const DEFAULT_PAGES_PER_COMMIT: usize = 8;

/// The sync engine of one database for one profile.
///
/// Opening it checks that Morango's tables exist, installs (or refreshes) the change-tracking triggers of the
/// profile's tables and loads the instance id this database writes under.
pub struct Engine {
    db: DatabaseConnection,
    profile: &'static Profile,
    instance: Instance,
    chunk_size: u64,
    pages_per_commit: usize,
    events: broadcast::Sender<SyncEvent>,
    writer: Arc<Mutex<()>>,
    hooks: Vec<Arc<dyn StageHook>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("profile", &self.profile.name())
            .field("instance", &self.instance.id)
            .field("chunk_size", &self.chunk_size)
            .finish()
    }
}

impl Engine {
    /// Opens the engine on a database whose Morango tables exist (see [`crate::migration`]).
    pub async fn open(db: DatabaseConnection, profile: &'static Profile) -> Result<Engine> {
        EngineBuilder::new(db, profile).open().await
    }

    /// An engine with options: chunk size, and an explicit system / node identity.
    pub fn builder(db: DatabaseConnection, profile: &'static Profile) -> EngineBuilder {
        EngineBuilder::new(db, profile)
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The profile this engine syncs.
    pub fn profile(&self) -> &'static Profile {
        self.profile
    }

    /// The instance this database writes under.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Records per chunk.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// Pulled pages merged in one transaction.
    pub fn pages_per_commit(&self) -> usize {
        self.pages_per_commit
    }

    /// Subscribes to the progress events of every sync this engine takes part in.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncEvent> {
        self.events.subscribe()
    }

    /// The application's stage hooks, in the order they run.
    pub(crate) fn stage_hooks(&self) -> &[Arc<dyn StageHook>] {
        &self.hooks
    }

    pub(crate) fn emit(&self, event: SyncEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    /// Serializes dirty application rows under `filter` (everything when `None`) into the store now.
    pub async fn serialize(&self, filter: Option<&Filter>) -> Result<SerializeReport> {
        crate::serialize::serialize(self, filter).await
    }

    /// Applies store records that are not yet in the application tables (under `filter`, or all).
    pub async fn deserialize(&self, filter: Option<&Filter>) -> Result<DeserializeReport> {
        crate::deserialize::deserialize(self, filter).await
    }

    /// Starts a write transaction. On SQLite it also holds the engine's writer lock (returned with it; keep it
    /// until the transaction ends): one writer at a time inside this process, so concurrent syncs queue here
    /// instead of failing with "database is locked".
    pub(crate) async fn begin_write(&self) -> Result<(DatabaseTransaction, Option<OwnedMutexGuard<()>>)> {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            return Ok((self.db.begin().await.context(|| "starting a transaction".into())?, None));
        }
        let guard = self.lock_writer().await?;
        let txn = self.db.begin().await.context(|| "starting a transaction".into())?;
        // Take SQLite's write lock now rather than at the first write (no deferred-upgrade deadlocks).
        sql::exec(&txn, "taking the write lock", "DELETE FROM morango_apply_guard WHERE kind = $1", vec![text("lock")])
            .await?;
        Ok((txn, Some(guard)))
    }

    /// Starts a write transaction that also holds this database's lock for the profile: serialization,
    /// queuing, dequeuing and deserialization of one profile never interleave. Inside this process the writer
    /// lock is taken first, without a connection (waiting syncs must not hold the pool's connections, or
    /// everyone else starves); on PostgreSQL a transaction-scoped advisory lock then excludes other processes.
    pub(crate) async fn begin_exclusive(&self) -> Result<(DatabaseTransaction, Option<OwnedMutexGuard<()>>)> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return self.begin_write().await;
        }
        let guard = self.lock_writer().await?;
        let txn = self.db.begin().await.context(|| "starting a transaction".into())?;
        lock_for(&txn, &format!("morango:{}", self.profile.name())).await?;
        Ok((txn, Some(guard)))
    }

    /// Starts a transaction for maintenance that one process at a time should do (closing idle transfers,
    /// collecting abandoned syncs): `None` on PostgreSQL when another process is doing it right now.
    pub(crate) async fn begin_maintenance(&self) -> Result<Option<(DatabaseTransaction, Option<OwnedMutexGuard<()>>)>> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return self.begin_write().await.map(Some);
        }
        let txn = self.db.begin().await.context(|| "starting a transaction".into())?;
        let row = sql::query_one(
            &txn,
            "taking the maintenance lock",
            "SELECT pg_try_advisory_xact_lock($1) AS taken",
            vec![lock_key(&format!("morango:maintenance:{}", self.profile.name())).into()],
        )
        .await?;
        match row {
            Some(row) if sql::get::<bool>(&row, "taken")? => Ok(Some((txn, None))),
            _ => Ok(None),
        }
    }

    pub(crate) async fn lock_writer(&self) -> Result<OwnedMutexGuard<()>> {
        tokio::time::timeout(LOCK_TIMEOUT, self.writer.clone().lock_owned())
            .await
            .map_err(|_| Error::Session(format!("the database stayed busy for {LOCK_TIMEOUT:?}")))
    }
}

/// The PostgreSQL advisory lock key of `name`.
fn lock_key(name: &str) -> i64 {
    let digest = blake3::hash(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_bytes()[..8]);
    i64::from_le_bytes(bytes)
}

/// Takes the transaction-scoped PostgreSQL advisory lock `name` in `txn`, waiting at most [`LOCK_TIMEOUT`]: it
/// excludes every other process on the database, not only this one's tasks. On SQLite, whose write transactions
/// hold the database's one write lock already, it does nothing.
pub(crate) async fn lock_for(txn: &DatabaseTransaction, name: &str) -> Result<()> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let timeout = format!("{}ms", LOCK_TIMEOUT.as_millis());
    sql::query_one(txn, "bounding lock waits", "SELECT set_config('lock_timeout', $1, true)", vec![text(timeout)])
        .await?;
    sql::query_one(txn, "taking an advisory lock", "SELECT pg_advisory_xact_lock($1)", vec![lock_key(name).into()])
        .await?;
    Ok(())
}

/// Options for opening an [`Engine`].
pub struct EngineBuilder {
    db: DatabaseConnection,
    profile: &'static Profile,
    chunk_size: u64,
    pages_per_commit: usize,
    identity: Identity,
    hooks: Vec<Arc<dyn StageHook>>,
}

impl EngineBuilder {
    fn new(db: DatabaseConnection, profile: &'static Profile) -> Self {
        EngineBuilder {
            db,
            profile,
            chunk_size: DEFAULT_CHUNK_SIZE,
            pages_per_commit: DEFAULT_PAGES_PER_COMMIT,
            identity: Identity::from_environment(),
            hooks: Vec::new(),
        }
    }

    /// Code to run before and after the stages of every transfer this engine takes part in, as client or server
    /// (see [`crate::hooks`]); several run in the order they were added.
    pub fn stage_hook(mut self, hook: impl StageHook + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Records per chunk (default 500).
    pub fn chunk_size(mut self, chunk_size: u64) -> Self {
        self.chunk_size = chunk_size.clamp(1, 10_000);
        self
    }

    /// Pulled pages merged in one transaction (default 8, at most 64): one commit, and one fsync, per batch. A
    /// pull interrupted mid-batch fetches the pages of that batch again.
    pub fn pages_per_commit(mut self, pages: usize) -> Self {
        self.pages_per_commit = pages.clamp(1, 64);
        self
    }

    /// The raw system and node ids the instance id is derived from, instead of `MORANGO_SYSTEM_ID` /
    /// `MORANGO_NODE_ID`, the machine id and a MAC address (useful in containers, whose MACs change).
    pub fn identity(mut self, system_id: impl Into<String>, node_id: impl Into<String>) -> Self {
        self.identity = Identity { system: system_id.into(), node: node_id.into() };
        self
    }

    /// Checks the schema, installs change tracking and loads the instance.
    pub async fn open(self) -> Result<Engine> {
        let EngineBuilder { db, profile, chunk_size, pages_per_commit, identity, hooks } = self;
        let tables_exist =
            sql::query(&db, "checking for Morango's tables", "SELECT COUNT(*) AS n FROM morango_store", vec![])
                .await
                .is_ok();
        if !tables_exist {
            return Err(Error::Schema(
                "Morango's tables are missing: run `morango::migration::migrate(&db)` or add \
                 `morango::migration::Migration` to your migrator"
                    .into(),
            ));
        }
        let field_ready = sql::query(
            &db,
            "checking for Morango's newer tables",
            "SELECT COUNT(*) AS n FROM morango_transferqueue",
            vec![],
        )
        .await
        .is_ok();
        if !field_ready {
            return Err(Error::Schema(
                "Morango's tables are out of date: run `morango::migration::migrate(&db)` again, or add \
                 `morango::migration::FieldReady` to your migrator after `morango::migration::Migration`"
                    .into(),
            ));
        }
        let ordered = db.get_database_backend() != DbBackend::Postgres
            || sql::query(
                &db,
                "checking for the store's record order",
                "SELECT seq FROM morango_store LIMIT 1",
                vec![],
            )
            .await
            .is_ok();
        if !ordered {
            return Err(Error::Schema(
                "Morango's tables are out of date: run `morango::migration::migrate(&db)` again, or add \
                 `morango::migration::RecordOrder` to your migrator after `morango::migration::FieldReady`"
                    .into(),
            ));
        }
        crate::profile::check_runtime(&db, profile).await?;
        let instance = if db.get_database_backend() == DbBackend::Postgres {
            // Several processes may share the database and start together: one at a time installs the triggers
            // (only when they differ, so a running sync's table locks do not hold the start up) and loads the
            // instance.
            let txn = db.begin().await.context(|| "starting a transaction".into())?;
            lock_for(&txn, &format!("morango:start:{}", profile.name())).await?;
            if !crate::tracking::installed(&txn, profile).await? {
                crate::tracking::install(&txn, profile).await.context(|| "installing change tracking".into())?;
            }
            let instance = Instance::current(&txn, &identity.system, &identity.node).await?;
            txn.commit().await.context(|| "committing the start up".into())?;
            instance
        } else {
            crate::tracking::install(&db, profile).await.context(|| "installing change tracking".into())?;
            // Readers never block the writer (and syncs read while they write); the setting stays with the file.
            sql::query(&db, "switching to write-ahead logging", "PRAGMA journal_mode = WAL", vec![]).await?;
            // A guard row can only be left behind by a crashed writer that did not roll back.
            sql::exec(&db, "clearing stale guards", "DELETE FROM morango_apply_guard", vec![]).await?;
            Instance::current(&db, &identity.system, &identity.node).await?
        };
        let (events, _) = broadcast::channel(256);
        let writer = Arc::new(Mutex::new(()));
        Ok(Engine { db, profile, instance, chunk_size, pages_per_commit, events, writer, hooks })
    }
}

/// The raw inputs of the instance id.
struct Identity {
    system: String,
    node: String,
}

impl Identity {
    fn from_environment() -> Self {
        Identity { system: instance::system_source(), node: instance::node_source() }
    }
}

/// The instance counter of one run, incremented only when the run mints a version.
pub(crate) struct LazyCounter<'a> {
    instance: &'a str,
    value: Option<i64>,
}

impl<'a> LazyCounter<'a> {
    pub(crate) fn new(instance: &'a str) -> Self {
        LazyCounter { instance, value: None }
    }

    /// The run's counter value, incrementing the instance counter the first time.
    pub(crate) async fn get<C: ConnectionTrait>(&mut self, db: &C) -> Result<i64> {
        if let Some(value) = self.value {
            return Ok(value);
        }
        let value = instance::next_counter(db, self.instance).await?;
        self.value = Some(value);
        Ok(value)
    }

    /// The counter value if this run minted versions.
    pub(crate) fn minted(&self) -> Option<i64> {
        self.value
    }

    /// The instance's counter now (without incrementing it).
    pub(crate) async fn current<C: ConnectionTrait>(&self, db: &C) -> Result<i64> {
        if let Some(value) = self.value {
            return Ok(value);
        }
        instance::current_counter(db, self.instance).await
    }
}
