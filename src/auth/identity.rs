//! Who a caller is once a credential is verified, and the names it travels
//! under: the credential kinds, the identity headers sent upstream, and the
//! `Identity` every validator builds the same way.

use crate::error::{GatewayError, Reason, Scheme};
use crate::revocation::TokenFacts;
use http::header::{HeaderName, HeaderValue};
use std::sync::Arc;

/// A kind of credential: what a route may accept (`routes[].auth`), which
/// validator a credential goes to, and how the caller authenticated
/// (`X-Auth-Method`, access log `auth_method`). One enum for all three, so a
/// new kind is added in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ApiKey,
    Jwt,
    Introspection,
    /// A browser session from OpenID Connect sign-in (docs/sign-in.md).
    Session,
    /// A verified client certificate of a listed subject (docs/policy.md `mtls`).
    Mtls,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ApiKey,
        Kind::Jwt,
        Kind::Introspection,
        Kind::Session,
        Kind::Mtls,
    ];

    /// The wire name: policy files, `X-Auth-Method`, the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ApiKey => "api_key",
            Kind::Jwt => "jwt",
            Kind::Introspection => "introspection",
            Kind::Session => "session",
            Kind::Mtls => "mtls",
        }
    }
}

/// A set of credential kinds (docs/policy.md `routes[].auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet {
    pub api_key: bool,
    pub jwt: bool,
    pub introspection: bool,
    pub session: bool,
    pub mtls: bool,
}

impl KindSet {
    pub fn is_empty(&self) -> bool {
        !(self.api_key || self.jwt || self.introspection || self.session || self.mtls)
    }

    /// Bearer tokens are JWTs or opaque tokens.
    pub fn bearer(&self) -> bool {
        self.jwt || self.introspection
    }

    /// The kinds in both sets.
    pub fn intersection(self, other: KindSet) -> KindSet {
        KindSet {
            api_key: self.api_key && other.api_key,
            jwt: self.jwt && other.jwt,
            introspection: self.introspection && other.introspection,
            session: self.session && other.session,
            mtls: self.mtls && other.mtls,
        }
    }

    pub fn contains(&self, kind: Kind) -> bool {
        match kind {
            Kind::ApiKey => self.api_key,
            Kind::Jwt => self.jwt,
            Kind::Introspection => self.introspection,
            Kind::Session => self.session,
            Kind::Mtls => self.mtls,
        }
    }
}

/// Who is calling, as established by one credential. Built once per key or
/// verified token and shared, with its upstream headers already encoded.
#[derive(Debug, Clone)]
pub struct Identity {
    pub method: Kind,
    pub subject: Arc<str>,
    pub scopes: Vec<Arc<str>>,
    pub key_id: Option<Arc<str>>,
    pub issuer: Option<Arc<str>>,
    /// The name of this caller's own rate limit, if any.
    pub rate_limit: Option<Arc<str>>,
    /// The caller's rate-limit bucket: the key id, or the token's `iss`+`sub`.
    pub caller: crate::ratelimit::Caller,
    pub token: Option<TokenFacts>,
    /// The identity headers to send upstream (docs/policy.md `identity`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The identity assertion last signed for this identity, if any.
    pub assertion: AssertionSlot,
}

/// Where the signer keeps the assertion of an identity that is shared by
/// many requests (a key's, a client's, a cached token's): the fast path of
/// its reuse, one atomic load.
#[derive(Default)]
pub struct AssertionSlot(arc_swap::ArcSwapOption<SignedAssertion>);

/// One signed assertion: which signer made it, when, and the header value.
pub struct SignedAssertion {
    pub stamp: u64,
    pub issued_at: u64,
    pub value: HeaderValue,
}

impl AssertionSlot {
    pub fn get(&self) -> Option<Arc<SignedAssertion>> {
        self.0.load_full()
    }

    /// The slot's assertion, if there is one and `fresh` accepts it.
    pub fn reuse(&self, fresh: impl Fn(&SignedAssertion) -> bool) -> Option<HeaderValue> {
        let guard = self.0.load();
        guard
            .as_deref()
            .filter(|s| fresh(s))
            .map(|s| s.value.clone())
    }

    pub fn put(&self, signed: SignedAssertion) {
        self.0.store(Some(Arc::new(signed)));
    }
}

impl Clone for AssertionSlot {
    fn clone(&self) -> Self {
        AssertionSlot(arc_swap::ArcSwapOption::new(self.get()))
    }
}

impl std::fmt::Debug for AssertionSlot {
    // The assertion is a bearer credential for the upstream: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AssertionSlot")
    }
}

/// The parts of an identity, before its headers are encoded.
pub struct IdentityParts<'a> {
    pub method: Kind,
    pub subject: Arc<str>,
    pub scopes: Vec<Arc<str>>,
    pub key_id: Option<Arc<str>>,
    pub issuer: Option<Arc<str>>,
    pub rate_limit: Option<Arc<str>>,
    pub token: Option<TokenFacts>,
    /// Claim values for `identity.claims` headers.
    pub claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// A claim as a header value: strings as they are, numbers and booleans
