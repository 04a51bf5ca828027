//! Certificates (spec §3): who may sync which partitions, proven by chains of RSA signatures.
//!
//! A [`Certificate`] grants the holder of a key pair a [`Scope`] (read and write partition prefixes) of one profile.
//! Every certificate except a root is signed by its parent, and its scope must lie inside the parent's. What is
//! signed is the certificate's `serialized` text, which peers carry as an opaque string and never re-encode.
//!
//! Here: RSA keys and signatures ([`PublicKey`], [`PrivateKey`]); the certificate and its checks
//! ([`Certificate::check`], [`check_certificate`]); chains received from peers ([`save_certificate_chain`]); storage
//! and the queries the HTTP API answers ([`get`], [`owned`], [`primary_partition`], [`ancestors_of`]); making
//! certificates ([`generate_root`], [`issue`], [`store_issued`], [`build_child`]); and the shared key used for
//! certificate pushing ([`get_or_create_shared_key`], [`accept_pushed_chain`]).
//!
//! Differences from Python Morango:
//! * a chain received from a peer must end in a root this database already holds, unless the caller passes
//!   [`RootTrust::AcceptNewRoots`] (spec §15 W3);
//! * a certificate's scope definition must be known locally and belong to the certificate's profile;
//! * every field of received data is validated, and malformed data is a typed error rather than a crash;
//! * scopes follow this crate's filters, where an empty expansion contains nothing (spec §15 W10): a certificate
//!   without write templates may write nothing, so it can no longer sign a child that writes (Python accepts a
//!   full-facility child of a read-only certificate), and a read-only child of a full-facility certificate is
//!   accepted (Python refuses it).

mod chain;
mod key;
mod shared_key;
mod store;

use serde_json::{Map, Value};

use crate::filter::{FilterError, Scope, parse_scope_params};
use crate::ids::{is_valid_id, sha2_uuid};
use crate::json;
use crate::scope::{MAX_ID_CHARS, MAX_PROFILE_CHARS, ScopeDefinition};

pub use chain::{
    MAX_CHAIN_LENGTH, RootTrust, VerifiedChain, chain_json, parse_chain, parse_chain_value, save_certificate_chain,
    verify_certificate_chain,
};
pub use key::{KEY_BITS, KeyError, PrivateKey, PublicKey, SPKI_HEADER};
pub use shared_key::{
    PushError, SharedKey, accept_pushed_chain, current_shared_keys, get_or_create_shared_key, rotate_shared_key,
};
pub use store::{
    ancestors_of, build_child, chain_of, check_certificate, create_child, generate_root, get, issue, owned,
    primary_partition, scope_of, signing_request, store, store_issued,
};

/// Longest salt, as Python Morango's column (`max_length=32`).
pub const MAX_SALT_CHARS: usize = 32;

/// Longest `serialized` text accepted from a peer (a real one is well under 2 KB).
pub const MAX_SERIALIZED_LEN: usize = 32 * 1024;

/// Longest signature text accepted from a peer (a 2048-bit signature is 344 characters).
pub const MAX_SIGNATURE_LEN: usize = 4 * 1024;

