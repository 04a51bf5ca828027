//! RSA keys and signatures as Morango uses them (spec §3.1–§3.2).
//!
//! Keys are RSA-2048 with public exponent 65537. A public key travels and is stored as its *key string*: standard
//! base64 (with padding, no newlines) of the PKCS#1 `RSAPublicKey` DER. Signatures are RSASSA-PKCS1-v1_5 with
//! SHA-256 over the UTF-8 message, written as padded base64 without newlines. PKCS#1 v1.5 is deterministic, so the
//! same key and message always give the same signature, byte for byte as Python Morango's.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use rsa::BoxedUint;
use rsa::pkcs1::der::Decode;
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::traits::PublicKeyParts;

/// Python Morango's `PKCS8_HEADER`: the base64 of the 24-byte SubjectPublicKeyInfo header of an RSA-2048 key. A key
/// string that starts with it is a whole SPKI; any other key string is a bare PKCS#1 `RSAPublicKey`.
pub const SPKI_HEADER: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A";

/// The only modulus size Python peers can read (their key parser needs a 270-byte PKCS#1 DER).
pub const KEY_BITS: usize = 2048;

/// The only public exponent accepted, as Python Morango generates it.
const PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Longest key text accepted from outside (a PEM of an RSA-2048 private key is about 1.7 KB).
const MAX_KEY_TEXT: usize = 8 * 1024;

/// Longest signature text accepted (a 2048-bit signature is 344 base64 characters).
const MAX_SIGNATURE_TEXT: usize = 4 * 1024;

/// Why a key could not be read, made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not a public key in any form Morango accepts.
    #[error("not a public key Morango can read: {0}")]
    InvalidPublicKey(String),
    /// The text is not a PKCS#1 RSA private key.
    #[error("not a PKCS#1 RSA private key: {0}")]
    InvalidPrivateKey(String),
    /// The key is RSA but not RSA-2048 with exponent 65537, which Python peers cannot use.
    #[error("unsupported RSA key: Morango keys are {KEY_BITS}-bit with exponent 65537")]
    UnsupportedKey,
    /// Generating, encoding or signing failed inside the RSA library.
    #[error("RSA operation failed: {0}")]
    Crypto(String),
}

/// An RSA public key, kept together with its canonical key string.
#[derive(Clone)]
pub struct PublicKey {
    key: rsa::PublicKey,
    string: String,
}

impl PublicKey {
    /// Reads a public key in every form Python Morango's `Key(public_key_string=…)` accepts: the bare PKCS#1 key
    /// string, a SubjectPublicKeyInfo base64 (starting with [`SPKI_HEADER`]), either of them as PEM
    /// (`BEGIN PUBLIC KEY` / `BEGIN RSA PUBLIC KEY`) or wrapped over several lines. Only RSA-2048 keys with
    /// exponent 65537 are accepted.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        if text.len() > MAX_KEY_TEXT {
            return Err(KeyError::InvalidPublicKey("key text too long".into()));
        }
        let base64_text = strip_pem_armour(text);
        let der = decode_base64_lenient(&base64_text).ok_or_else(|| KeyError::InvalidPublicKey("not base64".into()))?;
        let key = if base64_text.starts_with(SPKI_HEADER) {
            rsa::PublicKey::from_public_key_der(&der).map_err(|e| KeyError::InvalidPublicKey(e.to_string()))?
        } else {
            rsa::PublicKey::from_pkcs1_der(&der).map_err(|e| KeyError::InvalidPublicKey(e.to_string()))?
        };
        PublicKey::from_rsa(key)
    }

    fn from_rsa(key: rsa::PublicKey) -> Result<PublicKey, KeyError> {
        check_size(&key)?;
        let der = key.to_pkcs1_der().map_err(|e| KeyError::Crypto(e.to_string()))?;
        let string = STANDARD.encode(der.as_bytes());
        Ok(PublicKey { key, string })
    }

    /// The canonical key string: base64 of the PKCS#1 `RSAPublicKey` DER, with padding, no newlines, no PEM
    /// armour (`Key.get_public_key_string()`). This is what goes on the wire, into the database and into ids.
    pub fn as_str(&self) -> &str {
        &self.string
    }

    /// True when `signature` (base64, decoded leniently as Python does) is this key's PKCS#1 v1.5 SHA-256
    /// signature of the UTF-8 bytes of `message`. Malformed signatures are simply not valid.
    pub fn verify(&self, message: &str, signature: &str) -> bool {
        if signature.len() > MAX_SIGNATURE_TEXT {
            return false;
        }
        let Some(bytes) = decode_base64_lenient(signature) else {
            return false;
        };
        self.key.pkcs1v15_verify::<Sha256>(message.as_bytes(), &bytes).is_ok()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.string == other.string
    }
}

impl Eq for PublicKey {}

impl fmt::Display for PublicKey {
    /// The canonical key string, as Python's `str(Key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.string)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.string).finish()
    }
}

/// An RSA private key: signs certificates and handshake messages. Never leaves this database.
#[derive(Clone)]
pub struct PrivateKey {
    key: rsa::PrivateKey,
    public: PublicKey,
}

impl PrivateKey {
    /// A fresh RSA-2048 key with exponent 65537, from the operating system's random number generator.
    pub fn generate() -> Result<PrivateKey, KeyError> {
        let mut rng = rsa::sha2::digest::common::getrandom::SysRng;
        let key = rsa::PrivateKey::new(&mut rng, KEY_BITS).map_err(|e| KeyError::Crypto(e.to_string()))?;
        PrivateKey::from_rsa(key)
    }

