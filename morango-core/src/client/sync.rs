//! [`sync`]: a whole sync with a Morango server, as Kolibri's `sync` command runs it — find the server's
//! certificate for the facility, reuse a certificate this database holds for the wanted scope or request one
//! (a CSR with the user's credentials), open a sync session, pull then push within the certificate's scope, and
//! close the session.
//!
//! ```no_run
//! # extern crate morango_core as morango;
//! # async fn example(engine: &morango::Engine) -> Result<(), morango::client::SyncError> {
//! use morango::client::{self, Credentials, SyncRequest};
//!
//! let request = SyncRequest {
//!     credentials: Some(Credentials { username: "admin".into(), password: "secret".into() }),
//!     ..SyncRequest::default()
//! };
//! let outcome = client::sync(engine, "http://192.168.1.10:8000/", &request).await?;
//! println!("pulled {} records", outcome.pull.map_or(0, |pull| pull.records_transferred));
//! # Ok(()) }
//! ```

use serde_json::{Map, Value};

use super::connection::{Credentials, NetworkSyncConnection};
use super::http::HttpSettings;
use crate::capabilities::Capabilities;
use crate::certificate::{self, Certificate};
use crate::controller::TransferReport;
use crate::engine::Engine;
use crate::error::Error;
use crate::session;

/// The scope definitions a sync asks for and the names of their params. The defaults are those of this
/// repository's examples (`full-facility` with `facility_id`, `single-user` with `facility_id` and `user_id`, as in
/// `fixtures/scopedefinitions.json`); [`SyncScopes::kolibri`] are Kolibri's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncScopes {
    /// The scope definition of a whole facility; its root certificates are the facilities a server serves.
    pub full: String,
    /// The param naming the facility (the `primary_scope_param_key` of `full`), also given to `single_user`.
    pub facility_param: String,
    /// The scope definition of one user's data within a facility.
    pub single_user: String,
    /// The param naming the user in `single_user`.
    pub user_param: String,
}

impl Default for SyncScopes {
    fn default() -> Self {
        SyncScopes {
            full: "full-facility".into(),
            facility_param: "facility_id".into(),
            single_user: "single-user".into(),
            user_param: "user_id".into(),
        }
    }
}

impl SyncScopes {
    /// Kolibri 0.19.5's: `full-facility` and `single-user`, whose facility param is `dataset_id` (the id of the
    /// facility's dataset, which is its root certificate's).
    pub fn kolibri() -> Self {
        SyncScopes { facility_param: "dataset_id".into(), ..SyncScopes::default() }
    }
}

/// A facility a server serves, as the application names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedFacility {
    /// The facility param of its certificates: the id of its root certificate (Kolibri's dataset id).
    pub dataset_id: String,
    /// The id the application gives it (Kolibri's `Facility` id); the dataset id where it has no other.
    pub id: String,
    /// Its name, if the server says.
    pub name: Option<String>,
}

/// How an application names the facilities a server serves and signs its users in for a certificate. The default,
/// [`DatasetNaming`], knows a facility by its dataset id only. Kolibri's facilities have their own ids too: `sync
/// --facility` may name either, and Kolibri's login wants the facility id (`username=<name>&facility=<id>`).
#[async_trait::async_trait]
pub trait FacilityNaming: Send + Sync + std::fmt::Debug {
    /// The facilities behind `dataset_ids` (the facility params of the server's certificates), read from the
    /// server's own endpoints through `connection` if need be ([`NetworkSyncConnection::get_json`]). A dataset the
    /// answer leaves out is known by its dataset id alone.
    async fn facilities(
        &self,
        connection: &NetworkSyncConnection<'_>,
        dataset_ids: &[String],
    ) -> Result<Vec<ServedFacility>, Error>;

    /// The credentials of a certificate request for `facility`: by default the username is sent as
    /// `username=<name>&facility=<facility id>` (a username that already holds `=` or `&` is sent as it is).
    fn credentials(&self, credentials: &Credentials, facility: &ServedFacility) -> Credentials {
        Credentials {
            username: csr_username(&credentials.username, &facility.id),
            password: credentials.password.clone(),
        }
    }
}

/// Facilities known by their dataset ids alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatasetNaming;

#[async_trait::async_trait]
impl FacilityNaming for DatasetNaming {
    async fn facilities(
        &self,
        _connection: &NetworkSyncConnection<'_>,
        dataset_ids: &[String],
    ) -> Result<Vec<ServedFacility>, Error> {
        Ok(dataset_ids.iter().map(|id| ServedFacility { dataset_id: id.clone(), id: id.clone(), name: None }).collect())
    }
}

