//! Stage hooks: the application's code that runs before and after each stage of every transfer, on the client and
//! on the server alike (Python Morango's sync operations; Kolibri's server creates a single-user device's lesson
//! and quiz assignments in one, before it serializes what that device pulls).
//!
//! ```no_run
//! # extern crate morango_core as morango;
//! use morango::hooks::{HookError, StageContext, StageHook};
//! use morango::stage::TransferStage;
//!
//! /// Before serializing what a pulling client receives, writes the rows it must receive.
//! struct PrepareForPull;
//!
//! #[async_trait::async_trait]
//! impl StageHook for PrepareForPull {
//!     async fn before(&self, context: &StageContext, db: &sea_orm::DatabaseConnection) -> Result<(), HookError> {
//!         if context.stage == TransferStage::Serializing && context.is_producer() && context.is_server {
//!             // ... application writes through `db`: change tracking marks them, the stage serializes them.
//!         }
//!         Ok(())
//!     }
//! }
//! # async fn open(db: sea_orm::DatabaseConnection, profile: &'static morango::Profile) -> morango::Result<morango::Engine> {
//! morango::Engine::builder(db, profile).stage_hook(PrepareForPull).open().await
//! # }
//! ```

use sea_orm::DatabaseConnection;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::session::TransferSession;
use crate::stage::TransferStage;

/// An error of a hook: the stage fails with it.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Where a transfer stands when a hook runs.
#[derive(Debug, Clone)]
pub struct StageContext {
    /// The stage that is about to run or has just completed.
    pub stage: TransferStage,
    /// The transfer session.
    pub transfer_session_id: String,
    /// Its sync session.
    pub sync_session_id: String,
    /// True when the client sends.
    pub push: bool,
    /// True on the server's side.
    pub is_server: bool,
    /// The partitions transferred.
    pub filter: Filter,
    /// Records the producer queued (once queued).
    pub records_total: Option<i64>,
    /// Records that moved so far.
    pub records_transferred: i64,
    /// This side's certificate (network syncs).
    #[cfg(feature = "network")]
    pub local_certificate: Option<crate::certificate::Certificate>,
    /// The other side's certificate (network syncs): its scope says, for instance, whether the peer is a single
    /// user's device and which user's.
    #[cfg(feature = "network")]
    pub remote_certificate: Option<crate::certificate::Certificate>,
}

impl StageContext {
    /// True on the side that sends the records.
    pub fn is_producer(&self) -> bool {
        self.push != self.is_server
    }
}

/// Code an application runs around the stages of every transfer (registered with `EngineBuilder::stage_hook`).
/// Hooks run in the order they were registered; an error fails the stage, as any other failure of it would.
#[async_trait::async_trait]
pub trait StageHook: Send + Sync {
    /// Runs before the stage's work on this side; writes through `db` are seen by the stage.
    async fn before(&self, _context: &StageContext, _db: &DatabaseConnection) -> std::result::Result<(), HookError> {
        Ok(())
    }

    /// Runs after the stage completed on this side.
    async fn after(&self, _context: &StageContext, _db: &DatabaseConnection) -> std::result::Result<(), HookError> {
        Ok(())
    }
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    Before,
    After,
}

/// Runs the engine's hooks for `ts`'s current stage.
pub(crate) async fn run(engine: &Engine, ts: &TransferSession, is_server: bool, moment: Moment) -> Result<()> {
    let hooks = engine.stage_hooks();
    if hooks.is_empty() {
        return Ok(());
    }
    let context = context(engine, ts, is_server).await?;
    for hook in hooks {
        let outcome = match moment {
            Moment::Before => hook.before(&context, engine.db()).await,
            Moment::After => hook.after(&context, engine.db()).await,
        };
        outcome.map_err(|error| {
            let when = if moment == Moment::Before { "before" } else { "after" };
            Error::Hook(format!("a stage hook {when} {} failed: {error}", ts.stage))
        })?;
    }
    Ok(())
}

async fn context(engine: &Engine, ts: &TransferSession, is_server: bool) -> Result<StageContext> {
    #[cfg(feature = "network")]
    let (local_certificate, remote_certificate) = {
        let session = crate::session::active_sync_session(engine.db(), &ts.sync_session_id).await?;
        let load = |id: Option<String>| async move {
            match id {
                Some(id) => crate::certificate::get(engine.db(), &id).await.map_err(Error::from),
                None => Ok(None),
            }
        };
        let (client, server) = (load(session.client_certificate_id).await?, load(session.server_certificate_id).await?);
        if is_server { (server, client) } else { (client, server) }
    };
    Ok(StageContext {
        stage: ts.stage,
        transfer_session_id: ts.id.clone(),
        sync_session_id: ts.sync_session_id.clone(),
        push: ts.push,
        is_server,
        filter: ts.filter.clone(),
        records_total: ts.records_total,
        records_transferred: ts.records_transferred,
        #[cfg(feature = "network")]
        local_certificate,
        #[cfg(feature = "network")]
        remote_certificate,
    })
}
