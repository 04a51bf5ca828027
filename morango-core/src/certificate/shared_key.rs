//! The shared key for certificate pushing (spec §2.10–§2.11, §3.8).
//!
//! A server that lets clients push certificates publishes the public half of a shared key (`GET publickey/`). A
//! client that owns a certificate builds a child for that public key, salted with a nonce from the server, signs it
//! and pushes it with its chain (`POST certificatechain/`); the server stores it with the shared private key and
//! can then use it as its own certificate. Whether pushing is allowed at all (`ALLOW_CERTIFICATE_PUSHING`) is the
//! HTTP layer's decision; [`accept_pushed_chain`] only validates a push.

use sea_orm::{ConnectionTrait, QueryResult, TransactionSession, TransactionTrait};
use serde_json::Value;

use super::chain::{RootTrust, parse_chain_value, verify_certificate_chain};
use super::store::definition;
use super::{Certificate, CertificateError, PrivateKey, PublicKey};
use crate::error::DbContext;
use crate::nonce::{self, NonceError};
use crate::sql::{self, text};

/// A key pair whose public half a server publishes for certificate pushing (Morango's `SharedKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKey {
    /// Row id.
    pub id: i32,
    /// The key pair.
    pub private_key: PrivateKey,
    /// True for the key currently published.
    pub current: bool,
}

impl SharedKey {
    /// The published half.
    pub fn public_key(&self) -> &PublicKey {
        self.private_key.public_key()
    }

    /// The object `GET publickey/` lists: `{"public_key": "<key string>"}`.
    pub fn to_wire(&self) -> Value {
        serde_json::json!({ "public_key": self.public_key().as_str() })
    }
}

/// Why a pushed certificate was refused. Each variant is a distinct answer of `POST certificatechain/`.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The chain could not be read or the part before the new certificate failed verification (Python: 403
    /// `"Saving certificate chain has failed: …"`).
    #[error("Saving certificate chain has failed: {0}")]
    Chain(CertificateError),
    /// The new certificate is not for the current shared key (Python: 400 `"Shared public key was not used"`).
    #[error("Shared public key was not used")]
    SharedKeyNotUsed,
    /// The new certificate's salt is not a valid nonce (Python: 403 `"Nonce (certificate's salt) is not valid"`).
    #[error("Nonce (certificate's salt) is not valid: {0}")]
    Nonce(NonceError),
    /// The new certificate failed its check (Python: 400 `{"error_class", "error_message"}`).
    #[error(transparent)]
    Certificate(CertificateError),
    /// A database statement failed.
    #[error(transparent)]
    Db(crate::Error),
}

impl From<NonceError> for PushError {
    fn from(error: NonceError) -> Self {
        match error {
            NonceError::Db(e) => PushError::Db(e),
            other => PushError::Nonce(other),
        }
    }
}

/// The current shared keys (normally one; empty if none was made yet), for `GET publickey/`.
pub async fn current_shared_keys<C: ConnectionTrait>(db: &C) -> Result<Vec<SharedKey>, CertificateError> {
    let rows = sql::query(
        db,
        "reading the shared keys",
        "SELECT id, private_key, current FROM morango_sharedkey WHERE current = $1 ORDER BY id",
        vec![true.into()],
    )
    .await?;
    rows.iter().map(from_row).collect()
}

/// The current shared key, made (RSA-2048) and stored on first use.
pub async fn get_or_create_shared_key<C: ConnectionTrait>(db: &C) -> Result<SharedKey, CertificateError> {
    if let Some(key) = current_shared_keys(db).await?.into_iter().next() {
        return Ok(key);
    }
    let key = PrivateKey::generate()?;
    // Inserted only if no other writer made one meanwhile; then whichever came first is read back.
    sql::exec(
        db,
        "creating the shared key",
        "INSERT INTO morango_sharedkey (public_key, private_key, current) \
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM morango_sharedkey WHERE current = $3)",
        vec![text(key.public_key().as_str()), text(key.to_pem()?), true.into()],
    )
    .await?;
    current_shared_keys(db)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| crate::Error::Schema("the shared key was not stored".into()).into())
}