/// What to sync, and how to get a certificate if this database has none for it.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The facility: its dataset id (the id of the server's root certificate) or another id [`SyncRequest::naming`]
    /// knows it by (`None`: the only facility the server serves).
    pub facility: Option<String>,
    /// One user's data only (the single-user scope for this user id) instead of the whole facility.
    pub user: Option<String>,
    /// Credentials for a certificate signing request, needed only when this database holds no certificate for the
    /// scope; [`SyncRequest::naming`] says how they are sent.
    pub credentials: Option<Credentials>,
    /// How the application names facilities and sends credentials.
    pub naming: std::sync::Arc<dyn FacilityNaming>,
    /// Receive the server's changes.
    pub pull: bool,
    /// Send this database's changes.
    pub push: bool,
    /// The scope definitions and param names.
    pub scopes: SyncScopes,
    /// The capabilities this side offers (intersected with the server's).
    pub capabilities: Capabilities,
    /// Timeouts and retries.
    pub http: HttpSettings,
    /// Application info added to this side's instance JSON (e.g. `"kolibri": "0.16.0"`).
    pub instance_info: Map<String, Value>,
}

impl Default for SyncRequest {
    /// The whole facility, pull then push, every capability, no credentials.
    fn default() -> Self {
        SyncRequest {
            facility: None,
            user: None,
            credentials: None,
            naming: std::sync::Arc::new(DatasetNaming),
            pull: true,
            push: true,
            scopes: SyncScopes::default(),
            capabilities: Capabilities::all(),
            http: HttpSettings::default(),
            instance_info: Map::new(),
        }
    }
}

/// What a [`sync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The server's instance id.
    pub server_instance_id: String,
    /// The facility synced (the id of its root certificate).
    pub facility: String,
    /// The server certificate the session was opened with.
    pub server_certificate_id: String,
    /// This database's certificate.
    pub client_certificate: Certificate,
    /// True when the certificate was requested from the server during this sync, false when a stored one fit.
    pub certificate_requested: bool,
    /// The sync session (closed when `sync` returns).
    pub sync_session_id: String,
    /// The pull, unless it was not asked for or the certificate may read nothing.
    pub pull: Option<TransferReport>,
    /// The push, unless it was not asked for or the certificate may write nothing.
    pub push: Option<TransferReport>,
}

/// Why a [`sync`] could not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server holds no certificate of the full scope definition: it serves no facility.
    #[error("the server serves no facility (it holds no {definition} certificate of profile {profile})")]
    NoFacility {
        /// The full scope definition.
        definition: String,
        /// The profile.
        profile: String,
    },
    /// The facility asked for is not one the server serves.
    #[error("the server does not serve facility {facility}; it serves: {}", list(.served))]
    UnknownFacility {
        /// The facility asked for.
        facility: String,
        /// The facilities the server serves.
        served: Vec<String>,
    },
    /// The server serves several facilities and none was named.
    #[error("the server serves several facilities ({}); name the one to sync", list(.served))]
    SeveralFacilities {
        /// The facilities the server serves.
        served: Vec<String>,
    },
    /// No stored certificate fits and there are no credentials to request one.
    #[error("this database holds no certificate for {scope}; a username and password are needed to request one")]
    CredentialsNeeded {
        /// The scope wanted, described.
        scope: String,
    },
    /// The certificate signing request failed: wrong credentials, a scope the user may not hold, or a failure of the
    /// server or the network.
    #[error("requesting a certificate for {scope} failed: {source}")]
    CertificateRequest {
        /// The scope wanted, described.
        scope: String,
        /// Why.
        source: Error,
    },
    /// The server is this very database.
    #[error("the server is this database (instance {instance_id}); sync with another instance")]
    SameInstance {
        /// The instance id both sides have.
        instance_id: String,
    },
    /// The engine, the network or the server failed.
    #[error(transparent)]
    Engine(#[from] Error),
}

impl From<certificate::CertificateError> for SyncError {
    fn from(error: certificate::CertificateError) -> Self {
        SyncError::Engine(error.into())
    }
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() { "none".into() } else { ids.join(", ") }
}