/// Why a certificate or a chain was refused, or could not be made.
///
/// The first five variants are Python Morango's `MorangoCertificateError` subclasses; [`error_class`]
/// gives the class name a Morango server reports as `{"error_class": …, "error_message": …}`.
///
/// [`error_class`]: CertificateError::error_class
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The id is not the hash of the public key, profile and salt (`CertificateIDInvalid`).
    #[error("certificate ID is {id} but should be {expected}")]
    IdInvalid {
        /// The id the certificate claims.
        id: String,
        /// The id its public key, profile and salt give.
        expected: String,
    },
    /// The signature over `serialized` does not verify with the parent's key, or the root's own
    /// (`CertificateSignatureInvalid`).
    #[error("signature of certificate {id} does not verify")]
    SignatureInvalid {
        /// The certificate.
        id: String,
    },
    /// A root's scope contains a prefix that does not start with the root's id (`CertificateRootScopeInvalid`).
    #[error("scope entry {prefix:?} does not start with primary partition {id}")]
    RootScopeInvalid {
        /// The root certificate.
        id: String,
        /// The offending prefix.
        prefix: String,
    },
    /// The scope is not inside the parent's scope (`CertificateScopeNotSubset`).
    #[error("scope of certificate {id} is not a subset of the scope of its parent {parent_id}")]
    ScopeNotSubset {
        /// The certificate.
        id: String,
        /// Its parent.
        parent_id: String,
    },
    /// The profile differs from the parent's (`CertificateProfileInvalid`).
    #[error("certificate profile is {profile} but parent's is {parent_profile}")]
    ProfileInvalid {
        /// The certificate.
        id: String,
        /// Its profile.
        profile: String,
        /// The parent's profile.
        parent_profile: String,
    },
    /// The scope definition belongs to another profile than the certificate (reported as
    /// `CertificateProfileInvalid`; Python Morango does not check it).
    #[error(
        "certificate {id} has profile {profile} but scope definition {scope_definition_id} is for {definition_profile}"
    )]
    ScopeDefinitionProfileInvalid {
        /// The certificate.
        id: String,
        /// Its profile.
        profile: String,
        /// The scope definition it names.
        scope_definition_id: String,
        /// The profile of that definition.
        definition_profile: String,
    },
    /// The certificate names a scope definition this database does not have.
    #[error("scope definition {scope_definition_id:?} is not known")]
    ScopeDefinitionUnknown {
        /// The unknown id.
        scope_definition_id: String,
    },
    /// The parent certificate is not in this database.
    #[error("parent certificate {parent_id} is not known")]
    ParentUnknown {
        /// The missing parent.
        parent_id: String,
    },
    /// Signing needs a private key this database does not hold for the certificate.
    #[error("no private key for certificate {id}")]
    NotOwned {
        /// The certificate.
        id: String,
    },
    /// A private key given for a certificate is not the key of its public key.
    #[error("the private key does not belong to certificate {id}")]
    KeyMismatch {
        /// The certificate.
        id: String,
    },
    /// A root cannot be made from a scope definition without `primary_scope_param_key`.
    #[error("scope definition {scope_definition_id} has no primary_scope_param_key, so it cannot make a root")]
    NotRootable {
        /// The scope definition.
        scope_definition_id: String,
    },
    /// Data that should be a certificate (or a request for one) is not valid.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// A chain with no certificate.
    #[error("the certificate chain is empty")]
    ChainEmpty,
    /// A chain longer than [`MAX_CHAIN_LENGTH`].
    #[error("the certificate chain has {0} certificates; at most {MAX_CHAIN_LENGTH} are accepted")]
    ChainTooLong(usize),
    /// A certificate of the chain is not the one expected there (the parent of the next, or the expected leaf).
    #[error("certificate chain is broken: expected {expected}, found {found}")]
    ChainBroken {
        /// The id that should be there.
        expected: String,
        /// The id found instead.
        found: String,
    },
    /// The first certificate of the chain is neither a root nor held here already.
    #[error("first certificate of the chain ({id}) must be a root or already known")]
    ChainNotRooted {
        /// The first certificate.
        id: String,
    },
    /// A root certificate appears after the start of the chain.
    #[error("root certificate {id} must be the first of the chain")]
    ChainRootNotFirst {
        /// The misplaced root.
        id: String,
    },
    /// The chain reaches a root this database does not already hold, and new roots are not accepted (§15 W3).
    #[error("root certificate {id} is not trusted by this database")]
    RootNotTrusted {
        /// The unknown root.
        id: String,
    },
    /// A certificate with this id already exists with different content.
    #[error("a different certificate with id {id} already exists")]
    AlreadyExists {
        /// The id.
        id: String,
    },
    /// A key could not be generated, read or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A database statement failed.
    #[error(transparent)]
    Db(#[from] crate::Error),
}