/// Replaces the current shared key with a new one (Python's `get_or_create_shared_key(force_new=True)`); pushes
/// for the old key are refused from then on.
pub async fn rotate_shared_key<C: ConnectionTrait + TransactionTrait>(db: &C) -> Result<SharedKey, CertificateError> {
    let key = PrivateKey::generate()?;
    let txn = db.begin().await.context(|| "starting to rotate the shared key".into())?;
    sql::exec(
        &txn,
        "retiring the shared key",
        "UPDATE morango_sharedkey SET current = $1 WHERE current = $2",
        vec![false.into(), true.into()],
    )
    .await?;
    sql::exec(
        &txn,
        "creating the shared key",
        "INSERT INTO morango_sharedkey (public_key, private_key, current) VALUES ($1, $2, $3)",
        vec![text(key.public_key().as_str()), text(key.to_pem()?), true.into()],
    )
    .await?;
    let shared = current_shared_keys(&txn)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CertificateError::from(crate::Error::Schema("the shared key was not stored".into())))?;
    txn.commit().await.context(|| "rotating the shared key".into())?;
    Ok(shared)
}

/// The server side of `POST certificatechain/` (spec §2.11), in Python Morango's order: the body is a chain (a JSON
/// list, or a JSON string holding one) whose last certificate is the pushed one. The certificates before it are
/// verified as by [`save_certificate_chain`](super::save_certificate_chain) and must end in the pushed
/// certificate's parent; the pushed certificate must be for a current shared key, pass the certificate checks
/// against that parent, and its salt must be a valid nonce, which is consumed. Only then is anything stored: the
/// chain, and the pushed certificate with the shared private key, which is returned.
pub async fn accept_pushed_chain<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    body: &Value,
    roots: RootTrust,
) -> Result<Certificate, PushError> {
    let mut chain = parse_chain_value(body).map_err(chain_error)?;
    let pushed = chain.pop().ok_or(PushError::Chain(CertificateError::ChainEmpty))?;
    let Some(parent_id) = pushed.parent_id() else {
        return Err(PushError::Chain(CertificateError::Malformed("a pushed certificate must have a parent".into())));
    };
    if chain.is_empty() {
        return Err(PushError::Chain(CertificateError::ChainEmpty));
    }
    // Nothing is written before every check passed (the nonce is consumed last but one).
    let verified = verify_certificate_chain(db, &chain, Some(parent_id), roots).await.map_err(chain_error)?;
    let shared = current_shared_keys(db)
        .await
        .map_err(certificate_error)?
        .into_iter()
        .find(|key| key.public_key() == pushed.public_key())
        .ok_or(PushError::SharedKeyNotUsed)?;
    let parent = verified.leaf();
    let parent_definition = definition(db, parent.scope_definition_id()).await.map_err(certificate_error)?;
    let pushed_definition = definition(db, pushed.scope_definition_id()).await.map_err(certificate_error)?;
    pushed.check(&pushed_definition, Some((parent, &parent_definition))).map_err(certificate_error)?;
    let pushed = pushed.with_private_key(shared.private_key).map_err(certificate_error)?;
    nonce::consume(db, pushed.salt()).await?;
    verified.save_with(db, Some(&pushed)).await.map_err(certificate_error)?;
    Ok(pushed)
}

fn chain_error(error: CertificateError) -> PushError {
    match error {
        CertificateError::Db(e) => PushError::Db(e),
        other => PushError::Chain(other),
    }
}

fn certificate_error(error: CertificateError) -> PushError {
    match error {
        CertificateError::Db(e) => PushError::Db(e),
        other => PushError::Certificate(other),
    }
}

fn from_row(row: &QueryResult) -> Result<SharedKey, CertificateError> {
    let id: i32 = sql::get(row, "id")?;
    let pem: String = sql::get(row, "private_key")?;
    let private_key =
        PrivateKey::from_pem(&pem).map_err(|e| crate::Error::Schema(format!("shared key {id} cannot be read: {e}")))?;
    Ok(SharedKey { id, private_key, current: sql::get(row, "current")? })
}
