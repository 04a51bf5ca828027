//! Certificates, scope definitions, nonces and the shared key: against the ground truth of Python Morango 0.8.15
//! (`fixtures/morango-0.8.15.json`, section `certificates`) and on real SQLite databases.
//!
//! Every vector test loops over the cases of the file and takes its expectations from it.

#![cfg(feature = "network")]

use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{Duration, Utc};
use morango_core::certificate::{
    self, Certificate, CertificateError, KeyError, PrivateKey, PublicKey, PushError, RootTrust, chain_json,
    parse_chain, parse_chain_value, save_certificate_chain,
};
use morango_core::ids::{is_valid_id, sha2_uuid};
use morango_core::json::dumps;
use morango_core::nonce::{self, NonceError};
use morango_core::scope::{self, ScopeDefinition, parse_fixture};
use rsa::pkcs1::EncodeRsaPublicKey;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------------------------
// Reading the vectors and the scope-definition fixture

fn vectors() -> &'static Value {
    static VECTORS: OnceLock<Value> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/morango-0.8.15.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

/// The value at a `/`-separated path, e.g. `"certificates/root"`.
fn at(path: &str) -> &'static Value {
    vectors().pointer(&format!("/{path}")).unwrap_or_else(|| panic!("no {path} in the vectors"))
}

fn text<'v>(case: &'v Value, key: &str) -> &'v str {
    case[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {case}"))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// The vector certificates: `root` and `child`.
const ROLES: [&str; 2] = ["root", "child"];

fn vector_cert(role: &str) -> &'static Value {
    at(&format!("certificates/{role}"))
}

fn fixture_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/scopedefinitions.json")).unwrap()
}

fn definition(id: &str) -> ScopeDefinition {
    parse_fixture(&fixture_text()).unwrap().into_iter().find(|d| d.id == id).unwrap()
}