impl CertificateError {
    /// The error class name a Morango server reports: Python's exception names for the checks Python has, and
    /// names in the same style for the rest.
    pub fn error_class(&self) -> &'static str {
        match self {
            CertificateError::IdInvalid { .. } => "CertificateIDInvalid",
            CertificateError::SignatureInvalid { .. } => "CertificateSignatureInvalid",
            CertificateError::RootScopeInvalid { .. } => "CertificateRootScopeInvalid",
            CertificateError::ScopeNotSubset { .. } => "CertificateScopeNotSubset",
            CertificateError::ProfileInvalid { .. } | CertificateError::ScopeDefinitionProfileInvalid { .. } => {
                "CertificateProfileInvalid"
            }
            CertificateError::ScopeDefinitionUnknown { .. } => "CertificateScopeDefinitionUnknown",
            CertificateError::ParentUnknown { .. } => "CertificateParentUnknown",
            CertificateError::NotOwned { .. } => "CertificateNotOwned",
            CertificateError::KeyMismatch { .. } => "CertificateKeyMismatch",
            CertificateError::NotRootable { .. } => "CertificateNotRootable",
            CertificateError::Malformed(_) => "CertificateMalformed",
            CertificateError::ChainEmpty
            | CertificateError::ChainTooLong(_)
            | CertificateError::ChainBroken { .. }
            | CertificateError::ChainNotRooted { .. }
            | CertificateError::ChainRootNotFirst { .. } => "CertificateChainInvalid",
            CertificateError::RootNotTrusted { .. } => "CertificateRootNotTrusted",
            CertificateError::AlreadyExists { .. } => "CertificateAlreadyExists",
            CertificateError::Key(_) => "CertificateKeyError",
            CertificateError::Db(_) => "DatabaseError",
        }
    }

    /// True for failures of this database or of the RSA library (a server answers them with 500), false when the
    /// certificate, chain or request itself was refused.
    pub fn is_internal(&self) -> bool {
        matches!(self, CertificateError::Db(_) | CertificateError::Key(KeyError::Crypto(_)))
    }

    /// The `{"error_class": …, "error_message": …}` body a Morango server answers a refused certificate with.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "error_class": self.error_class(), "error_message": self.to_string() })
    }
}

impl From<FilterError> for CertificateError {
    fn from(error: FilterError) -> Self {
        CertificateError::Malformed(error.to_string())
    }
}

/// A certificate (Morango's `Certificate` model).
///
/// Fields are read through accessors: a certificate received from a peer is made only from its `serialized` text
/// ([`Certificate::deserialize`], [`Certificate::from_wire`]), so its fields always agree with what was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    id: String,
    parent_id: Option<String>,
    profile: String,
    scope_definition_id: String,
    scope_version: i32,
    scope_params: String,
    public_key: PublicKey,
    salt: String,
    serialized: String,
    signature: String,
    private_key: Option<PrivateKey>,
}

impl Certificate {
    /// Morango's certificate id: the first 32 hex characters of SHA-256 over the non-empty values of
    /// `public_key_string`, `profile` and `salt` joined with `":"` (a root's empty salt is left out).
    pub fn calculate_id(public_key_string: &str, profile: &str, salt: &str) -> String {
        let parts: Vec<&str> = [public_key_string, profile, salt].into_iter().filter(|p| !p.is_empty()).collect();
        sha2_uuid(&[&parts.join(":")])
    }

