//! Certificates in the database (`morango_certificate`), the queries the HTTP API answers, and making new
//! certificates: roots, children issued for a CSR, children built locally for certificate pushing.

use std::collections::{BTreeMap, HashSet};

use sea_orm::{ConnectionTrait, QueryResult, Value as SqlValue};
use serde_json::{Map, Value};

use super::{Certificate, CertificateError, Draft, MAX_SALT_CHARS, MAX_SERIALIZED_LEN, PrivateKey, PublicKey};
use crate::filter::{Scope, parse_scope_params};
use crate::ids::{is_valid_id, random_id};
use crate::json;
use crate::scope::{self, MAX_ID_CHARS, MAX_PROFILE_CHARS, ScopeDefinition};
use crate::sql::{self, text};
use crate::wire::CertificateRequest;

use super::chain::MAX_CHAIN_LENGTH;

const COLUMNS: &str = "id, parent_id, profile, scope_definition_id, scope_version, scope_params, public_key, salt, \
                       serialized, signature, private_key";

/// The certificate signing request a client sends to have `parent` sign a certificate for `public_key`
/// (`POST certificates/`, spec §2.4), built as Python Morango's client builds it: profile and scope version taken
/// from the parent, params written with `json.dumps`.
pub fn signing_request(
    parent: &Certificate,
    scope_definition_id: &str,
    scope_params: &Map<String, Value>,
    public_key: &PublicKey,
) -> CertificateRequest {
    CertificateRequest {
        parent: parent.id().to_owned(),
        profile: parent.profile().to_owned(),
        scope_definition: scope_definition_id.to_owned(),
        scope_version: i64::from(parent.scope_version()),
        scope_params: json::dumps(&Value::Object(scope_params.clone())),
        public_key: public_key.as_str().to_owned(),
    }
}

