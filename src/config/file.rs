//! The serde mirror of `gateway.yaml` (docs/policy.md). No logic lives here: every
//! struct denies unknown fields so a typo can never silently weaken security,
//! and every section has a default so each can be checked on its own.

use super::units::{ByteSize, Duration, Rate};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use super::file_browser::{CorsFile, SessionsFile};
pub use super::file_credentials::{AssertionFile, MtlsClientFile, MtlsFile};

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerFile,
    pub admin: Option<AdminFile>,
    pub forward_auth: Option<ForwardAuthFile>,
    pub upstream: Option<UpstreamFile>,
    pub identity: IdentityFile,
    /// Present (even empty) = the kind is configured.
    pub api_keys: Option<ApiKeysFile>,
    pub jwt: Option<Vec<IssuerFile>>,
    pub introspection: Option<Vec<IntrospectionFile>>,
    pub rate_limits: Option<RateLimitsFile>,
    pub revocation: Option<RevocationFile>,
    pub routes: Vec<RouteFile>,
    pub access_log: AccessLogFile,
    /// Browser sign-in with OpenID Connect (docs/sign-in.md). Absent: no sessions.
    pub sessions: Option<SessionsFile>,
    /// Browser apps on other origins (CORS). Absent: no cross-origin answers.
    pub cors: Option<Vec<CorsFile>>,
    /// Client certificates as credentials (kind `mtls`). Absent: a certificate is no credential.
    pub mtls: Option<MtlsFile>,
}

