//! Reading a compact JWS before its signature is checked, and the claim
//! rules jsonwebtoken leaves to the gateway: types, required names,
//! NumericDates, scopes, and the mapping of its errors to reasons.

use crate::error::{GatewayError, Reason, Scheme};
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Claims `require_claims` may name, with the JSON type each must have.
pub const REQUIRABLE_CLAIMS: [(&str, bool); 5] = [
    ("exp", true),
    ("nbf", true),
    ("iat", true),
    ("jti", false),
    ("sub", false),
];

/// Every required claim present and of its type (numbers for times, strings
/// otherwise). jsonwebtoken enforces presence only for some names, so the
/// gateway checks them all itself.
pub(super) fn check_required(
    claims: &Map<String, Value>,
    required: &[&str],
) -> Result<(), GatewayError> {
    for name in required {
        let numeric = REQUIRABLE_CLAIMS
            .iter()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, numeric)| *numeric);
        match claims.get(*name) {
            None | Some(Value::Null) => {
                return Err(invalid(
                    Reason::MissingClaim,
                    "The token lacks a required claim.",
                ))
            }
            Some(Value::Number(_)) if numeric => {}
            Some(Value::String(_)) if !numeric => {}
            Some(_) => {
                return Err(invalid(
                    Reason::MalformedClaim,
                    "A required claim has the wrong type.",
                ))
            }
        }
    }
    Ok(())
}

pub(super) fn invalid(reason: Reason, description: &'static str) -> GatewayError {
    GatewayError::invalid_credential(Scheme::Bearer, reason, description)
}

pub(super) fn malformed() -> GatewayError {
    invalid(
        Reason::MalformedToken,
        "The token is not a well-formed JWT.",
    )
}

pub(super) fn b64_json(segment: &str) -> Option<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A JWS in compact form: three segments whose first decodes to a JSON
/// object with an `alg`. Anything else is an opaque token.
pub fn looks_like_jws(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    b64_json(header).is_some_and(|h| h.contains_key("alg"))
}

/// A NumericDate claim: absent, or a non-negative number (RFC 7519 §2).
/// Any other type makes the token invalid, never unchecked.
pub(super) fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<u64>, GatewayError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    Reason::MalformedClaim,
                    "A time claim is not a valid number.",
                )
            }),
        Some(_) => Err(invalid(
            Reason::MalformedClaim,
            "A time claim is not a number.",
        )),
    }
}

/// Refuses claims of the wrong JSON type before anything else reads them.
pub(super) fn check_claim_types(claims: &Map<String, Value>) -> Result<(), GatewayError> {
    for name in ["exp", "nbf", "iat"] {
        numeric_date(claims, name)?;
    }
    let aud_ok = match claims.get("aud") {
        None | Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !aud_ok {
        return Err(invalid(
            Reason::MalformedClaim,
            "The aud claim is not a string or list of strings.",
        ));
    }
    if claims.get("jti").is_some_and(|v| !v.is_string()) {
        return Err(invalid(
            Reason::MalformedClaim,
            "The jti claim is not a string.",
        ));
    }
    Ok(())
}

pub(super) fn map_error(kind: &ErrorKind) -> GatewayError {
    match kind {
        ErrorKind::InvalidSignature => {
            invalid(Reason::BadSignature, "The token signature is invalid.")
        }
        ErrorKind::ExpiredSignature => invalid(Reason::TokenExpired, "The token has expired."),
        ErrorKind::ImmatureSignature => {
            invalid(Reason::TokenNotYetValid, "The token is not valid yet.")
        }
        ErrorKind::InvalidAudience => invalid(
            Reason::WrongAudience,
            "The token is not meant for this API.",
        ),
        ErrorKind::InvalidIssuer => {
            invalid(Reason::WrongIssuer, "The token's issuer is not trusted.")
        }
        ErrorKind::MissingRequiredClaim(_) => {
            invalid(Reason::MissingClaim, "The token lacks a required claim.")
        }
        ErrorKind::InvalidClaimFormat(_) => {
            invalid(Reason::MalformedClaim, "A token claim has the wrong type.")
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => invalid(
            Reason::AlgNotAllowed,
            "The token's algorithm is not allowed.",
        ),
        _ => malformed(),
    }
}

/// Scopes from `scope` (space-separated) or an array claim such as `scp` or `permissions`.
pub(super) fn scopes_of(
    claims: &Map<String, Value>,
    claim: &str,
) -> Result<Vec<Arc<str>>, GatewayError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(Arc::from).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(Arc::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(
                    Reason::MalformedClaim,
                    "The scope claim is not a list of strings.",
                )
            }),
        Some(_) => Err(invalid(
            Reason::MalformedClaim,
            "The scope claim has the wrong type.",
        )),
    }
}

/// A token's header, algorithm and claims, not yet verified.
pub(super) type PreRead = (Map<String, Value>, Algorithm, Map<String, Value>);

/// The token's header and claims, read before any key is chosen, with the
/// refusals that need no key: malformed, `crit`, `alg: none`, unknown `alg`.
pub(super) fn pre_read(token: &str) -> Result<PreRead, GatewayError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64)) = (parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let header = b64_json(header_b64).ok_or_else(malformed)?;
    // RFC 7515 §4.1.11: a `crit` we do not understand must be refused; we understand none.
    if header.contains_key("crit") {
        return Err(invalid(
            Reason::CritNotSupported,
            "The token names critical header parameters.",
        ));
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(malformed)?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(invalid(
            Reason::AlgNone,
            "Unsigned tokens are never accepted.",
        ));
    }
    let alg: Algorithm = alg_name.parse().map_err(|_| {
        invalid(
            Reason::AlgNotAllowed,
            "The token's algorithm is not allowed.",
        )
    })?;
    let claims = b64_json(claims_b64).ok_or_else(malformed)?;
    Ok((header, alg, claims))
}
