//! [`NetworkSyncConnection`]: what Python Morango's `NetworkSyncConnection` and `create_sync_session` do — read
//! the server's info and capabilities, find its certificate, obtain one for this database with a certificate
//! signing request, and open (or resume) a sync session with the nonce handshake.

use reqwest::Method;
use serde_json::{Map, Value};

use super::http::{Body, Http, HttpSettings};
use super::peer::HttpPeer;
use crate::capabilities::{self, Capabilities};
use crate::certificate::{self, Certificate, PrivateKey, RootTrust};
use crate::controller::SyncClient;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ids;
use crate::session::{self, SyncSession};
use crate::wire::{InstanceInfo, NonceWire, SyncSessionCreated, SyncSessionRequest, SyncSessionWire};

type NoBody = Body<'static, ()>;

/// A connection to one Morango server.
pub struct NetworkSyncConnection<'a> {
    engine: &'a Engine,
    http: Http,
    info: InstanceInfo,
    capabilities: Capabilities,
    instance_info: Map<String, Value>,
    require_signed_requests: bool,
}

/// The user's name and password for a certificate signing request. A username of `k=v&k=v` is sent as is
/// (Kolibri sends `username=<name>&facility=<facility id>`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The Basic-auth username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

impl<'a> NetworkSyncConnection<'a> {
    /// Reads the server's `morangoinfo` and negotiates capabilities (this side's `ours` ∩ the server's).
    pub async fn connect(
        engine: &'a Engine,
        base_url: &str,
        ours: Capabilities,
        settings: HttpSettings,
    ) -> Result<NetworkSyncConnection<'a>> {
        let mut http = Http::new(base_url, ours.clone(), settings)?;
        let info: InstanceInfo = http.call(Method::GET, "morangoinfo/1/", NoBody::None, |r| r).await?;
        if !ids::is_valid_id(&info.instance_id) {
            return Err(Error::Invalid("the server reported an invalid instance id".into()));
        }
        let capabilities = ours.intersection(&Capabilities::from_names(info.capabilities.iter().cloned()));
        http.set_capabilities(capabilities.clone());
        Ok(NetworkSyncConnection {
            engine,
            http,
            info,
            capabilities,
            instance_info: Map::new(),
            require_signed_requests: false,
        })
    }

    /// Adds application info (e.g. `"kolibri": "0.16.0"`) to the instance JSON this client sends.
    pub fn with_instance_info(mut self, info: Map<String, Value>) -> Self {
        self.instance_info = info;
        self
    }

    /// Refuses to open sessions whose requests are not signed (a server without `MORANGO_RS_SIGNED_REQUESTS`,
    /// such as Python Morango, or a capability stripped on the way).
    pub fn require_signed_requests(mut self, required: bool) -> Self {
        self.require_signed_requests = required;
        self
    }

    /// What the server reported about itself.
    pub fn server_info(&self) -> &InstanceInfo {
        &self.info
    }

    /// The capabilities both sides support.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// `GET`s one of the application's own endpoints on the server (`path` from the server's base URL, starting
    /// with `/`, e.g. Kolibri's `/api/public/v1/facility/`) and reads its JSON, with this connection's timeouts
    /// and retries.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        if !path.starts_with('/') {
            return Err(Error::Invalid(format!(
                "`{path}` must start with `/` (it is taken from the server's base URL)"
            )));
        }
        self.http.call(Method::GET, path, NoBody::None, |r| r).await
    }

    /// The server's certificates of this profile: those under `primary_partition` (a root certificate id, e.g. a
    /// facility's), or all it owns.
    pub async fn server_certificates(&self, primary_partition: Option<&str>) -> Result<Vec<Certificate>> {
        let profile = self.engine.profile().name();
        let mut query = vec![("profile", profile.to_owned())];
        if let Some(partition) = primary_partition {
            query.push(("primary_partition", partition.to_owned()));
        }
        let list: Vec<Value> = self.http.call(Method::GET, "certificates/", NoBody::None, |r| r.query(&query)).await?;
        list.iter().map(|value| Certificate::from_wire(value).map_err(Error::from)).collect()
    }

    /// Fetches the chain of a server certificate and stores it, trusting its root: this is the server the user
    /// pointed this client at. Certificates already stored here are not fetched again.
    pub async fn trust_server_certificate(&self, id: &str) -> Result<Certificate> {
        if let Some(known) = certificate::get(self.engine.db(), id).await? {
            return Ok(known);
        }
        let query = [("ancestors_of", id.to_owned())];
        let chain: Value = self.http.call(Method::GET, "certificates/", NoBody::None, |r| r.query(&query)).await?;
        let chain = certificate::parse_chain_value(&chain)?;
        Ok(certificate::save_certificate_chain(self.engine.db(), &chain, Some(id), RootTrust::AcceptNewRoots).await?)
    }

    /// A certificate for this database under `parent` (a server certificate), with a fresh key: a certificate
    /// signing request authenticated with `credentials`. The answer is verified before it is stored.
    pub async fn request_certificate(
        &self,
        parent: &Certificate,
        scope_definition_id: &str,
        scope_params: &Map<String, Value>,
        credentials: &Credentials,
    ) -> Result<Certificate> {
        let parent = self.trust_server_certificate(parent.id()).await?;
        let key = PrivateKey::generate().map_err(certificate::CertificateError::from)?;
        let request = certificate::signing_request(&parent, scope_definition_id, scope_params, key.public_key());
        let issued: Value = self
            .http
            .call(Method::POST, "certificates/", Body::Json(&request), |r| {
                r.basic_auth(&credentials.username, Some(&credentials.password))
            })
            .await?;
        Ok(certificate::store_issued(self.engine.db(), &issued, key).await?)
    }

    /// Certificate pushing (spec §3.8, `ALLOW_CERTIFICATE_PUSHING`): grants the server a certificate under
    /// `parent` (one this database owns) for the server's shared key, salted with a server nonce; the server
    /// stores it with the shared private key and can then serve with it. Returns the certificate, stored here
    /// without a private key.
    pub async fn push_certificate(
        &self,
        parent: &Certificate,
        scope_definition_id: &str,
        scope_params: &Map<String, Value>,
    ) -> Result<Certificate> {
        if !self.info.capabilities.iter().any(|c| c == capabilities::ALLOW_CERTIFICATE_PUSHING) {
            return Err(Error::Forbidden("the server does not accept pushed certificates".into()));
        }
        let keys: Vec<Value> = self.http.call(Method::GET, "publickey/", NoBody::None, |r| r).await?;
        let shared = keys
            .first()
            .and_then(|k| k.get("public_key"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Invalid("the server published no shared key".into()))?;
        let shared = certificate::PublicKey::parse(shared).map_err(certificate::CertificateError::from)?;
        let nonce: NonceWire = self.http.call(Method::POST, "nonces/", NoBody::None, |r| r).await?;
        let db = self.engine.db();
        let params = crate::json::dumps(&Value::Object(scope_params.clone()));
        let child = certificate::build_child(db, parent.id(), scope_definition_id, &params, &shared, &nonce.id).await?;
        let mut chain = certificate::chain_of(db, parent.id()).await?;
        chain.push(child.clone());
        let body = Value::String(certificate::chain_json(&chain));
        self.http.send(Method::POST, "certificatechain/", Body::Json(&body), |r| r).await?;
        certificate::store(db, &child).await?;
        Ok(child)
    }

    /// Opens a sync session: the server verifies `client`'s chain and its signature of a fresh nonce, and proves
    /// with its own signature that it holds `server`'s key.
    pub async fn open_session(&self, client: &Certificate, server: &Certificate) -> Result<NetworkSession> {
        let db = self.engine.db();
        let server = self.trust_server_certificate(server.id()).await?;
        let client =
            certificate::get(db, client.id()).await?.filter(Certificate::has_private_key).ok_or_else(|| {
                Error::Invalid(format!("this database has no private key for certificate {}", client.id()))
            })?;
        let nonce: NonceWire = self.http.call(Method::POST, "nonces/", NoBody::None, |r| r).await?;
        let id = ids::random_id();
        let message = format!("{}:{id}", nonce.id);
        let chain = certificate::chain_json(&certificate::chain_of(db, client.id()).await?);
        let instance = self.engine.instance().to_json(&self.instance_info);
        let request = SyncSessionRequest {
            id: id.clone(),
            server_certificate_id: server.id().to_owned(),
            client_certificate_id: client.id().to_owned(),
            profile: client.profile().to_owned(),
            certificate_chain: chain,
            connection_path: self.http.base().to_owned(),
            instance: instance.clone(),
            nonce: nonce.id,
            client_ip: String::new(),
            server_ip: String::new(),
            signature: client.sign(&message)?,
        };
        let created: SyncSessionCreated =
            self.http.call(Method::POST, "syncsessions/", Body::Json(&request), |r| r).await?;
        if !server.verify(&message, &created.signature) {
            return Err(Error::Forbidden("the server's signature of the handshake does not verify".into()));
        }
        // Both sides said they sign requests: the server must confirm it with its key, or someone on the way
        // stripped the capability to turn the session back into a bearer-id session.
        if self.capabilities.has(capabilities::SIGNED_REQUESTS) {
            let confirmation = crate::wire::signed_requests_message(&request.nonce, &id);
            if !created.signed_requests.as_deref().is_some_and(|sig| server.verify(&confirmation, sig)) {
                return Err(Error::Forbidden("the server did not confirm signed requests for this session".into()));
            }
        } else if self.require_signed_requests {
            return Err(Error::Forbidden(format!("the server does not support {}", capabilities::SIGNED_REQUESTS)));
        }
        session::create_sync_session(
            db,
            &SyncSession {
                id: id.clone(),
                is_server: false,
                profile: client.profile().to_owned(),
                connection_kind: "network".into(),
                client_certificate_id: Some(client.id().to_owned()),
                server_certificate_id: Some(server.id().to_owned()),
                signed_requests: self.capabilities.has(capabilities::SIGNED_REQUESTS),
                client_instance_json: instance,
                server_instance_json: created.server_instance,
                active: true,
            },
        )
        .await?;
        Ok(self.session(id, &client))
    }

    /// Continues a sync session this client opened before, if both sides still hold it open.
    pub async fn resume_session(&self, id: &str) -> Result<NetworkSession> {
        let local = session::active_sync_session(self.engine.db(), id).await?;
        if local.is_server {
            return Err(Error::Invalid(format!("sync session {id} was opened by the other side")));
        }
        let client = match &local.client_certificate_id {
            Some(id) => certificate::get(self.engine.db(), id).await?,
            None => None,
        }
        .filter(Certificate::has_private_key)
        .ok_or_else(|| Error::Invalid(format!("sync session {id} has no client certificate with a private key")))?;
        let session = self.session(id.to_owned(), &client);
        let path = format!("syncsessions/{id}/");
        let _: SyncSessionWire = session.peer.http().call(Method::GET, &path, NoBody::None, |r| r).await?;
        Ok(session)
    }

    fn session(&self, id: String, client: &Certificate) -> NetworkSession {
        let http = match client.private_key() {
            Some(key) if self.capabilities.has(capabilities::SIGNED_REQUESTS) => self.http.signed(&id, key.clone()),
            _ => self.http.clone(),
        };
        NetworkSession {
            id,
            peer: HttpPeer::new(http, self.capabilities.clone()),
            capabilities: self.capabilities.clone(),
        }
    }
}

/// An open network sync session.
pub struct NetworkSession {
    id: String,
    peer: HttpPeer,
    capabilities: Capabilities,
}

impl NetworkSession {
    /// The sync session id (persisted: pass it to [`NetworkSyncConnection::resume_session`] after an interruption).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The controller that pulls and pushes within this session.
    pub fn client<'s>(&'s self, engine: &'s Engine) -> SyncClient<'s> {
        SyncClient::attach(engine, &self.peer, self.id.clone(), self.capabilities.clone())
    }

    /// The peer this session talks to.
    pub fn peer(&self) -> &HttpPeer {
        &self.peer
    }
}
