//! Every reason the gateway can give for answering itself: the access log's
//! `reason`, the `reason` label of the failure metrics. One enum, so a
//! reason is named once and docs/logs.md can be checked against it.

macro_rules! reasons {
    ($($variant:ident => $wire:literal,)*) => {
        /// A refusal or failure reason, with its wire name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($variant,)*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The name in the access log and in metric labels.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $wire,)*
                }
            }
        }
    };
}

reasons! {
    // 400: the request itself.
    MalformedPath => "malformed_path",
    EncodedSeparator => "encoded_separator",
    BackslashInPath => "backslash_in_path",
    NulInPath => "nul_in_path",
    PathParameter => "path_parameter",
    PathAboveRoot => "path_above_root",
    AmbiguousFraming => "ambiguous_framing",
    AmbiguousHost => "ambiguous_host",
    AbsoluteFormHostMismatch => "absolute_form_host_mismatch",
    ConnectNotAllowed => "connect_not_allowed",
    MethodCase => "method_case",
    MultipleCredentials => "multiple_credentials",
    AmbiguousOriginalRequest => "ambiguous_original_request",
    MissingOriginalRequest => "missing_original_request",
    HeadersTooLarge => "headers_too_large",
    BodyTooLarge => "body_too_large",
    BodyTimeout => "body_timeout",
    BodyReadFailed => "body_read_failed",
    // 401: no credential, or one refused.
    MissingCredential => "missing_credential",
    MalformedCredential => "malformed_credential",
    UnsupportedScheme => "unsupported_scheme",
    TokenTooLarge => "token_too_large",
    NoTokenIssuer => "no_token_issuer",
    UnknownKey => "unknown_key",
    KeyDisabled => "key_disabled",
    KeyExpired => "key_expired",
    MalformedToken => "malformed_token",
    AlgNone => "alg_none",
    AlgNotAllowed => "alg_not_allowed",
    CritNotSupported => "crit_not_supported",
    UnknownIssuer => "unknown_issuer",
    UnknownKid => "unknown_kid",
    NoMatchingKey => "no_matching_key",
    BadSignature => "bad_signature",
    TokenExpired => "token_expired",
    TokenNotYetValid => "token_not_yet_valid",
    TokenIssuedInFuture => "token_issued_in_future",
    TokenLifetimeTooLong => "token_lifetime_too_long",
    WrongAudience => "wrong_audience",
    WrongIssuer => "wrong_issuer",
    MissingClaim => "missing_claim",
    MalformedClaim => "malformed_claim",
    InactiveToken => "inactive_token",
    IntrospectionUnavailable => "introspection_unavailable",
    TokenRevoked => "token_revoked",
    UnknownClientCert => "unknown_client_cert",
    // Browser sessions (docs/sign-in.md).
    SignInRedirect => "sign_in_redirect",
    SessionExpired => "session_expired",
    SessionUnknown => "session_unknown",
    RefreshFailed => "refresh_failed",
    StateMismatch => "state_mismatch",
    StateExpired => "state_expired",
    ProviderError => "provider_error",
    CodeExchangeFailed => "code_exchange_failed",
    IdTokenInvalid => "id_token_invalid",
    CrossSiteRequest => "cross_site_request",
    ProviderUnavailable => "provider_unavailable",
    SessionStoreUnavailable => "session_store_unavailable",
    AssertionUnavailable => "assertion_unavailable",
    CorsOriginNotAllowed => "cors_origin_not_allowed",
    // 403 and 404.
    MissingScope => "missing_scope",
    CredentialKindNotAccepted => "credential_kind_not_accepted",
    NoRoute => "no_route",
    UntrustedPeer => "untrusted_peer",
    // 429.
    RateLimited => "rate_limited",
    // 502 and 504: the upstream.
    UpstreamConnectFailed => "upstream_connect_failed",
    UpstreamReset => "upstream_reset",
    UpstreamHeadTooLarge => "upstream_head_too_large",
    UpstreamTimeout => "upstream_timeout",
    UnexpectedUpgrade => "unexpected_upgrade",
    WebsocketNotAccepted => "websocket_not_accepted",
    EchoFailed => "echo_failed",
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn docs_logs_lists_every_reason() {
        let doc = include_str!("../docs/logs.md");
        for reason in Reason::ALL {
            assert!(
                doc.contains(&format!("`{}`", reason.as_str())),
                "docs/logs.md does not list the reason `{reason}`"
            );
        }
    }
}
