//! Bad input and attacks against every endpoint (issue 3), spoken in raw HTTP: each is answered with a 4xx and
//! a JSON `detail` that says what was wrong, writes nothing and never panics the server.

use std::io::Write;

use morango::api::ServerSettings;
use morango::certificate::{self, Certificate, PrivateKey, PublicKey};
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
        Api { http: reqwest::Client::new(), base: format!("{}api/morango/v1/", server.url) }
    }

    /// A request as a Python client makes it.
    fn at(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("X-Morango-Capabilities", PYTHON)
    }

    async fn send(&self, what: impl Into<String>, request: RequestBuilder) -> Answer {
        let what = what.into();
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: the server did not answer: {e}"));
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
        self.send(format!("POST {path} {body}"), self.at(Method::POST, path).json(body)).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(format!("PATCH {path} {body}"), self.at(Method::PATCH, path).json(body)).await
    }

    /// A body sent as is.
    async fn raw(&self, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let what = format!("{method} {path} <{} bytes of {content_type}>", body.len());
        self.send(what, self.at(method, path).header(CONTENT_TYPE, content_type).body(body)).await
    }
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

const TABLES: [&str; 9] = [
    "morango_store",
    "morango_recordmaxcounter",
    "morango_databasemaxcounter",
    "morango_buffer",
    "morango_recordmaxcounterbuffer",
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
    let request = api.at(Method::POST, "syncsessions/").header("X-Morango-Capabilities", caps).json(&body);
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
    let source_id = random_id();
    let id = sha2_uuid(&[partition, &source_id, model_name]);
    let instance = random_id();
    json!({
        "serialized": json!({"id": id, "facility_id": partition, "text": "hello", "_morango_source_id": source_id,
                             "_morango_partition": partition}).to_string(),
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
    let id = Certificate::calculate_id(public_key.as_str(), "facilitydata", &salt);
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
    ] {
        api.post("syncsessions/", &with(&handshake, key, value)).await.refused(400);
    }
    for body in [json!([]), json!("text"), json!(42), json!({})] {
        api.post("syncsessions/", &body).await.refused(400);
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
    ] {
        api.patch(&patch, &body).await.refused(400);
    }

    let good = note(&push, &root);
    let mut records = vec![json!({}), json!([1]), json!("text"), json!([]), json!([null]), json!([[good.clone()]])];
    for (key, value) in [
        ("deleted", json!("no")),
        ("last_saved_counter", json!("3")),
        ("last_saved_counter", json!(1.5)),
        ("last_saved_counter", json!(99999999999999999999u64)),
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
    assert_eq!(api.get("certificates/?profile=%00").await.ok(200), &json!([]));
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
    let settings = ServerSettings { max_body_bytes: limit, allow_certificate_pushing: true, ..Default::default() };
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
        api.raw(method.clone(), path, "application/json", big.clone()).await.refused(413);
        api.raw(method.clone(), path, "application/gzip", bomb.clone()).await.refused(413);
        api.raw(method.clone(), path, "application/gzip", b"not gzip at all".to_vec()).await.refused(400);
        api.raw(method.clone(), path, "application/gzip", bomb[..bomb.len() / 2].to_vec()).await.refused(400);
    }
    // Many records in one chunk, each valid: refused by size before anything is parsed.
    let many: Vec<Value> = (0..200).map(|_| note(&push, &root)).collect();
    api.raw(Method::POST, "buffers/", "application/json", serde_json::to_vec(&many).unwrap()).await.refused(413);
    assert_eq!(rows(server.db()).await, before, "an oversized request wrote something");

    // Within the limit, a gzipped chunk is accepted.
    let chunk = serde_json::to_vec(&json!([note(&push, &root)])).unwrap();
    api.raw(Method::POST, "buffers/", "application/gzip", gzip(&chunk)).await.ok(201);
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM morango_buffer").await, 1);
    finish(server, client).await;
}

async fn closed_sessions_and_cleaned_up_transfers_refuse_work(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    fixtures::learner(server.db(), &server.facility, "ada").await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let (pull, total) = pull_transfer(&api, &session, &root, EMPTY_FSIC).await.ok().unwrap();
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
    pushed_records_are_checked_and_a_bad_chunk_writes_nothing,
    buffers_flow_one_way_and_pages_are_bounded
);

async fn pushed_records_are_checked_and_a_bad_chunk_writes_nothing(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let push = push_transfer(&api, &session, &root, 2).await;
    let good = note(&push, &root);
    let set = |key: &str, value: Value| {
        let mut record = good.clone();
        record[key] = value;
        record
    };
    let with_rmcb = |key: &str, value: Value| {
        let mut record = good.clone();
        record["rmcb_list"][0][key] = value;
        record
    };
    // The same record with `source_id` changed and its id recomputed, so only the source id is wrong.
    let with_source = |source_id: &str| {
        let mut record = good.clone();
        let id = sha2_uuid(&[&root, source_id, "note"]);
        record["source_id"] = json!(source_id);
        record["model_uuid"] = json!(id);
        record["rmcb_list"][0]["model_uuid"] = json!(id);
        record
    };
    let mut unknown_key = good.clone();
    unknown_key["surprise"] = json!(1);
    let mut unknown_rmcb_key = good.clone();
    unknown_rmcb_key["rmcb_list"][0]["surprise"] = json!(1);
    let mut missing_key = good.clone();
    missing_key.as_object_mut().unwrap().remove("_self_ref_fk");
    let mut hard_deleted = set("hard_deleted", json!(true));
    hard_deleted["conflicting_serialized_data"] = json!("");
    let mut conflicts_kept = set("hard_deleted", json!(true));
    conflicts_kept["serialized"] = json!("{}");
    conflicts_kept["conflicting_serialized_data"] = json!("{\"text\": \"secret\"}\n");
    let model_uuid = random_id();
    let mut other_id = set("model_uuid", json!(model_uuid));
    other_id["rmcb_list"][0]["model_uuid"] = json!(model_uuid);

    let cases: Vec<(&str, Value, &str)> = vec![
        ("a partition outside the filter", record(&push, "elsewhere", "note"), "outside"),
        ("a partition outside the filter that embeds it", record(&push, &format!("x{root}"), "note"), "outside"),
        ("a model_uuid not from partition, source id and model name", other_id, "does not match"),
        ("another model name", set("model_name", json!("learner")), "does not match"),
        ("another source id", set("source_id", json!(random_id())), "does not match"),
        ("another partition inside the filter", set("partition", json!(format!("{root}:x"))), "does not match"),
        ("a hard-deleted record with its payload", hard_deleted, "hard-deleted"),
        ("a hard-deleted record with conflict history", conflicts_kept, "hard-deleted"),
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
        ("a malformed self-reference", set("_self_ref_fk", json!("parent")), "_self_ref_fk"),
        ("an empty source id", with_source(""), "source id"),
        ("an overlong source id", with_source(&"s".repeat(97)), "source id"),
        ("an overlong model name", set("model_name", json!("m".repeat(41))), "model name"),
        ("a NUL in the source id", with_source("a\u{0}b"), "NUL"),
        ("a NUL in the conflict history", set("conflicting_serialized_data", json!("x\u{0}")), "NUL"),
        ("an unknown key", unknown_key, "surprise"),
        ("an unknown key in a counter", unknown_rmcb_key, "surprise"),
        ("a missing key", missing_key, "_self_ref_fk"),
    ];
    let before = rows(server.db()).await;
    for (what, bad, words) in cases {
        let answer = api.post("buffers/", &json!([bad])).await;
        let detail = answer.refused(400);
        assert!(detail.contains(words), "{what}: {detail:?} should mention {words:?}");
        // All or nothing: a good record in the same chunk is not kept either.
        api.post("buffers/", &json!([good.clone(), bad])).await.refused(400);
    }
    api.post("buffers/", &json!([good.clone(), good.clone()])).await.refused_saying(400, "twice");
    assert_eq!(rows(server.db()).await, before, "a bad chunk wrote something");
    let other = push_transfer(&api, &open(&api, &server, &client, PYTHON).await, &root, 1).await;
    api.post("buffers/", &json!([good.clone(), note(&other, &root)])).await.refused_saying(403, "same TransferSession");
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM morango_buffer").await, 0, "a bad chunk wrote records");

    // The good record alone is accepted, and sending it again changes nothing.
    api.post("buffers/", &json!([good.clone()])).await.ok(201);
    api.post("buffers/", &good).await.ok(201);
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM morango_buffer").await, 1);
    assert_eq!(count(server.db(), "SELECT COUNT(*) AS n FROM morango_recordmaxcounterbuffer").await, 1);
    finish(server, client).await;
}

async fn buffers_flow_one_way_and_pages_are_bounded(backend: Backend) {
    let (server, client, api) = facility_client(backend, ServerSettings::default()).await;
    for name in ["ada", "bob", "cy"] {
        fixtures::learner(server.db(), &server.facility, name).await;
    }
    let root = server.root.id().to_owned();
    let session = open(&api, &server, &client, PYTHON).await;
    let (pull, total) = pull_transfer(&api, &session, &root, EMPTY_FSIC).await.ok().unwrap();
    assert_eq!(total, 4, "the facility and three learners");
    let push = push_transfer(&api, &session, &root, 1).await;
    let before = rows(server.db()).await;

    api.post("buffers/", &json!([note(&pull, &root)])).await.refused_saying(403, "pull");
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