/// printed, arrays space-joined (docs/policy.md `identity.claims`).
fn claim_text(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| match v {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    other => claim_text(other),
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Value::Null | Value::Object(_) => None,
    }
}

/// A value that would go into an identity header but cannot be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAHeaderValue;

impl From<NotAHeaderValue> for GatewayError {
    /// RFC 9110 §5.5: a control character (other than HTAB) cannot travel in
    /// a field value. Dropping the header would let the request through
    /// without its identity, so the credential itself is refused.
    fn from(_: NotAHeaderValue) -> GatewayError {
        GatewayError::invalid_credential(
            Scheme::Bearer,
            Reason::MalformedClaim,
            "A claim cannot be sent as a header value.",
        )
    }
}

impl IdentityParts<'_> {
    /// Encodes the headers once. A value that cannot be a header value (a
    /// control character in a claim) is an error, never a missing header.
    pub fn build(self, names: &IdentityHeaders) -> Result<Identity, NotAHeaderValue> {
        let mut headers = Vec::with_capacity(5);
        let mut push = |name: &HeaderName, value: &str| {
            let v = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| NotAHeaderValue)?;
            headers.push((name.clone(), v));
            Ok::<(), NotAHeaderValue>(())
        };
        push(&names.subject, &self.subject)?;
        push(&names.method, self.method.as_str())?;
        let scopes: Vec<&str> = self.scopes.iter().map(|s| &**s).collect();
        push(&names.scopes, &scopes.join(" "))?;
        if let Some(key_id) = &self.key_id {
            push(&names.key_id, key_id)?;
        }
        if let Some(issuer) = &self.issuer {
            push(&names.issuer, issuer)?;
        }
        if let Some(claims) = self.claims {
            for (claim, header) in &names.claims {
                if let Some(text) = claims.get(claim).and_then(claim_text) {
                    push(header, &text)?;
                }
            }
        }
        let caller = crate::ratelimit::Caller::new(match (&self.key_id, self.method) {
            (Some(id), Kind::ApiKey) => format!("key:{id}"),
            (_, Kind::Mtls) => format!("cert:{}", self.subject),
            _ => format!(
                "tok:{} {}",
                self.issuer.as_deref().unwrap_or(""),
                self.subject
            ),
        });
        Ok(Identity {
            caller,
            method: self.method,
            subject: self.subject,
            scopes: self.scopes,
            key_id: self.key_id,
            issuer: self.issuer,
            rate_limit: self.rate_limit,
            token: self.token,
            headers,
            assertion: AssertionSlot::default(),
        })
    }
}

/// Header names the gateway sets upstream, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub subject: HeaderName,
    pub method: HeaderName,
    pub scopes: HeaderName,
    pub key_id: HeaderName,
    pub issuer: HeaderName,
    pub claims: Vec<(String, HeaderName)>,
    /// The client certificate's fingerprint, on `mtls` requests.
    pub cert_sha256: HeaderName,
    /// The signed assertion, when `identity.assertion` is configured.
    pub assertion: Option<HeaderName>,
}

impl IdentityHeaders {
    /// Every name, the claim headers included.
    pub fn all(&self) -> impl Iterator<Item = &HeaderName> {
        [
            &self.subject,
            &self.method,
            &self.scopes,
            &self.key_id,
            &self.issuer,
            &self.cert_sha256,
        ]
        .into_iter()
        .chain(self.assertion.as_ref())
        .chain(self.claims.iter().map(|(_, h)| h))
    }
}

impl Default for IdentityHeaders {
    /// The docs/policy.md names.
    fn default() -> Self {
        IdentityHeaders {
            subject: HeaderName::from_static("x-auth-subject"),
            method: HeaderName::from_static("x-auth-method"),
            scopes: HeaderName::from_static("x-auth-scopes"),
            key_id: HeaderName::from_static("x-auth-key-id"),
            issuer: HeaderName::from_static("x-auth-issuer"),
            claims: Vec::new(),
            cert_sha256: HeaderName::from_static("x-auth-cert-sha256"),
            assertion: None,
        }
    }
}

impl IdentityHeaders {
    /// Whether a header is one the gateway owns, so a caller may not send it (docs/requests.md step 3).
    pub fn is_reserved(&self, name: &HeaderName) -> bool {
        let n = name.as_str();
        // HeaderName is always lower-case, so one prefix test covers every spelling.
        n.starts_with("x-auth-")
            || *name == self.subject
            || *name == self.method
            || *name == self.scopes
            || *name == self.key_id
            || *name == self.issuer
            || *name == self.cert_sha256
            || self.assertion.as_ref() == Some(name)
            || self.claims.iter().any(|(_, h)| h == name)
    }
}