    /// Reads a certificate from the signed `serialized` text and its `signature`, as Python's
    /// `Certificate.deserialize`, validating every field: the id and parent id must be 32 lowercase hex characters,
    /// the profile and scope definition id 1–20 characters, the salt at most 32 (absent means `""`), the scope
    /// version an integer, the scope params JSON text of an object and the public key readable. The text is kept
    /// as received. Nothing is verified here: see [`check_certificate`].
    pub fn deserialize(serialized: &str, signature: &str) -> Result<Certificate, CertificateError> {
        if serialized.len() > MAX_SERIALIZED_LEN {
            return Err(malformed("serialized text is too long"));
        }
        if signature.len() > MAX_SIGNATURE_LEN {
            return Err(malformed("signature is too long"));
        }
        let data = match serde_json::from_str::<Value>(serialized) {
            Ok(Value::Object(data)) => data,
            Ok(_) => return Err(malformed("serialized text is not a JSON object")),
            Err(e) => return Err(malformed(format!("serialized text is not JSON: {e}"))),
        };
        let id = required_str(&data, "id")?;
        if !is_valid_id(id) {
            return Err(malformed(format!("id {id:?} is not 32 lowercase hex characters")));
        }
        let parent_id = match data.get("parent_id") {
            None => return Err(malformed("parent_id is missing")),
            Some(Value::Null) => None,
            Some(Value::String(parent)) if is_valid_id(parent) => Some(parent.clone()),
            Some(other) => return Err(malformed(format!("parent_id {other} is not null or a certificate id"))),
        };
        let profile = bounded_str(&data, "profile", MAX_PROFILE_CHARS)?;
        let salt = match data.get("salt") {
            None | Some(Value::Null) => "",
            Some(Value::String(salt)) if salt.chars().count() <= MAX_SALT_CHARS => salt.as_str(),
            Some(other) => return Err(malformed(format!("salt {other} is not a string of at most 32 characters"))),
        };
        let scope_definition_id = bounded_str(&data, "scope_definition_id", MAX_ID_CHARS)?;
        let scope_version = match data.get("scope_version") {
            Some(Value::Number(n)) => n.as_i64().and_then(|v| i32::try_from(v).ok()),
            _ => None,
        }
        .ok_or_else(|| malformed("scope_version is not an integer"))?;
        let scope_params = required_str(&data, "scope_params")?;
        parse_scope_params(scope_params)?;
        let public_key = PublicKey::parse(required_str(&data, "public_key_string")?)
            .map_err(|e| malformed(format!("public_key_string: {e}")))?;
        Ok(Certificate {
            id: id.to_owned(),
            parent_id,
            profile: profile.to_owned(),
            scope_definition_id: scope_definition_id.to_owned(),
            scope_version,
            scope_params: scope_params.to_owned(),
            public_key,
            salt: salt.to_owned(),
            serialized: serialized.to_owned(),
            signature: signature.to_owned(),
            private_key: None,
        })
    }

    /// Reads a certificate object received from a peer (spec §2.3). Only `id`, `serialized` and `signature` are
    /// used; everything else is re-derived from `serialized` ([`Certificate::deserialize`]), whose `id` must equal
    /// the outer one.
    pub fn from_wire(value: &Value) -> Result<Certificate, CertificateError> {
        let object = value.as_object().ok_or_else(|| malformed("a certificate must be a JSON object"))?;
        let id = required_str(object, "id")?;
        let cert = Certificate::deserialize(required_str(object, "serialized")?, required_str(object, "signature")?)?;
        if cert.id != id {
            return Err(malformed(format!("id {id:?} does not match the id {} inside serialized", cert.id)));
        }
        Ok(cert)
    }