    fn from_rsa(key: rsa::PrivateKey) -> Result<PrivateKey, KeyError> {
        let public = PublicKey::from_rsa(key.to_public_key())?;
        Ok(PrivateKey { key, public })
    }

    /// Reads a PKCS#1 private key: a `BEGIN RSA PRIVATE KEY` PEM, or its base64 body without the armour (Python
    /// Morango adds the armour itself). Only RSA-2048 keys with exponent 65537 are accepted.
    pub fn from_pem(text: &str) -> Result<PrivateKey, KeyError> {
        if text.len() > MAX_KEY_TEXT {
            return Err(KeyError::InvalidPrivateKey("key text too long".into()));
        }
        let der = decode_base64_lenient(&strip_pem_armour(text))
            .ok_or_else(|| KeyError::InvalidPrivateKey("not base64".into()))?;
        PrivateKey::from_rsa(private_key_from_pkcs1_der(&der)?)
    }

    /// The key as Python Morango stores it: a PKCS#1 `-----BEGIN RSA PRIVATE KEY-----` PEM with 64-character
    /// lines and a trailing newline.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let pem = self.key.to_pkcs1_pem(LineEnding::LF).map_err(|e| KeyError::Crypto(e.to_string()))?;
        Ok(pem.as_str().to_owned())
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs the UTF-8 bytes of `message` (RSASSA-PKCS1-v1_5, SHA-256) and returns the signature as padded base64
    /// without newlines, as Python Morango's `Key.sign`.
    pub fn sign(&self, message: &str) -> Result<String, KeyError> {
        let signature =
            self.key.pkcs1v15_sign::<Sha256>(message.as_bytes()).map_err(|e| KeyError::Crypto(e.to_string()))?;
        Ok(STANDARD.encode(signature))
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    /// Shows only the public half.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("public", &self.public.string).finish_non_exhaustive()
    }
}

/// Decodes a two-prime PKCS#1 `RSAPrivateKey`. Balanced keys (ours) use the `rsa` crate's decoder. Python's
/// `rsa` package makes RSA-2048 keys from a 1088-bit and a 960-bit prime, which that decoder refuses; those are
/// imported with modulus-wide prime storage, which signs about four times slower. Which kind a key is reveals
/// nothing secret: every key made by Python's `rsa` package has these prime sizes.
fn private_key_from_pkcs1_der(der: &[u8]) -> Result<rsa::PrivateKey, KeyError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    if let Ok(key) = rsa::PrivateKey::from_pkcs1_der(der) {
        return Ok(key);
    }
    let invalid = |e: &dyn fmt::Display| KeyError::InvalidPrivateKey(e.to_string());
    let key = rsa::pkcs1::RsaPrivateKeyRef::from_der(der).map_err(|e| invalid(&e))?;
    if key.version() != rsa::pkcs1::Version::TwoPrime {
        return Err(KeyError::InvalidPrivateKey("multi-prime keys are not supported".into()));
    }
    let modulus = key.modulus.as_bytes();
    let bits = u32::try_from(modulus.len() * 8).map_err(|e| invalid(&e))?;
    let uint = |bytes: &[u8], bits: u32| BoxedUint::from_be_slice(bytes, bits).map_err(|e| invalid(&e));
    let exponent = key.public_exponent.as_bytes();
    let exponent_bits = u32::try_from(exponent.len() * 8).map_err(|e| invalid(&e))?;
    rsa::PrivateKey::from_components_with_wide_primes(
        uint(modulus, bits)?,
        uint(exponent, exponent_bits)?,
        uint(key.private_exponent.as_bytes(), bits)?,
        vec![uint(key.prime1.as_bytes(), bits)?, uint(key.prime2.as_bytes(), bits)?],
    )
    .map_err(|e| invalid(&e))
}

fn check_size(key: &rsa::PublicKey) -> Result<(), KeyError> {
    let modulus = key.n_bytes();
    let full_size = modulus.len() * 8 == KEY_BITS && modulus.first().is_some_and(|b| b & 0x80 != 0);
    if full_size && *key.e_bytes() == PUBLIC_EXPONENT { Ok(()) } else { Err(KeyError::UnsupportedKey) }
}

/// Python's `_remove_pem_headers` followed by removing line breaks: if the text starts with `-----`, keeps the
/// lines that are not empty and do not start with `---`; then drops all whitespace.
fn strip_pem_armour(text: &str) -> String {
    let body: Vec<&str> = if text.trim_start().starts_with("-----") {
        text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with("---")).collect()
    } else {
        vec![text]
    };
    body.concat().chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

/// A base64 decoder as lenient as Python's `base64.decodebytes`: characters outside the alphabet are skipped,
/// decoding stops at the padding that ends a quantum, missing padding and non-zero trailing bits are tolerated.
/// `None` when the data characters cannot form bytes (one more than a multiple of four).
pub(crate) fn decode_base64_lenient(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let mut data = String::with_capacity(text.len());
    let mut pads = 0;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '+' || c == '/' {
            // A stray `=` inside a quantum is ignored, as in Python.
            pads = 0;
            data.push(c);
        } else if c == '=' {
            let quad_pos = data.len() % 4;
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    break;
                }
            }
        }
    }
    if data.len() % 4 == 1 {
        return None;
    }
    LENIENT.decode(data.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_skips_noise_and_stops_at_padding() {
        assert_eq!(decode_base64_lenient("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64_lenient("aG\nk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64_lenient("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64_lenient("aGk=garbage").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64_lenient("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64_lenient("a"), None);
        assert_eq!(decode_base64_lenient("").as_deref(), Some(&b""[..]));
    }
}
