//! A Morango server on a loopback port, an application-side certificate authority, and connected clients.

use std::collections::HashMap;
use std::sync::Arc;

use morango::Filter;
use morango::api::{self, Account, CertificateAuthority, Credentials, MorangoApi, ServerSettings};
use morango::capabilities::Capabilities;
use morango::certificate::{self, Certificate};
use morango::client::{self, HttpSettings, NetworkSession, NetworkSyncConnection};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{Map, Value, json};

use crate::fixtures;
use crate::schema::facility;
use crate::support::{Backend, Peer, TestDb};

/// Who may get certificates: `admin` any scope of the facility, each learner the single-user scope of themself.
pub struct Users {
    passwords: HashMap<String, String>,
    learners: HashMap<String, String>,
    facility: Option<String>,
}

impl Users {
    pub fn new() -> Self {
        Users {
            passwords: HashMap::from([("admin".into(), "admin-password".into())]),
            learners: HashMap::new(),
            facility: None,
        }
    }

    /// Adds a learner account `username` for the learner record `learner_id`.
    pub fn learner(mut self, username: &str, learner_id: &str) -> Self {
        self.passwords.insert(username.into(), format!("{username}-password"));
        self.learners.insert(username.into(), learner_id.into());
        self
    }
}

impl Users {
    fn may_hold(&self, account: &Account, scope_definition_id: &str, params: &Map<String, Value>) -> bool {
        match (account.id.as_str(), scope_definition_id) {
            ("admin", _) => true,
            // Every parameter is checked, the facility too: an unchecked one could be set to anything.
            (user, "single-user") => {
                let param = |key: &str| params.get(key).and_then(Value::as_str);
                params.len() == 2
                    && self.learners.get(user).is_some_and(|id| param("user_id") == Some(id))
                    && self.facility.as_deref().is_some_and(|facility| param("facility_id") == Some(facility))
            }
            _ => false,
        }
    }
}

/// The accounts of a running server, replaceable by a test.
struct SharedUsers(Arc<std::sync::RwLock<Users>>);

#[async_trait::async_trait]
impl CertificateAuthority for SharedUsers {
    async fn authenticate(&self, credentials: &Credentials) -> Option<Account> {
        let users = self.0.read().ok()?;
        let username = credentials.fields.get("username")?;
        (users.passwords.get(username) == Some(&credentials.password)).then(|| Account { id: username.clone() })
    }

    async fn may_hold(&self, account: &Account, scope_definition_id: &str, params: &Map<String, Value>) -> bool {
        let Ok(users) = self.0.read() else { return false };
        users.may_hold(account, scope_definition_id, params)
    }
}

/// A server: its database, its facility's root certificate and the facility record, served on loopback.
pub struct Server {
    pub api: Arc<MorangoApi>,
    users: Arc<std::sync::RwLock<Users>>,
    pub url: String,
    pub root: Certificate,
    pub facility: facility::Model,
    test_db: TestDb,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// A server with a facility whose root certificate it owns.
    pub async fn start(backend: Backend, settings: ServerSettings, users: Users) -> Server {
        Server::start_wrapped(backend, settings, users, |router| router).await
    }

    /// The same, with the router wrapped by `wrap` (to imitate another implementation's answers).
    pub async fn start_wrapped(
        backend: Backend,
        settings: ServerSettings,
        users: Users,
        wrap: impl FnOnce(axum::Router) -> axum::Router,
    ) -> Server {
        Server::start_on(Peer::new(backend).await, settings, users, wrap).await
    }