/// Syncs `engine` with the Morango server at `base_url`: pull, then push (each if asked for), within the scope of a
/// certificate for the facility (or for one user of it). A stored certificate of this database with the same scope
/// definition and params is reused; otherwise one is requested with `request.credentials`.
///
/// A sync that was interrupted (the process killed, the server unreachable) is resumed: its sync session with this
/// server and these certificates is continued, and each unfinished transfer goes on from its stored stage and
/// offset (Kolibri's `resumesync`); a session the server no longer has is started over. The sync session is closed
/// at the end, and when a transfer fails for another reason than the network (then its sync starts over).
/// Progress is reported through [`Engine::subscribe`].
pub async fn sync(engine: &Engine, base_url: &str, request: &SyncRequest) -> Result<SyncOutcome, SyncError> {
    let connection =
        NetworkSyncConnection::connect(engine, base_url, request.capabilities.clone(), request.http.clone())
            .await?
            .with_instance_info(request.instance_info.clone());
    let server_instance_id = connection.server_info().instance_id.clone();
    if server_instance_id == engine.instance().id {
        return Err(SyncError::SameInstance { instance_id: server_instance_id });
    }
    let (facility, server_certificate) = server_certificate(&connection, engine, request).await?;
    let wanted = Wanted::new(&request.scopes, &facility.dataset_id, request.user.as_deref());
    let (client_certificate, certificate_requested) = match stored_certificate(engine, &wanted).await? {
        Some(stored) => (stored, false),
        None => {
            let credentials = request
                .credentials
                .as_ref()
                .ok_or_else(|| SyncError::CredentialsNeeded { scope: wanted.describe() })?;
            let credentials = request.naming.credentials(credentials, &facility);
            let issued = connection
                .request_certificate(&server_certificate, &wanted.definition, &wanted.params, &credentials)
                .await
                .map_err(|source| SyncError::CertificateRequest { scope: wanted.describe(), source })?;
            (issued, true)
        }
    };
    let scope = certificate::scope_of(engine.db(), &client_certificate).await?;
    let session = match session::unfinished_client_session(
        engine.db(),
        &server_instance_id,
        client_certificate.id(),
        server_certificate.id(),
    )
    .await?
    {
        Some(id) => match connection.resume_session(&id).await {
            Ok(session) => {
                tracing::info!(session = %id, "resuming an unfinished sync with this server");
                session
            }
            Err(error) if error.is_transport() => return Err(error.into()),
            Err(error) => {
                tracing::info!(session = %id, %error, "the unfinished sync cannot be resumed; starting over");
                session::close_sync_session(engine.db(), &id).await?;
                connection.open_session(&client_certificate, &server_certificate).await?
            }
        },
        None => connection.open_session(&client_certificate, &server_certificate).await?,
    };
    let sync_session_id = session.id().to_owned();
    let client = session.client(engine);
    let transfers = async {
        let pull = match request.pull && !scope.read.is_empty() {
            true => Some(client.pull(&scope.read).await?),
            false => None,
        };
        let push = match request.push && !scope.write.is_empty() {
            true => Some(client.push(&scope.write).await?),
            false => None,
        };
        Ok::<_, Error>((pull, push))
    }
    .await;
    let (pull, push) = match transfers {
        // The server could not be reached: the session stays open on both sides, and the next sync resumes it.
        Err(error) if error.is_transport() => return Err(error.into()),
        Err(error) => {
            if let Err(close_error) = client.close().await {
                tracing::warn!(%close_error, "closing the sync session after a failed transfer failed too");
            }
            return Err(error.into());
        }
        Ok(done) => {
            client.close().await?;
            done
        }
    };
    Ok(SyncOutcome {
        server_instance_id,
        facility: facility.dataset_id,
        server_certificate_id: server_certificate.id().to_owned(),
        client_certificate,
        certificate_requested,
        sync_session_id,
        pull,
        push,
    })
}

