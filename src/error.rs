//! The one error type of the request path. Each variant is a row of docs/requests.md;
//! `status`, `code` and `decision` are exhaustive so a new row cannot be
//! added without deciding all three.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};

pub use crate::reason::Reason;

/// How the caller authenticated, for `WWW-Authenticate` (RFC 6750 §3) and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    ApiKey,
    Bearer,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::ApiKey => "ApiKey",
            Scheme::Bearer => "Bearer",
        }
    }
}

/// Why the gateway answered instead of the upstream. Descriptions and reasons
/// are `&'static str` so attacker-controlled text can never reach a header or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// Malformed path, two credentials, bad framing.
    BadRequest {
        reason: Reason,
        description: &'static str,
    },
    /// Request headers larger than `max_header_bytes`.
    HeadersTooLarge,
    /// No credential on a protected route. `api_key_configured` adds the
    /// `ApiKey` challenge next to `Bearer`.
    Unauthenticated {
        api_key_configured: bool,
    },
    /// A presented credential was refused.
    InvalidCredential {
        scheme: Scheme,
        reason: Reason,
        description: &'static str,
    },
    /// A valid credential lacking scopes, or of a kind the route does not accept.
    InsufficientScope {
        scheme: Scheme,
        reason: Reason,
        /// All of the route's scopes, space-separated (precomputed in the snapshot).
        scopes: std::sync::Arc<str>,
    },
    NotFound,
    /// A navigation without a session on a route that accepts one: 302 to
    /// the provider, with the sealed login-state cookie.
    SignIn {
        location: HeaderValue,
        login_cookie: crate::secret::Secret<HeaderValue>,
    },
    /// A session cookie that is no credential (any more): ended, unknown,
    /// revoked, or its refresh failed. The session cookie is expired.
    SessionEnded {
        reason: Reason,
        expire_cookie: HeaderValue,
    },
    /// The sign-in callback refused (docs/sign-in.md).
    LoginFailed {
        reason: Reason,
    },
    /// An unsafe method authenticated by the session cookie from another origin.
    CrossSite,
    /// A CORS preflight from an origin not listed for the route.
    PreflightRefused,
    /// Something sign-in needs is unreachable (the provider, the session store).
    Unavailable {
        reason: Reason,
    },
    /// A forward-auth check from a peer outside `forward_auth.trusted`.
    UntrustedPeer,
    PayloadTooLarge,
    /// The request body paused longer than `server.body_timeout` (slow POST).
    RequestTimeout,
    RateLimited {
        retry_after_secs: u64,
    },
    BadGateway {
        reason: Reason,
    },
    GatewayTimeout,
}

/// The access log's `decision` field (docs/logs.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Unauthenticated,
    InvalidToken,
    Forbidden,
    RateLimited,
    NotFound,
    BadRequest,
    UpstreamError,
    Unavailable,
}

impl Decision {
    pub const ALL: [Decision; 9] = [
        Decision::Allowed,
        Decision::Unauthenticated,
        Decision::InvalidToken,
        Decision::Forbidden,
        Decision::RateLimited,
        Decision::NotFound,
        Decision::BadRequest,
        Decision::UpstreamError,
        Decision::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Unauthenticated => "unauthenticated",
            Decision::InvalidToken => "invalid_token",
            Decision::Forbidden => "forbidden",
            Decision::RateLimited => "rate_limited",
            Decision::NotFound => "not_found",
            Decision::BadRequest => "bad_request",
            Decision::UpstreamError => "upstream_error",
            Decision::Unavailable => "unavailable",
        }
    }
}

impl GatewayError {
    pub fn bad_request(reason: Reason, description: &'static str) -> Self {
        GatewayError::BadRequest {
            reason,
            description,
        }
    }