fn deserialized(role: &str) -> Certificate {
    let case = vector_cert(role);
    Certificate::deserialize(text(case, "serialized"), text(case, "signature")).unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// Keys and signatures

#[test]
fn the_fixture_has_the_scope_definitions_the_vectors_use() {
    let definitions = parse_fixture(&fixture_text()).unwrap();
    let expected = at("filter_ops/scope_definitions").as_object().unwrap();
    assert_eq!(definitions.len(), expected.len());
    for (id, templates) in expected {
        let definition = definitions.iter().find(|d| &d.id == id).unwrap();
        assert_eq!(definition.read_filter_template, text(templates, "read_filter_template"));
        assert_eq!(definition.write_filter_template, text(templates, "write_filter_template"));
        assert_eq!(definition.read_write_filter_template, text(templates, "read_write_filter_template"));
        assert_eq!(definition.profile, "facilitydata");
    }
    // The root vector was generated from full-facility, which names the root's own id in its primary param.
    let root = vector_cert("root");
    let params: Map<String, Value> = serde_json::from_str(text(root, "scope_params")).unwrap();
    assert_eq!(params[&definition("full-facility").primary_scope_param_key], root["id"]);
}

#[test]
fn vector_private_keys_round_trip_through_pem_and_give_the_key_string() {
    for role in ROLES {
        let case = vector_cert(role);
        let key = PrivateKey::from_pem(text(case, "private_key_pem")).unwrap();
        assert_eq!(key.to_pem().unwrap(), text(case, "private_key_pem"), "{role}");
        assert_eq!(key.public_key().as_str(), text(case, "public_key_string"), "{role}");
        let public = PublicKey::parse(text(case, "public_key_string")).unwrap();
        assert_eq!(public.as_str(), text(case, "public_key_string"));
        assert_eq!(public.to_string(), text(case, "public_key_string"));
        // Python adds the PEM armour to a bare private key body itself.
        let body: String = text(case, "private_key_pem").lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(PrivateKey::from_pem(&body).unwrap(), key);
    }
}

#[test]
fn signatures_equal_the_vectors_byte_for_byte() {
    let key = |role: &str| PrivateKey::from_pem(text(vector_cert(role), "private_key_pem")).unwrap();
    // Each certificate is signed by its parent; the root by itself.
    for role in ROLES {
        let case = vector_cert(role);
        let signer = if case["parent_id"].is_null() { key(role) } else { key("root") };
        assert_eq!(signer.sign(text(case, "serialized")).unwrap(), text(case, "signature"), "{role}");
    }
    let nonce = at("certificates/nonce_message");
    assert_eq!(text(nonce, "message"), format!("{}:{}", text(nonce, "nonce"), text(nonce, "sync_session_id")));
    assert_eq!(key(text(nonce, "signed_by")).sign(text(nonce, "message")).unwrap(), text(nonce, "signature"));
    assert!(
        PublicKey::parse(text(vector_cert(text(nonce, "signed_by")), "public_key_string"))
            .unwrap()
            .verify(text(nonce, "message"), text(nonce, "signature"))
    );
}

#[test]
fn every_vector_verification_gives_the_expected_result() {
    let verifications = at("certificates/verifications").as_array().unwrap();
    assert!(verifications.iter().any(|c| c["expected"] == false));
    for case in verifications {
        let key = PublicKey::parse(text(case, "public_key_string")).unwrap();
        let verified = key.verify(text(case, "message"), text(case, "signature"));
        assert_eq!(verified, case["expected"] == true, "{}", text(case, "name"));
    }
}

#[test]
fn every_public_key_form_python_accepts_gives_the_canonical_key_string() {
    let nonce = at("certificates/nonce_message");
    for case in at("certificates/public_key_forms").as_array().unwrap() {
        let key = PublicKey::parse(text(case, "input")).unwrap_or_else(|e| panic!("{}: {e}", text(case, "name")));
        assert_eq!(key.as_str(), text(case, "public_key_string"), "{}", text(case, "name"));
        let verifies = key.verify(text(nonce, "message"), text(nonce, "signature"));
        assert_eq!(verifies, case["verifies_nonce_message"] == true, "{}", text(case, "name"));
    }
}

#[test]
fn keys_python_peers_cannot_use_are_refused() {
    let vector_key = PrivateKey::from_pem(text(vector_cert("root"), "private_key_pem")).unwrap();
    let der = base64_decode(vector_key.public_key().as_str());
    let parsed = <rsa::PublicKey as rsa::pkcs1::DecodeRsaPublicKey>::from_pkcs1_der(&der).unwrap();
    let modulus = rsa::traits::PublicKeyParts::n(&parsed).as_ref().clone();

    // RSA-2048 with exponent 3.
    let e3 = rsa::PublicKey::new(modulus, rsa::BoxedUint::from(3u64)).unwrap();
    let e3_string = base64_encode(e3.to_pkcs1_der().unwrap().as_bytes());
    assert!(matches!(PublicKey::parse(&e3_string), Err(KeyError::UnsupportedKey)));

    // RSA-1024.
    let mut rng = rsa::sha2::digest::common::getrandom::SysRng;
    let small = rsa::PrivateKey::new(&mut rng, 1024).unwrap().to_public_key();
    let small_string = base64_encode(small.to_pkcs1_der().unwrap().as_bytes());
    assert!(matches!(PublicKey::parse(&small_string), Err(KeyError::UnsupportedKey)));

    for garbage in ["", "not a key", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", "-----BEGIN PUBLIC KEY-----\n-----END"] {
        assert!(matches!(PublicKey::parse(garbage), Err(KeyError::InvalidPublicKey(_))), "{garbage:?}");
    }
    assert!(PrivateKey::from_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n").is_err());
}

#[test]
fn generated_keys_are_rsa_2048_and_round_trip() {
    let key = PrivateKey::generate().unwrap();
    assert_eq!(key.public_key().as_str().len(), 360);
    assert!(key.public_key().as_str().starts_with("MIIBCgKCAQEA"));
    let pem = key.to_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n") && pem.ends_with("-----END RSA PRIVATE KEY-----\n"));
    assert!(pem.lines().all(|line| line.len() <= 64));
    assert_eq!(PrivateKey::from_pem(&pem).unwrap(), key);
    let signature = key.sign("message").unwrap();
    assert_eq!(signature.len(), 344);
    assert!(key.public_key().verify("message", &signature));
    assert!(!key.public_key().verify("other message", &signature));
    assert!(!key.public_key().verify("message", "not base64 at all!"));
}

// ---------------------------------------------------------------------------------------------------------------
// Certificates

#[test]
fn certificate_ids_hash_the_non_empty_key_profile_and_salt() {
    for role in ROLES {
        let case = vector_cert(role);
        let (key, profile, salt) = (text(case, "public_key_string"), text(case, "profile"), text(case, "salt"));
        let joined: Vec<&str> = [key, profile, salt].into_iter().filter(|s| !s.is_empty()).collect();
        assert_eq!(joined.join(":"), text(case, "id_input"), "{role}");
        assert_eq!(sha2_uuid(&[text(case, "id_input")]), text(case, "id"), "{role}");
        assert_eq!(Certificate::calculate_id(key, profile, salt), text(case, "id"), "{role}");
    }
}

#[test]
fn serialize_reproduces_the_signed_text_from_the_parsed_fields() {
    for role in ROLES {
        let case = vector_cert(role);
        let cert = deserialized(role);
        assert_eq!(cert.id(), text(case, "id"));
        assert_eq!(cert.parent_id(), case["parent_id"].as_str());
        assert_eq!(cert.profile(), text(case, "profile"));
        assert_eq!(cert.scope_definition_id(), text(case, "scope_definition_id"));
        assert_eq!(i64::from(cert.scope_version()), case["scope_version"].as_i64().unwrap());
        assert_eq!(cert.scope_params(), text(case, "scope_params"));
        assert_eq!(cert.salt(), text(case, "salt"));
        assert_eq!(cert.public_key().as_str(), text(case, "public_key_string"));
        assert_eq!(cert.serialize(), text(case, "serialized"), "{role}");
        assert_eq!(cert.serialized(), text(case, "serialized"));
        assert_eq!(cert.signature(), text(case, "signature"));
    }
}

#[test]
fn wire_objects_and_chains_are_written_as_python_writes_them() {
    let certs = at("certificates");
    let csr_response: Value = serde_json::from_str(text(certs, "csr_response_body")).unwrap();
    assert_eq!(Certificate::from_wire(&csr_response).unwrap().to_wire(), csr_response);
    assert_eq!(
        serde_json::to_string(&Certificate::from_wire(&csr_response).unwrap().to_wire()).unwrap(),
        text(certs, "csr_response_body")
    );

    let field = text(certs, "certificate_chain_syncsession_field");
    let chain = parse_chain(field).unwrap();
    assert_eq!(chain.iter().map(Certificate::id).collect::<Vec<_>>(), [&certs["root"]["id"], &certs["child"]["id"]]);
    assert_eq!(chain_json(&chain), field);

    let body: Value = serde_json::from_str(text(certs, "certificate_chain_get_response_body")).unwrap();
    let from_body = parse_chain_value(&body).unwrap();
    assert_eq!(from_body, chain);
    assert_eq!(Value::Array(from_body.iter().map(Certificate::to_wire).collect()), body);
    // The double-encoded body of `POST certificatechain/` is a JSON string holding the chain.
    assert_eq!(parse_chain_value(&Value::String(field.to_owned())).unwrap(), chain);
}

#[test]
fn the_vector_chain_verifies_and_its_scopes_expand_as_in_python() {
    let (root, child) = (deserialized("root"), deserialized("child"));
    let (full, single) = (definition("full-facility"), definition("single-user"));
    root.check(&full, None).unwrap();
    child.check(&single, Some((&root, &full))).unwrap();
    for (role, cert, def) in [("root", &root, &full), ("child", &child, &single)] {
        let scope = cert.scope(def).unwrap();
        // None of these filters is empty, so W10 does not change them.
        assert_eq!(scope.read.prefixes(), strings(&vector_cert(role)["read_filter"]), "{role}");
        assert_eq!(scope.write.prefixes(), strings(&vector_cert(role)["write_filter"]), "{role}");
    }
    // The child checked against the wrong parent, or without one.
    assert!(matches!(child.check(&single, None), Err(CertificateError::ParentUnknown { .. })));
    assert!(matches!(child.check(&single, Some((&child, &single))), Err(CertificateError::ParentUnknown { .. })));
}

#[test]
fn the_tampered_certificate_fails_with_the_signature_error() {
    let case = at("certificates/tampered_check_certificate");
    let tampered = Certificate::deserialize(text(case, "serialized"), text(case, "signature")).unwrap();
    assert_eq!(tampered.parent_id(), case["parent_id"].as_str());
    let error = tampered
        .check(&definition(tampered.scope_definition_id()), Some((&deserialized("root"), &definition("full-facility"))))
        .unwrap_err();
    assert_eq!(error.error_class(), text(case, "expected_error"));
    assert!(matches!(error, CertificateError::SignatureInvalid { .. }));
}

#[test]
fn a_certificate_whose_id_is_not_its_hash_is_refused() {
    // Re-sign the child's text with a changed salt: the signature is good, the id is not.
    let case = vector_cert("child");
    let mut data: Map<String, Value> = serde_json::from_str(text(case, "serialized")).unwrap();
    data.insert("salt".into(), json!("00000000000000000000000000000000"));
    let serialized = dumps(&Value::Object(data));
    let root_key = PrivateKey::from_pem(text(vector_cert("root"), "private_key_pem")).unwrap();
    let forged = Certificate::deserialize(&serialized, &root_key.sign(&serialized).unwrap()).unwrap();
    let error = forged
        .check(&definition("single-user"), Some((&deserialized("root"), &definition("full-facility"))))
        .unwrap_err();
    assert!(matches!(error, CertificateError::IdInvalid { .. }));
    assert_eq!(error.error_class(), "CertificateIDInvalid");
}

#[test]
fn malformed_certificates_are_typed_errors() {
    let case = vector_cert("child");
    let good: Map<String, Value> = serde_json::from_str(text(case, "serialized")).unwrap();
    let with = |key: &str, value: Value| {
        let mut data = good.clone();
        data.insert(key.into(), value);
        dumps(&Value::Object(data))
    };
    let without = |key: &str| {
        let mut data = good.clone();
        data.shift_remove(key);
        dumps(&Value::Object(data))
    };
    let bad = [
        "".to_owned(),
        "[]".to_owned(),
        "{\"id\": ".to_owned(),
        with("id", json!("C83C93988DEB881656E4E0FC67FB8FC2")),
        with("id", json!(12)),
        with("parent_id", json!("nonexistent")),
        with("profile", json!("")),
        with("profile", json!("a profile name longer than twenty")),
        with("salt", json!(7)),
        with("salt", json!("x".repeat(33))),
        with("scope_definition_id", json!(null)),
        with("scope_version", json!("1")),
        with("scope_version", json!(1.5)),
        with("scope_version", json!(1_u64 << 40)),
        with("scope_params", json!({"facility_id": "x"})),
        with("scope_params", json!("[1, 2]")),
        with("public_key_string", json!("not a key")),
        without("parent_id"),
        without("public_key_string"),
        "x".repeat(certificate::MAX_SERIALIZED_LEN + 1),
    ];
    for serialized in &bad {
        let error = Certificate::deserialize(serialized, text(case, "signature")).unwrap_err();
        assert!(matches!(error, CertificateError::Malformed(_)), "{serialized:.80}: {error}");
        assert_eq!(error.error_class(), "CertificateMalformed");
    }
    // A missing salt is an empty salt, as in Python.
    assert_eq!(Certificate::deserialize(&without("salt"), "").unwrap().salt(), "");
    assert!(
        Certificate::deserialize(text(case, "serialized"), &"A".repeat(certificate::MAX_SIGNATURE_LEN + 1)).is_err()
    );

    // Wire objects: only id, serialized and signature are read, and the ids must agree.
    let wire =
        |id: Value| json!({"id": id, "serialized": text(case, "serialized"), "signature": text(case, "signature")});
    assert!(Certificate::from_wire(&wire(case["id"].clone())).is_ok());
    for broken in [wire(json!("00000000000000000000000000000000")), wire(json!(null)), json!([]), json!("text")] {
        assert!(matches!(Certificate::from_wire(&broken), Err(CertificateError::Malformed(_))), "{broken}");
    }
    for chain in ["", "{}", "[", "[1]", "[{}]"] {
        assert!(matches!(parse_chain(chain), Err(CertificateError::Malformed(_))), "{chain}");
    }
    assert!(matches!(parse_chain("[]"), Err(CertificateError::ChainEmpty)));
    let long = Value::Array(vec![wire(case["id"].clone()); certificate::MAX_CHAIN_LENGTH + 1]);
    assert!(matches!(parse_chain_value(&long), Err(CertificateError::ChainTooLong(_))));
}

// ---------------------------------------------------------------------------------------------------------------
// On a database

/// A database backend under test. `MORANGO_TEST_BACKENDS` (default `sqlite,postgres`) chooses which run;
/// PostgreSQL is reached at `MORANGO_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`), as for the
/// engine tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn enabled(self) -> bool {
        let wanted = std::env::var("MORANGO_TEST_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
        let name = match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        wanted.split(',').any(|b| b.trim() == name)
    }
}

/// Runs `$name(Backend)` as two tests, `$name::sqlite` and `$name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use super::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if Backend::Sqlite.enabled() { super::$name(Backend::Sqlite).await }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if Backend::Postgres.enabled() { super::$name(Backend::Postgres).await }
            }
        }
    )+};
}