    /// A server on `peer`'s database.
    pub async fn start_on(
        peer: Peer,
        settings: ServerSettings,
        users: Users,
        wrap: impl FnOnce(axum::Router) -> axum::Router,
    ) -> Server {
        let (engine, test_db) = peer.split();
        let root = certificate::generate_root(engine.db(), "full-facility", &Map::new()).await.unwrap();
        let facility = fixtures::facility_of_dataset(engine.db(), "Riverside", root.id()).await;
        let mut users = users;
        users.facility = Some(root.id().to_owned());
        let users = Arc::new(std::sync::RwLock::new(users));
        let api = MorangoApi::new(engine, settings.clone(), Arc::new(SharedUsers(users.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let router = wrap(api::router(api.clone()));
        let task = tokio::spawn(async move {
            api::serve(listener, router, &settings, std::future::pending()).await.ok();
        });
        Server { api, users, url, root, facility, test_db, task }
    }

    /// A middle device: a client that synced its certificate's scope with another server now serves what it holds
    /// with that certificate, to clients of its own (their certificates are signed by it).
    pub async fn relay(client: Client, settings: ServerSettings, users: Users) -> Server {
        let Client { peer, certificate } = client;
        let facility = crate::schema::facility::Entity::find()
            .one(peer.db())
            .await
            .unwrap()
            .expect("the middle device synced the facility");
        let (engine, test_db) = peer.split();
        let mut users = users;
        users.facility = Some(facility.id.clone());
        let users = Arc::new(std::sync::RwLock::new(users));
        let api = MorangoApi::new(engine, settings.clone(), Arc::new(SharedUsers(users.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let router = api::router(api.clone());
        let task = tokio::spawn(async move {
            api::serve(listener, router, &settings, std::future::pending()).await.ok();
        });
        Server { api, users, url, root: certificate, facility, test_db, task }
    }

    /// Replaces the accounts the server knows.
    pub fn with_users(self, mut users: Users) -> Self {
        users.facility = Some(self.root.id().to_owned());
        if let Ok(mut current) = self.users.write() {
            *current = users;
        }
        self
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.api.engine().db()
    }

    /// The whole facility.
    pub fn facility_filter(&self) -> Filter {
        Filter::new([self.facility.id.clone()])
    }

    pub async fn finish(self) {
        self.task.abort();
        drop(self.api);
        self.test_db.finish().await;
    }
}

/// A client database that obtained a certificate from `server` and opened a sync session.
pub struct Client {
    pub peer: Peer,
    pub certificate: Certificate,
}

/// The scope a client asks for.
pub enum Wants<'a> {
    /// The whole facility (as `admin`).
    Facility,
    /// One learner's partitions, as that learner.
    Learner { username: &'a str, learner_id: &'a str },
}

impl Client {
    /// A new client database with a certificate for `wants`, issued by `server`.
    pub async fn enrol(backend: Backend, server: &Server, wants: Wants<'_>) -> Client {
        Client::enrol_with_chunk_size(backend, server, wants, 500).await
    }

    /// The same, with records moving in chunks of `chunk_size`.
    pub async fn enrol_with_chunk_size(backend: Backend, server: &Server, wants: Wants<'_>, chunk_size: u64) -> Client {
        let peer = Peer::with(backend, crate::schema::Tables::Current, &crate::schema::FACILITY_DATA, chunk_size).await;
        let certificate = {
            let connection = connect(&peer, server).await;
            let facility_id = server.facility.id.clone();
            let (definition, params, credentials) = match wants {
                Wants::Facility => (
                    "full-facility",
                    json!({"facility_id": facility_id}),
                    client::Credentials { username: "admin".into(), password: "admin-password".into() },
                ),
                Wants::Learner { username, learner_id } => (
                    "single-user",
                    json!({"facility_id": facility_id, "user_id": learner_id}),
                    client::Credentials { username: username.into(), password: format!("{username}-password") },
                ),
            };
            let Value::Object(params) = params else { unreachable!() };
            connection.request_certificate(&server.root, definition, &params, &credentials).await.expect("CSR")
        };
        Client { peer, certificate }
    }

    /// Opens a sync session with `server`.
    pub async fn open(&self, server: &Server) -> NetworkSession {
        connect(&self.peer, server).await.open_session(&self.certificate, &server.root).await.expect("sync session")
    }

    /// The certificate's read and write filters.
    pub async fn scope(&self) -> morango::filter::Scope {
        certificate::scope_of(self.peer.db(), &self.certificate).await.unwrap()
    }

    /// Pulls then pushes within the certificate's scope, in a new session.
    pub async fn sync(&self, server: &Server) -> morango::SyncReport {
        let session = self.open(server).await;
        let scope = self.scope().await;
        let client = session.client(&self.peer.engine);
        let pull = client.pull(&scope.read).await.expect("pull");
        let push = client.push(&scope.write).await.expect("push");
        client.close().await.expect("close");
        morango::SyncReport { pull: Some(pull), push: Some(push) }
    }

    pub async fn finish(self) {
        self.peer.finish().await;
    }
}

/// A connection from `peer` to `server` with every capability this implementation has.
pub async fn connect<'a>(peer: &'a Peer, server: &Server) -> NetworkSyncConnection<'a> {
    NetworkSyncConnection::connect(&peer.engine, &server.url, Capabilities::all(), HttpSettings::default())
        .await
        .expect("connect")
}
