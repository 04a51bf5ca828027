//! Capabilities two peers negotiate (spec §1.4): each side advertises a set; a request uses the intersection.

use std::collections::BTreeSet;
use std::fmt;

/// The client gzips `POST buffers/` bodies.
pub const GZIP_BUFFER_POST: &str = "GZIP_BUFFER_POST";
/// The server accepts certificates pushed to it (`publickey/`, `certificatechain/`).
pub const ALLOW_CERTIFICATE_PUSHING: &str = "ALLOW_CERTIFICATE_PUSHING";
/// FSICs use the v2 format.
pub const FSIC_V2_FORMAT: &str = "FSIC_V2_FORMAT";
/// The client drives every stage with `PATCH transfersessions/<id>/` instead of the legacy flow.
pub const ASYNC_OPERATIONS: &str = "ASYNC_OPERATIONS";
/// Every request of a sync session after the handshake is signed with the client certificate's key, so the
/// session ids are no longer bearer tokens (spec §15 W2). Python Morango does not advertise it.
pub const SIGNED_REQUESTS: &str = "MORANGO_RS_SIGNED_REQUESTS";

/// A set of capability names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(BTreeSet<String>);

impl Capabilities {
    /// Everything this implementation supports.
    pub fn all() -> Self {
        Capabilities::from_names([GZIP_BUFFER_POST, FSIC_V2_FORMAT, ASYNC_OPERATIONS, SIGNED_REQUESTS])
    }

    /// A set of the given names.
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Capabilities(names.into_iter().map(Into::into).filter(|n: &String| !n.is_empty()).collect())
    }

    /// Reads the `X-Morango-Capabilities` header: names separated by spaces; missing = none.
    pub fn from_header(value: Option<&str>) -> Self {
        Capabilities::from_names(value.unwrap_or_default().split(' '))
    }

    /// The header value (names separated by single spaces).
    pub fn to_header(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(" ")
    }

    /// Whether `name` is in the set.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// The names both sets hold.
    pub fn intersection(&self, other: &Capabilities) -> Capabilities {
        Capabilities(self.0.intersection(&other.0).cloned().collect())
    }

    /// Adds a name.
    pub fn with(mut self, name: &str) -> Self {
        self.0.insert(name.to_owned());
        self
    }

    /// Removes a name.
    pub fn without(mut self, name: &str) -> Self {
        self.0.remove(name);
        self
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_header_means_no_capabilities_and_sets_intersect() {
        assert_eq!(Capabilities::from_header(None), Capabilities::default());
        let peer = Capabilities::from_header(Some("FSIC_V2_FORMAT ASYNC_OPERATIONS"));
        let both = Capabilities::all().intersection(&peer);
        assert!(both.has(FSIC_V2_FORMAT) && both.has(ASYNC_OPERATIONS) && !both.has(GZIP_BUFFER_POST));
        assert_eq!(both.to_header(), "ASYNC_OPERATIONS FSIC_V2_FORMAT");
    }
}