    pub fn invalid_credential(scheme: Scheme, reason: Reason, description: &'static str) -> Self {
        GatewayError::InvalidCredential {
            scheme,
            reason,
            description,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            GatewayError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::InvalidCredential { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::SignIn { .. } => StatusCode::FOUND,
            GatewayError::SessionEnded { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::LoginFailed { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::CrossSite => StatusCode::FORBIDDEN,
            GatewayError::PreflightRefused => StatusCode::FORBIDDEN,
            GatewayError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::UntrustedPeer => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The JSON body's `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BadRequest { .. } => "invalid_request",
            GatewayError::HeadersTooLarge => "request_header_fields_too_large",
            GatewayError::Unauthenticated { .. } => "unauthorized",
            GatewayError::InvalidCredential { .. } => "invalid_token",
            GatewayError::InsufficientScope { .. } => "insufficient_scope",
            GatewayError::NotFound => "not_found",
            GatewayError::SignIn { .. } => "sign_in_required",
            GatewayError::SessionEnded { .. } => "unauthorized",
            GatewayError::LoginFailed { .. } => "login_failed",
            GatewayError::CrossSite => "forbidden",
            GatewayError::PreflightRefused => "forbidden",
            GatewayError::Unavailable { .. } => "service_unavailable",
            GatewayError::UntrustedPeer => "forbidden",
            GatewayError::PayloadTooLarge => "payload_too_large",
            GatewayError::RequestTimeout => "request_timeout",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::BadGateway { .. } => "bad_gateway",
            GatewayError::GatewayTimeout => "gateway_timeout",
        }
    }

    pub fn decision(&self) -> Decision {
        match self {
            GatewayError::BadRequest { .. } => Decision::BadRequest,
            GatewayError::HeadersTooLarge => Decision::BadRequest,
            GatewayError::Unauthenticated { .. } => Decision::Unauthenticated,
            GatewayError::InvalidCredential { .. } => Decision::InvalidToken,
            GatewayError::InsufficientScope { .. } => Decision::Forbidden,
            GatewayError::NotFound => Decision::NotFound,
            GatewayError::SignIn { .. } => Decision::Unauthenticated,
            GatewayError::SessionEnded { .. } => Decision::Unauthenticated,
            GatewayError::LoginFailed { .. } => Decision::Unauthenticated,
            GatewayError::CrossSite => Decision::Forbidden,
            GatewayError::PreflightRefused => Decision::Forbidden,
            GatewayError::Unavailable { .. } => Decision::Unavailable,
            GatewayError::UntrustedPeer => Decision::Forbidden,
            GatewayError::PayloadTooLarge => Decision::BadRequest,
            GatewayError::RequestTimeout => Decision::BadRequest,
            GatewayError::RateLimited { .. } => Decision::RateLimited,
            GatewayError::BadGateway { .. } => Decision::UpstreamError,
            GatewayError::GatewayTimeout => Decision::UpstreamError,
        }
    }

    /// The access log's machine-readable `reason`.
    pub fn reason(&self) -> Reason {
        match self {
            GatewayError::BadRequest { reason, .. } => *reason,
            GatewayError::HeadersTooLarge => Reason::HeadersTooLarge,
            GatewayError::Unauthenticated { .. } => Reason::MissingCredential,
            GatewayError::InvalidCredential { reason, .. } => *reason,
            GatewayError::InsufficientScope { reason, .. } => *reason,
            GatewayError::NotFound => Reason::NoRoute,
            GatewayError::SignIn { .. } => Reason::SignInRedirect,
            GatewayError::SessionEnded { reason, .. } => *reason,
            GatewayError::LoginFailed { reason } => *reason,
            GatewayError::CrossSite => Reason::CrossSiteRequest,
            GatewayError::PreflightRefused => Reason::CorsOriginNotAllowed,
            GatewayError::Unavailable { reason } => *reason,
            GatewayError::UntrustedPeer => Reason::UntrustedPeer,
            GatewayError::PayloadTooLarge => Reason::BodyTooLarge,
            GatewayError::RequestTimeout => Reason::BodyTimeout,
            GatewayError::RateLimited { .. } => Reason::RateLimited,
            GatewayError::BadGateway { reason } => *reason,
            GatewayError::GatewayTimeout => Reason::UpstreamTimeout,
        }
    }

    /// One sentence for `error_description`; never contains request data.
    pub fn description(&self) -> &'static str {
        match self {
            GatewayError::BadRequest { description, .. } => description,
            GatewayError::HeadersTooLarge => "The request headers are larger than allowed.",
            GatewayError::Unauthenticated { .. } => "This route requires a credential.",
            GatewayError::InvalidCredential { description, .. } => description,
            GatewayError::InsufficientScope { reason, .. } => match reason {
                Reason::CredentialKindNotAccepted => {
                    "This route does not accept this kind of credential."
                }
                _ => "The credential lacks a scope this route requires.",
            },
            GatewayError::NotFound => "No route matches this request.",
            GatewayError::SignIn { .. } => "Sign in at the identity provider.",
            GatewayError::SessionEnded { .. } => "The session has ended; sign in again.",
            GatewayError::LoginFailed { .. } => "Sign-in failed; start again.",
            GatewayError::CrossSite => {
                "A request changing state must come from this site's own pages."
            }
            GatewayError::PreflightRefused => "This origin may not call this route.",
            GatewayError::Unavailable { reason } => match reason {
                Reason::SessionStoreUnavailable => "The session store cannot be reached.",
                _ => "The identity provider cannot be reached.",
            },
            GatewayError::UntrustedPeer => "This listener answers only trusted front proxies.",
            GatewayError::PayloadTooLarge => "The request body is larger than allowed.",
            GatewayError::RequestTimeout => "The request body stalled.",
            GatewayError::RateLimited { .. } => "Too many requests; retry later.",
            GatewayError::BadGateway { .. } => "The upstream service could not be reached.",
            GatewayError::GatewayTimeout => "The upstream service did not answer in time.",
        }
    }

    /// Headers the error adds besides `Content-Type` (RFC 6750 §3, RFC 9110 §10.2.3).
    pub fn extra_headers(&self, headers: &mut HeaderMap) {
        match self {
            GatewayError::Unauthenticated { api_key_configured } => {
                headers.append(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"authgate\""),
                );
                if *api_key_configured {
                    headers.append(
                        WWW_AUTHENTICATE,
                        HeaderValue::from_static("ApiKey realm=\"authgate\""),
                    );
                }
            }
            GatewayError::InvalidCredential {
                scheme,
                description,
                ..
            } => {
                let value = format!(
                    "{} realm=\"authgate\", error=\"invalid_token\", error_description=\"{}\"",
                    scheme.name(),
                    description
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.append(WWW_AUTHENTICATE, v);
                }
            }
            GatewayError::InsufficientScope { scheme, scopes, .. } => {
                let value = format!(
                    "{} realm=\"authgate\", error=\"insufficient_scope\", scope=\"{}\"",
                    scheme.name(),
                    scopes
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.append(WWW_AUTHENTICATE, v);
                }
            }
            GatewayError::RateLimited { retry_after_secs } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs.max(&1)));
            }
            GatewayError::SignIn {
                location,
                login_cookie,
            } => {
                headers.insert(http::header::LOCATION, location.clone());
                headers.append(http::header::SET_COOKIE, login_cookie.expose().clone());
                headers.insert(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                );
            }
            GatewayError::SessionEnded { expire_cookie, .. } => {
                headers.append(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"authgate\""),
                );
                headers.append(http::header::SET_COOKIE, expire_cookie.clone());
            }
            GatewayError::BadRequest { .. }
            | GatewayError::HeadersTooLarge
            | GatewayError::NotFound
            | GatewayError::LoginFailed { .. }
            | GatewayError::CrossSite
            | GatewayError::PreflightRefused
            | GatewayError::Unavailable { .. }
            | GatewayError::UntrustedPeer
            | GatewayError::PayloadTooLarge
            | GatewayError::RequestTimeout
            | GatewayError::BadGateway { .. }
            | GatewayError::GatewayTimeout => {}
        }
    }

    /// The docs/requests.md JSON body.
    pub fn json_body(&self, request_id: &str) -> Bytes {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.description(),
            "request_id": request_id,
        });
        Bytes::from(body.to_string())
    }

    pub fn content_type() -> (http::HeaderName, HeaderValue) {
        (CONTENT_TYPE, HeaderValue::from_static("application/json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_values(e: &GatewayError) -> Vec<String> {
        let mut h = HeaderMap::new();
        e.extra_headers(&mut h);
        h.get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn every_row_maps_to_its_status_code_and_decision() {
        let rows: Vec<(GatewayError, u16, &str, Decision)> = vec![
            (
                GatewayError::bad_request(Reason::MalformedPath, "x."),
                400,
                "invalid_request",
                Decision::BadRequest,
            ),
            (
                GatewayError::HeadersTooLarge,
                431,
                "request_header_fields_too_large",
                Decision::BadRequest,
            ),
            (
                GatewayError::Unauthenticated {
                    api_key_configured: true,
                },
                401,
                "unauthorized",
                Decision::Unauthenticated,
            ),
            (
                GatewayError::invalid_credential(Scheme::ApiKey, Reason::UnknownKey, "x."),
                401,
                "invalid_token",
                Decision::InvalidToken,
            ),
            (
                GatewayError::InsufficientScope {
                    scheme: Scheme::ApiKey,
                    reason: Reason::MissingScope,
                    scopes: "a b".into(),
                },
                403,
                "insufficient_scope",
                Decision::Forbidden,
            ),
            (GatewayError::NotFound, 404, "not_found", Decision::NotFound),
            (
                GatewayError::PayloadTooLarge,
                413,
                "payload_too_large",
                Decision::BadRequest,
            ),
            (
                GatewayError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                "rate_limited",
                Decision::RateLimited,
            ),
            (
                GatewayError::BadGateway {
                    reason: Reason::UpstreamConnectFailed,
                },
                502,
                "bad_gateway",
                Decision::UpstreamError,
            ),
            (
                GatewayError::GatewayTimeout,
                504,
                "gateway_timeout",
                Decision::UpstreamError,
            ),
        ];
        for (err, status, code, decision) in rows {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
            assert_eq!(err.decision(), decision, "{err:?}");
            let body: serde_json::Value =
                serde_json::from_slice(&err.json_body("rid-1")).expect("json body");
            assert_eq!(body["error"], code);
            assert_eq!(body["request_id"], "rid-1");
            assert!(body["error_description"].as_str().is_some());
        }
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let none = GatewayError::Unauthenticated {
            api_key_configured: true,
        };
        assert_eq!(
            header_values(&none),
            vec!["Bearer realm=\"authgate\"", "ApiKey realm=\"authgate\""]
        );
        let bad =
            GatewayError::invalid_credential(Scheme::ApiKey, Reason::UnknownKey, "Unknown key.");
        assert_eq!(
            header_values(&bad),
            vec!["ApiKey realm=\"authgate\", error=\"invalid_token\", error_description=\"Unknown key.\""]
        );
        let scope = GatewayError::InsufficientScope {
            scheme: Scheme::Bearer,
            reason: Reason::MissingScope,
            scopes: "orders:read orders:write".into(),
        };
        assert_eq!(
            header_values(&scope),
            vec!["Bearer realm=\"authgate\", error=\"insufficient_scope\", scope=\"orders:read orders:write\""]
        );
        let mut h = HeaderMap::new();
        GatewayError::RateLimited {
            retry_after_secs: 0,
        }
        .extra_headers(&mut h);
        assert_eq!(h.get(RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"1"[..]));
    }
}
