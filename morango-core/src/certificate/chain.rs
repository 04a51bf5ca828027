//! Certificate chains received from peers (spec §3.6): parsing, verifying and saving them.

use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};
use serde_json::Value;

use super::store::{definition, get, insert};
use super::{Certificate, CertificateError};
use crate::error::DbContext;
use crate::json;

/// The longest chain accepted from a peer (Kolibri's chains have two or three certificates).
pub const MAX_CHAIN_LENGTH: usize = 32;

/// Whether a chain may introduce a root certificate this database does not hold yet.
///
/// Python Morango accepts any self-signed root (spec §15 W3), so anyone can make a root whose scope covers any
/// partition prefix starting with the root's own id. Here a peer is trusted only once its chain ends in a root this
/// database already has, unless the caller explicitly accepts a new one — e.g. a client that the user pointed at a
/// server, saving that server's chain for the first time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RootTrust {
    /// Refuse chains whose root is not stored here already ([`CertificateError::RootNotTrusted`]).
    #[default]
    KnownRootsOnly,
    /// Accept and store a new self-signed root at the start of the chain, as Python Morango does.
    AcceptNewRoots,
}

/// Reads a chain sent as JSON text (the `certificate_chain` field of `POST syncsessions/`): a list of certificate
/// objects, root first (see [`Certificate::from_wire`]).
pub fn parse_chain(json_text: &str) -> Result<Vec<Certificate>, CertificateError> {
    let value: Value = serde_json::from_str(json_text)
        .map_err(|e| CertificateError::Malformed(format!("certificate chain is not JSON: {e}")))?;
    parse_chain_value(&value)
}

/// Reads a chain given as a JSON list of certificate objects (the body of `GET certificates/?ancestors_of=`), or as
/// a JSON string holding such a list (the double-encoded body of `POST certificatechain/`).
pub fn parse_chain_value(value: &Value) -> Result<Vec<Certificate>, CertificateError> {
    let items = match value {
        Value::Array(items) => items,
        Value::String(text) => return parse_chain(text),
        _ => return Err(CertificateError::Malformed("a certificate chain must be a JSON list".into())),
    };
    if items.is_empty() {
        return Err(CertificateError::ChainEmpty);
    }
    if items.len() > MAX_CHAIN_LENGTH {
        return Err(CertificateError::ChainTooLong(items.len()));
    }
    items.iter().map(Certificate::from_wire).collect()
}

/// A chain as JSON text, the way Python Morango's client writes the `certificate_chain` field: `json.dumps` of the
/// list of certificate objects ([`Certificate::to_wire`]).
pub fn chain_json(chain: &[Certificate]) -> String {
    json::dumps(&Value::Array(chain.iter().map(Certificate::to_wire).collect()))
}

/// Python's `Certificate.save_certificate_chain` (spec §3.6): [`verify_certificate_chain`], then
/// [`VerifiedChain::save`]. Returns the last certificate (the stored copy when it was already held).
pub async fn save_certificate_chain<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    chain: &[Certificate],
    expected_last_id: Option<&str>,
    roots: RootTrust,
) -> Result<Certificate, CertificateError> {
    verify_certificate_chain(db, chain, expected_last_id, roots).await?.save(db).await
}

/// A certificate chain that passed every check but is not stored yet: a caller that must also check a
/// signature or a nonce does so before anything is written.
#[derive(Debug)]
pub struct VerifiedChain {
    leaf: Certificate,
    /// The certificates not held here yet, root first.
    unknown: Vec<Certificate>,
}

impl VerifiedChain {
    /// The last certificate of the chain.
    pub fn leaf(&self) -> &Certificate {
        &self.leaf
    }

    /// Stores the certificates not held yet (without private keys), all or none; returns the leaf.
    pub async fn save<C: ConnectionTrait + TransactionTrait>(self, db: &C) -> Result<Certificate, CertificateError> {
        self.save_with(db, None).await
    }

    /// Stores the chain and, in the same transaction, one more certificate (a pushed child of the leaf).
    pub(crate) async fn save_with<C: ConnectionTrait + TransactionTrait>(
        self,
        db: &C,
        child: Option<&Certificate>,
    ) -> Result<Certificate, CertificateError> {
        if self.unknown.is_empty() && child.is_none() {
            return Ok(self.leaf);
        }
        let txn = db.begin().await.context(|| "starting to save a certificate chain".into())?;
        for cert in self.unknown.iter().chain(child) {
            insert(&txn, cert).await?;
        }
        txn.commit().await.context(|| "saving a certificate chain".into())?;
        Ok(self.leaf)
    }
}

/// Checks a chain ordered root first without writing anything: walking back from the last certificate, which must
/// have id `expected_last_id` when given, each certificate must be the parent of the one after it; the walk stops
/// at the first certificate this database already holds (it was verified when it was stored). If none is held, the
/// first certificate must be a root, accepted only under [`RootTrust::AcceptNewRoots`]. The certificates not yet
/// held are then checked root-first (as by [`check_certificate`](super::check_certificate)).
pub async fn verify_certificate_chain<C: ConnectionTrait>(
    db: &C,
    chain: &[Certificate],
    expected_last_id: Option<&str>,
    roots: RootTrust,
) -> Result<VerifiedChain, CertificateError> {
    if chain.is_empty() {
        return Err(CertificateError::ChainEmpty);
    }
    if chain.len() > MAX_CHAIN_LENGTH {
        return Err(CertificateError::ChainTooLong(chain.len()));
    }
    // Walk back from the leaf to the first certificate held here (the anchor) or to the root.
    let mut unknown: Vec<&Certificate> = Vec::new();
    let mut anchor = None;
    let mut expected = expected_last_id.map(str::to_owned);
    for (index, cert) in chain.iter().enumerate().rev() {
        if let Some(expected) = &expected
            && cert.id() != expected
        {
            return Err(CertificateError::ChainBroken { expected: expected.clone(), found: cert.id().to_owned() });
        }
        if let Some(stored) = get(db, cert.id()).await? {
            if unknown.is_empty() {
                return Ok(VerifiedChain { leaf: stored.without_private_key(), unknown: Vec::new() });
            }
            anchor = Some(stored);
            break;
        }
        unknown.push(cert);
        match cert.parent_id() {
            Some(parent_id) if index > 0 => expected = Some(parent_id.to_owned()),
            Some(_) => return Err(CertificateError::ChainNotRooted { id: cert.id().to_owned() }),
            // A root in the middle: the certificates before it cannot be its ancestors.
            None if index > 0 => return Err(CertificateError::ChainRootNotFirst { id: cert.id().to_owned() }),
            None if roots == RootTrust::KnownRootsOnly => {
                return Err(CertificateError::RootNotTrusted { id: cert.id().to_owned() });
            }
            None => {}
        }
    }

    // Check root-first, each against the one before it (or the anchor).
    let mut parent = match anchor {
        Some(anchor) => {
            let definition = definition(db, anchor.scope_definition_id()).await?;
            Some((anchor, definition))
        }
        None => None,
    };
    for cert in unknown.iter().rev() {
        let definition = definition(db, cert.scope_definition_id()).await?;
        cert.check(&definition, parent.as_ref().map(|(p, d)| (p, d)))?;
        parent = Some((cert.without_private_key(), definition));
    }
    let unknown: Vec<Certificate> = unknown.iter().rev().map(|cert| cert.without_private_key()).collect();
    let leaf = chain.last().map(Certificate::without_private_key).ok_or(CertificateError::ChainEmpty)?;
    Ok(VerifiedChain { leaf, unknown })
}