/// The certificate with this id, if stored (with its private key when owned). An id that is not 32 lowercase hex
/// characters is simply not found.
pub async fn get<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Certificate>, CertificateError> {
    if !is_valid_id(id) {
        return Ok(None);
    }
    let row = sql::query_one(
        db,
        "reading a certificate",
        &format!("SELECT {COLUMNS} FROM morango_certificate WHERE id = $1"),
        vec![text(id)],
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The certificates this database owns (holds the private key of), optionally of one profile, by id
/// (`GET certificates/` without filters).
pub async fn owned<C: ConnectionTrait>(db: &C, profile: Option<&str>) -> Result<Vec<Certificate>, CertificateError> {
    let (condition, values) = match profile {
        Some(profile) => (" AND profile = $1", vec![text(profile)]),
        None => ("", vec![]),
    };
    let rows = sql::query(
        db,
        "listing owned certificates",
        &format!(
            "SELECT {COLUMNS} FROM morango_certificate WHERE private_key IS NOT NULL AND private_key <> ''{condition} \
             ORDER BY id"
        ),
        values,
    )
    .await?;
    rows.iter().map(from_row).collect()
}

/// `GET certificates/?primary_partition=<id>`: that certificate (of `profile`, if given) and all its descendants,
/// keeping only those this database owns, in tree order (each certificate before its children). Empty when the
/// certificate is unknown.
pub async fn primary_partition<C: ConnectionTrait>(
    db: &C,
    id: &str,
    profile: Option<&str>,
) -> Result<Vec<Certificate>, CertificateError> {
    match get(db, id).await? {
        Some(target) if profile.is_none_or(|p| p == target.profile()) => {}
        _ => return Ok(Vec::new()),
    }
    let rows = sql::query(
        db,
        "reading a certificate's descendants",
        &format!(
            "WITH RECURSIVE tree(id) AS (\
                 SELECT id FROM morango_certificate WHERE id = $1 \
                 UNION SELECT c.id FROM morango_certificate c JOIN tree t ON c.parent_id = t.id) \
             SELECT {COLUMNS} FROM morango_certificate WHERE id IN (SELECT id FROM tree)"
        ),
        vec![text(id)],
    )
    .await?;
    let mut children: BTreeMap<Option<String>, Vec<Certificate>> = BTreeMap::new();
    for row in &rows {
        let cert = from_row(row)?;
        let parent = if cert.id() == id { None } else { cert.parent_id().map(str::to_owned) };
        children.entry(parent).or_default().push(cert);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.id().cmp(b.id()));
    }
    // Depth-first, each certificate before its children; the target is the only entry under `None`.
    let mut ordered = Vec::new();
    let mut stack: Vec<Certificate> = children.remove(&None).unwrap_or_default();
    while let Some(cert) = stack.pop() {
        if let Some(mut kids) = children.remove(&Some(cert.id().to_owned())) {
            kids.reverse();
            stack.extend(kids);
        }
        if cert.has_private_key() {
            ordered.push(cert);
        }
    }
    Ok(ordered)
}

/// `GET certificates/?ancestors_of=<id>`: the chain root→…→certificate, but only when this database owns that
/// certificate (and it is of `profile`, if given); otherwise empty.
pub async fn ancestors_of<C: ConnectionTrait>(
    db: &C,
    id: &str,
    profile: Option<&str>,
) -> Result<Vec<Certificate>, CertificateError> {
    match get(db, id).await? {
        Some(target) if target.has_private_key() && profile.is_none_or(|p| p == target.profile()) => {
            chain_of(db, id).await
        }
        _ => Ok(Vec::new()),
    }
}

/// The chain root→…→certificate from the database, root first (what a client sends as `certificate_chain`, see
/// [`chain_json`](super::chain_json)). Empty when the certificate is unknown.
pub async fn chain_of<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<Certificate>, CertificateError> {
    let Some(mut cert) = get(db, id).await? else {
        return Ok(Vec::new());
    };
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    loop {
        if !seen.insert(cert.id().to_owned()) || chain.len() >= MAX_CHAIN_LENGTH {
            return Err(crate::Error::Schema(format!("certificate {id} has a cyclic or too deep chain")).into());
        }
        let parent_id = cert.parent_id().map(str::to_owned);
        chain.push(cert);
        let Some(parent_id) = parent_id else { break };
        cert = get(db, &parent_id).await?.ok_or(CertificateError::ParentUnknown { parent_id })?;
    }
    chain.reverse();
    Ok(chain)
}

/// The scope a stored or received certificate grants, from the scope definition this database holds.
pub async fn scope_of<C: ConnectionTrait>(db: &C, cert: &Certificate) -> Result<Scope, CertificateError> {
    cert.scope(&definition(db, cert.scope_definition_id()).await?)
}

/// Python's `check_certificate` (spec §3.6) with the parent and scope definitions read from the database: see
/// [`Certificate::check`]. The parent of a non-root must be stored; an unknown scope definition is refused.
pub async fn check_certificate<C: ConnectionTrait>(db: &C, cert: &Certificate) -> Result<(), CertificateError> {
    let own_definition = definition(db, cert.scope_definition_id()).await?;
    let parent = match cert.parent_id() {
        None => None,
        Some(parent_id) => {
            let parent = get(db, parent_id)
                .await?
                .ok_or_else(|| CertificateError::ParentUnknown { parent_id: parent_id.to_owned() })?;
            let parent_definition = definition(db, parent.scope_definition_id()).await?;
            Some((parent, parent_definition))
        }
    };
    cert.check(&own_definition, parent.as_ref().map(|(p, d)| (p, d)))
}

/// Checks a certificate ([`check_certificate`]) and stores it, with its private key if it carries one. Storing a
/// certificate that is already stored with the same signed text is a no-op (it adds the private key if the stored
/// copy lacks it); a different certificate under the same id is refused.
pub async fn store<C: ConnectionTrait>(db: &C, cert: &Certificate) -> Result<(), CertificateError> {
    check_certificate(db, cert).await?;
    insert(db, cert).await
}

/// Stores a certificate that has been checked.
pub(crate) async fn insert<C: ConnectionTrait>(db: &C, cert: &Certificate) -> Result<(), CertificateError> {
    let private_key = match cert.private_key() {
        Some(key) => SqlValue::String(Some(key.to_pem()?)),
        None => SqlValue::String(None),
    };
    let inserted = sql::exec(
        db,
        "storing a certificate",
        &format!(
            "INSERT INTO morango_certificate ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (id) DO NOTHING"
        ),
        vec![
            text(cert.id()),
            SqlValue::String(cert.parent_id().map(str::to_owned)),
            text(cert.profile()),
            text(cert.scope_definition_id()),
            cert.scope_version().into(),
            text(cert.scope_params()),
            text(cert.public_key().as_str()),
            text(cert.salt()),
            text(cert.serialized()),
            text(cert.signature()),
            private_key.clone(),
        ],
    )
    .await?;
    if inserted == 1 {
        return Ok(());
    }
    let stored = get(db, cert.id()).await?;
    if stored.as_ref().is_none_or(|stored| stored.serialized() != cert.serialized()) {
        return Err(CertificateError::AlreadyExists { id: cert.id().to_owned() });
    }
    if cert.has_private_key() {
        sql::exec(
            db,
            "adding a certificate's private key",
            "UPDATE morango_certificate SET private_key = $1 WHERE id = $2 AND (private_key IS NULL OR private_key = '')",
            vec![private_key, text(cert.id())],
        )
        .await?;
    }
    Ok(())
}

/// Python's `Certificate.generate_root_certificate`: a new self-signed root for a scope definition that has a
/// `primary_scope_param_key`, with a fresh key. Its profile and scope version come from the definition, its salt is
/// empty, so its id is the hash of its key and profile, and its scope params are
/// `{<primary_scope_param_key>: <its own id>}` followed by `extra_scope_params` (which may override it, as in
/// Python). It is checked and stored with its private key.
pub async fn generate_root<C: ConnectionTrait>(
    db: &C,
    scope_definition_id: &str,
    extra_scope_params: &Map<String, Value>,
) -> Result<Certificate, CertificateError> {
    let definition = definition(db, scope_definition_id).await?;
    if definition.primary_scope_param_key.is_empty() {
        return Err(CertificateError::NotRootable { scope_definition_id: definition.id });
    }
    let key = PrivateKey::generate()?;
    let id = Certificate::calculate_id(key.public_key().as_str(), &definition.profile, "");
    let mut params = Map::new();
    params.insert(definition.primary_scope_param_key.clone(), Value::String(id));
    for (name, value) in extra_scope_params {
        params.insert(name.clone(), value.clone());
    }
    let cert = Draft {
        parent_id: None,
        profile: definition.profile.clone(),
        scope_definition_id: definition.id.clone(),
        scope_version: definition.version,
        scope_params: json::dumps(&Value::Object(params)),
        public_key: key.public_key().clone(),
        salt: String::new(),
    }
    .sign(&key)?
    .with_private_key(key)?;
    cert.check(&definition, None)?;
    insert(db, &cert).await?;
    Ok(cert)
}

/// The server side of a certificate signing request (spec §2.4): the parent must be stored with its private key,
/// the scope definition known, the profile the parent's and the scope inside the parent's. The new certificate
/// gets a random salt (so the requester cannot choose its id), is signed by the parent, checked
/// ([`check_certificate`]) and stored without a private key. Whether the requester may have this scope at all is
/// the application's decision, taken before calling this.
pub async fn issue<C: ConnectionTrait>(db: &C, request: &CertificateRequest) -> Result<Certificate, CertificateError> {
    let parent = owned_parent(db, &request.parent).await?;
    let profile = bounded(&request.profile, "profile", MAX_PROFILE_CHARS)?;
    let scope_definition_id = bounded(&request.scope_definition, "scope_definition", MAX_ID_CHARS)?;
    let scope_version = i32::try_from(request.scope_version)
        .map_err(|_| CertificateError::Malformed("scope_version is out of range".into()))?;
    let scope_params = checked_params(&request.scope_params)?;
    let public_key =
        PublicKey::parse(&request.public_key).map_err(|e| CertificateError::Malformed(format!("public_key: {e}")))?;
    let signer = parent_key(&parent)?;
    let cert = Draft {
        parent_id: Some(parent.id().to_owned()),
        profile: profile.to_owned(),
        scope_definition_id: scope_definition_id.to_owned(),
        scope_version,
        scope_params: scope_params.to_owned(),
        public_key,
        salt: random_id(),
    }
    .sign(signer)?;
    store(db, &cert).await?;
    Ok(cert)
}

/// The client side of a certificate signing request: checks the certificate the server answered with (its parent
/// must already be stored here, e.g. saved from `GET certificates/?ancestors_of=`), checks that it is for the key
/// this client generated, and stores it with that private key.
pub async fn store_issued<C: ConnectionTrait>(
    db: &C,
    response: &Value,
    private_key: PrivateKey,
) -> Result<Certificate, CertificateError> {
    let cert = Certificate::from_wire(response)?.with_private_key(private_key)?;
    store(db, &cert).await?;
    Ok(cert)
}

/// A child of an owned certificate, signed here but not stored (certificate pushing, spec §3.8): profile and scope
/// version are the parent's, the key is someone else's (the server's shared key) and the salt is the nonce the
/// server gave. It is checked ([`check_certificate`]) so that a push the server would refuse fails here first;
/// after the server accepted it, [`store`] it.
pub async fn build_child<C: ConnectionTrait>(
    db: &C,
    parent_id: &str,
    scope_definition_id: &str,
    scope_params: &str,
    public_key: &PublicKey,
    salt: &str,
) -> Result<Certificate, CertificateError> {
    let parent = owned_parent(db, parent_id).await?;
    if salt.chars().count() > MAX_SALT_CHARS {
        return Err(CertificateError::Malformed("salt is longer than 32 characters".into()));
    }
    let cert = Draft {
        parent_id: Some(parent.id().to_owned()),
        profile: parent.profile().to_owned(),
        scope_definition_id: bounded(scope_definition_id, "scope_definition", MAX_ID_CHARS)?.to_owned(),
        scope_version: parent.scope_version(),
        scope_params: checked_params(scope_params)?.to_owned(),
        public_key: public_key.clone(),
        salt: salt.to_owned(),
    }
    .sign(parent_key(&parent)?)?;
    check_certificate(db, &cert).await?;
    Ok(cert)
}

/// A new certificate for this database under an owned parent: a fresh key, a random salt, the parent's profile and
/// scope version; checked and stored with its private key.
pub async fn create_child<C: ConnectionTrait>(
    db: &C,
    parent_id: &str,
    scope_definition_id: &str,
    scope_params: &str,
) -> Result<Certificate, CertificateError> {
    let key = PrivateKey::generate()?;
    let cert = build_child(db, parent_id, scope_definition_id, scope_params, key.public_key(), &random_id())
        .await?
        .with_private_key(key)?;
    insert(db, &cert).await?;
    Ok(cert)
}

/// The scope definition a certificate names, which must be stored.
pub(crate) async fn definition<C: ConnectionTrait>(db: &C, id: &str) -> Result<ScopeDefinition, CertificateError> {
    scope::get(db, id).await?.ok_or_else(|| CertificateError::ScopeDefinitionUnknown { scope_definition_id: id.into() })
}

async fn owned_parent<C: ConnectionTrait>(db: &C, parent_id: &str) -> Result<Certificate, CertificateError> {
    let parent =
        get(db, parent_id).await?.ok_or_else(|| CertificateError::ParentUnknown { parent_id: parent_id.into() })?;
    parent_key(&parent)?;
    Ok(parent)
}

fn parent_key(parent: &Certificate) -> Result<&PrivateKey, CertificateError> {
    parent.private_key().ok_or_else(|| CertificateError::NotOwned { id: parent.id().to_owned() })
}

fn bounded<'a>(value: &'a str, name: &str, max_chars: usize) -> Result<&'a str, CertificateError> {
    if value.is_empty() || value.chars().count() > max_chars {
        return Err(CertificateError::Malformed(format!("{name} must have 1 to {max_chars} characters")));
    }
    Ok(value)
}

fn checked_params(scope_params: &str) -> Result<&str, CertificateError> {
    if scope_params.len() > MAX_SERIALIZED_LEN / 2 {
        return Err(CertificateError::Malformed("scope_params is too long".into()));
    }
    parse_scope_params(scope_params)?;
    Ok(scope_params)
}

/// A stored row: re-read from its signed text, so its fields are what was verified; the private key attached.
fn from_row(row: &QueryResult) -> Result<Certificate, CertificateError> {
    let id: String = sql::get(row, "id")?;
    let corrupt = |e: CertificateError| -> CertificateError {
        crate::Error::Schema(format!("stored certificate {id} cannot be read: {e}")).into()
    };
    let serialized: String = sql::get(row, "serialized")?;
    let signature: String = sql::get(row, "signature")?;
    let cert = Certificate::deserialize(&serialized, &signature).map_err(corrupt)?;
    let private_key: Option<String> = sql::get(row, "private_key")?;
    match private_key.filter(|pem| !pem.is_empty()) {
        None => Ok(cert),
        Some(pem) => {
            let key = PrivateKey::from_pem(&pem).map_err(|e| corrupt(e.into()))?;
            cert.with_private_key(key).map_err(corrupt)
        }
    }
}