fn postgres_base() -> String {
    std::env::var("MORANGO_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh migrated database (an SQLite file, or a new PostgreSQL database) with the fixture's scope
/// definitions loaded; removed when dropped.
struct TestDb {
    db: DatabaseConnection,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(PathBuf),
    PostgresDatabase(String),
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::PostgresDatabase(name) => {
                // Drop is not async: drop the database from a thread with its own runtime.
                let name = name.clone();
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    runtime.block_on(async {
                        let admin = Database::connect(format!("{}/postgres", postgres_base())).await.ok()?;
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        admin.execute_unprepared(&drop).await.ok()?;
                        admin.close().await.ok()
                    })
                })
                .join();
            }
        }
    }
}

impl TestDb {
    async fn new(backend: Backend) -> TestDb {
        let name = format!("morango_test_{}", morango_core::ids::random_id());
        let (db, cleanup) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.sqlite3"));
                let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
                (db, Cleanup::SqliteFile(path))
            }
            Backend::Postgres => {
                let admin = Database::connect(format!("{}/postgres", postgres_base()))
                    .await
                    .expect("PostgreSQL must be running (see README: Tests)");
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                admin.close().await.ok();
                let db = Database::connect(format!("{}/{name}", postgres_base())).await.unwrap();
                (db, Cleanup::PostgresDatabase(name))
            }
        };
        morango_core::migration::migrate(&db).await.unwrap();
        let report = scope::load_fixture(&db, &fixture_text()).await.unwrap();
        assert_eq!(report.inserted, 3);
        TestDb { db, cleanup }
    }
}

