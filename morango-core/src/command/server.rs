//! [`SyncServer`]: the server `serve` runs, for an application that starts one itself — Morango's API with the
//! application's own routes merged in, a new facility set up on a database that has none, the loops that close idle
//! transfers and collect abandoned syncs, a log line per transfer and request tracing.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use axum::Router;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use super::{CommandError, FacilityHook, progress::ServerLog};
use crate::api::{self, CertificateAuthority, MorangoApi, ServerSettings};
use crate::certificate::{self, Certificate};
use crate::cleanup;
use crate::client::SyncScopes;
use crate::engine::Engine;
use crate::error::DbContext;

/// A Morango server with everything `serve` does: Morango's API, the application's routes, a new facility on a
/// database that has none, the loops that close idle transfers and collect abandoned syncs, the event log and
/// request tracing.
///
/// ```no_run
/// # extern crate morango_core as morango;
/// # async fn example(engine: morango::Engine, authority: std::sync::Arc<dyn morango::api::CertificateAuthority>)
/// # -> Result<(), morango::command::CommandError> {
/// use axum::routing::get;
/// use morango::command::SyncServer;
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// let status = axum::Router::new().route("/status", get(|| async { "ok" }));
/// SyncServer::new(engine, authority).routes(status).serve(listener, std::future::pending(), std::io::stdout()).await
/// # }
/// ```
pub struct SyncServer {
    engine: Engine,
    authority: Arc<dyn CertificateAuthority>,
    settings: ServerSettings,
    scopes: SyncScopes,
    routes: Option<Router>,
    on_new_facility: Option<FacilityHook>,
}

impl SyncServer {
    /// A server of `engine`'s database; `authority` says who may obtain certificates.
    pub fn new(engine: Engine, authority: Arc<dyn CertificateAuthority>) -> Self {
        SyncServer {
            engine,
            authority,
            settings: ServerSettings::default(),
            scopes: SyncScopes::default(),
            routes: None,
            on_new_facility: None,
        }
    }

    /// Capabilities, limits and timeouts.
    pub fn settings(mut self, settings: ServerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The scope definitions: a new facility is a root certificate of `scopes.full`.
    pub fn scopes(mut self, scopes: SyncScopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// The application's own routes, served beside Morango's (`/api/morango/v1/…`); called again, the routers are
    /// merged. A route that Morango serves too makes [`SyncServer::serve`] panic (axum's merge rule): a
    /// programming error, caught by the first start.
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = Some(match self.routes.take() {
            Some(earlier) => earlier.merge(routes),
            None => routes,
        });
        self
    }

    /// Runs after a new facility's root certificate is made, to create the application's records for it.
    pub fn on_new_facility<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(sea_orm::DatabaseConnection, Certificate) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), super::BoxError>> + Send + 'static,
    {
        self.on_new_facility = Some(Arc::new(move |db, root| Box::pin(hook(db, root))));
        self
    }

    /// Serves on `listener` until `shutdown` completes, writing what it serves and where to `out` (the facilities,
    /// `Listening on http://ADDR/`, `Stopped.`). A database that owns no certificate of the profile gets a new
    /// facility first.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        mut out: impl Write + Send,
    ) -> Result<(), CommandError> {
        self.ensure_facility(&mut out).await?;
        let SyncServer { engine, authority, settings, routes, .. } = self;
        let mut events = engine.subscribe();
        let api = MorangoApi::new(engine, settings.clone(), authority);
        let mut router = api::router(api.clone());
        if let Some(routes) = routes {
            router = router.merge(routes);
        }
        let router = router.layer(tower_http::trace::TraceLayer::new_for_http());
        let maintenance = tokio::spawn(maintain(api.clone()));
        let addr = listener.local_addr().map_err(CommandError::Serve)?;
        writeln!(out, "Listening on http://{addr}/")?;
        out.flush()?;
        // Ends when the engine goes, with the router.
        tokio::spawn(async move {
            let mut log = ServerLog::default();
            loop {
                match events.recv().await {
                    Ok(event) => log.show(&event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let served = api::serve(listener, router, &settings, shutdown).await;
        maintenance.abort();
        served.map_err(CommandError::Serve)?;
        writeln!(out, "Stopped.")?;
        Ok(())
    }

    /// Creates a facility (a root certificate of the full scope definition, then the application's records) when
    /// the database owns no certificate of the profile, and prints the facilities served.
    async fn ensure_facility(&self, out: &mut (impl Write + Send)) -> Result<(), CommandError> {
        let engine = &self.engine;
        let db = engine.db();
        let profile = engine.profile().name();
        // Several server processes may start together on one database: one at a time looks and creates, under the
        // profile's lock, so that a new database gets one facility.
        let (txn, writer) = engine.begin_exclusive().await?;
        let root = if certificate::owned(&txn, Some(profile)).await?.is_empty() {
            Some(certificate::generate_root(&txn, &self.scopes.full, &Map::new()).await?)
        } else {
            None
        };
        txn.commit().await.context(|| "committing the new facility's certificate".into())?;
        drop(writer);
        if let Some(root) = root {
            writeln!(out, "Created facility {} (a new {} root certificate).", root.id(), self.scopes.full)?;
            if let Some(hook) = &self.on_new_facility {
                hook(db.clone(), root.clone())
                    .await
                    .map_err(|source| CommandError::NewFacility { facility: root.id().to_owned(), source })?;
            }
        }
        let owned = certificate::owned(db, Some(profile)).await?;
        let facilities: Vec<&Certificate> =
            owned.iter().filter(|cert| cert.scope_definition_id() == self.scopes.full).collect();
        if facilities.is_empty() {
            writeln!(
                out,
                "This database holds no {} certificate: clients can sync only narrower scopes with it.",
                self.scopes.full
            )?;
        }
        for cert in facilities {
            let facility = cert.params()?.get(&self.scopes.facility_param).and_then(Value::as_str).map(str::to_owned);
            let facility = facility.unwrap_or_else(|| "?".into());
            let kind = if cert.is_root() { "root certificate" } else { "certificate" };
            writeln!(out, "Serving facility {facility} ({kind} {}).", cert.id())?;
        }
        Ok(())
    }
}

/// What a server does on its own while it serves: closes the transfers its clients left idle (dropping their
/// buffers) and gives the space back, often; every hour, what [`cleanup::cleanup_syncs`] does (abandoned client
/// sessions too, expired nonces, old history).
async fn maintain(api: Arc<MorangoApi>) {
    let idle = api.settings().transfer_limits.idle_timeout;
    let mut often =
        tokio::time::interval((idle / 3).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(300)));
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = often.tick() => {
                match cleanup::expire_idle_transfers(api.engine(), idle).await {
                    Ok(0) => {}
                    Ok(closed) => {
                        tracing::info!(closed, "closed idle transfers");
                        if let Err(error) = cleanup::reclaim_space(api.engine()).await {
                            tracing::warn!(%error, "giving space back failed");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "closing idle transfers failed"),
                }
            }
            _ = hourly.tick() => match cleanup::cleanup_syncs(api.engine(), cleanup::DEFAULT_EXPIRATION).await {
                Ok(report) => tracing::info!(?report, "collected abandoned syncs"),
                Err(error) => tracing::warn!(%error, "collecting abandoned syncs failed"),
            },
        }
    }
}