/// The facility to sync and the server certificate to open the session with: a certificate of the full scope
/// definition the server owns for that facility (the facility a certificate belongs to is its facility param).
async fn server_certificate(
    connection: &NetworkSyncConnection<'_>,
    engine: &Engine,
    request: &SyncRequest,
) -> Result<(ServedFacility, Certificate), SyncError> {
    let scopes = &request.scopes;
    let mut candidates: Vec<(String, Certificate)> = Vec::new();
    for cert in connection.server_certificates(None).await? {
        let facility = match cert.params()?.get(&scopes.facility_param) {
            Some(Value::String(facility)) if cert.scope_definition_id() == scopes.full => facility.clone(),
            _ => continue,
        };
        candidates.push((facility, cert));
    }
    let mut served: Vec<String> = candidates.iter().map(|(facility, _)| facility.clone()).collect();
    served.sort();
    served.dedup();
    let named = request.naming.facilities(connection, &served).await?;
    let facilities: Vec<ServedFacility> = served
        .iter()
        .map(|dataset| {
            let known = named.iter().find(|facility| facility.dataset_id == *dataset).cloned();
            known.unwrap_or_else(|| ServedFacility { dataset_id: dataset.clone(), id: dataset.clone(), name: None })
        })
        .collect();
    let facility = match (&request.facility, facilities.as_slice()) {
        (Some(wanted), _) => facilities
            .iter()
            .find(|facility| facility.dataset_id == *wanted || facility.id == *wanted)
            .cloned()
            .ok_or_else(|| SyncError::UnknownFacility { facility: wanted.clone(), served: described(&facilities) })?,
        (None, []) => {
            return Err(SyncError::NoFacility {
                definition: scopes.full.clone(),
                profile: engine.profile().name().to_owned(),
            });
        }
        (None, [only]) => only.clone(),
        (None, _) => return Err(SyncError::SeveralFacilities { served: described(&facilities) }),
    };
    // The facility's root certificate if the server owns it, else another certificate of the facility.
    let cert = candidates
        .into_iter()
        .filter(|(dataset, _)| *dataset == facility.dataset_id)
        .map(|(_, cert)| cert)
        .min_by_key(|cert| !cert.is_root())
        .ok_or_else(|| SyncError::UnknownFacility { facility: facility.id.clone(), served: described(&facilities) })?;
    Ok((facility, cert))
}

/// Each facility as `id` (and `name (id, dataset <dataset id>)` where the application names it otherwise).
fn described(facilities: &[ServedFacility]) -> Vec<String> {
    facilities
        .iter()
        .map(|facility| match (&facility.name, facility.id == facility.dataset_id) {
            (None, true) => facility.id.clone(),
            (None, false) => format!("{} (dataset {})", facility.id, facility.dataset_id),
            (Some(name), true) => format!("{name} ({})", facility.id),
            (Some(name), false) => format!("{name} ({}, dataset {})", facility.id, facility.dataset_id),
        })
        .collect()
}

/// The certificate wanted: scope definition and params.
struct Wanted {
    definition: String,
    params: Map<String, Value>,
}

impl Wanted {
    fn new(scopes: &SyncScopes, facility: &str, user: Option<&str>) -> Wanted {
        let mut params = Map::new();
        params.insert(scopes.facility_param.clone(), Value::String(facility.to_owned()));
        let definition = match user {
            None => scopes.full.clone(),
            Some(user) => {
                params.insert(scopes.user_param.clone(), Value::String(user.to_owned()));
                scopes.single_user.clone()
            }
        };
        Wanted { definition, params }
    }

    fn describe(&self) -> String {
        format!("{} {}", self.definition, Value::Object(self.params.clone()))
    }

    /// True when `cert` has this scope definition and exactly these params.
    fn fits(&self, cert: &Certificate) -> bool {
        cert.scope_definition_id() == self.definition && cert.params().is_ok_and(|params| params == self.params)
    }
}

/// A certificate this database owns with the wanted scope, if any (the first by id when several do: they are
/// equivalent).
async fn stored_certificate(engine: &Engine, wanted: &Wanted) -> Result<Option<Certificate>, SyncError> {
    let owned = certificate::owned(engine.db(), Some(engine.profile().name())).await?;
    Ok(owned.into_iter().find(|cert| wanted.fits(cert)))
}

/// The Basic-auth username of a CSR: Kolibri's `username=<name>&facility=<facility id>` for a plain name.
fn csr_username(username: &str, facility: &str) -> String {
    if username.contains(['=', '&']) { username.to_owned() } else { format!("username={username}&facility={facility}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_username_names_the_facility_as_kolibri_does() {
        assert_eq!(csr_username("ada", "f00"), "username=ada&facility=f00");
        assert_eq!(csr_username("username=ada&facility=x", "f00"), "username=ada&facility=x");
    }

    #[test]
    fn a_user_asks_for_the_single_user_scope_of_the_facility() {
        let wanted = Wanted::new(&SyncScopes::default(), "f00", Some("u01"));
        assert_eq!(wanted.definition, "single-user");
        assert_eq!(Value::Object(wanted.params), serde_json::json!({"facility_id": "f00", "user_id": "u01"}));
    }
}
