//! Bad input and attacks against every endpoint (issue 3), spoken in raw HTTP: each is answered with a 4xx and
//! a JSON `detail` that says what was wrong, writes nothing and never panics the server.

use std::io::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use morango::api::ServerSettings;
use morango::capabilities::Capabilities;
use morango::certificate::{self, Certificate, PrivateKey, PublicKey};
use morango::client::HttpSettings;
use morango::ids::{random_id, sha2_uuid};
use morango::wire::{SEQUENCE_HEADER, SESSION_HEADER, SIGNATURE_HEADER, canonical_request};
use reqwest::header::{CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Map, Value, json};

use super::harness::{Client, Server, Users, Wants};
use crate::fixtures;
use crate::on_both_backends;
use crate::support::Backend;

/// What a Python 0.8 client advertises: everything but signed requests.
const PYTHON: &str = "FSIC_V2_FORMAT GZIP_BUFFER_POST ASYNC_OPERATIONS";
/// What a morango-rs client advertises.
const SIGNING: &str = "FSIC_V2_FORMAT GZIP_BUFFER_POST ASYNC_OPERATIONS MORANGO_RS_SIGNED_REQUESTS";
const EMPTY_FSIC: &str = r#"{"super": {}, "sub": {}}"#;

// ---------------------------------------------------------------------------------------------------------------
// Raw HTTP

/// The server's API, spoken by hand.
struct Api {
    http: reqwest::Client,
    base: String,
}

/// An answer, read whole.
struct Answer {
    what: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    /// Asserts a refusal with `status` and a JSON `detail`; returns the detail.
    #[track_caller]
    fn refused(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "{}: answered {} {}", self.what, self.status, self.body);
        let detail = self.body.get("detail").and_then(Value::as_str).unwrap_or_default();
        assert!(!detail.is_empty(), "{}: no JSON detail in {}", self.what, self.body);
        detail.to_owned()
    }

    /// Asserts a refusal with `status` whose detail mentions `words`.
    #[track_caller]
    fn refused_saying(&self, status: u16, words: &str) -> String {
        let detail = self.refused(status);
        assert!(detail.contains(words), "{}: detail {detail:?} should mention {words:?}", self.what);
        detail
    }

    /// Asserts a success with `status`; returns the body.
    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}: answered {} {}", self.what, self.status, self.body);
        &self.body
    }
}

impl Api {
    fn new(server: &Server) -> Api {
        // Installs the TLS crypto provider reqwest is built to expect.
        morango::client::Http::new(&server.url, Capabilities::all(), HttpSettings::default()).unwrap();
        // A fresh connection per request: after a server refused a body unread (413) it closes the connection,
        // and a pooled client could send the next request into that closing connection.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Api { http, base: format!("{}api/morango/v1/", server.url) }
    }

    /// A request as a Python client makes it.
    fn at(&self, method: Method, path: &str) -> RequestBuilder {
        self.at_with(PYTHON, method, path)
    }

    /// A request from a client with capabilities `caps`.
    fn at_with(&self, caps: &str, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("X-Morango-Capabilities", caps)
    }

    async fn send(&self, what: impl Into<String>, request: RequestBuilder) -> Answer {
        let what = what.into();
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: the server did not answer: {e:?}"));
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{what}: the answer broke off: {e}"));
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("{what}: {status} with a body that is not JSON: {:?}", String::from_utf8_lossy(&bytes))
            })
        };
        Answer { what, status, headers, body }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(format!("GET {path}"), self.at(Method::GET, path)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(format!("DELETE {path}"), self.at(Method::DELETE, path)).await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(format!("POST {path} {}", shown(body)), self.at(Method::POST, path).json(body)).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(format!("PATCH {path} {}", shown(body)), self.at(Method::PATCH, path).json(body)).await
    }

    /// A body sent as is.
    async fn raw(&self, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let what = format!("{method} {path} <{} bytes of {content_type}>", body.len());
        self.send(what, self.at(method, path).header(CONTENT_TYPE, content_type).body(body)).await
    }
}