/// A statement written with `$1`, `$2`, … for either backend.
fn statement(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Sqlite { positional(sql) } else { sql.to_owned() };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `$1`, `$2`, … → `?` (the statements here use each placeholder once, in order).
fn positional(sql: &str) -> String {
    let mut out = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

async fn count_certificates(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(statement(db, "SELECT COUNT(*) AS n FROM morango_certificate", vec![]))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn params(value: Value) -> String {
    dumps(&value)
}

/// A certificate signed by `signer` from fields of our choosing, as a forger (or a buggy peer) would make it.
fn forge(signer: &PrivateKey, fields: Value) -> Value {
    let mut fields = fields.as_object().unwrap().clone();
    let key = fields["public_key_string"].as_str().unwrap().to_owned();
    let id = Certificate::calculate_id(&key, fields["profile"].as_str().unwrap(), fields["salt"].as_str().unwrap());
    let mut data = Map::new();
    data.insert("id".into(), json!(id));
    for name in ["parent_id", "profile", "salt", "scope_definition_id", "scope_version", "scope_params"] {
        data.insert(name.into(), fields.remove(name).unwrap());
    }
    data.insert("public_key_string".into(), json!(key));
    let serialized = dumps(&Value::Object(data));
    json!({"id": id, "serialized": serialized, "signature": signer.sign(&serialized).unwrap()})
}

async fn scope_definitions_load_idempotently_and_update_when_changed(backend: Backend) {
    let t = TestDb::new(backend).await;
    let again = scope::load_fixture(&t.db, &fixture_text()).await.unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 3));
    let changed = fixture_text().replace(
        "\"version\": 1,\n      \"primary_scope_param_key\": \"\",\n      \"description\": \"Allows reading",
        "\"version\": 2,\n      \"primary_scope_param_key\": \"\",\n      \"description\": \"Allows reading",
    );
    let report = scope::load_fixture(&t.db, &changed).await.unwrap();
    assert_eq!((report.inserted, report.updated, report.unchanged), (0, 1, 2));
    assert_eq!(scope::get(&t.db, "read-only").await.unwrap().unwrap().version, 2);
    assert_eq!(scope::all(&t.db).await.unwrap().len(), 3);
    assert!(scope::get(&t.db, "no-such-scope").await.unwrap().is_none());
    for broken in ["{}", "[{\"model\": \"morango.scopedefinition\", \"pk\": \"x\", \"fields\": {}}]"] {
        assert!(scope::load_fixture(&t.db, broken).await.is_err());
    }
    let single = scope::get(&t.db, "single-user").await.unwrap().unwrap();
    let user_params = json!({"facility_id": "f", "user_id": "u"});
    assert_eq!(
        single.describe(user_params.as_object().unwrap()),
        "Allows syncing data for user u under the facility f."
    );
}

async fn a_generated_root_is_self_signed_owned_and_scoped_by_its_own_id(backend: Backend) {
    let t = TestDb::new(backend).await;
    let root = certificate::generate_root(&t.db, "full-facility", &Map::new()).await.unwrap();
    assert!(root.is_root() && root.has_private_key() && root.salt().is_empty());
    assert_eq!(root.id(), Certificate::calculate_id(root.public_key().as_str(), "facilitydata", ""));
    assert_eq!(root.scope_params(), dumps(&json!({"facility_id": root.id()})));
    assert_eq!(root.serialize(), root.serialized());
    assert!(root.verify(root.serialized(), root.signature()));
    let scope = certificate::scope_of(&t.db, &root).await.unwrap();
    assert_eq!(scope.read.prefixes(), [root.id()]);
    assert_eq!(scope.write.prefixes(), [root.id()]);

    let stored = certificate::get(&t.db, root.id()).await.unwrap().unwrap();
    assert_eq!(stored, root);
    assert_eq!(certificate::owned(&t.db, None).await.unwrap(), std::slice::from_ref(&root));
    assert_eq!(certificate::owned(&t.db, Some("facilitydata")).await.unwrap().len(), 1);
    assert!(certificate::owned(&t.db, Some("other")).await.unwrap().is_empty());
    assert_eq!(certificate::ancestors_of(&t.db, root.id(), None).await.unwrap(), std::slice::from_ref(&root));
    assert_eq!(certificate::primary_partition(&t.db, root.id(), None).await.unwrap(), std::slice::from_ref(&root));
    assert!(certificate::get(&t.db, "nonexistent").await.unwrap().is_none());
    assert!(certificate::ancestors_of(&t.db, "nonexistent", None).await.unwrap().is_empty());

    // Extra params follow the primary one.
    let named =
        certificate::generate_root(&t.db, "full-facility", json!({"name": "x"}).as_object().unwrap()).await.unwrap();
    assert_eq!(named.scope_params(), dumps(&json!({"facility_id": named.id(), "name": "x"})));
    // A definition without a primary scope param cannot make roots; an unknown one is a typed error.
    let error = certificate::generate_root(&t.db, "single-user", &Map::new()).await.unwrap_err();
    assert!(matches!(error, CertificateError::NotRootable { .. }));
    let error = certificate::generate_root(&t.db, "no-such-scope", &Map::new()).await.unwrap_err();
    assert!(matches!(error, CertificateError::ScopeDefinitionUnknown { .. }));
}

async fn a_csr_inside_the_parents_scope_is_issued_and_the_client_stores_it_with_its_key(backend: Backend) {
    let (server, client) = (TestDb::new(backend).await, TestDb::new(backend).await);
    let root = certificate::generate_root(&server.db, "full-facility", &Map::new()).await.unwrap();
    let user_params = json!({"facility_id": root.id(), "user_id": "0c14d56d801164e5921819a3bcd79294"});

    // The client fetches the server's chain first (a new root: the user chose this server).
    let chain = parse_chain_value(&Value::Array(
        certificate::ancestors_of(&server.db, root.id(), None)
            .await
            .unwrap()
            .iter()
            .map(Certificate::to_wire)
            .collect(),
    ))
    .unwrap();
    let saved = save_certificate_chain(&client.db, &chain, Some(root.id()), RootTrust::AcceptNewRoots).await.unwrap();
    assert!(!saved.has_private_key());

    let key = PrivateKey::generate().unwrap();
    let request =
        certificate::signing_request(&saved, "single-user", user_params.as_object().unwrap(), key.public_key());
    assert_eq!(request.scope_params, dumps(&user_params));
    let issued = certificate::issue(&server.db, &request).await.unwrap();
    assert!(is_valid_id(issued.salt()));
    assert_eq!(issued.parent_id(), Some(root.id()));
    assert_eq!(issued.public_key(), key.public_key());
    assert!(!issued.has_private_key());
    assert_eq!(certificate::get(&server.db, issued.id()).await.unwrap().unwrap(), issued);
    // The server does not own it, so it does not list it.
    assert_eq!(certificate::owned(&server.db, None).await.unwrap().len(), 1);
    assert!(certificate::ancestors_of(&server.db, issued.id(), None).await.unwrap().is_empty());
    assert_eq!(certificate::primary_partition(&server.db, root.id(), None).await.unwrap(), std::slice::from_ref(&root));

    // A response for another key is refused; the right one is stored with the client's key.
    let wrong = certificate::store_issued(&client.db, &issued.to_wire(), PrivateKey::generate().unwrap()).await;
    assert!(matches!(wrong, Err(CertificateError::KeyMismatch { .. })));
    let mine = certificate::store_issued(&client.db, &issued.to_wire(), key).await.unwrap();
    assert!(mine.has_private_key());
    let chain = certificate::ancestors_of(&client.db, mine.id(), None).await.unwrap();
    assert_eq!(chain.iter().map(Certificate::id).collect::<Vec<_>>(), [root.id(), mine.id()]);
    assert_eq!(certificate::chain_of(&client.db, mine.id()).await.unwrap(), chain);
    // The handshake: the client signs "<nonce>:<session id>", the server checks it with the stored certificate.
    let message = "30d0bcef41f44e0e8b3fa3809c246702:f91d006d97e94cdfbb1ca524ebe6acc3";
    assert!(issued.verify(message, &mine.sign(message).unwrap()));
    assert!(matches!(issued.sign(message), Err(CertificateError::NotOwned { .. })));

    // The server accepts the client's chain for a sync session (its root is known there).
    let sent = parse_chain(&chain_json(&chain)).unwrap();
    let leaf = save_certificate_chain(&server.db, &sent, Some(mine.id()), RootTrust::KnownRootsOnly).await.unwrap();
    assert_eq!(leaf.id(), mine.id());
}

async fn a_csr_beyond_the_parents_scope_or_profile_is_refused(backend: Backend) {
    let (server, client) = (TestDb::new(backend).await, TestDb::new(backend).await);
    let root = certificate::generate_root(&server.db, "full-facility", &Map::new()).await.unwrap();
    let other_root = certificate::generate_root(&server.db, "full-facility", &Map::new()).await.unwrap();
    let key = PrivateKey::generate().unwrap();
    let user = |facility: &str| params(json!({"facility_id": facility, "user_id": "0c14d56d801164e5921819a3bcd79294"}));
    let request =
        |parent: &Certificate, definition: &str, scope_params: String| morango_core::wire::CertificateRequest {
            parent: parent.id().to_owned(),
            profile: parent.profile().to_owned(),
            scope_definition: definition.to_owned(),
            scope_version: 1,
            scope_params,
            public_key: key.public_key().as_str().to_owned(),
        };
    let issue = |request| {
        let db = &server.db;
        async move { certificate::issue(db, &request).await.unwrap_err() }
    };

    // Another facility's partitions.
    let error = issue(request(&root, "single-user", user(other_root.id()))).await;
    assert!(matches!(error, CertificateError::ScopeNotSubset { .. }), "{error}");
    assert_eq!(error.error_class(), "CertificateScopeNotSubset");
    // Another profile than the parent's, with a definition of that profile.
    let mut foreign = definition("full-facility");
    foreign.id = "foreign".into();
    foreign.profile = "otherprofile".into();
    scope::save(&server.db, &foreign).await.unwrap();
    let mut other_profile = request(&root, "foreign", params(json!({"facility_id": root.id()})));
    other_profile.profile = "otherprofile".into();
    let error = issue(other_profile).await;
    assert!(matches!(error, CertificateError::ProfileInvalid { .. }), "{error}");
    assert_eq!(error.error_class(), "CertificateProfileInvalid");
    // A definition that belongs to another profile than the certificate (Python does not check this).
    let error = issue(request(&root, "foreign", params(json!({"facility_id": root.id()})))).await;
    assert!(matches!(error, CertificateError::ScopeDefinitionProfileInvalid { .. }), "{error}");
    assert_eq!(error.error_class(), "CertificateProfileInvalid");
    let mut mismatched = request(&root, "single-user", user(root.id()));
    mismatched.profile = "otherprofile".into();
    assert!(matches!(issue(mismatched).await, CertificateError::ScopeDefinitionProfileInvalid { .. }));
    // Unknown definitions, unknown and unowned parents, malformed fields.
    let error = issue(request(&root, "no-such-scope", user(root.id()))).await;
    assert!(matches!(error, CertificateError::ScopeDefinitionUnknown { .. }), "{error}");
    let mut unknown_parent = request(&root, "single-user", user(root.id()));
    unknown_parent.parent = "00000000000000000000000000000000".into();
    assert!(matches!(issue(unknown_parent).await, CertificateError::ParentUnknown { .. }));
    for (field, value) in [("scope_params", "[]"), ("scope_params", "{"), ("public_key", "nope"), ("profile", "")] {
        let mut broken = request(&root, "single-user", user(root.id()));
        match field {
            "scope_params" => broken.scope_params = value.into(),
            "public_key" => broken.public_key = value.into(),
            _ => broken.profile = value.into(),
        }
        assert!(matches!(issue(broken).await, CertificateError::Malformed(_)), "{field}");
    }

    // Escalation below a narrower certificate: a single-user certificate cannot sign a full-facility one.
    let single = certificate::issue(&server.db, &request(&root, "single-user", user(root.id()))).await.unwrap();
    let error = issue(request(&single, "full-facility", params(json!({"facility_id": root.id()})))).await;
    assert!(matches!(error, CertificateError::NotOwned { .. }), "the server does not own it: {error}");
    let chain = certificate::chain_of(&server.db, root.id()).await.unwrap();
    save_certificate_chain(&client.db, &chain, None, RootTrust::AcceptNewRoots).await.unwrap();
    let mine = certificate::store_issued(
        &client.db,
        &certificate::issue(&server.db, &request(&root, "single-user", user(root.id()))).await.unwrap().to_wire(),
        key.clone(),
    )
    .await
    .unwrap();
    let escalated =
        certificate::create_child(&client.db, mine.id(), "full-facility", &params(json!({"facility_id": root.id()})))
            .await
            .unwrap_err();
    assert!(matches!(escalated, CertificateError::ScopeNotSubset { .. }), "{escalated}");
    // The same scope again is fine.
    let narrower = certificate::create_child(&client.db, mine.id(), "single-user", &user(root.id())).await.unwrap();
    assert!(narrower.has_private_key());
    let partition = certificate::primary_partition(&client.db, mine.id(), None).await.unwrap();
    assert_eq!(partition.iter().map(Certificate::id).collect::<Vec<_>>(), [mine.id(), narrower.id()]);
    let partition = certificate::primary_partition(&client.db, root.id(), None).await.unwrap();
    assert_eq!(partition.len(), 2, "the client owns two certificates under the server's root");
}

/// A server with a root and a single-user certificate it issued, the client's chain to that certificate, and the
/// root's key (which a forger would not have, but a buggy issuer might misuse).
struct Issued {
    server: TestDb,
    root: Certificate,
    chain: Vec<Value>,
}

async fn issued_chain(backend: Backend) -> Issued {
    let server = TestDb::new(backend).await;
    let root = certificate::generate_root(&server.db, "full-facility", &Map::new()).await.unwrap();
    let key = PrivateKey::generate().unwrap();
    let user_params = json!({"facility_id": root.id(), "user_id": "0c14d56d801164e5921819a3bcd79294"});
    let request =
        certificate::signing_request(&root, "single-user", user_params.as_object().unwrap(), key.public_key());
    let issued = certificate::issue(&server.db, &request).await.unwrap();
    Issued { chain: vec![root.to_wire(), issued.to_wire()], server, root }
}

async fn save_wire(
    db: &DatabaseConnection,
    chain: &[Value],
    roots: RootTrust,
) -> Result<Certificate, CertificateError> {
    let chain = parse_chain_value(&Value::Array(chain.to_vec()))?;
    let last = chain.last().map(|c| c.id().to_owned());
    save_certificate_chain(db, &chain, last.as_deref(), roots).await
}

async fn a_chain_from_an_unknown_root_is_refused_unless_new_roots_are_accepted(backend: Backend) {
    let Issued { chain, .. } = issued_chain(backend).await;
    let peer = TestDb::new(backend).await;
    let error = save_wire(&peer.db, &chain, RootTrust::KnownRootsOnly).await.unwrap_err();
    assert!(matches!(error, CertificateError::RootNotTrusted { .. }), "{error}");
    assert_eq!(count_certificates(&peer.db).await, 0);
    assert_eq!(RootTrust::default(), RootTrust::KnownRootsOnly);

    // Two peers presenting the same new chain at once both succeed.
    let (first, second) = tokio::join!(
        save_wire(&peer.db, &chain, RootTrust::AcceptNewRoots),
        save_wire(&peer.db, &chain, RootTrust::AcceptNewRoots)
    );
    let leaf = first.unwrap();
    assert_eq!(leaf.id(), chain[1]["id"]);
    assert_eq!(second.unwrap().id(), leaf.id());
    assert_eq!(count_certificates(&peer.db).await, 2);
    // Now the root is known: the same chain, and the leaf alone, are accepted without new roots.
    save_wire(&peer.db, &chain, RootTrust::KnownRootsOnly).await.unwrap();
    save_wire(&peer.db, &chain[1..], RootTrust::KnownRootsOnly).await.unwrap();
}

async fn a_forged_broken_or_cross_profile_chain_is_refused_and_nothing_is_stored(backend: Backend) {
    let Issued { server, root, chain } = issued_chain(backend).await;
    let peer = TestDb::new(backend).await;
    let accept = RootTrust::AcceptNewRoots;

    // A forged signature on the leaf: the root's valid chain is not stored either (all or nothing).
    let mut forged = chain.clone();
    forged[1]["signature"] = chain[0]["signature"].clone();
    let error = save_wire(&peer.db, &forged, accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::SignatureInvalid { .. }), "{error}");
    assert_eq!(count_certificates(&peer.db).await, 0);

    // The wrong parent in front of the leaf.
    let stranger = certificate::generate_root(&server.db, "full-facility", &Map::new()).await.unwrap();
    let error = save_wire(&peer.db, &[stranger.to_wire(), chain[1].clone()], accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ChainBroken { .. }), "{error}");
    // Wrong order, a chain without its root, an unexpected leaf.
    let reversed = [chain[1].clone(), chain[0].clone()];
    let error = save_wire(&peer.db, &reversed, accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ChainRootNotFirst { .. }), "{error}");
    let error = save_wire(&peer.db, &chain[1..], accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ChainNotRooted { .. }), "{error}");
    let parsed = parse_chain_value(&Value::Array(chain.clone())).unwrap();
    let error = save_certificate_chain(&peer.db, &parsed, Some(root.id()), accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ChainBroken { .. }), "{error}");
    let error = save_certificate_chain(&peer.db, &[], None, accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ChainEmpty));
    // A root in the middle of a chain.
    let error = save_wire(&peer.db, &[chain[0].clone(), stranger.to_wire()], accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ChainRootNotFirst { .. }), "{error}");

    // Signed by the real root, but for another profile (the profile of its definition, too).
    let root_key = root.private_key().unwrap();
    let mut other = definition("single-user");
    other.id = "other-user".into();
    other.profile = "otherprofile".into();
    scope::save(&peer.db, &other).await.unwrap();
    let stranger_key = PrivateKey::generate().unwrap();
    let cross = forge(
        root_key,
        json!({
            "parent_id": root.id(), "profile": "otherprofile", "salt": "85797a71985d4cb9a32ee028394c4e33",
            "scope_definition_id": "other-user", "scope_version": 1,
            "scope_params": params(json!({"facility_id": root.id(), "user_id": "u"})),
            "public_key_string": stranger_key.public_key().as_str(),
        }),
    );
    let error = save_wire(&peer.db, &[chain[0].clone(), cross], accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ProfileInvalid { .. }), "{error}");
    // Signed by the real root, with a scope outside it.
    let escalated = forge(
        root_key,
        json!({
            "parent_id": root.id(), "profile": "facilitydata", "salt": "85797a71985d4cb9a32ee028394c4e33",
            "scope_definition_id": "full-facility", "scope_version": 1,
            "scope_params": params(json!({"facility_id": stranger.id()})),
            "public_key_string": stranger_key.public_key().as_str(),
        }),
    );
    let error = save_wire(&peer.db, &[chain[0].clone(), escalated], accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ScopeNotSubset { .. }), "{error}");
    // A self-signed root whose scope reaches beyond its own id.
    let greedy = forge(
        &stranger_key,
        json!({
            "parent_id": null, "profile": "facilitydata", "salt": "", "scope_definition_id": "full-facility",
            "scope_version": 1, "scope_params": params(json!({"facility_id": root.id()})),
            "public_key_string": stranger_key.public_key().as_str(),
        }),
    );
    let error = save_wire(&peer.db, &[greedy], accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::RootScopeInvalid { .. }), "{error}");
    // A certificate naming a scope definition this database does not have.
    let unknown = forge(
        root_key,
        json!({
            "parent_id": root.id(), "profile": "facilitydata", "salt": "85797a71985d4cb9a32ee028394c4e33",
            "scope_definition_id": "no-such-scope", "scope_version": 1, "scope_params": "{}",
            "public_key_string": stranger_key.public_key().as_str(),
        }),
    );
    let error = save_wire(&peer.db, &[chain[0].clone(), unknown], accept).await.unwrap_err();
    assert!(matches!(error, CertificateError::ScopeDefinitionUnknown { .. }), "{error}");
    assert_eq!(count_certificates(&peer.db).await, 0);
}