/// `forward_auth`: the decision listener for a front proxy.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthFile {
    /// Address of the decision listener. Its port may be neither `server.listen`'s nor
    /// `admin.listen`'s. Changing it needs a restart. Default: `127.0.0.1:9091`.
    pub listen: Option<String>,
    /// Peers whose checks are answered, and whose `X-Forwarded-*` / `X-Original-*` headers are
    /// believed. A check from any other peer gets 403 (`untrusted_peer`). Applies on reload.
    /// Default: `[127.0.0.0/8, ::1/128]`.
    pub trusted: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerFile {
    /// Address of the HTTPS listener. IPv6 is written `[::]:443`. Default: `127.0.0.1:8443`.
    pub listen: Option<String>,
    /// TLS settings, below.
    pub tls: Option<TlsFile>,
    /// Tokio worker threads. `auto` uses one per CPU core; `1` runs a single-threaded runtime
    /// (the fastest choice when the gateway is pinned to one core). Default: `auto`.
    #[schemars(schema_with = "workers_schema")]
    pub workers: Option<serde_yaml::Value>,
    /// Time a new connection has to finish its TLS handshake, and a request to deliver its
    /// complete head. Past it the connection is closed (slowloris defence). Default: `10s`.
    pub header_read_timeout: Option<Duration>,
    /// A keep-alive connection with no bytes moving and no request in progress for this long is
    /// closed. Also the idle limit of an open WebSocket tunnel, and the HTTP/2 keep-alive ping
    /// interval. Default: `60s`.
    pub idle_timeout: Option<Duration>,
    /// Largest request head (all header names and values). Larger: 431. Also the HTTP/2
    /// header-list limit. Default: `16KiB`.
    pub max_header_bytes: Option<ByteSize>,
    /// Largest request body. A `Content-Length` above it gets 413 before anything is forwarded; a
    /// chunked body is counted as it streams and is cut off with 413 when it passes the limit.
    /// Bodies are streamed, never buffered whole. Default: `10MiB`.
    pub max_body_bytes: Option<ByteSize>,
    /// On SIGTERM/SIGINT, how long in-flight requests, HTTP/2 streams and WebSocket tunnels may
    /// run before they are cut. Default: `30s`.
    pub shutdown_grace: Option<Duration>,
    /// Peers whose `X-Forwarded-For` is believed: it is kept and appended to, and the client IP
    /// is taken from it (see [requests.md](requests.md#client-ip-and-x-forwarded-)). Examples:
    /// `10.0.0.0/8`, `192.0.2.7`, `::1`. Default: `[]`.
    pub trusted_proxies: Vec<String>,
    /// Client connections open at once (WebSocket tunnels included). Further connections are not
    /// accepted; they wait in the kernel's listen backlog until a slot frees. `0` is treated as
    /// `1`. Default: `10000`.
    pub max_connections: Option<usize>,
    /// Longest pause allowed inside a request body while it streams (slow-POST defence). Past it:
    /// 408. (An authgate addition to the contract.) Default: `30s`.
    pub body_timeout: Option<Duration>,
    /// Capacity of the cache of verified JWTs and active introspection answers; `0` turns the
    /// cache off. (An authgate addition.) Default: `100000`.
    pub token_cache_entries: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsFile {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Development only: if `cert` or `key` is missing at start, write a self-signed pair for
    /// `localhost`, `127.0.0.1` and `::1` there (the key with mode 0600). Remove it in
    /// production. Default: `false`.
    pub generate_self_signed: bool,
    /// Lowest TLS version offered. `"1.3"` refuses TLS 1.2 clients. Default: `"1.2"`.
    #[schemars(extend("enum" = ["1.2", "1.3", null]))]
    pub min_version: Option<String>,
    /// A PEM CA bundle for client certificates. With `client_auth: required` every connection
    /// must present a certificate it signed, or the handshake fails; with `optional` a connection
    /// may present none. A certificate is a credential only on routes accepting `mtls` (see
    /// `mtls`); elsewhere the caller still needs an API key or token. Certificates that carry an
    /// extended key usage must include clientAuth. Default: `null`.
    pub client_ca: Option<PathBuf>,
    /// `required`: no handshake without a valid client certificate. `optional`: a client may
    /// present none (and is judged by its other credentials), but one it presents must be valid.
    /// Only with `client_ca`. Default: `required`.
    #[schemars(extend("enum" = ["required", "optional", null]))]
    pub client_auth: Option<String>,
    /// A PEM file of certificate revocation lists from the client CA: a revoked certificate fails
    /// the handshake. Read at start and at every reload (new handshakes use the new list). Only
    /// with `client_ca`. Default: `null`.
    pub client_crl: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminFile {
    /// Address of the admin listener. Default: `127.0.0.1:9090`.
    pub listen: Option<String>,
    /// The dashboard: `GET /` (a page) and `GET /stats` (JSON) on the admin listener, fed by a
    /// bounded window of the last 15 minutes. `false` stops the collection too. (An authgate
    /// addition.) Default: `true`.
    pub dashboard: Option<bool>,
    /// Variable holding the bearer token that the revocation API requires. The variable must be
    /// set and at least 16 bytes long, or the policy is invalid. Default: `AUTHGATE_ADMIN_TOKEN`.
    pub token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamFile {
    /// `http://host:port` or `https://host:port`, optionally with a path prefix
    /// (`http://10.0.0.5:8080/api` sends `/orders/7` as `/api/orders/7`). No query string or user
    /// info. The special value `echo` is a built-in service that answers every request with a
    /// JSON description of what it received (method, path, query, headers, body size): handy to
    /// see exactly what an API behind the gateway would get.
    pub url: Option<String>,
    /// Time to open a connection to the upstream. Past it: 502. Default: `2s`.
    pub connect_timeout: Option<Duration>,
    /// Time from sending the request to receiving the upstream's response head. Past it: 504. The
    /// body then streams without this limit. Default: `30s`.
    pub timeout: Option<Duration>,
    /// Extra PEM CA bundle trusted for an `https` upstream, on top of the public web PKI roots.
    /// Default: `null`.
    pub ca: Option<PathBuf>,
    /// Forward the caller's `Authorization` and API-key header upstream. By default both are
    /// removed. Default: `false`.
    pub pass_credentials: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityFile {
    /// The caller's subject: the key's `subject`, or the token's subject claim. Default:
    /// `X-Auth-Subject`.
    pub subject: Option<String>,
    /// `api_key`, `jwt` or `introspection`. Default: `X-Auth-Method`.
    pub method: Option<String>,
    /// The caller's scopes, space-separated (possibly empty). Default: `X-Auth-Scopes`.
    pub scopes: Option<String>,
    /// The API key's `id` (API keys only). Default: `X-Auth-Key-Id`.
    pub key_id: Option<String>,
    /// The JWT issuer (JWTs; for introspection, the answer's `iss` when it has one). Default:
    /// `X-Auth-Issuer`.
    pub issuer: Option<String>,
    /// A map from claim name to header name, e.g. `email: X-Auth-Email`. Each listed claim of a
    /// JWT (or member of an introspection answer) is copied into its header: strings as they are,
    /// numbers and booleans printed, arrays of those joined with spaces. Objects and `null`
    /// produce no header. Default: `{}`.
    pub claims: BTreeMap<String, String>,
    /// Lower-case hex SHA-256 of the client certificate's DER, on requests authenticated by
    /// `mtls` only. Default: `X-Auth-Cert-Sha256`.
    pub cert_sha256: Option<String>,
    /// A signed statement of the caller's identity for the upstream to verify (below). Absent:
    /// none is sent.
    pub assertion: Option<AssertionFile>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysFile {
    /// Header carrying the key. `Authorization: ApiKey <key>` is always accepted too. Default:
    /// `X-API-Key`.
    pub header: Option<String>,
    /// The keys, below. Default: `[]`.
    pub keys: Vec<ApiKeyFile>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyFile {
    /// Stable, non-secret name. Appears in logs and in `X-Auth-Key-Id`; names the rate-limit
    /// bucket. Must be unique, non-empty and printable ASCII (it is sent in a header).
    pub id: String,
    /// Subject sent upstream and logged. Printable ASCII. Default: the `id`.
    pub subject: Option<String>,
    /// The key's SHA-256 as `sha256:<64 hex digits>` (bare hex is accepted too, any case). Print
    /// it with `authgate keygen` or `authgate hash-key`. Two entries may not share a digest.
    pub sha256: String,
    /// Scopes the key grants. Each scope is non-empty printable ASCII without spaces, `"` or `\`
    /// (RFC 6749 scope tokens). Default: `[]`.
    pub scopes: Vec<String>,
    /// After this instant the key is refused (`key_expired`). `check` warns about keys already
    /// expired or expiring within 14 days.
    pub expires: Option<String>,
    /// A disabled key is refused (`key_disabled`) but stays listed, e.g. while investigating a
    /// leak. Default: `false`.
    pub disabled: bool,
    /// The caller's own limit: a name from `rate_limits.limits`. Default: `rate_limits.default`.
    pub rate_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerFile {
    /// The exact `iss` value of this issuer's tokens. Unique across the list. A trailing slash
    /// matters.
    pub issuer: String,
    /// The token's `aud` (a string or a list) must contain one of these. A token minted for
    /// another API of the same issuer must not pass, so this is never optional; a token without
    /// `aud` is refused.
    pub audiences: Vec<String>,
    /// Accepted signature algorithms, from `HS256` `HS384` `HS512` `RS256` `RS384` `RS512`
    /// `PS256` `PS384` `PS512` `ES256` `ES384` `EdDSA`. `none` is never accepted. HMAC algorithms
    /// (`HS*`) are allowed only with `hs_secret_env`, and an `hs_secret_env` issuer allows only
    /// `HS*`: public keys and HMAC never mix (algorithm-confusion defence).
    #[schemars(schema_with = "algorithms_schema")]
    pub algorithms: Vec<String>,
    /// Key source: a JWKS document over `http`/`https`.
    pub jwks_url: Option<String>,
    /// Key source: an OpenID Connect discovery document; its `jwks_uri` names the JWKS. The
    /// document's `issuer` must equal `issuer` exactly, and if `discovery_url` is `https` the
    /// `jwks_uri` must be `https` too. Otherwise its keys are not used and the issuer stays not
    /// ready.
    pub discovery_url: Option<String>,
    /// Key source: a JWKS document on disk, read at load (and at every reload).
    pub jwks_file: Option<PathBuf>,
    /// Key source: a shared HMAC secret in this variable, at least 32 bytes, else the policy is
    /// invalid.
    pub hs_secret_env: Option<String>,
    /// Extra PEM CA bundle for this issuer's `https` endpoints. Default: `null`.
    pub ca: Option<PathBuf>,
    /// How often a remote key set is fetched again. Default: `10m`.
    pub jwks_refresh: Option<Duration>,
    /// Clock-skew tolerance for `exp`, `nbf` and `iat`. Default: `30s`.
    pub leeway: Option<Duration>,
    /// Claim granting scopes: a space-separated string (`scope`) or an array of strings (`scp`,
    /// `permissions`); either form is accepted in any claim. Absent claim: no scopes. Another
    /// type: the token is invalid. Default: `scope`.
    pub scope_claim: Option<String>,
    /// Claim used as the subject; it must be present and a string. Default: `sub`.
    pub subject_claim: Option<String>,
    /// Claims that must be present, from `exp` `nbf` `iat` `jti` `sub` (`iss` and `aud` may be
    /// listed but are always required anyway). Each listed claim must be present and of its JSON
    /// type: a number for `exp`, `nbf`, `iat`; a string for `jti`, `sub`. `exp` is required
    /// unless this list leaves it out (`require_claims: []` accepts tokens without `exp`).
    /// Default: `[exp]`.
    #[schemars(schema_with = "require_claims_schema")]
    pub require_claims: Option<Vec<String>>,
    /// When set, a token whose `exp - iat` is longer is refused (`token_lifetime_too_long`), and
    /// a token without `iat` is refused too (`missing_claim`), since its lifetime cannot be
    /// known. Default: `null`.
    pub max_lifetime: Option<Duration>,
    /// Limit for callers authenticated by this issuer (one bucket per `iss`+`sub`). Default:
    /// `rate_limits.default`.
    pub rate_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IntrospectionFile {
    /// The introspection endpoint, `http://` or `https://`.
    pub endpoint: String,
    /// The gateway's client id at the authorization server.
    pub client_id: String,
    /// Variable holding the client secret (must be set and non-empty). Sent with the id as HTTP
    /// Basic authentication.
    pub client_secret_env: Option<String>,
    /// How long an *active* answer is reused, in whole seconds, never beyond the token's own
    /// `exp` and never over 5 minutes (the token cache's bound). Inactive answers are not cached.
    /// Default: `60s`.
    pub cache_ttl: Option<Duration>,
    /// Extra PEM CA bundle for an `https` endpoint. Default: `null`.
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsFile {
    /// `memory`: buckets live in this process. `redis`: buckets live in Redis and are shared by
    /// every replica (see [operations.md](operations.md#scale-out-with-redis)). Default:
    /// `memory`.
    #[schemars(extend("enum" = ["memory", "redis", null]))]
    pub backend: Option<String>,
    /// With `backend: redis`: variable holding the Redis URL (`redis://host:6379/`). Must be set
    /// and parse as a Redis URL. Default: `AUTHGATE_REDIS_URL`.
    pub redis_url_env: Option<String>,
    /// Limit for callers that name none themselves. Absent: such callers are not limited.
    pub default: Option<LimitFile>,
    /// Named limits, referred to by keys, issuers and routes. Default: `{}`.
    pub limits: BTreeMap<String, LimitFile>,
    /// Brute-force guard on failed authentications, one bucket per client IP. Absent: no guard.
    pub failed_auth_per_ip: Option<LimitFile>,
    /// Limit for requests on `auth: none` routes and CORS preflights, one bucket per client IP
    /// (an IPv6 client by its /64). Absent: such requests are not limited.
    pub anonymous: Option<LimitFile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitFile {
    /// Requests per unit of time, e.g. `100/min`: the refill rate.
    pub rate: Rate,
    /// The bucket's capacity (requests at once). Default: one period's worth (`rate`'s count).
    #[schemars(range(min = 1))]
    pub burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationFile {
    /// Where revocations are kept. `redis` uses the Redis of `rate_limits`, so it requires
    /// `rate_limits.backend: redis`. Default: `memory`.
    #[schemars(extend("enum" = ["memory", "redis", null]))]
    pub backend: Option<String>,
    /// Live entries kept at most; a revocation past the bound is refused (`503
    /// revocation_list_full`) and stored nowhere. Applies on reload. (An authgate addition.)
    /// Default: `100000`.
    pub max_entries: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RouteFile {
    /// Label used in logs (`route`) and metrics. Unique. Default: the `path`.
    pub name: Option<String>,
    /// Path pattern, see below.
    pub path: String,
    /// Methods this route matches. Written in upper case (lower case in the file is upper-cased).
    /// Listing `GET` also covers `HEAD`. Default: any method.
    pub methods: Option<Vec<String>>,
    /// `none`: public route, no credential needed (identity headers are still stripped). A list
    /// names the credential kinds accepted here, from `api_key`, `jwt`, `introspection`, `session`, `mtls`. Default:
    /// every kind the policy configures.
    #[schemars(schema_with = "route_auth_schema")]
    pub auth: Option<serde_yaml::Value>,
    /// Scopes the caller must *all* hold. Not allowed with `auth: none`. Default: `[]`.
    pub scopes: Vec<String>,
    /// Overrides the caller's own limit on this route. Must name an entry of
    /// `rate_limits.limits`.
    pub rate_limit: Option<String>,
    /// WebSocket upgrades pass on this route, and only on routes that say so. Elsewhere an
    /// `Upgrade` header is removed like any hop-by-hop header. See
    /// [requests.md](requests.md#websocket). Default: `false`.
    pub websocket: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogFile {
    /// One JSON object per line, or NCSA Common Log Format. Default: `json`.
    #[schemars(extend("enum" = ["json", "common", null]))]
    pub format: Option<String>,
    /// Where lines go. A file is opened for append and reopened on SIGUSR1 (for logrotate).
    /// Default: `stdout`.
    pub output: Option<String>,
}

/// Keys `check` requires although serde fills them with a default (so that
/// every missing one is reported, not only the first): the schema marks
/// them required. Each is refused by `check` when missing.
pub const REQUIRED_KEYS: [(&str, &[&str]); 10] = [
    ("", &["upstream", "routes"]),
    ("ServerFile", &["tls"]),
    ("ApiKeyFile", &["id", "sha256"]),
    ("IssuerFile", &["issuer", "audiences", "algorithms"]),
    (
        "IntrospectionFile",
        &["endpoint", "client_id", "client_secret_env"],
    ),
    ("RouteFile", &["path"]),
    ("SessionsFile", &["provider", "client_id", "key_env"]),
    ("CorsFile", &["origins"]),
    ("AssertionFile", &["key", "audience"]),
    ("MtlsClientFile", &["subject"]),
];

fn workers_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Tokio worker threads: `auto` (one per core) or a number from 1 to 1024. Default: auto.",
        "oneOf": [
            {"const": "auto"},
            {"type": "integer", "minimum": 1, "maximum": 1024},
            {"type": "null"}
        ]
    })
}

fn route_auth_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "`none`: public. Otherwise the credential kinds the route accepts. Default: every kind the policy configures.",
        "oneOf": [
            {"const": "none"},
            {"type": "array", "items": {"enum": ["api_key", "jwt", "introspection", "session", "mtls"]}, "uniqueItems": true},
            {"type": "null"}
        ]
    })
}

fn algorithms_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Accepted signature algorithms; HS* only with `hs_secret_env`, the others only with public keys. `none` is never accepted.",
        "type": "array",
        "items": {"enum": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]}
    })
}

fn require_claims_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Claims that must be present with their JSON type. Default: [exp].",
        "type": ["array", "null"],
        "items": {"enum": ["exp", "nbf", "iat", "sub", "iss", "aud", "jti"]}
    })
}