/// A request body as a failure message shows it: the start of it.
fn shown(body: &Value) -> String {
    body.to_string().chars().take(600).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// What the server holds

/// Row counts of every table a request could write to.
#[derive(Debug, PartialEq, Eq)]
struct Rows(Vec<(&'static str, i64)>);

impl Rows {
    /// The counts without some tables (sessions that the test opened meanwhile).
    fn without(mut self, a: &str, b: &str) -> Rows {
        self.0.retain(|(table, _)| *table != a && *table != b);
        self
    }
}

const TABLES: [&str; 11] = [
    "morango_store",
    "morango_recordmaxcounter",
    "morango_databasemaxcounter",
    "morango_transferqueue",
    "morango_buffer",
    "morango_recordmaxcounterbuffer",
    "morango_refusedrecord",
    "morango_certificate",
    "morango_syncsession",
    "morango_transfersession",
    "morango_sharedkey",
];

async fn rows(db: &DatabaseConnection) -> Rows {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push((table, count(db, &format!("SELECT COUNT(*) AS n FROM {table}")).await));
    }
    Rows(counts)
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

/// Runs `sql` with `$1`, `$2` … placeholders on either backend.
async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Sqlite { sql.replace("$1", "?").replace("$2", "?") } else { sql.to_owned() };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap();
}

/// Every `(partition, instance, counter)` of the database-max counters.
async fn dmc(db: &DatabaseConnection) -> Vec<(String, String, i64)> {
    let statement = Statement::from_string(
        db.get_database_backend(),
        "SELECT partition, instance_id, counter FROM morango_databasemaxcounter ORDER BY partition, instance_id",
    );
    let rows = db.query_all_raw(statement).await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "partition").unwrap(),
                r.try_get("", "instance_id").unwrap(),
                r.try_get("", "counter").unwrap(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions by hand

/// The body of `POST syncsessions/` for `chain` (JSON text), signing `"<nonce>:<id>"` with `key`.
fn handshake_body(chain: &str, client_id: &str, server: &Server, nonce: &str, id: &str, key: &PrivateKey) -> Value {
    json!({
        "id": id,
        "server_certificate_id": server.root.id(),
        "client_certificate_id": client_id,
        "profile": "facilitydata",
        "certificate_chain": chain,
        "connection_path": server.url,
        "instance": json!({"id": random_id()}).to_string(),
        "nonce": nonce,
        "client_ip": "",
        "server_ip": "",
        "signature": key.sign(&format!("{nonce}:{id}")).unwrap(),
    })
}

async fn nonce(api: &Api) -> String {
    api.post("nonces/", &Value::Null).await.ok(201)["id"].as_str().unwrap().to_owned()
}

async fn chain_of(client: &Client) -> String {
    certificate::chain_json(&certificate::chain_of(client.peer.db(), client.certificate.id()).await.unwrap())
}

fn key_of(client: &Client) -> &PrivateKey {
    client.certificate.private_key().unwrap()
}

/// Opens a sync session the way a Python client does (capabilities `caps`); returns its id.
async fn open(api: &Api, server: &Server, client: &Client, caps: &str) -> String {
    let id = random_id();
    let body = handshake_body(
        &chain_of(client).await,
        client.certificate.id(),
        server,
        &nonce(api).await,
        &id,
        key_of(client),
    );
    let request = api.at_with(caps, Method::POST, "syncsessions/").json(&body);
    api.send("open a sync session", request).await.ok(201);
    id
}

fn transfer_body(session: &str, filter: &str, push: bool) -> Value {
    json!({"id": random_id(), "filter": filter, "push": push, "sync_session_id": session, "client_fsic": "{}"})
}

/// Creates a push transfer and brings it to the point where it receives records; returns its id.
async fn push_transfer(api: &Api, session: &str, filter: &str, records_total: i64) -> String {
    let created = api.post("transfersessions/", &transfer_body(session, filter, true)).await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    let path = format!("transfersessions/{id}/");
    api.patch(&path, &json!({"transfer_stage": "queuing", "records_total": records_total})).await.ok(200);
    id
}

/// Creates a pull transfer and has the server queue its records; returns its id and how many it queued.
async fn pull_transfer(api: &Api, session: &str, filter: &str, client_fsic: &str) -> Result<(String, i64), Answer> {
    let created = api.post("transfersessions/", &transfer_body(session, filter, false)).await;
    if created.status != StatusCode::CREATED {
        return Err(created);
    }
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("transfersessions/{id}/");
    let serialized = api.patch(&path, &json!({"transfer_stage": "serializing", "client_fsic": client_fsic})).await;
    if serialized.status != StatusCode::OK {
        return Err(serialized);
    }
    let queued = api.patch(&path, &json!({"transfer_stage": "queuing"})).await;
    let total = queued.ok(200)["records_total"].as_i64().unwrap();
    Ok((id, total))
}

/// Pulls everything `filter` gives this session, then closes the transfer.
async fn pull_all(api: &Api, session: &str, filter: &str, client_fsic: &str) -> Result<Vec<Value>, Answer> {
    let (id, _) = pull_transfer(api, session, filter, client_fsic).await?;
    let page = api.get(&format!("buffers/?transfer_session_id={id}&limit=5000&offset=0")).await;
    let records = page.ok(200)["results"].as_array().unwrap().clone();
    api.delete(&format!("transfersessions/{id}/")).await.ok(204);
    Ok(records)
}

/// A valid `note` record for a push transfer: partition `partition`, id computed as Morango does.
fn note(transfer: &str, partition: &str) -> Value {
    record(transfer, partition, "note")
}

fn record(transfer: &str, partition: &str, model_name: &str) -> Value {
    shaped(transfer, model_name, partition, &random_id(), json!({"facility_id": partition, "text": "hello"}))
}

/// A record of `model_name` with these fields, its id computed from `partition` (without `${id}`) and
/// `source_id` as Morango does, and the bookkeeping keys inside its JSON.
fn shaped(transfer: &str, model_name: &str, partition: &str, source_id: &str, fields: Value) -> Value {
    let id = sha2_uuid(&[partition, source_id, model_name]);
    let mut fields = fields.as_object().unwrap().clone();
    fields.insert("id".into(), json!(id));
    fields.insert("_morango_source_id".into(), json!(source_id));
    fields.insert("_morango_partition".into(), json!(partition));
    let instance = random_id();
    json!({
        "serialized": Value::Object(fields).to_string(),
        "deleted": false,
        "last_saved_instance": instance,
        "last_saved_counter": 3,
        "hard_deleted": false,
        "partition": partition,
        "source_id": source_id,
        "model_name": model_name,
        "conflicting_serialized_data": "",
        "model_uuid": id,
        "transfer_session": transfer,
        "profile": "facilitydata",
        "rmcb_list": [{"transfer_session": transfer, "model_uuid": id, "instance_id": instance, "counter": 3}],
        "_self_ref_fk": "",
    })
}

/// A certificate object signed by `signer`, with whatever fields an attacker likes.
fn forge(
    parent: &str,
    definition: &str,
    params: Value,
    public_key: &PublicKey,
    salt: &str,
    signer: &PrivateKey,
) -> Value {
    let id = Certificate::calculate_id(public_key.as_str(), "facilitydata", salt);
    let serialized = json!({
        "id": id, "parent_id": parent, "profile": "facilitydata", "salt": salt, "scope_definition_id": definition,
        "scope_version": 1, "scope_params": params.to_string(), "public_key_string": public_key.as_str(),
    })
    .to_string();
    let signature = signer.sign(&serialized).unwrap();
    json!({"id": id, "serialized": serialized, "signature": signature})
}

/// A new self-signed root of its own facility.
fn forged_root(key: &PrivateKey) -> Value {
    let id = Certificate::calculate_id(key.public_key().as_str(), "facilitydata", "");
    let serialized = json!({
        "id": id, "parent_id": null, "profile": "facilitydata", "salt": "", "scope_definition_id": "full-facility",
        "scope_version": 1, "scope_params": json!({"facility_id": id}).to_string(),
        "public_key_string": key.public_key().as_str(),
    })
    .to_string();
    json!({"id": id, "serialized": serialized, "signature": key.sign(&serialized).unwrap()})
}

/// Panics with what the server answered.
fn failed<T>(answer: Answer) -> T {
    panic!("{}: answered {} {}", answer.what, answer.status, answer.body)
}

fn fine<T>(result: Result<T, Answer>) -> T {
    result.unwrap_or_else(failed)
}

fn id_of(cert: &Value) -> &str {
    cert["id"].as_str().unwrap()
}

async fn facility_client(backend: Backend, settings: ServerSettings) -> (Server, Client, Api) {
    let server = Server::start(backend, settings, Users::new()).await;
    let client = Client::enrol(backend, &server, Wants::Facility).await;
    let api = Api::new(&server);
    (server, client, api)
}

async fn finish(server: Server, client: Client) {
    client.finish().await;
    server.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed requests

on_both_backends!(
    malformed_json_and_wrong_types_are_400s_on_every_endpoint,
    unknown_ids_are_404s_and_malformed_ids_400s,
    oversized_bodies_and_gzip_bombs_are_413s,
    closed_sessions_and_cleaned_up_transfers_refuse_work,
);

async fn malformed_json_and_wrong_types_are_400s_on_every_endpoint(backend: Backend) {
    let settings = ServerSettings { allow_certificate_pushing: true, ..Default::default() };
    let (server, client, api) = facility_client(backend, settings).await;
    let session = open(&api, &server, &client, PYTHON).await;
    let root = server.root.id().to_owned();
    let push = push_transfer(&api, &session, &root, 1).await;
    let patch = format!("transfersessions/{push}/");
    let before = rows(server.db()).await;

    let garbage: [&[u8]; 8] =
        [b"", b"{", b"[1, 2", b"nul", b"\xff\xfe{}", b"{\"a\": 1}}", b"\"\\ud800\"", b"{\"id\": \"\x00\"}"];
    for (method, path) in [
        (Method::POST, "syncsessions/"),
        (Method::POST, "transfersessions/"),
        (Method::PATCH, patch.as_str()),
        (Method::POST, "buffers/"),
        (Method::POST, "certificatechain/"),
    ] {
        for body in garbage {
            api.raw(method.clone(), path, "application/json", body.to_vec()).await.refused(400);
        }
    }
    for body in garbage {
        let request = api.at(Method::POST, "certificates/").basic_auth("admin", Some("admin-password")).body(body);
        api.send("a CSR with a malformed body", request).await.refused(400);
    }

    let handshake = handshake_body(
        &chain_of(&client).await,
        client.certificate.id(),
        &server,
        &random_id(),
        &random_id(),
        key_of(&client),
    );
    let with = |base: &Value, key: &str, value: Value| {
        let mut body = base.clone();
        match value {
            Value::Null => body.as_object_mut().unwrap().remove(key),
            value => body.as_object_mut().unwrap().insert(key.into(), value),
        };
        body
    };
    for (key, value) in [
        ("id", json!(5)),
        ("id", Value::Null),
        ("signature", json!(["a"])),
        ("certificate_chain", json!({"a": 1})),
        ("nonce", json!(true)),
        ("client_certificate_id", json!(1.5)),
        ("instance", json!({"id": 1})),
        ("instance", json!("{nope")),
        ("instance", json!("[]")),
        ("instance", json!("{}")),
        ("instance", json!(r#"{"id": "not an instance id"}"#)),
        ("instance", json!(format!(r#"{{"id": "{}", "padding": "{}"}}"#, random_id(), "x".repeat(70_000)))),
        ("profile", json!("anotherprofile")),
    ] {
        api.post("syncsessions/", &with(&handshake, key, value)).await.refused(400);
    }
    for body in [json!([]), json!("text"), json!(42), json!({})] {
        api.post("syncsessions/", &body).await.refused(400);
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    for path in ["syncsessions/", "buffers/", "certificatechain/"] {
        api.raw(Method::POST, path, "application/json", deep.clone()).await.refused_saying(400, "recursion");
    }

    let transfer = transfer_body(&session, &root, true);
    for (key, value) in [
        ("push", json!("yes")),
        ("push", Value::Null),
        ("filter", json!([root])),
        ("filter", json!(7)),
        ("records_total", json!("many")),
        ("records_total", json!(1.5)),
        ("sync_session_id", json!(null)),
        ("sync_session_id", json!({"id": session})),
        ("client_fsic", json!({"super": {}, "sub": {}})),
        ("id", json!(12345678901234567890u64)),
        ("records_total", json!(-1)),
    ] {
        api.post("transfersessions/", &with(&transfer, key, value)).await.refused(400);
    }

    for body in [
        json!([]),
        json!("queuing"),
        json!({"transfer_stage": 3}),
        json!({"transfer_stage": "flying"}),
        json!({"transfer_stage": "QUEUING"}),
        json!({"records_total": "x"}),
        json!({"records_transferred": [1]}),
        json!({"client_fsic": {"super": {}, "sub": {}}}),
        json!({"bytes_sent": "lots"}),
        json!({"surprise": 1}),
        json!({"records_total": -1}),
        json!({"records_transferred": -5}),
        json!({"records_refused": -2}),
    ] {
        api.patch(&patch, &body).await.refused(400);
    }

    let good = note(&push, &root);
    let mut records = vec![json!({}), json!([1]), json!("text"), json!([]), json!([null]), json!([[good.clone()]])];
    for (key, value) in [
        ("deleted", json!("no")),
        ("last_saved_counter", json!("3")),
        ("last_saved_counter", json!(1.5)),
        ("last_saved_counter", json!(u64::MAX)),
        ("rmcb_list", json!({})),
        ("rmcb_list", json!([1])),
        ("transfer_session", json!(5)),
        ("serialized", json!({"id": 1})),
        ("partition", Value::Null),
    ] {
        records.push(json!([with(&good, key, value)]));
    }
    for body in records {
        api.post("buffers/", &body).await.refused(400);
    }

    let key = PrivateKey::generate().unwrap();
    let params = Map::from_iter([("facility_id".to_owned(), json!(root))]);
    let csr =
        serde_json::to_value(certificate::signing_request(&server.root, "full-facility", &params, key.public_key()))
            .unwrap();
    for (key, value) in [
        ("parent", json!(1)),
        ("parent", Value::Null),
        ("scope_version", json!("one")),
        ("scope_params", json!({"facility_id": root})),
        ("scope_params", Value::Null),
        ("public_key", json!(["MIIB"])),
    ] {
        let request = api
            .at(Method::POST, "certificates/")
            .basic_auth("admin", Some("admin-password"))
            .json(&with(&csr, key, value));
        api.send(format!("a CSR with a wrong {key}"), request).await.refused(400);
    }

    for body in [json!({}), json!(42), json!([1]), json!("[{]"), json!("{}"), json!([{"id": root}])] {
        api.post("certificatechain/", &body).await.refused(403);
    }
    assert_eq!(rows(server.db()).await, before, "a malformed request wrote something");
    finish(server, client).await;
}

async fn unknown_ids_are_404s_and_malformed_ids_400s(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let session = open(&api, &server, &client, PYTHON).await;
    let before = rows(server.db()).await;
    let unknown = random_id();

    for path in ["syncsessions", "transfersessions", "certificates"] {
        api.get(&format!("{path}/{unknown}/")).await.refused(404);
    }
    api.delete(&format!("syncsessions/{unknown}/")).await.refused(404);
    api.delete(&format!("transfersessions/{unknown}/")).await.refused(404);
    api.patch(&format!("transfersessions/{unknown}/"), &json!({"transfer_stage": "queuing"})).await.refused(404);
    api.get(&format!("buffers/?transfer_session_id={unknown}")).await.refused(404);
    api.post("transfersessions/", &transfer_body(&unknown, server.root.id(), false)).await.refused(404);
    api.post("buffers/", &json!([note(&unknown, server.root.id())])).await.refused(404);
    // The server's certificates are public, a client's are not listed.
    api.get(&format!("certificates/{}/", client.certificate.id())).await.refused(404);
    assert_eq!(api.get(&format!("certificates/?ancestors_of={unknown}")).await.ok(200), &json!([]));
    assert_eq!(api.get(&format!("certificates/?primary_partition={unknown}")).await.ok(200), &json!([]));

    let malformed = [
        "abc",
        "ABCDEF0123456789ABCDEF0123456789",
        "0123456789abcdef0123456789abcdef0",
        "%FF%FE",
        "%00",
        "1'%20OR%20'1'%3D'1",
        "..%2F..%2Fetc%2Fpasswd",
        "%E2%80%AE0123456789abcdef0123456789abcd",
    ];
    for id in malformed {
        for path in ["syncsessions", "transfersessions", "certificates"] {
            api.get(&format!("{path}/{id}/")).await.refused(400);
        }
        api.delete(&format!("syncsessions/{id}/")).await.refused(400);
        api.delete(&format!("transfersessions/{id}/")).await.refused(400);
        api.patch(&format!("transfersessions/{id}/"), &json!({})).await.refused(400);
        api.get(&format!("buffers/?transfer_session_id={id}")).await.refused(400);
        api.get(&format!("certificates/?ancestors_of={id}")).await.refused(400);
        api.get(&format!("certificates/?primary_partition={id}")).await.refused(400);
    }
    api.get("buffers/").await.refused(400);
    api.get("buffers/?transfer_session_id=").await.refused(400);
    api.get("certificates/?profile=%00").await.refused_saying(400, "NUL");
    assert_eq!(
        api.get("certificates/?profile=%27%3B%20DROP%20TABLE%20morango_certificate%3B--").await.ok(200),
        &json!([])
    );
    for bad in ["abc", "ABCDEF0123456789ABCDEF0123456789", "\u{0}"] {
        let mut body = transfer_body(&session, server.root.id(), false);
        body["id"] = json!(bad);
        api.post("transfersessions/", &body).await.refused(400);
        let mut body = transfer_body(&session, server.root.id(), false);
        body["sync_session_id"] = json!(bad);
        api.post("transfersessions/", &body).await.refused(400);
        api.post("buffers/", &json!([note(bad, server.root.id())])).await.refused(400);
    }

    for path in ["nothing/", "syncsessions", "api/morango/v1/nonces/", "morangoinfo/"] {
        api.get(path).await.refused(404);
    }
    for (method, path) in [
        (Method::GET, "nonces/".to_owned()),
        (Method::GET, "syncsessions/".to_owned()),
        (Method::GET, "transfersessions/".to_owned()),
        (Method::PUT, format!("transfersessions/{unknown}/")),
        (Method::POST, "morangoinfo/1/".to_owned()),
        (Method::DELETE, "certificates/".to_owned()),
        (Method::PATCH, "buffers/".to_owned()),
    ] {
        api.send(format!("{method} {path}"), api.at(method, &path)).await.refused(405);
    }
    assert_eq!(rows(server.db()).await, before, "a request with a bad id wrote something");
    finish(server, client).await;
}

async fn oversized_bodies_and_gzip_bombs_are_413s(backend: Backend) {
    let limit = 64 * 1024;
    let settings = ServerSettings {
        max_body_bytes: limit,
        allow_certificate_pushing: true,
        body_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let (server, client, api) = facility_client(backend, settings).await;
    let session = open(&api, &server, &client, PYTHON).await;
    let root = server.root.id().to_owned();
    let push = push_transfer(&api, &session, &root, 1).await;
    let patch = format!("transfersessions/{push}/");
    let before = rows(server.db()).await;

    let big = format!("[{}]", " ".repeat(4 * limit)).into_bytes();
    let bomb = gzip(format!("[{}]", " ".repeat(16 * 1024 * 1024)).as_bytes());
    assert!(bomb.len() < limit, "the bomb itself is small: {} bytes", bomb.len());
    for (method, path) in [
        (Method::POST, "syncsessions/"),
        (Method::POST, "transfersessions/"),
        (Method::PATCH, patch.as_str()),
        (Method::POST, "buffers/"),
        (Method::POST, "certificates/"),
        (Method::POST, "certificatechain/"),
    ] {
        let send = |content_type: &str, body: Vec<u8>| {
            let what = format!("{method} {path} <{} bytes of {content_type}>", body.len());
            // A CSR's body is read only once its sender is authenticated.
            let request = api.at(method.clone(), path).basic_auth("admin", Some("admin-password"));
            let request = request.header(CONTENT_TYPE, content_type).body(body);
            let api = &api;
            async move { api.send(what, request).await }
        };
        send("application/json", big.clone()).await.refused_saying(413, "exceeds 65536 bytes");
        send("application/gzip", bomb.clone()).await.refused_saying(413, "exceeds 65536 bytes");
        send("application/gzip", b"not gzip at all".to_vec()).await.refused_saying(400, "gzip");
        let small = gzip(b"[1, 2, 3]");
        send("application/gzip", small[..small.len() - 6].to_vec()).await.refused_saying(400, "gzip");
    }
    // Many records in one chunk, each valid: refused by size before anything is parsed.
    let many: Vec<Value> = (0..200).map(|_| note(&push, &root)).collect();
    api.raw(Method::POST, "buffers/", "application/json", serde_json::to_vec(&many).unwrap()).await.refused(413);
    assert_eq!(rows(server.db()).await, before, "an oversized request wrote something");

    // A sender that stalls halfway through its body is cut off.
    let address = server.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/morango/v1/buffers/ HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n[{{\"serialized\": "
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        if answer.ends_with(b"}") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "a stalled body: {answer}");
    assert!(answer.contains("\"detail\":\"the request body did not arrive within"), "{answer}");
    assert_eq!(rows(server.db()).await, before);

    // Within the limit, a gzipped chunk is accepted.
    let chunk = serde_json::to_vec(&json!([note(&push, &root)])).unwrap();
    api.raw(Method::POST, "buffers/", "application/gzip", gzip(&chunk)).await.ok(201);
    let stored = format!("SELECT COUNT(*) AS n FROM morango_store WHERE last_transfer_session_id = '{push}'");
    assert_eq!(count(server.db(), &stored).await, 1);
    finish(server, client).await;
}

async fn closed_sessions_and_cleaned_up_transfers_refuse_work(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    fixtures::learner(server.db(), &server.facility, "ada").await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let (pull, total) = fine(pull_transfer(&api, &session, &root, EMPTY_FSIC).await);
    assert!(total > 0);
    api.delete(&format!("transfersessions/{pull}/")).await.ok(204);
    let push = push_transfer(&api, &session, &root, 1).await;
    let before = rows(server.db()).await;

    let cleaned = format!("transfersessions/{pull}/");
    api.get(&cleaned).await.refused(404);
    api.patch(&cleaned, &json!({"transfer_stage": "transferring"})).await.refused(404);
    api.delete(&cleaned).await.refused(404);
    api.get(&format!("buffers/?transfer_session_id={pull}&limit=10")).await.refused(404);
    api.post("buffers/", &json!([note(&pull, &root)])).await.refused(404);
    // A cleaned-up transfer's id cannot be taken again, in this session or another.
    let mut again = transfer_body(&session, &root, false);
    again["id"] = json!(pull);
    api.post("transfersessions/", &again).await.refused(400);
    assert_eq!(rows(server.db()).await, before);

    api.delete(&format!("syncsessions/{session}/")).await.ok(204);
    let before = rows(server.db()).await;
    api.get(&format!("syncsessions/{session}/")).await.refused(404);
    api.delete(&format!("syncsessions/{session}/")).await.refused(404);
    api.post("transfersessions/", &transfer_body(&session, &root, false)).await.refused(404);
    api.get(&format!("transfersessions/{push}/")).await.refused(404);
    api.patch(&format!("transfersessions/{push}/"), &json!({"records_total": 5})).await.refused(404);
    api.post("buffers/", &json!([note(&push, &root)])).await.refused(404);
    // Nor can a closed session's id be opened again.
    let body = handshake_body(
        &chain_of(&client).await,
        client.certificate.id(),
        &server,
        &nonce(&api).await,
        &session,
        key_of(&client),
    );
    api.post("syncsessions/", &body).await.refused(400);
    assert_eq!(rows(server.db()).await, before, "work in a closed session wrote something");
    finish(server, client).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Records

on_both_backends!(
    pushed_records_are_checked_one_by_one_and_only_a_malformed_chunk_is_refused_whole,
    python_hard_deletion_shapes_are_accepted_with_their_payload_erased,
    hostile_payloads_are_merged_without_breaking_the_server,
    buffers_flow_one_way_and_pages_are_bounded,
);

async fn pushed_records_are_checked_one_by_one_and_only_a_malformed_chunk_is_refused_whole(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let push = push_transfer(&api, &session, &root, 100).await;
    let good = note(&push, &root);
    let set = |key: &str, value: Value| {
        let mut record = note(&push, &root);
        record[key] = value;
        record
    };
    let with_rmcb = |key: &str, value: Value| {
        let mut record = note(&push, &root);
        record["rmcb_list"][0][key] = value;
        record
    };
    let with_json = |key: &str, value: Value| {
        let mut record = note(&push, &root);
        let mut fields: Value = serde_json::from_str(record["serialized"].as_str().unwrap()).unwrap();
        fields[key] = value;
        record["serialized"] = json!(fields.to_string());
        record
    };
    // A record with `source_id` changed and its id recomputed, so only the source id is wrong.
    let with_source = |source_id: &str| {
        let mut record = note(&push, &root);
        let id = sha2_uuid(&[&root, source_id, "note"]);
        record["source_id"] = json!(source_id);
        record["model_uuid"] = json!(id);
        record["rmcb_list"][0]["model_uuid"] = json!(id);
        record
    };
    let model_uuid = random_id();
    let mut other_id = set("model_uuid", json!(model_uuid));
    other_id["rmcb_list"][0]["model_uuid"] = json!(model_uuid);

    let cases: Vec<(&str, Value, &str)> = vec![
        ("a partition outside the filter", record(&push, "elsewhere", "note"), "outside"),
        ("a partition outside the filter that embeds it", record(&push, &format!("x{root}"), "note"), "outside"),
        ("a model_uuid not from partition, source id and model name", other_id, "does not match"),
        ("another model name", set("model_name", json!("learner")), "username"),
        ("another source id", set("source_id", json!(random_id())), "does not match"),
        (
            "another partition inside the filter",
            set("partition", json!(format!("{root}:x"))),
            "fields give the partition",
        ),
        ("fields that give another partition", with_json("facility_id", json!(format!("{root}:x"))), "fields give"),
        ("another record's id inside the JSON", with_json("id", json!(random_id())), "JSON `id`"),
        ("another partition inside the JSON", with_json("_morango_partition", json!("x")), "JSON `_morango_partition`"),
        ("serialized data that is not an object", set("serialized", json!("[1]")), "JSON object"),
        ("serialized data that is not JSON", set("serialized", json!("{")), "JSON object"),
        ("a counter of another transfer", with_rmcb("transfer_session", json!(random_id())), "counter"),
        ("a counter of another record", with_rmcb("model_uuid", json!(random_id())), "counter"),
        ("counters behind the record's version", with_rmcb("counter", json!(1)), "counter"),
        ("a counter with a malformed instance", with_rmcb("instance_id", json!("me")), "counter"),
        ("a negative counter", with_rmcb("counter", json!(-1)), "counter"),
        ("no counters", set("rmcb_list", json!([])), "counter"),
        ("a negative version", set("last_saved_counter", json!(-3)), "negative"),
        ("a malformed last_saved_instance", set("last_saved_instance", json!("xyz")), "32 lowercase hex"),
        ("a malformed record id", set("model_uuid", json!("0123")), "32 lowercase hex"),
        ("a malformed self-reference", set("_self_ref_fk", json!("parent")), "_self_ref_fk"),
        ("an empty source id", with_source(""), "source id"),
        ("an overlong source id", with_source(&"s".repeat(97)), "source id"),
        ("an overlong model name", set("model_name", json!("m".repeat(41))), "model name"),
    ];
    let staged = |id: &str| format!("SELECT COUNT(*) AS n FROM morango_store WHERE id = '{id}'");
    for (what, bad, words) in &cases {
        // A good record in the same chunk is stored; the bad one is refused alone, with its reason.
        let fine = note(&push, &root);
        let answer = api.post("buffers/", &json!([fine.clone(), bad])).await;
        let refused = answer.ok(201)["refused"].as_array().unwrap().clone();
        assert_eq!(refused.len(), 1, "{what}: {refused:?}");
        assert_eq!(refused[0]["model_uuid"], bad["model_uuid"], "{what}");
        let reason = refused[0]["reason"].as_str().unwrap();
        assert!(reason.contains(words), "{what}: {reason:?} should mention {words:?}");
        assert_eq!(count(server.db(), &staged(fine["model_uuid"].as_str().unwrap())).await, 1, "{what}");
        let bad_id = bad["model_uuid"].as_str().unwrap();
        if bad_id != fine["model_uuid"] {
            assert_eq!(count(server.db(), &staged(bad_id)).await, 0, "{what}: the refused record was staged");
        }
    }
    // Every refusal is in the table an operator reads, with its reason; the transfer counts them.
    let refusals = morango::refused_records(server.db(), Some(&push)).await.unwrap();
    assert_eq!(refusals.len(), cases.len());
    assert!(refusals.iter().all(|r| !r.by_peer && r.peer_instance_id.is_some() && !r.refusal.reason.is_empty()));
    let ts = api.get(&format!("transfersessions/{push}/")).await;
    assert_eq!(ts.ok(200)["records_refused"], cases.len());
    assert_eq!(ts.ok(200)["records_transferred"], 2 * cases.len());

    // Malformed as a whole: nothing of the chunk is written.
    let before = rows(server.db()).await;
    let mut unknown_key = good.clone();
    unknown_key["surprise"] = json!(1);
    let mut unknown_rmcb_key = good.clone();
    unknown_rmcb_key["rmcb_list"][0]["surprise"] = json!(1);
    let mut missing_key = good.clone();
    missing_key.as_object_mut().unwrap().remove("_self_ref_fk");
    for (bad, words) in [
        (unknown_key, "surprise"),
        (unknown_rmcb_key, "surprise"),
        (missing_key, "_self_ref_fk"),
        (with_source("a\u{0}b"), "NUL"),
        (set("conflicting_serialized_data", json!("x\u{0}")), "NUL"),
    ] {
        api.post("buffers/", &json!([good.clone(), bad])).await.refused_saying(400, words);
    }
    api.post("buffers/", &json!([good.clone(), good.clone()])).await.refused_saying(400, "twice");
    let other = push_transfer(&api, &open(&api, &server, &client, PYTHON).await, &root, 1).await;
    api.post("buffers/", &json!([good.clone(), note(&other, &root)])).await.refused_saying(403, "same TransferSession");
    assert_eq!(
        rows(server.db()).await.without("morango_transfersession", "morango_syncsession"),
        before.without("morango_transfersession", "morango_syncsession"),
        "a malformed chunk wrote something"
    );

    // The good record is accepted, and sending it again changes nothing, nor counts it again.
    api.post("buffers/", &json!([good.clone()])).await.ok(201);
    api.post("buffers/", &good).await.ok(201);
    assert_eq!(count(server.db(), &staged(good["model_uuid"].as_str().unwrap())).await, 1);
    let ts = api.get(&format!("transfersessions/{push}/")).await;
    assert_eq!(ts.ok(200)["records_transferred"], 2 * cases.len() + 1);
    // Sent again as a newer version (a retried chunk after the sender saved again), it replaces the staged one.
    let mut newer = good.clone();
    newer["last_saved_counter"] = json!(8);
    newer["rmcb_list"][0]["counter"] = json!(8);
    api.post("buffers/", &json!([newer])).await.ok(201);
    let id = good["model_uuid"].as_str().unwrap();
    let version = format!("SELECT last_saved_counter AS n FROM morango_store WHERE id = '{id}'");
    assert_eq!(count(server.db(), &version).await, 8);
    let counter = format!("SELECT MAX(counter) AS n FROM morango_recordmaxcounter WHERE store_model_id = '{id}'");
    assert_eq!(count(server.db(), &counter).await, 8);

    // A chunk of more records than a database binds in one statement is staged whole.
    let big = push_transfer(&api, &open(&api, &server, &client, PYTHON).await, &root, 5000).await;
    let chunk: Vec<Value> = (0..5000).map(|_| note(&big, &root)).collect();
    api.post("buffers/", &Value::Array(chunk)).await.ok(201);
    let staged = format!("SELECT COUNT(*) AS n FROM morango_store WHERE last_transfer_session_id = '{big}'");
    assert_eq!(count(server.db(), &staged).await, 5000);
    finish(server, client).await;
}

/// What Python Morango 0.8.15 writes when a hard deletion meets an edit is accepted as a hard deletion, with the
/// payload it kept erased: the conflict history of a local hard deletion (SQLite backend), and an incoming hard
/// deletion marked only by an empty `serialized` (PostgreSQL backend).
async fn python_hard_deletion_shapes_are_accepted_with_their_payload_erased(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let push = push_transfer(&api, &session, &root, 3).await;
    let mut kept_edit = note(&push, &root);
    kept_edit["hard_deleted"] = json!(true);
    kept_edit["deleted"] = json!(true);
    kept_edit["serialized"] = json!("{}");
    kept_edit["conflicting_serialized_data"] = json!("{\"text\": \"secret\"}\n");
    let mut postgres_conflict = note(&push, &root);
    postgres_conflict["deleted"] = json!(true);
    postgres_conflict["serialized"] = json!("");
    let mut with_payload = note(&push, &root);
    with_payload["hard_deleted"] = json!(true);
    let answer = api.post("buffers/", &json!([kept_edit, postgres_conflict, with_payload])).await;
    assert_eq!(answer.ok(201)["refused"], json!([]));
    let erased = format!(
        "SELECT COUNT(*) AS n FROM morango_store WHERE last_transfer_session_id = '{push}' AND hard_deleted = true \
         AND deleted = true AND serialized IN ('', '{{}}') AND conflicting_serialized_data = ''"
    );
    assert_eq!(count(server.db(), &erased).await, 3);
    let done = api.patch(&format!("transfersessions/{push}/"), &json!({"transfer_stage": "cleanup"})).await;
    assert_eq!(done.ok(200)["transfer_stage_status"], "completed", "{}", done.body);
    let kept = "SELECT COUNT(*) AS n FROM morango_store WHERE hard_deleted = true AND conflicting_serialized_data = '' \
                AND serialized NOT LIKE '%secret%' AND serialized NOT LIKE '%hello%'";
    assert_eq!(count(server.db(), kept).await, 3);
    finish(server, client).await;
}

async fn hostile_payloads_are_merged_without_breaking_the_server(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let push = push_transfer(&api, &session, &root, 6).await;
    let fine_note = shaped(&push, "note", &root, &random_id(), json!({"facility_id": root, "text": "fine"}));
    let wrong_type =
        shaped(&push, "note", &root, &random_id(), json!({"facility_id": root, "text": {"nested": [1, 2]}}));
    let nobody = random_id();
    let dangling = shaped(
        &push,
        "contentlog",
        &format!("{root}:user-rw:{nobody}"),
        &random_id(),
        json!({"facility_id": root, "learner_id": nobody, "content": "orphan", "progress": 0.5}),
    );
    let unknown_model = shaped(&push, "nosuchmodel", &root, &random_id(), json!({"anything": true}));
    // Two groups, each the other's parent.
    let group = |name: &str, parent: &str| {
        let mut group = shaped(
            &push,
            "learnergroup",
            &root,
            &format!("{root}:{name}"),
            json!({"facility_id": root, "name": name, "parent_id": parent}),
        );
        group["_self_ref_fk"] = json!(parent);
        group
    };
    let id_of_group = |name: &str| sha2_uuid(&[&root, &format!("{root}:{name}"), "learnergroup"]);
    let (first, second) = (group("a", &id_of_group("b")), group("b", &id_of_group("a")));
    let chunk = json!([fine_note, wrong_type, dangling, unknown_model, first, second]);
    let answer = api.post("buffers/", &chunk).await;
    assert_eq!(answer.ok(201)["refused"], json!([]), "each of them is what it claims");

    let path = format!("transfersessions/{push}/");
    let done = api.patch(&path, &json!({"transfer_stage": "cleanup"})).await;
    assert_eq!(done.ok(200)["transfer_stage_status"], "completed", "{}", done.body);
    assert_eq!(done.ok(200)["records_of_unknown_models"], 1);
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM note WHERE text = 'fine'").await, 1);
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM contentlog WHERE content = 'orphan'").await, 0);
    let stuck = count(server.db(), "SELECT COUNT(*) AS n FROM morango_store WHERE dirty_bit = true").await;
    assert!(stuck >= 4, "records that cannot be applied stay in the store, marked: {stuck}");
    api.get("morangoinfo/1/").await.ok(200);
    finish(server, client).await;
}

async fn buffers_flow_one_way_and_pages_are_bounded(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    for name in ["ada", "bob", "cy"] {
        fixtures::learner(server.db(), &server.facility, name).await;
    }
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let (pull, total) = fine(pull_transfer(&api, &session, &root, EMPTY_FSIC).await);
    assert_eq!(total, 4, "the facility and three learners");
    let push = push_transfer(&api, &session, &root, 1).await;
    let early = open(&api, &server, &client, PYTHON).await;
    let created = api.post("transfersessions/", &transfer_body(&early, &root, false)).await;
    let unqueued = created.ok(201)["id"].as_str().unwrap().to_owned();
    let created = api.post("transfersessions/", &transfer_body(&early, &root, true)).await;
    let unready = created.ok(201)["id"].as_str().unwrap().to_owned();
    let before = rows(server.db()).await;

    api.post("buffers/", &json!([note(&pull, &root)])).await.refused_saying(403, "pull");
    // Too early: a pull not yet queued, a push not yet receiving.
    api.get(&format!("buffers/?transfer_session_id={unqueued}&limit=10")).await.refused_saying(409, "not queued");
    api.post("buffers/", &json!([note(&unready, &root)])).await.refused_saying(409, "not receiving");
    api.get(&format!("buffers/?transfer_session_id={push}&limit=10")).await.refused_saying(403, "push");
    api.get(&format!("buffers/?transfer_session_id={push}")).await.refused_saying(403, "push");

    let page = |query: &str| format!("buffers/?transfer_session_id={pull}&{query}");
    for query in [
        "limit=-1",
        "offset=-1&limit=2",
        "limit=abc",
        "limit=1e3",
        "limit=2.5",
        "limit=99999999999999999999",
        "limit=2&offset=99999999999999999999",
        "limit=",
    ] {
        api.get(&page(query)).await.refused(400);
    }
    let results = |answer: &Answer| answer.ok(200)["results"].as_array().unwrap().len();
    assert_eq!(results(&api.get(&page("limit=9223372036854775807")).await), 4, "a huge page is cut to the queue");
    assert_eq!(results(&api.get(&page("limit=2&offset=9223372036854775807")).await), 0);
    assert_eq!(results(&api.get(&page("limit=9223372036854775807&offset=9223372036854775807")).await), 0);
    assert_eq!(results(&api.get(&page("limit=0")).await), 1, "a page has at least one record");
    let middle = api.get(&page("limit=2&offset=1")).await;
    assert_eq!(results(&middle), 2);
    assert!(middle.body["next"].is_string() && middle.body["previous"].is_string());
    assert_eq!(api.get(&format!("buffers/?transfer_session_id={pull}")).await.ok(200).as_array().unwrap().len(), 4);
    assert_eq!(rows(server.db()).await, before, "reading pages wrote something");
    finish(server, client).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Certificates, handshakes and nonces

on_both_backends!(
    forged_chains_and_bad_handshakes_are_refused,
    replayed_expired_and_unknown_nonces_are_refused,
    certificate_pushing_is_refused_unless_allowed,
    pushed_certificates_are_checked_like_any_chain,
    certificate_signing_requests_check_credentials_and_scope,
);

async fn forged_chains_and_bad_handshakes_are_refused(backend: Backend) {
    let kid = random_id();
    let server = Server::start(backend, ServerSettings::default(), Users::new().learner("kid", &kid)).await;
    let learner = Client::enrol(backend, &server, Wants::Learner { username: "kid", learner_id: &kid }).await;
    let api = Api::new(&server);
    let root = server.root.id().to_owned();
    let chain: Vec<Value> = serde_json::from_str(&chain_of(&learner).await).unwrap();
    let learner_id = learner.certificate.id().to_owned();
    let own_scope = json!({"facility_id": root, "user_id": kid});
    let attacker = PrivateKey::generate().unwrap();
    let handshake = |chain: Vec<Value>, leaf: String, key: &PrivateKey| {
        let chain = Value::Array(chain).to_string();
        let key = key.clone();
        let server = &server;
        let api = &api;
        async move {
            let body = handshake_body(&chain, &leaf, server, &nonce(api).await, &random_id(), &key);
            api.post("syncsessions/", &body).await
        }
    };
    let extend = |cert: &Value| {
        let mut longer = chain.clone();
        longer.push(cert.clone());
        longer
    };
    let before = rows(server.db()).await;

    // A certificate not signed by its parent.
    let unsigned = forge(&learner_id, "single-user", own_scope.clone(), attacker.public_key(), &random_id(), &attacker);
    let answer = handshake(extend(&unsigned), id_of(&unsigned).to_owned(), &attacker).await;
    answer.refused_saying(403, "Saving certificate chain has failed");
    assert_eq!(answer.body["error_class"], "CertificateSignatureInvalid");
    // Its signed text changed after signing.
    let mut tampered =
        forge(&learner_id, "single-user", own_scope.clone(), attacker.public_key(), &random_id(), key_of(&learner));
    let text = tampered["serialized"].as_str().unwrap().replace(&kid, &random_id());
    tampered["serialized"] = json!(text);
    let answer = handshake(extend(&tampered), id_of(&tampered).to_owned(), &attacker).await;
    assert_eq!(answer.body["error_class"], "CertificateSignatureInvalid", "{}", answer.body);
    answer.refused(403);
    // A certificate that names a parent other than the one before it in the chain.
    let orphan = forge(&root, "single-user", own_scope.clone(), attacker.public_key(), &random_id(), key_of(&learner));
    let answer = handshake(extend(&orphan), id_of(&orphan).to_owned(), &attacker).await;
    assert_eq!(answer.body["error_class"], "CertificateChainInvalid", "{}", answer.body);
    answer.refused(403);
    // A learner signing themself the whole facility, or another learner.
    for scope in [
        ("full-facility", json!({"facility_id": root})),
        ("single-user", json!({"facility_id": root, "user_id": random_id()})),
    ] {
        let escalated = forge(&learner_id, scope.0, scope.1, attacker.public_key(), &random_id(), key_of(&learner));
        let answer = handshake(extend(&escalated), id_of(&escalated).to_owned(), &attacker).await;
        assert_eq!(answer.body["error_class"], "CertificateScopeNotSubset", "{}", answer.body);
        answer.refused(403);
    }
    // Text that no database column can hold, hidden in the signed text.
    let nul = forge(
        &learner_id,
        "single-user\u{0}",
        own_scope.clone(),
        attacker.public_key(),
        &random_id(),
        key_of(&learner),
    );
    let answer = handshake(extend(&nul), id_of(&nul).to_owned(), &attacker).await;
    assert_eq!(answer.body["error_class"], "CertificateMalformed", "{}", answer.body);
    answer.refused(403);
    // A root this server never saw.
    let stranger = PrivateKey::generate().unwrap();
    let new_root = forged_root(&stranger);
    let child = forge(
        id_of(&new_root),
        "full-facility",
        json!({"facility_id": id_of(&new_root)}),
        attacker.public_key(),
        &random_id(),
        &stranger,
    );
    let answer = handshake(vec![new_root.clone(), child.clone()], id_of(&child).to_owned(), &attacker).await;
    assert_eq!(answer.body["error_class"], "CertificateRootNotTrusted", "{}", answer.body);
    answer.refused(403);
    // A chain whose last certificate is not the one the client claims; chains that are no chains.
    handshake(chain.clone(), random_id(), key_of(&learner)).await.refused(403);
    handshake(vec![], learner_id.clone(), key_of(&learner)).await.refused(403);
    handshake(vec![json!({"id": learner_id})], learner_id.clone(), key_of(&learner)).await.refused(403);
    handshake(vec![chain[1].clone(); 40], learner_id.clone(), key_of(&learner)).await.refused(403);
    for text in ["not json", "{}", "[1]", ""] {
        let mut body = handshake_body(text, &learner_id, &server, &nonce(&api).await, &random_id(), key_of(&learner));
        body["certificate_chain"] = json!(text);
        api.post("syncsessions/", &body).await.refused(403);
    }
    // Claiming to be the server's own root without its key.
    handshake(vec![chain[0].clone()], root.clone(), &attacker).await.refused_saying(403, "failed to verify signature");
    // The server certificate must be one the server owns.
    let mut body = handshake_body(
        &chain_of(&learner).await,
        &learner_id,
        &server,
        &nonce(&api).await,
        &random_id(),
        key_of(&learner),
    );
    body["server_certificate_id"] = json!(learner_id);
    api.post("syncsessions/", &body).await.refused_saying(400, "does not exist");
    body["server_certificate_id"] = json!(random_id());
    api.post("syncsessions/", &body).await.refused_saying(400, "does not exist");

    // A signature over another message; the nonce survives it, as in Morango.
    let (nonce_id, id) = (nonce(&api).await, random_id());
    let mut body = handshake_body(&chain_of(&learner).await, &learner_id, &server, &nonce_id, &id, key_of(&learner));
    body["signature"] = json!(key_of(&learner).sign(&format!("{nonce_id}:{}", random_id())).unwrap());
    api.post("syncsessions/", &body).await.refused_saying(403, "failed to verify signature");
    body["signature"] = json!(attacker.sign(&format!("{nonce_id}:{id}")).unwrap());
    api.post("syncsessions/", &body).await.refused_saying(403, "failed to verify signature");
    body["signature"] = json!("bm90IGEgc2lnbmF0dXJl");
    api.post("syncsessions/", &body).await.refused_saying(403, "failed to verify signature");
    body["signature"] = json!("%%%");
    api.post("syncsessions/", &body).await.refused_saying(403, "failed to verify signature");
    assert_eq!(rows(server.db()).await, before, "a refused handshake wrote something");
    body["signature"] = json!(key_of(&learner).sign(&format!("{nonce_id}:{id}")).unwrap());
    api.post("syncsessions/", &body).await.ok(201);

    // A sub-certificate the learner signs inside their own scope is a valid delegation, as in Morango.
    let delegated = forge(&learner_id, "single-user", own_scope, attacker.public_key(), &random_id(), key_of(&learner));
    handshake(extend(&delegated), id_of(&delegated).to_owned(), &attacker).await.ok(201);
    learner.finish().await;
    server.finish().await;
}

async fn replayed_expired_and_unknown_nonces_are_refused(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let chain = chain_of(&client).await;
    let attempt = |nonce: String| {
        let body = handshake_body(&chain, client.certificate.id(), &server, &nonce, &random_id(), key_of(&client));
        let api = &api;
        async move { api.post("syncsessions/", &body).await }
    };
    let used = nonce(&api).await;
    attempt(used.clone()).await.ok(201);
    let before = rows(server.db()).await;
    attempt(used).await.refused_saying(403, "Nonce is not valid");
    attempt(random_id()).await.refused_saying(403, "Nonce is not valid");
    let now = chrono::Utc::now();
    for when in
        [now - chrono::Duration::seconds(61), now - chrono::Duration::days(400), now + chrono::Duration::hours(1)]
    {
        let old = nonce(&api).await;
        execute(
            server.db(),
            "UPDATE morango_nonce SET timestamp = $1 WHERE id = $2",
            vec![when.into(), old.clone().into()],
        )
        .await;
        attempt(old.clone()).await.refused_saying(403, "Nonce is not valid");
        attempt(old).await.refused_saying(403, "Nonce is not valid");
    }
    for malformed in ["", "xyz", "ABCDEF0123456789ABCDEF0123456789"] {
        attempt(malformed.to_owned()).await.refused(400);
    }
    assert_eq!(rows(server.db()).await, before, "a refused nonce opened something");
    finish(server, client).await;
}

async fn certificate_pushing_is_refused_unless_allowed(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let before = rows(server.db()).await;
    api.get("publickey/").await.refused(403);
    let mut chain: Vec<Value> = serde_json::from_str(&chain_of(&client).await).unwrap();
    let key = PrivateKey::generate().unwrap();
    let salt = nonce(&api).await;
    chain.push(forge(
        client.certificate.id(),
        "full-facility",
        json!({"facility_id": server.root.id()}),
        key.public_key(),
        &salt,
        key_of(&client),
    ));
    api.post("certificatechain/", &json!(Value::Array(chain).to_string())).await.refused(403);
    assert_eq!(rows(server.db()).await, before);
    assert!(!api.get("morangoinfo/1/").await.ok(200)["capabilities"].to_string().contains("ALLOW_CERTIFICATE_PUSHING"));
    finish(server, client).await;
}

async fn pushed_certificates_are_checked_like_any_chain(backend: Backend) {
    let settings = ServerSettings { allow_certificate_pushing: true, ..Default::default() };
    let (server, client, api) = facility_client(backend, settings).await;
    let root = server.root.id().to_owned();
    let keys = api.get("publickey/").await;
    let shared = PublicKey::parse(keys.ok(200)[0]["public_key"].as_str().unwrap()).unwrap();
    let chain: Vec<Value> = serde_json::from_str(&chain_of(&client).await).unwrap();
    let facility = json!({"facility_id": root});
    let push = |mut certs: Vec<Value>, cert: Value| {
        certs.push(cert);
        let body = json!(Value::Array(certs).to_string());
        let api = &api;
        async move { api.post("certificatechain/", &body).await }
    };
    let before = rows(server.db()).await;

    let stranger = PrivateKey::generate().unwrap();
    let not_shared = forge(
        client.certificate.id(),
        "full-facility",
        facility.clone(),
        stranger.public_key(),
        &nonce(&api).await,
        key_of(&client),
    );
    push(chain.clone(), not_shared).await.refused_saying(400, "Shared public key was not used");
    let unsalted =
        forge(client.certificate.id(), "full-facility", facility.clone(), &shared, &random_id(), key_of(&client));
    push(chain.clone(), unsalted).await.refused_saying(403, "Nonce");
    let stale = nonce(&api).await;
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    execute(
        server.db(),
        "UPDATE morango_nonce SET timestamp = $1 WHERE id = $2",
        vec![past.into(), stale.clone().into()],
    )
    .await;
    let expired = forge(client.certificate.id(), "full-facility", facility.clone(), &shared, &stale, key_of(&client));
    push(chain.clone(), expired).await.refused_saying(403, "Nonce");
    let unsigned =
        forge(client.certificate.id(), "full-facility", facility.clone(), &shared, &nonce(&api).await, &stranger);
    let answer = push(chain.clone(), unsigned).await;
    assert_eq!(answer.body["error_class"], "CertificateSignatureInvalid", "{}", answer.body);
    answer.refused(400);
    let elsewhere = json!({"facility_id": random_id()});
    let escalated =
        forge(client.certificate.id(), "full-facility", elsewhere, &shared, &nonce(&api).await, key_of(&client));
    let answer = push(chain.clone(), escalated).await;
    assert_eq!(answer.body["error_class"], "CertificateScopeNotSubset", "{}", answer.body);
    answer.refused(400);
    let new_root = forged_root(&stranger);
    let foreign = forge(
        id_of(&new_root),
        "full-facility",
        json!({"facility_id": id_of(&new_root)}),
        &shared,
        &nonce(&api).await,
        &stranger,
    );
    push(vec![new_root], foreign).await.refused_saying(403, "Saving certificate chain has failed");
    let rootless =
        forge(client.certificate.id(), "full-facility", facility.clone(), &shared, &nonce(&api).await, key_of(&client));
    push(vec![], rootless).await.refused(403);
    assert_eq!(rows(server.db()).await, before, "a refused push stored a certificate");

    // A proper push is stored with the shared key: the server owns it from then on. Its nonce is spent.
    let pushed =
        forge(client.certificate.id(), "full-facility", facility, &shared, &nonce(&api).await, key_of(&client));
    assert_eq!(push(chain.clone(), pushed.clone()).await.ok(201), &json!("Certificate chain has been saved"));
    api.get(&format!("certificates/{}/", id_of(&pushed))).await.ok(200);
    push(chain, pushed).await.refused_saying(403, "Nonce");
    finish(server, client).await;
}

async fn certificate_signing_requests_check_credentials_and_scope(backend: Backend) {
    let kid = random_id();
    let server = Server::start(backend, ServerSettings::default(), Users::new().learner("kid", &kid)).await;
    let api = Api::new(&server);
    let root = server.root.id().to_owned();
    let key = PrivateKey::generate().unwrap();
    let csr = |definition: &str, params: Value| {
        let Value::Object(params) = params else { unreachable!() };
        serde_json::to_value(certificate::signing_request(&server.root, definition, &params, key.public_key())).unwrap()
    };
    let facility = csr("full-facility", json!({"facility_id": root}));
    let own = csr("single-user", json!({"facility_id": root, "user_id": kid}));
    let send = |body: &Value, user: Option<(&str, &str)>| {
        let mut request = api.at(Method::POST, "certificates/").json(body);
        if let Some((name, password)) = user {
            request = request.basic_auth(name, Some(password));
        }
        let what = format!("CSR as {user:?}");
        let api = &api;
        async move { api.send(what, request).await }
    };
    let before = rows(server.db()).await;

    for (user, words) in [
        (None, "not provided"),
        (Some(("admin", "wrong")), "Invalid credentials"),
        (Some(("nobody", "admin-password")), "Invalid credentials"),
        (Some(("kid", "admin-password")), "Invalid credentials"),
        (Some(("", "")), "Invalid credentials"),
    ] {
        let answer = send(&facility, user).await;
        answer.refused_saying(401, words);
        assert_eq!(answer.headers.get(WWW_AUTHENTICATE).unwrap(), "Basic realm=\"api\"");
    }
    for header in ["Basic !!!", "Basic YWRtaW4=", "Bearer admin-password", "Basic", "basic  "] {
        let request = api.at(Method::POST, "certificates/").header("Authorization", header).json(&facility);
        let answer = api.send(format!("CSR with Authorization {header}"), request).await;
        answer.refused(401);
        assert!(answer.headers.contains_key(WWW_AUTHENTICATE));
    }
    // A learner may hold their own single-user scope and nothing else.
    let kid_login = Some(("kid", "kid-password"));
    send(&facility, kid_login).await.refused(403);
    send(&csr("single-user", json!({"facility_id": root, "user_id": random_id()})), kid_login).await.refused(403);
    send(&csr("read-only", json!({"facility_id": root})), kid_login).await.refused(403);
    // What no one may hold: a scope outside the parent's, or not from a known definition or profile.
    let admin = Some(("admin", "admin-password"));
    let answer = send(&csr("full-facility", json!({"facility_id": random_id()})), admin).await;
    assert_eq!(answer.body["error_class"], "CertificateScopeNotSubset", "{}", answer.body);
    answer.refused(400);
    send(&csr("no-such-scope", json!({"facility_id": root})), admin).await.refused(400);
    let mut other = facility.clone();
    other["parent"] = json!(random_id());
    send(&other, admin).await.refused(400);
    other["parent"] = json!("../../root");
    send(&other, admin).await.refused(400);
    let mut other = facility.clone();
    other["profile"] = json!("otherprofile");
    send(&other, admin).await.refused(400);
    other["profile"] = json!("p".repeat(300));
    send(&other, admin).await.refused(400);
    let mut other = facility.clone();
    other["public_key"] = json!("MIIBnotakey");
    send(&other, admin).await.refused(400);
    let mut other = facility.clone();
    other["scope_params"] = json!("not json");
    send(&other, admin).await.refused(400);
    other["scope_params"] = json!("[1, 2]");
    send(&other, admin).await.refused(400);
    let mut other = facility.clone();
    other["scope_version"] = json!(99999999999i64);
    send(&other, admin).await.refused(400);
    assert_eq!(rows(server.db()).await, before, "a refused CSR stored a certificate");

    // Right credentials, a scope the user may hold: 201, a certificate signed by the root.
    let issued = send(&own, kid_login).await;
    assert_eq!(issued.ok(201)["parent"], json!(root));
    let issued = send(&facility, Some(("username=admin&facility=whatever", "admin-password"))).await;
    assert_eq!(issued.ok(201)["scope_definition"], json!("full-facility"));
    server.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Scopes, filters and FSICs

on_both_backends!(
    a_learner_can_neither_pull_nor_push_another_learners_partitions,
    filters_and_fsics_with_sql_in_them_neither_break_nor_leak,
    database_max_counters_never_move_down,
);

/// A server with learners Ada and Bob, each with a log, and a tablet enrolled as Ada.
async fn ada_and_bob(backend: Backend) -> (Server, Client, Api, String, String) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let bob = fixtures::learner(server.db(), &server.facility, "bob").await;
    fixtures::log(server.db(), &ada, "ada's video").await;
    fixtures::log(server.db(), &bob, "bob's video").await;
    let server = server.with_users(Users::new().learner("ada", &ada.id));
    let tablet = Client::enrol(backend, &server, Wants::Learner { username: "ada", learner_id: &ada.id }).await;
    let api = Api::new(&server);
    (server, tablet, api, ada.id, bob.id)
}

async fn a_learner_can_neither_pull_nor_push_another_learners_partitions(backend: Backend) {
    let (server, tablet, api, ada, bob) = ada_and_bob(backend).await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &tablet, PYTHON).await;
    let before = rows(server.db()).await;

    let pulling = "Client certificate scope does not permit pulling for the requested filter.";
    let pushing = "Client certificate scope does not permit pushing for the requested filter.";
    for filter in [
        format!("{root}:user-ro:{bob}"),
        format!("{root}:user-rw:{bob}"),
        format!("{root}:user-ro:{ada}\n{root}:user-rw:{bob}"),
        format!("{root}:user"),
        root.clone(),
        format!("{root}:user-ro:{}", ada.to_uppercase()),
        format!("{root}:user-ro:{}", &ada[..31]),
    ] {
        let answer = api.post("transfersessions/", &transfer_body(&session, &filter, false)).await;
        assert_eq!(answer.refused(403), pulling, "pulling {filter:?}");
    }
    for filter in [
        format!("{root}:user-rw:{bob}"),
        format!("{root}:user-ro:{ada}"),
        format!("{root}:allusers-ro"),
        format!("{root}:user-rw:{}", &ada[..31]),
        root.clone(),
    ] {
        let answer = api.post("transfersessions/", &transfer_body(&session, &filter, true)).await;
        assert_eq!(answer.refused(403), pushing, "pushing {filter:?}");
    }
    // Outside the server's scope too (blank is the whole database): the server's message wins, as in Morango.
    for filter in
        ["elsewhere".to_owned(), String::new(), " \n ".into(), format!("{}:user-ro:{ada}", root.to_uppercase())]
    {
        let answer = api.post("transfersessions/", &transfer_body(&session, &filter, false)).await;
        answer.refused_saying(403, "Server certificate scope does not permit responding to pulls");
        let answer = api.post("transfersessions/", &transfer_body(&session, &filter, true)).await;
        answer.refused_saying(403, "Server certificate scope does not permit receiving pushes");
    }
    assert_eq!(rows(server.db()).await, before, "a refused transfer was created");

    // Within her write scope, records of Bob's partitions are refused.
    let push = push_transfer(&api, &session, &format!("{root}:user-rw:{ada}"), 1).await;
    let before = rows(server.db()).await;
    let bobs = record(&push, &format!("{root}:user-rw:{bob}"), "contentlog");
    let answer = api.post("buffers/", &json!([bobs])).await;
    assert!(answer.ok(201)["refused"][0]["reason"].as_str().unwrap().contains("outside"), "{}", answer.body);
    assert_eq!(
        rows(server.db()).await.without("morango_refusedrecord", "morango_transfersession"),
        before.without("morango_refusedrecord", "morango_transfersession")
    );

    // What she may pull is hers and the facility's.
    let mine = format!("{root}:user-ro:{ada}\n{root}:user-rw:{ada}\n{root}:allusers-ro");
    let records = fine(pull_all(&api, &session, &mine, EMPTY_FSIC).await);
    assert_eq!(records.len(), 3, "her learner record, her log and the facility");
    assert!(records.iter().all(|r| !r["partition"].as_str().unwrap().contains(&bob)));
    tablet.finish().await;
    server.finish().await;
}

async fn filters_and_fsics_with_sql_in_them_neither_break_nor_leak(backend: Backend) {
    let (server, tablet, api, ada, bob) = ada_and_bob(backend).await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &tablet, PYTHON).await;
    let mine = format!("{root}:user-ro:{ada}");
    let instance = random_id();
    assert_eq!(fine(pull_all(&api, &session, &mine, EMPTY_FSIC).await).len(), 1, "her learner record");
    let store = count(server.db(), "SELECT COUNT(*) AS n FROM morango_store").await;

    let hostile = [
        "'",
        "';DROP/**/TABLE/**/morango_store;--",
        "'/**/OR/**/'1'='1",
        "'/**/OR/**/1=1)--",
        "%",
        "_",
        "%'/**/OR/**/partition/**/LIKE/**/'%",
        "\\",
        "\"",
        "$1",
        "?",
        "\u{0}",
        "\u{7f}\u{202e}",
    ];
    for suffix in hostile {
        let filter = format!("{mine}{suffix}");
        match pull_all(&api, &session, &filter, EMPTY_FSIC).await {
            Ok(records) => assert!(records.is_empty(), "{filter:?} leaked {records:?}"),
            Err(answer) => {
                answer.refused(400);
            }
        }
        let counters = json!({filter.clone(): {instance.clone(): 1}});
        for fsic in [
            json!({"super": {}, "sub": counters.clone()}).to_string(),
            json!({"super": counters.clone(), "sub": {}}).to_string(),
        ] {
            let records = pull_all(&api, &session, &mine, &fsic).await;
            let records = match records {
                Ok(records) => records,
                Err(answer) => {
                    answer.refused(400);
                    continue;
                }
            };
            assert_eq!(records.len(), 1, "{fsic}: her learner record only");
            assert!(records.iter().all(|r| r["partition"].as_str().unwrap().starts_with(&mine)));
        }
    }
    // FSICs that are not FSICs, or speak of partitions outside the filter, are refused before any work is done.
    let created = api.post("transfersessions/", &transfer_body(&session, &mine, false)).await;
    let pull = created.ok(201)["id"].as_str().unwrap().to_owned();
    let path = format!("transfersessions/{pull}/");
    for fsic in [
        "nonsense".to_owned(),
        "{\"super\": {}}".to_owned(),
        "[]".to_owned(),
        format!("{{\"super\": {{}}, \"sub\": {{\"{mine}\": {{\"nothex\": 1}}}}}}"),
        format!("{{\"super\": {{}}, \"sub\": {{\"{mine}\": {{\"{instance}\": -1}}}}}}"),
        format!("{{\"super\": {{}}, \"sub\": {{\"{mine}\": {{\"{instance}\": \"1\"}}}}}}"),
        format!("{{\"super\": {{}}, \"sub\": {{\"{root}:user-ro:{bob}\": {{\"{instance}\": 1}}}}}}"),
        format!("{{\"super\": {{}}, \"sub\": {{\"\": {{\"{instance}\": 1}}}}}}"),
    ] {
        let answer = api.patch(&path, &json!({"transfer_stage": "serializing", "client_fsic": fsic})).await;
        answer.refused(400);
        let state = api.get(&path).await;
        assert_eq!(state.ok(200)["transfer_stage_status"], "completed", "a refused FSIC broke the transfer");
        assert_eq!(state.body["transfer_stage"], "initializing");
    }
    api.patch(&path, &json!({"transfer_stage": "serializing", "client_fsic": EMPTY_FSIC})).await.ok(200);
    api.delete(&path).await.ok(204);
    // The same FSICs at creation (the legacy flow sends the client's FSIC there).
    let mut body = transfer_body(&session, &mine, false);
    body["client_fsic"] = json!(format!("{{\"super\": {{}}, \"sub\": {{\"{root}\": {{\"{instance}\": 1}}}}}}"));
    api.post("transfersessions/", &body).await.refused(400);

    // Too many prefixes, or too long ones, are refused, not run.
    let many: Vec<String> = (0..20_000).map(|i| format!("{mine}{i}")).collect();
    api.post("transfersessions/", &transfer_body(&session, &many.join("\n"), false)).await.refused(400);
    api.post("transfersessions/", &transfer_body(&session, &format!("{mine}{}", "x".repeat(5000)), false))
        .await
        .refused(400);

    // Nothing broke: the store is all there and a facility client still gets everything.
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM morango_store").await, store);
    let admin = Client::enrol(backend, &server, Wants::Facility).await;
    let everything = open(&api, &server, &admin, PYTHON).await;
    let records = fine(pull_all(&api, &everything, &root, EMPTY_FSIC).await);
    assert_eq!(records.len(), 5, "facility, two learners, two logs");
    admin.finish().await;
    tablet.finish().await;
    server.finish().await;
}

async fn database_max_counters_never_move_down(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    fixtures::learner(server.db(), &server.facility, "ada").await;
    client.sync(&server).await;
    let root = server.root.id().to_owned();
    let before = dmc(server.db()).await;
    assert!(!before.is_empty());
    let server_instance = server.api.engine().instance().id.clone();
    let client_instance = client.peer.engine.instance().id.clone();

    // A push whose sender claims to know less than the server does, in v2 and v1 FSICs.
    let zeros = json!({root.clone(): {server_instance.clone(): 0, client_instance.clone(): 0}});
    for (caps, fsic) in [
        (PYTHON, json!({"super": {}, "sub": zeros}).to_string()),
        (
            "GZIP_BUFFER_POST ASYNC_OPERATIONS",
            json!({server_instance.clone(): 0, client_instance.clone(): 0}).to_string(),
        ),
    ] {
        let session = open(&api, &server, &client, caps).await;
        let request = api.at_with(caps, Method::POST, "transfersessions/").json(&transfer_body(&session, &root, true));
        let push = api.send("create a push", request).await.ok(201)["id"].as_str().unwrap().to_owned();
        let path = format!("transfersessions/{push}/");
        for body in [
            json!({"transfer_stage": "serializing", "client_fsic": fsic}),
            json!({"transfer_stage": "queuing", "records_total": 0}),
            json!({"transfer_stage": "cleanup"}),
        ] {
            let request = api.at_with(caps, Method::PATCH, &path).json(&body);
            api.send(format!("PATCH {body}"), request).await.ok(200);
        }
        let after = dmc(server.db()).await;
        for (partition, instance, counter) in &before {
            let now = after.iter().find(|(p, i, _)| p == partition && i == instance).map(|r| r.2);
            assert!(now >= Some(*counter), "DMC {partition} {instance} went from {counter} to {now:?}");
        }
    }
    finish(server, client).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Signed requests (MORANGO_RS_SIGNED_REQUESTS)

on_both_backends!(signed_sessions_refuse_unsigned_forged_and_replayed_requests);

/// A request of a signed session, signed by `key` with `sequence` over `body`.
fn signed(
    api: &Api,
    method: Method,
    path: &str,
    body: &[u8],
    session: &str,
    sequence: i64,
    key: &PrivateKey,
) -> RequestBuilder {
    let signature = signature(&method, path, body, session, sequence, key);
    with_signature(api, method, path, body, session, &sequence.to_string(), &signature)
}

/// `key`'s signature of a request.
fn signature(method: &Method, path: &str, body: &[u8], session: &str, sequence: i64, key: &PrivateKey) -> String {
    key.sign(&canonical_request(method.as_str(), &format!("/api/morango/v1/{path}"), sequence, body, session)).unwrap()
}

/// A request carrying these signing headers, whatever they are.
fn with_signature(
    api: &Api,
    method: Method,
    path: &str,
    body: &[u8],
    session: &str,
    sequence: &str,
    signature: &str,
) -> RequestBuilder {
    api.at(method, path)
        .header(SESSION_HEADER, session)
        .header(SEQUENCE_HEADER, sequence)
        .header(SIGNATURE_HEADER, signature)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_vec())
}

async fn signed_sessions_refuse_unsigned_forged_and_replayed_requests(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let root = server.root.id().to_owned();
    let key = key_of(&client).clone();
    let session = open(&api, &server, &client, SIGNING).await;
    let detail = format!("syncsessions/{session}/");
    let before = rows(server.db()).await;

    api.get(&detail).await.refused_saying(403, "requires signed requests");
    api.send("signed GET", signed(&api, Method::GET, &detail, b"", &session, 10, &key)).await.ok(200);
    let replayed = signed(&api, Method::GET, &detail, b"", &session, 10, &key);
    api.send("replayed GET", replayed).await.refused_saying(403, "replayed");
    api.send("an older sequence", signed(&api, Method::GET, &detail, b"", &session, 9, &key)).await.refused(403);
    let stranger = PrivateKey::generate().unwrap();
    api.send("signed by another key", signed(&api, Method::GET, &detail, b"", &session, 11, &stranger))
        .await
        .refused_saying(403, "does not verify");
    let twelve = signature(&Method::GET, &detail, b"", &session, 12, &key);
    let changed = with_signature(&api, Method::GET, &detail, b"", &session, "13", &twelve);
    api.send("the sequence changed after signing", changed).await.refused_saying(403, "does not verify");
    let deleting = with_signature(&api, Method::DELETE, &detail, b"", &session, "12", &twelve);
    api.send("the method changed after signing", deleting).await.refused_saying(403, "does not verify");
    let other_session = signed(&api, Method::GET, &detail, b"", &random_id(), 14, &key);
    api.send("signed for another session", other_session).await.refused(403);
    let fifteen = signature(&Method::GET, &detail, b"", &session, 15, &key);
    for sequence in ["fifteen", "", "-1", "99999999999999999999"] {
        let bad = with_signature(&api, Method::GET, &detail, b"", &session, sequence, &fifteen);
        api.send(format!("sequence {sequence:?}"), bad).await.refused(403);
    }
    let garbage = with_signature(&api, Method::GET, &detail, b"", &session, "16", "%%%");
    api.send("a garbage signature", garbage).await.refused(403);

    // Transfers of a signed session, created unsigned or with a body other than the one signed.
    let body = serde_json::to_vec(&transfer_body(&session, &root, false)).unwrap();
    api.raw(Method::POST, "transfersessions/", "application/json", body.clone()).await.refused(403);
    let mut swapped = transfer_body(&session, &root, true);
    swapped["id"] = serde_json::from_slice::<Value>(&body).unwrap()["id"].clone();
    let text = canonical_request("POST", "/api/morango/v1/transfersessions/", 20, &body, &session);
    let request = api
        .at(Method::POST, "transfersessions/")
        .header(SESSION_HEADER, &session)
        .header(SEQUENCE_HEADER, "20")
        .header(SIGNATURE_HEADER, key.sign(&text).unwrap())
        .json(&swapped);
    api.send("a body swapped after signing", request).await.refused_saying(403, "does not verify");
    api.send("DELETE unsigned", api.at(Method::DELETE, &detail)).await.refused(403);
    assert_eq!(rows(server.db()).await, before, "an unsigned request wrote something");

    // Signed properly, it all works; the transfer's own endpoints still want signatures.
    let created =
        api.send("signed create", signed(&api, Method::POST, "transfersessions/", &body, &session, 30, &key)).await;
    let pull = created.ok(201)["id"].as_str().unwrap().to_owned();
    api.get(&format!("transfersessions/{pull}/")).await.refused(403);
    api.get(&format!("buffers/?transfer_session_id={pull}&limit=5")).await.refused(403);
    api.patch(&format!("transfersessions/{pull}/"), &json!({"transfer_stage": "queuing"})).await.refused(403);
    api.delete(&format!("transfersessions/{pull}/")).await.refused(403);
    let patch = serde_json::to_vec(&json!({"transfer_stage": "queuing", "client_fsic": EMPTY_FSIC})).unwrap();
    let path = format!("transfersessions/{pull}/");
    let queued = api.send("signed PATCH", signed(&api, Method::PATCH, &path, &patch, &session, 31, &key)).await;
    assert_eq!(queued.ok(200)["transfer_stage"], "queuing");
    let page = format!("buffers/?transfer_session_id={pull}&limit=5&offset=0");
    let page = api.send("signed page", signed(&api, Method::GET, &page, b"", &session, 32, &key)).await;
    assert_eq!(page.ok(200)["count"], 1);
    api.send("signed close", signed(&api, Method::DELETE, &detail, b"", &session, 33, &key)).await.ok(204);

    // A session opened without the capability, as a Python client opens it, works with bearer ids.
    let bearer = open(&api, &server, &client, PYTHON).await;
    api.get(&format!("syncsessions/{bearer}/")).await.ok(200);
    let records = fine(pull_all(&api, &bearer, &root, EMPTY_FSIC).await);
    assert_eq!(records.len(), 1, "the facility");
    // So does the legacy flow, whose client sends the empty FSIC `{}` at creation and lets the server queue.
    let legacy = api.at_with("FSIC_V2_FORMAT GZIP_BUFFER_POST", Method::POST, "transfersessions/");
    let created = api.send("a legacy pull", legacy.json(&transfer_body(&bearer, &root, false))).await;
    assert_eq!(created.ok(201)["records_total"], 1);
    api.delete(&format!("syncsessions/{bearer}/")).await.ok(204);

    // And morango-rs clients sign every request of a whole sync.
    let report = client.sync(&server).await;
    assert_eq!(report.pull.unwrap().records_total, 1);
    let signed_sessions =
        count(server.db(), "SELECT COUNT(*) AS n FROM morango_syncsession WHERE signed_requests = true").await;
    assert_eq!(signed_sessions, 2, "the hand-made signed session and the client's");
    finish(server, client).await;
}

// Regressions found in review: each failed before its fix.

on_both_backends!(
    claimed_counters_without_evidence_do_not_stop_later_edits,
    a_record_naming_an_instance_twice_in_its_history_is_refused
);

/// A client with write scope claims, in its push FSIC, an absurd counter for the *server's own* instance; later
/// server edits never reach another client.
async fn claimed_counters_without_evidence_do_not_stop_later_edits(backend: Backend) {
    let (server, attacker, api) = facility_client(backend, ServerSettings::default()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let root = server.root.id().to_owned();
    let server_instance = server.api.engine().instance().id.clone();
    let session = open(&api, &server, &attacker, PYTHON).await;
    let created = api.post("transfersessions/", &transfer_body(&session, &root, true)).await;
    let push = created.ok(201)["id"].as_str().unwrap().to_owned();
    let path = format!("transfersessions/{push}/");
    let fsic = json!({"super": {}, "sub": {root.clone(): {server_instance.clone(): 1_000_000_000_000i64}}}).to_string();
    api.patch(&path, &json!({"transfer_stage": "serializing", "client_fsic": fsic})).await.ok(200);
    api.patch(&path, &json!({"transfer_stage": "queuing", "records_total": 0})).await.ok(200);
    api.patch(&path, &json!({"transfer_stage": "cleanup"})).await.ok(200);
    eprintln!("server DMC after the hostile push: {:?}", dmc(server.db()).await);

    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    tablet.sync(&server).await;
    assert!(fixtures::find_learner(tablet.peer.db(), &ada.id).await.is_some());
    eprintln!("tablet DMC: {:?}", dmc(tablet.peer.db()).await);
    fixtures::rename_learner(server.db(), &ada.id, "renamed on the server").await;
    let report = tablet.sync(&server).await;
    eprintln!("second pull: {:?}", report.pull);
    let name = fixtures::find_learner(tablet.peer.db(), &ada.id).await.unwrap().full_name;
    tablet.finish().await;
    finish(server, attacker).await;
    assert_eq!(name, "renamed on the server", "the server's edit never reached the tablet");
}

/// One record whose rmcb_list names the same instance twice.
async fn a_record_naming_an_instance_twice_in_its_history_is_refused(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let push = push_transfer(&api, &session, &root, 1).await;
    let mut rec = note(&push, &root);
    let mut dup = rec["rmcb_list"][0].clone();
    dup["counter"] = json!(2);
    rec["rmcb_list"].as_array_mut().unwrap().push(dup);
    let answer = api.post("buffers/", &json!([rec])).await;
    let reason = answer.ok(201)["refused"][0]["reason"].as_str().unwrap_or_default().to_owned();
    finish(server, client).await;
    assert!(reason.contains("same instance"), "{reason}");
}

on_both_backends!(a_learner_cannot_get_a_certificate_with_a_crafted_facility);

/// The harness authority (like the school example's) checks only `user_id` for single-user: a learner asks for a
/// facility_id that is a longer prefix, gets a certificate whose write scope lies inside `allusers-ro`, and her
/// records reach every learner.
async fn a_learner_cannot_get_a_certificate_with_a_crafted_facility(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let bob = fixtures::learner(server.db(), &server.facility, "bob").await;
    let server = server.with_users(Users::new().learner("ada", &ada.id).learner("bob", &bob.id));
    let root = server.root.id().to_owned();
    let peer =
        crate::support::Peer::with(backend, crate::schema::Tables::Current, &crate::schema::FACILITY_DATA, 500).await;
    let crafted = format!("{root}:allusers-ro");
    let cert = {
        let connection = super::harness::connect(&peer, &server).await;
        let Value::Object(params) = json!({"facility_id": crafted, "user_id": ada.id}) else { unreachable!() };
        let creds = morango::client::Credentials { username: "ada".into(), password: "ada-password".into() };
        connection.request_certificate(&server.root, "single-user", &params, &creds).await
    };
    let refused = cert.expect_err("the authority checks the facility parameter too");
    assert!(refused.to_string().contains("403"), "{refused}");
    peer.finish().await;
    server.finish().await;
}

/// Imitates a Python 0.8 server whose dequeuing failed: with ASYNC_OPERATIONS its PATCH answers 200 with
/// `transfer_stage_status: "errored"`, later PATCHes are no-ops that say so again, and DELETE answers 204.
async fn python_like_failed_dequeue(
    axum::extract::State(armed): axum::extract::State<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !armed.load(std::sync::atomic::Ordering::SeqCst) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_owned();
    if path.contains("/transfersessions/") && path.len() > "/api/morango/v1/transfersessions/".len() {
        let id = path.trim_end_matches('/').rsplit('/').next().unwrap().to_owned();
        let text = String::from_utf8_lossy(&bytes).to_string();
        if parts.method == Method::PATCH && (text.contains("dequeuing") || text.contains("deserializing")) {
            let stage = if text.contains("dequeuing") { "dequeuing" } else { "deserializing" };
            eprintln!("python-like server: PATCH {stage} -> 200 errored");
            let body = json!({"id": id, "active": true, "filter": "", "push": true, "records_transferred": 1,
                "records_total": 1, "bytes_received": 0, "bytes_sent": 0, "sync_session": "", "server_fsic": "{}",
                "client_fsic": "{}", "transfer_stage": "dequeuing", "transfer_stage_status": "errored"});
            return axum::Json(body).into_response();
        }
        if parts.method == Method::DELETE {
            eprintln!("python-like server: DELETE -> 204 (errored sessions are no-ops)");
            return axum::http::StatusCode::NO_CONTENT.into_response();
        }
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

on_both_backends!(a_client_fails_when_the_server_reports_an_errored_stage);

async fn a_client_fails_when_the_server_reports_an_errored_stage(backend: Backend) {
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let layer = axum::middleware::from_fn_with_state(armed.clone(), python_like_failed_dequeue);
    let server =
        Server::start_wrapped(backend, ServerSettings::default(), Users::new(), |router| router.layer(layer)).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    tablet.sync(&server).await;
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    fixtures::rename_learner(tablet.peer.db(), &ada.id, "edited on the tablet").await;
    let session = tablet.open(&server).await;
    let client = session.client(&tablet.peer.engine);
    let result = client.push(&server.facility_filter()).await;
    eprintln!("push result: {result:?}");
    let on_server = fixtures::find_learner(server.db(), &ada.id).await.unwrap().full_name;
    tablet.finish().await;
    server.finish().await;
    assert!(result.is_err(), "the push reported success although the server never applied it ({on_server:?})");
}

/// SQLite: a write transaction of the engine that lasts longer than SQLite's busy timeout (sqlx: 5 s), as a big
/// dequeue or deserialization does, makes every write that does not queue on the engine's writer lock fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_behind_a_long_transaction() {
    use sea_orm::TransactionTrait;
    let (server, client, api) = facility_client(Backend::Sqlite, ServerSettings::default()).await;
    let db = server.db().clone();
    let holder = tokio::spawn(async move {
        let txn = db.begin().await.unwrap();
        txn.execute_raw(Statement::from_string(
            DbBackend::Sqlite,
            "DELETE FROM morango_apply_guard WHERE kind = 'lock'",
        ))
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(7)).await;
        txn.commit().await.unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let start = std::time::Instant::now();
    let answer = api.post("nonces/", &Value::Null).await;
    eprintln!("POST nonces/ behind a 7 s writer: {} {} after {:?}", answer.status, answer.body, start.elapsed());
    holder.await.unwrap();
    finish(server, client).await;
    assert_eq!(answer.status.as_u16(), 201);
}

on_both_backends!(a_refused_handshake_stores_nothing);

/// POST syncsessions/ saves the client's chain before it checks the signature or the nonce: any enrolled user can
/// make the server store 30 new certificates per request, with a garbage nonce and signature.
async fn a_refused_handshake_stores_nothing(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let key = key_of(&client).clone();
    let base: Vec<Value> = serde_json::from_str(&chain_of(&client).await).unwrap();
    let params = json!({"facility_id": server.root.id()});
    let before = count(server.db(), "SELECT COUNT(*) AS n FROM morango_certificate").await;
    for round in 0..3 {
        let mut chain = base.clone();
        let mut parent = client.certificate.id().to_owned();
        for i in 0..30 {
            let cert =
                forge(&parent, "full-facility", params.clone(), key.public_key(), &format!("r{round}c{i}"), &key);
            parent = id_of(&cert).to_owned();
            chain.push(cert);
        }
        let body = json!({
            "id": random_id(), "server_certificate_id": server.root.id(), "client_certificate_id": parent,
            "profile": "facilitydata", "certificate_chain": Value::Array(chain).to_string(), "connection_path": "",
            "instance": "{}", "nonce": random_id(), "client_ip": "", "server_ip": "", "signature": "AAAA",
        });
        let answer = api.post("syncsessions/", &body).await;
        eprintln!("round {round}: {} {}", answer.status, answer.body);
    }
    let after = count(server.db(), "SELECT COUNT(*) AS n FROM morango_certificate").await;
    eprintln!("certificates before {before}, after three refused handshakes {after}");
    finish(server, client).await;
    assert_eq!(after, before, "refused handshakes stored certificates");
}

/// PostgreSQL: syncs waiting for the profile lock each hold a pooled connection for up to 120 s, so with as many
/// waiting as the pool has connections, every other request (here a nonce) fails when its acquire times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_waiting_for_the_lock_do_not_starve_other_requests() {
    use sea_orm::TransactionTrait;
    if !Backend::Postgres.enabled() {
        eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
        return;
    }
    let (server, client, api) = facility_client(Backend::Postgres, ServerSettings::default()).await;
    let root = server.root.id().to_owned();
    // Another connection (as a long dequeue would) holds the profile lock.
    let digest = blake3::hash(b"morango:facilitydata");
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_bytes()[..8]);
    let key = i64::from_le_bytes(bytes);
    let url = format!("postgres://postgres@127.0.0.1:5432/{}", {
        let row = server
            .db()
            .query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT current_database() AS n"))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "n").unwrap()
    });
    let other = sea_orm::Database::connect(url).await.unwrap();
    let txn = other.begin().await.unwrap();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        vec![key.into()],
    ))
    .await
    .unwrap();
    // Four syncs (the harness pool has 4 connections) reach a stage that takes the lock.
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let session = open(&api, &server, &client, PYTHON).await;
        let created = api.post("transfersessions/", &transfer_body(&session, &root, false)).await;
        let pull = created.ok(201)["id"].as_str().unwrap().to_owned();
        let http = reqwest::Client::new();
        let url = format!("{}api/morango/v1/transfersessions/{pull}/", server.url);
        waiting.push(tokio::spawn(async move {
            http.patch(url)
                .header("X-Morango-Capabilities", PYTHON)
                .json(&json!({"transfer_stage": "serializing", "client_fsic": EMPTY_FSIC}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let start = std::time::Instant::now();
    let answer = api.post("nonces/", &Value::Null).await;
    eprintln!(
        "POST nonces/ while four syncs wait for the lock: {} {} after {:?}",
        answer.status,
        answer.body,
        start.elapsed()
    );
    txn.rollback().await.unwrap();
    for w in waiting {
        eprintln!("waiter: {:?}", w.await.unwrap());
    }
    other.close().await.ok();
    finish(server, client).await;
    assert_eq!(answer.status.as_u16(), 201);
}

/// Removes the server's confirmation of signed requests from handshake answers (someone on the way).
async fn strip_signed_confirmation(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let handshake = request.method() == Method::POST && request.uri().path().ends_with("/syncsessions/");
    let response = next.run(request).await;
    if !handshake {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
    if let Some(object) = value.as_object_mut() {
        object.remove("signed_requests");
    }
    (parts.status, axum::Json(value)).into_response()
}

on_both_backends!(signed_requests_cannot_be_stripped_and_can_be_required);

async fn signed_requests_cannot_be_stripped_and_can_be_required(backend: Backend) {
    // A client that signs refuses a session the server did not confirm as signed.
    let layer = axum::middleware::from_fn(strip_signed_confirmation);
    let server =
        Server::start_wrapped(backend, ServerSettings::default(), Users::new(), |router| router.layer(layer)).await;
    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    let refused = super::harness::connect(&tablet.peer, &server)
        .await
        .open_session(&tablet.certificate, &server.root)
        .await
        .err()
        .expect("the missing confirmation is noticed");
    assert!(refused.to_string().contains("did not confirm signed requests"), "{refused}");
    tablet.finish().await;
    server.finish().await;

    // A server that requires signing refuses a client that does not sign (as Python clients do not).
    let settings = ServerSettings { require_signed_requests: true, ..ServerSettings::default() };
    let server = Server::start(backend, settings, Users::new()).await;
    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    let unsigned = morango::capabilities::Capabilities::all().without(morango::capabilities::SIGNED_REQUESTS);
    let connection = morango::client::NetworkSyncConnection::connect(
        &tablet.peer.engine,
        &server.url,
        unsigned,
        HttpSettings::default(),
    )
    .await
    .unwrap();
    let refused = connection.open_session(&tablet.certificate, &server.root).await.err().expect("refused");
    assert!(refused.to_string().contains("403"), "{refused}");
    assert!(tablet.open(&server).await.id().len() == 32, "a signing client is welcome");
    tablet.finish().await;
    server.finish().await;
}

on_both_backends!(silent_half_sent_and_idle_connections_are_closed);

/// A connection that sends nothing, one that sends half a request, and a kept-alive one that goes quiet after its
/// answer are all closed after the header timeout.
async fn silent_half_sent_and_idle_connections_are_closed(backend: Backend) {
    let settings = ServerSettings { header_timeout: std::time::Duration::from_secs(1), ..ServerSettings::default() };
    let server = Server::start(backend, settings, Users::new()).await;
    let addr = server.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let connect = || async { tokio::net::TcpStream::connect(&addr).await.unwrap() };
    let silent = connect().await;
    let mut half = connect().await;
    half.write_all(b"GET /api/morango/v1/morangoinfo/1/ HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut idle = connect().await;
    idle.write_all(b"GET /api/morango/v1/morangoinfo/1/ HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let started = std::time::Instant::now();
    for (what, mut stream) in [("silent", silent), ("half a request", half), ("idle after an answer", idle)] {
        let mut received = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut received)).await;
        assert!(read.is_ok(), "the {what} connection is still open after 10 s");
        if what == "idle after an answer" {
            assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"), "answered first");
        }
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "closed by the timeout, not at once");
    server.finish().await;
}