    /// The certificate object of the wire (spec §2.3), keys in Morango's order: `id`, `parent`, `profile`,
    /// `scope_definition`, `scope_version`, `scope_params`, `public_key` (canonical key string), `serialized`,
    /// `signature`, `salt`. Never contains the private key.
    pub fn to_wire(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), self.id.clone().into());
        object.insert("parent".into(), self.parent_id.clone().map_or(Value::Null, Value::String));
        object.insert("profile".into(), self.profile.clone().into());
        object.insert("scope_definition".into(), self.scope_definition_id.clone().into());
        object.insert("scope_version".into(), self.scope_version.into());
        object.insert("scope_params".into(), self.scope_params.clone().into());
        object.insert("public_key".into(), self.public_key.as_str().into());
        object.insert("serialized".into(), self.serialized.clone().into());
        object.insert("signature".into(), self.signature.clone().into());
        object.insert("salt".into(), self.salt.clone().into());
        Value::Object(object)
    }

    /// The text Python's `Certificate.serialize()` writes for these fields: `json.dumps` of `id`, `parent_id`,
    /// `profile`, `salt`, `scope_definition_id`, `scope_version`, `scope_params`, `public_key_string`, in that
    /// order. This is what a new certificate's signature covers; received certificates keep their own text.
    pub fn serialize(&self) -> String {
        let mut data = Map::new();
        data.insert("id".into(), self.id.clone().into());
        data.insert("parent_id".into(), self.parent_id.clone().map_or(Value::Null, Value::String));
        data.insert("profile".into(), self.profile.clone().into());
        data.insert("salt".into(), self.salt.clone().into());
        data.insert("scope_definition_id".into(), self.scope_definition_id.clone().into());
        data.insert("scope_version".into(), self.scope_version.into());
        data.insert("scope_params".into(), self.scope_params.clone().into());
        data.insert("public_key_string".into(), self.public_key.as_str().into());
        json::dumps(&Value::Object(data))
    }

    /// The id: 32 lowercase hex characters.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The parent's id; `None` for a root.
    pub fn parent_id(&self) -> Option<&str> {
        self.parent_id.as_deref()
    }

    /// True for a self-signed root certificate.
    pub fn is_root(&self) -> bool {
        self.parent_id.is_none()
    }

    /// The Morango profile the certificate is for.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The id of the scope definition its scope is expanded from.
    pub fn scope_definition_id(&self) -> &str {
        &self.scope_definition_id
    }

    /// The scope definition's version when the certificate was made (informational).
    pub fn scope_version(&self) -> i32 {
        self.scope_version
    }

    /// The scope params: JSON text of an object.
    pub fn scope_params(&self) -> &str {
        &self.scope_params
    }

    /// The scope params, parsed.
    pub fn params(&self) -> Result<Map<String, Value>, CertificateError> {
        Ok(parse_scope_params(&self.scope_params)?)
    }

    /// The certificate's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The salt: `""` for roots, a uuid4 hex chosen by the issuer for CSRs, the server's nonce for pushed
    /// certificates.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The signed text, exactly as signed.
    pub fn serialized(&self) -> &str {
        &self.serialized
    }

    /// The parent's (or a root's own) signature of [`serialized`](Certificate::serialized), base64.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The private key, when this database owns the certificate.
    pub fn private_key(&self) -> Option<&PrivateKey> {
        self.private_key.as_ref()
    }

    /// True when this database holds the certificate's private key.
    pub fn has_private_key(&self) -> bool {
        self.private_key.is_some()
    }

    /// The certificate with its private key attached; fails when the key is not this certificate's.
    pub fn with_private_key(mut self, private_key: PrivateKey) -> Result<Certificate, CertificateError> {
        if private_key.public_key() != &self.public_key {
            return Err(CertificateError::KeyMismatch { id: self.id });
        }
        self.private_key = Some(private_key);
        Ok(self)
    }

    /// A copy without the private key (what is sent to, or received from, a peer).
    pub fn without_private_key(&self) -> Certificate {
        Certificate { private_key: None, ..self.clone() }
    }

    /// Signs `message` with this certificate's private key (for the sync-session handshake, `"<nonce>:<id>"`).
    pub fn sign(&self, message: &str) -> Result<String, CertificateError> {
        let key = self.private_key.as_ref().ok_or_else(|| CertificateError::NotOwned { id: self.id.clone() })?;
        Ok(key.sign(message)?)
    }

    /// True when `signature` is this certificate's key's signature of `message`.
    pub fn verify(&self, message: &str, signature: &str) -> bool {
        self.public_key.verify(message, signature)
    }

    /// The scope this certificate grants under `definition`, which must be its scope definition and belong to its
    /// profile.
    pub fn scope(&self, definition: &ScopeDefinition) -> Result<Scope, CertificateError> {
        if definition.id != self.scope_definition_id {
            return Err(CertificateError::ScopeDefinitionUnknown {
                scope_definition_id: self.scope_definition_id.clone(),
            });
        }
        if definition.profile != self.profile {
            return Err(CertificateError::ScopeDefinitionProfileInvalid {
                id: self.id.clone(),
                profile: self.profile.clone(),
                scope_definition_id: definition.id.clone(),
                definition_profile: definition.profile.clone(),
            });
        }
        Ok(definition.scope_for(&self.scope_params)?)
    }

    /// Python's `check_certificate` given the certificate's scope definition and, for a non-root, its parent with
    /// the parent's scope definition: the id must be the hash of key, profile and salt; a root must be signed by
    /// itself and every prefix of its scope must start with its id; any other certificate must be signed by its
    /// parent, with a scope inside the parent's and the parent's profile. In addition the scope definition must
    /// belong to the certificate's profile. [`check_certificate`] loads what this needs from the database.
    pub fn check(
        &self,
        definition: &ScopeDefinition,
        parent: Option<(&Certificate, &ScopeDefinition)>,
    ) -> Result<(), CertificateError> {
        let expected = Certificate::calculate_id(self.public_key.as_str(), &self.profile, &self.salt);
        if self.id != expected {
            return Err(CertificateError::IdInvalid { id: self.id.clone(), expected });
        }
        let scope = self.scope(definition)?;
        let Some(parent_id) = &self.parent_id else {
            if !self.public_key.verify(&self.serialized, &self.signature) {
                return Err(CertificateError::SignatureInvalid { id: self.id.clone() });
            }
            let prefixes = scope.read.prefixes().iter().chain(scope.write.prefixes());
            if let Some(prefix) = prefixes.into_iter().find(|prefix| !prefix.starts_with(&self.id)) {
                return Err(CertificateError::RootScopeInvalid { id: self.id.clone(), prefix: prefix.clone() });
            }
            return Ok(());
        };
        let (parent, parent_definition) = match parent {
            Some((parent, definition)) if &parent.id == parent_id => (parent, definition),
            _ => return Err(CertificateError::ParentUnknown { parent_id: parent_id.clone() }),
        };
        if !parent.public_key.verify(&self.serialized, &self.signature) {
            return Err(CertificateError::SignatureInvalid { id: self.id.clone() });
        }
        if !scope.is_subset_of(&parent.scope(parent_definition)?) {
            return Err(CertificateError::ScopeNotSubset { id: self.id.clone(), parent_id: parent.id.clone() });
        }
        if self.profile != parent.profile {
            return Err(CertificateError::ProfileInvalid {
                id: self.id.clone(),
                profile: self.profile.clone(),
                parent_profile: parent.profile.clone(),
            });
        }
        Ok(())
    }
}