async fn a_chain_stops_at_the_first_certificate_already_known(backend: Backend) {
    let Issued { chain, root, .. } = issued_chain(backend).await;
    let peer = TestDb::new(backend).await;
    save_wire(&peer.db, &chain[..1], RootTrust::AcceptNewRoots).await.unwrap();
    // The root is known, so its copy in the chain is not looked at again, even if altered.
    let mut altered = chain.clone();
    altered[0]["signature"] = chain[1]["signature"].clone();
    let leaf = save_wire(&peer.db, &altered, RootTrust::KnownRootsOnly).await.unwrap();
    assert_eq!(leaf.id(), chain[1]["id"]);
    // A known leaf is returned as stored, whatever precedes it.
    let again = save_wire(&peer.db, &[json!({"bogus": true}), chain[1].clone()], RootTrust::KnownRootsOnly).await;
    assert!(matches!(again, Err(CertificateError::Malformed(_))), "every element must still parse");
    let stored = save_wire(&peer.db, &altered, RootTrust::KnownRootsOnly).await.unwrap();
    assert_eq!(stored, leaf);
    assert_eq!(
        certificate::chain_of(&peer.db, leaf.id()).await.unwrap()[0],
        certificate::get(&peer.db, root.id()).await.unwrap().unwrap()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Nonces

async fn set_nonce_age(db: &DatabaseConnection, id: &str, age: Duration) {
    let timestamp = sea_orm::Value::ChronoDateTimeUtc(Some(Utc::now() - age));
    let statement =
        statement(db, "UPDATE morango_nonce SET \"timestamp\" = $1 WHERE id = $2", vec![timestamp, id.into()]);
    assert_eq!(db.execute_raw(statement).await.unwrap().rows_affected(), 1);
}

async fn a_nonce_can_be_used_once(backend: Backend) {
    let t = TestDb::new(backend).await;
    let nonce = nonce::create(&t.db, "192.168.1.5").await.unwrap();
    assert!(is_valid_id(&nonce.id));
    let wire = nonce.to_wire();
    assert_eq!((wire.id.as_str(), wire.ip.as_str()), (nonce.id.as_str(), "192.168.1.5"));
    assert!(wire.timestamp.ends_with('Z'));
    nonce::consume(&t.db, &nonce.id).await.unwrap();
    assert!(matches!(nonce::consume(&t.db, &nonce.id).await, Err(NonceError::DoesNotExist)));
    for never_issued in ["00000000000000000000000000000000", "not-a-nonce", ""] {
        assert!(matches!(nonce::consume(&t.db, never_issued).await, Err(NonceError::DoesNotExist)));
    }

    // Two concurrent uses: exactly one succeeds.
    for _ in 0..5 {
        let nonce = nonce::create(&t.db, "").await.unwrap();
        let (a, b) = tokio::join!(nonce::consume(&t.db, &nonce.id), nonce::consume(&t.db, &nonce.id));
        assert_eq!(usize::from(a.is_ok()) + usize::from(b.is_ok()), 1, "{a:?} {b:?}");
    }
}

async fn an_expired_nonce_is_refused_and_deleted(backend: Backend) {
    let t = TestDb::new(backend).await;
    let old = nonce::create(&t.db, "").await.unwrap();
    set_nonce_age(&t.db, &old.id, Duration::seconds(61)).await;
    let error = nonce::consume(&t.db, &old.id).await.unwrap_err();
    assert!(matches!(error, NonceError::Expired));
    assert_eq!(error.error_class(), "NonceExpired");
    assert!(matches!(nonce::consume(&t.db, &old.id).await, Err(NonceError::DoesNotExist)));

    let future = nonce::create(&t.db, "").await.unwrap();
    set_nonce_age(&t.db, &future.id, Duration::seconds(-30)).await;
    assert!(matches!(nonce::consume(&t.db, &future.id).await, Err(NonceError::Expired)));

    let (stale, fresh) = (nonce::create(&t.db, "").await.unwrap(), nonce::create(&t.db, "").await.unwrap());
    set_nonce_age(&t.db, &stale.id, Duration::seconds(120)).await;
    set_nonce_age(&t.db, &fresh.id, Duration::seconds(50)).await;
    assert_eq!(nonce::purge_expired(&t.db).await.unwrap(), 1);
    nonce::consume(&t.db, &fresh.id).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Certificate pushing

/// A client owning a full-facility certificate issued by the server's root, and the server's shared key.
struct Pushing {
    server: TestDb,
    client: TestDb,
    root: Certificate,
    parent: Certificate,
    shared: PublicKey,
}

async fn pushing(backend: Backend) -> Pushing {
    let (server, client) = (TestDb::new(backend).await, TestDb::new(backend).await);
    let root = certificate::generate_root(&server.db, "full-facility", &Map::new()).await.unwrap();
    save_certificate_chain(&client.db, std::slice::from_ref(&root), None, RootTrust::AcceptNewRoots).await.unwrap();
    let key = PrivateKey::generate().unwrap();
    let facility = json!({"facility_id": root.id()});
    let request = certificate::signing_request(&root, "full-facility", facility.as_object().unwrap(), key.public_key());
    let issued = certificate::issue(&server.db, &request).await.unwrap();
    let parent = certificate::store_issued(&client.db, &issued.to_wire(), key).await.unwrap();
    assert!(certificate::current_shared_keys(&server.db).await.unwrap().is_empty());
    let shared = certificate::get_or_create_shared_key(&server.db).await.unwrap();
    assert_eq!(certificate::get_or_create_shared_key(&server.db).await.unwrap(), shared);
    assert_eq!(shared.to_wire(), json!({"public_key": shared.public_key().as_str()}));
    Pushing { server, client, root, parent, shared: shared.public_key().clone() }
}

/// The body a client posts to `certificatechain/`: a JSON string holding the chain.
async fn push_body(p: &Pushing, pushed: &Certificate) -> Value {
    let mut chain = certificate::chain_of(&p.client.db, p.parent.id()).await.unwrap();
    chain.push(pushed.clone());
    Value::String(chain_json(&chain))
}

async fn a_pushed_certificate_for_the_shared_key_is_stored_with_the_shared_private_key(backend: Backend) {
    let p = pushing(backend).await;
    let user = params(json!({"facility_id": p.root.id(), "user_id": "0c14d56d801164e5921819a3bcd79294"}));
    let nonce = nonce::create(&p.server.db, "").await.unwrap();
    let pushed = certificate::build_child(&p.client.db, p.parent.id(), "single-user", &user, &p.shared, &nonce.id)
        .await
        .unwrap();
    assert_eq!(pushed.salt(), nonce.id);
    assert_eq!(pushed.profile(), p.parent.profile());

    let accepted =
        certificate::accept_pushed_chain(&p.server.db, &push_body(&p, &pushed).await, RootTrust::KnownRootsOnly)
            .await
            .unwrap();
    assert_eq!(accepted.id(), pushed.id());
    assert!(accepted.has_private_key(), "the server can now use it as its own certificate");
    let owned = certificate::owned(&p.server.db, None).await.unwrap();
    assert!(owned.iter().any(|c| c.id() == pushed.id()));
    let server_chain = certificate::ancestors_of(&p.server.db, pushed.id(), None).await.unwrap();
    assert_eq!(server_chain.iter().map(Certificate::id).collect::<Vec<_>>(), [p.root.id(), p.parent.id(), pushed.id()]);
    // The client stores it too, without a private key.
    certificate::store(&p.client.db, &pushed).await.unwrap();
    assert!(!certificate::get(&p.client.db, pushed.id()).await.unwrap().unwrap().has_private_key());

    // The same nonce cannot be used again, even for another certificate.
    let again = certificate::build_child(
        &p.client.db,
        p.parent.id(),
        "full-facility",
        &params(json!({"facility_id": p.root.id()})),
        &p.shared,
        &nonce.id,
    )
    .await
    .unwrap();
    let error = certificate::accept_pushed_chain(&p.server.db, &push_body(&p, &again).await, RootTrust::KnownRootsOnly)
        .await
        .unwrap_err();
    assert!(matches!(error, PushError::Nonce(NonceError::DoesNotExist)), "{error}");
}

async fn a_pushed_certificate_with_another_key_a_bad_nonce_or_an_unknown_root_is_refused(backend: Backend) {
    let p = pushing(backend).await;
    let facility = params(json!({"facility_id": p.root.id()}));
    let push = |pushed: Certificate| {
        let p = &p;
        async move {
            let body = push_body(p, &pushed).await;
            certificate::accept_pushed_chain(&p.server.db, &body, RootTrust::KnownRootsOnly).await.unwrap_err()
        }
    };

    // Not the shared key: the nonce is left untouched.
    let nonce = nonce::create(&p.server.db, "").await.unwrap();
    let own_key = PrivateKey::generate().unwrap();
    let wrong_key = certificate::build_child(
        &p.client.db,
        p.parent.id(),
        "full-facility",
        &facility,
        own_key.public_key(),
        &nonce.id,
    )
    .await
    .unwrap();
    assert!(matches!(push(wrong_key).await, PushError::SharedKeyNotUsed));
    // A salt that is no nonce, and an expired nonce.
    let made_up = certificate::build_child(
        &p.client.db,
        p.parent.id(),
        "full-facility",
        &facility,
        &p.shared,
        "00000000000000000000000000000000",
    )
    .await
    .unwrap();
    assert!(matches!(push(made_up).await, PushError::Nonce(NonceError::DoesNotExist)));
    set_nonce_age(&p.server.db, &nonce.id, Duration::seconds(90)).await;
    let late = certificate::build_child(&p.client.db, p.parent.id(), "full-facility", &facility, &p.shared, &nonce.id)
        .await
        .unwrap();
    assert!(matches!(push(late).await, PushError::Nonce(NonceError::Expired)));

    // After rotation the old shared key is no longer accepted.
    let rotated = certificate::rotate_shared_key(&p.server.db).await.unwrap();
    assert_ne!(rotated.public_key(), &p.shared);
    assert_eq!(certificate::current_shared_keys(&p.server.db).await.unwrap(), [rotated]);
    let nonce = nonce::create(&p.server.db, "").await.unwrap();
    let stale = certificate::build_child(&p.client.db, p.parent.id(), "full-facility", &facility, &p.shared, &nonce.id)
        .await
        .unwrap();
    assert!(matches!(push(stale).await, PushError::SharedKeyNotUsed));

    // A chain the server cannot trust: the client's own root.
    let own_root = certificate::generate_root(&p.client.db, "full-facility", &Map::new()).await.unwrap();
    let nonce = nonce::create(&p.server.db, "").await.unwrap();
    let current = certificate::current_shared_keys(&p.server.db).await.unwrap().remove(0);
    let rogue = certificate::build_child(
        &p.client.db,
        own_root.id(),
        "full-facility",
        &params(json!({"facility_id": own_root.id()})),
        current.public_key(),
        &nonce.id,
    )
    .await
    .unwrap();
    let body = Value::String(chain_json(&[own_root, rogue]));
    let error = certificate::accept_pushed_chain(&p.server.db, &body, RootTrust::KnownRootsOnly).await.unwrap_err();
    assert!(matches!(error, PushError::Chain(CertificateError::RootNotTrusted { .. })), "{error}");
    // A lone certificate, and bodies that are not chains.
    let error = certificate::accept_pushed_chain(
        &p.server.db,
        &Value::String(chain_json(std::slice::from_ref(&p.parent))),
        RootTrust::KnownRootsOnly,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, PushError::Chain(CertificateError::ChainEmpty)), "{error}");
    for body in [json!("[]"), json!("not json"), json!(17), json!({})] {
        let error = certificate::accept_pushed_chain(&p.server.db, &body, RootTrust::KnownRootsOnly).await.unwrap_err();
        assert!(matches!(error, PushError::Chain(_)), "{body}: {error}");
    }
}

// ---------------------------------------------------------------------------------------------------------------

/// The HTTP layer awaits these in axum handlers, which need `Send` futures: this only has to compile.
#[allow(dead_code)]
fn futures_are_send(db: &DatabaseConnection, request: &morango_core::wire::CertificateRequest, body: &Value) {
    fn send<T: Send>(_: T) {}
    let key = PrivateKey::generate().unwrap();
    send(certificate::issue(db, request));
    send(certificate::store_issued(db, body, key.clone()));
    send(certificate::build_child(db, "", "", "", key.public_key(), ""));
    send(certificate::create_child(db, "", "", ""));
    send(certificate::generate_root(db, "", &Map::new()));
    send(certificate::get(db, ""));
    send(certificate::owned(db, None));
    send(certificate::primary_partition(db, "", None));
    send(certificate::ancestors_of(db, "", None));
    send(certificate::chain_of(db, ""));
    send(save_certificate_chain(db, &[], None, RootTrust::KnownRootsOnly));
    send(certificate::accept_pushed_chain(db, body, RootTrust::KnownRootsOnly));
    send(certificate::get_or_create_shared_key(db));
    send(certificate::rotate_shared_key(db));
    send(certificate::current_shared_keys(db));
    send(nonce::create(db, ""));
    send(nonce::consume(db, ""));
    send(nonce::purge_expired(db));
    send(scope::load_fixture(db, ""));
    send(scope::get(db, ""));
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

on_both_backends!(
    scope_definitions_load_idempotently_and_update_when_changed,
    a_generated_root_is_self_signed_owned_and_scoped_by_its_own_id,
    a_csr_inside_the_parents_scope_is_issued_and_the_client_stores_it_with_its_key,
    a_csr_beyond_the_parents_scope_or_profile_is_refused,
    a_chain_from_an_unknown_root_is_refused_unless_new_roots_are_accepted,
    a_forged_broken_or_cross_profile_chain_is_refused_and_nothing_is_stored,
    a_chain_stops_at_the_first_certificate_already_known,
    a_nonce_can_be_used_once,
    an_expired_nonce_is_refused_and_deleted,
    a_pushed_certificate_for_the_shared_key_is_stored_with_the_shared_private_key,
    a_pushed_certificate_with_another_key_a_bad_nonce_or_an_unknown_root_is_refused,
);
