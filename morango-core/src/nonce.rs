//! One-time nonces (spec §2.5, §3.7): the server hands one out (`POST nonces/`), the client signs
//! `"<nonce>:<sync session id>"` with its certificate key, and the server consumes the nonce when it accepts the
//! signature. A pushed certificate uses a nonce as its salt (§2.11).
//!
//! A nonce is valid for [`NONCE_LIFETIME_SECONDS`] after it was made and can be used once: consuming deletes it in
//! the same statement that reads it, so two concurrent uses cannot both succeed.

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use sea_orm::ConnectionTrait;

use crate::ids::{is_valid_id, random_id};
use crate::sql::{self, text};
use crate::wire::NonceWire;

/// How long a nonce stays valid, in seconds (as in Python Morango).
pub const NONCE_LIFETIME_SECONDS: i64 = 60;

/// Longest recorded client address, as Python Morango's column (`max_length=100`); longer ones are cut.
const MAX_IP_CHARS: usize = 100;

/// Why a nonce was refused.
#[derive(Debug, thiserror::Error)]
pub enum NonceError {
    /// No such nonce: never issued, already used, or malformed (`NonceDoesNotExist`).
    #[error("nonce does not exist")]
    DoesNotExist,
    /// The nonce is older than its lifetime (or dated in the future); it has been deleted (`NonceExpired`).
    #[error("nonce has expired")]
    Expired,
    /// A database statement failed.
    #[error(transparent)]
    Db(#[from] crate::Error),
}

impl NonceError {
    /// Python Morango's exception name for the refusal.
    pub fn error_class(&self) -> &'static str {
        match self {
            NonceError::DoesNotExist => "NonceDoesNotExist",
            NonceError::Expired => "NonceExpired",
            NonceError::Db(_) => "DatabaseError",
        }
    }
}

/// A nonce handed to a client (Morango's `Nonce`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce {
    /// 32 random lowercase hex characters.
    pub id: String,
    /// When it was made (microsecond precision).
    pub timestamp: DateTime<Utc>,
    /// The client's address, as the server saw it (recorded, never checked).
    pub ip: String,
}

impl Nonce {
    /// The response object of `POST nonces/`, with an ISO-8601 UTC timestamp as Django REST framework writes it.
    pub fn to_wire(&self) -> NonceWire {
        NonceWire {
            id: self.id.clone(),
            timestamp: self.timestamp.to_rfc3339_opts(SecondsFormat::Micros, true),
            ip: self.ip.clone(),
        }
    }
}

/// Makes and stores a fresh nonce for a client at `ip`.
pub async fn create<C: ConnectionTrait>(db: &C, ip: &str) -> Result<Nonce, crate::Error> {
    // Anyone may ask for nonces: expired ones go as new ones come, so the table stays small.
    purge_expired(db).await?;
    let nonce =
        Nonce { id: random_id(), timestamp: Utc::now().trunc_subsecs(6), ip: ip.chars().take(MAX_IP_CHARS).collect() };
    sql::exec(
        db,
        "creating a nonce",
        "INSERT INTO morango_nonce (id, timestamp, ip) VALUES ($1, $2, $3)",
        vec![text(&nonce.id), sea_orm::Value::ChronoDateTimeUtc(Some(nonce.timestamp)), text(&nonce.ip)],
    )
    .await?;
    Ok(nonce)
}

/// Uses up a nonce: succeeds once, and only while the nonce is less than [`NONCE_LIFETIME_SECONDS`] old. The
/// nonce is deleted whatever the outcome, in the statement that reads it.
pub async fn consume<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), NonceError> {
    if !is_valid_id(id) {
        return Err(NonceError::DoesNotExist);
    }
    let row = sql::query_one(
        db,
        "using a nonce",
        "DELETE FROM morango_nonce WHERE id = $1 RETURNING timestamp",
        vec![text(id)],
    )
    .await?
    .ok_or(NonceError::DoesNotExist)?;
    let timestamp: DateTime<Utc> = sql::get(&row, "timestamp")?;
    let age = Utc::now() - timestamp;
    if age < Duration::zero() || age >= Duration::seconds(NONCE_LIFETIME_SECONDS) {
        return Err(NonceError::Expired);
    }
    Ok(())
}

/// Deletes the nonces that can no longer be used; returns how many.
pub async fn purge_expired<C: ConnectionTrait>(db: &C) -> Result<u64, crate::Error> {
    let cutoff = Utc::now() - Duration::seconds(NONCE_LIFETIME_SECONDS);
    sql::exec(
        db,
        "deleting expired nonces",
        "DELETE FROM morango_nonce WHERE timestamp <= $1",
        vec![sea_orm::Value::ChronoDateTimeUtc(Some(cutoff))],
    )
    .await
}