/// The fields of a certificate being made here, before it is signed.
pub(crate) struct Draft {
    pub(crate) parent_id: Option<String>,
    pub(crate) profile: String,
    pub(crate) scope_definition_id: String,
    pub(crate) scope_version: i32,
    pub(crate) scope_params: String,
    pub(crate) public_key: PublicKey,
    pub(crate) salt: String,
}

impl Draft {
    /// The certificate signed by `signer` (its parent's key, or its own for a root), its id computed and its
    /// `serialized` text written as Python Morango writes it. Does not check it against its parent.
    pub(crate) fn sign(self, signer: &PrivateKey) -> Result<Certificate, CertificateError> {
        let Draft { parent_id, profile, scope_definition_id, scope_version, scope_params, public_key, salt } = self;
        let id = Certificate::calculate_id(public_key.as_str(), &profile, &salt);
        let mut cert = Certificate {
            id,
            parent_id,
            profile,
            scope_definition_id,
            scope_version,
            scope_params,
            public_key,
            salt,
            serialized: String::new(),
            signature: String::new(),
            private_key: None,
        };
        cert.serialized = cert.serialize();
        cert.signature = signer.sign(&cert.serialized)?;
        Ok(cert)
    }
}

fn malformed(message: impl Into<String>) -> CertificateError {
    CertificateError::Malformed(message.into())
}

fn required_str<'a>(data: &'a Map<String, Value>, key: &str) -> Result<&'a str, CertificateError> {
    match data.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(malformed(format!("{key} is not a string"))),
        None => Err(malformed(format!("{key} is missing"))),
    }
}

fn bounded_str<'a>(data: &'a Map<String, Value>, key: &str, max_chars: usize) -> Result<&'a str, CertificateError> {
    let s = required_str(data, key)?;
    if s.is_empty() || s.chars().count() > max_chars {
        return Err(malformed(format!("{key} must have 1 to {max_chars} characters")));
    }
    Ok(s)
}
