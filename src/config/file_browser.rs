//! The serde mirror of the browser sections of `gateway.yaml`: `sessions`
//! (OpenID Connect sign-in, docs/sign-in.md) and `cors` (docs/policy.md).
//! Kept beside `file.rs` under the same rules: no logic, unknown keys refused.

use super::units::Duration;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsFile {
    /// The OpenID provider's issuer URL (`https`). Its discovery document
    /// (`<provider>/.well-known/openid-configuration`) is read at start; readiness waits for it.
    pub provider: String,
    /// The client id registered at the provider; ID tokens must name it in `aud`.
    pub client_id: String,
    /// Variable holding the client secret, sent to the token endpoint with HTTP Basic. Absent: a
    /// public client (PKCE alone).
    pub client_secret_env: Option<String>,
    /// Extra PEM CA bundle trusted for the provider. Default: `null`.
    pub ca: Option<PathBuf>,
    /// Scopes requested at sign-in; must include `openid`. Add `offline_access` for a refresh
    /// token (then `prompt=consent` is sent too). Default: `[openid, email, profile]`.
    pub scopes: Option<Vec<String>>,
    /// ID-token claim that grants route scopes (a space-separated string or an array). Default:
    /// `scope`.
    pub scope_claim: Option<String>,
    /// Path the provider redirects back to; `redirect_uri` is `https://<host asked
    /// for><callback_path>`. Answered before route matching. Default: `/_authgate/callback`.
    pub callback_path: Option<String>,
    /// Path of logout: `POST` signs out, `GET` shows a page whose button posts. Answered before
    /// route matching. Default: `/_authgate/logout`.
    pub logout_path: Option<String>,
    /// Local path the browser goes to after logout (`post_logout_redirect_uri` at the provider).
    /// Default: `/`.
    pub post_logout_redirect: Option<String>,
    /// Name of the session cookie; must start with `__Host-`. Always Secure, HttpOnly, Path=/,
    /// SameSite=Lax, no Domain. Default: `__Host-authgate`.
    pub cookie: Option<String>,
    /// Variable holding at least 32 bytes that authenticate and encrypt the login-state cookie
    /// (and sessions in Redis). Every replica needs the same value.
    pub key_env: String,
    /// A session unused this long ends. Default: `1h`.
    pub idle_timeout: Option<Duration>,
    /// A session ends this long after sign-in, used or not. Default: `12h`.
    pub max_lifetime: Option<Duration>,
    /// `memory`: sessions live in this process. `redis`: in the Redis of `rate_limits` (shared by
    /// replicas, kept across restarts). Default: `memory`.
    #[schemars(extend("enum" = ["memory", "redis", null]))]
    pub store: Option<String>,
    /// Sessions kept in memory at most; past it the longest idle are evicted (with a log line).
    /// (An authgate addition.) Default: `100000`.
    pub max_entries: Option<usize>,
    /// Named limit for signed-in people, one bucket per provider and `sub`. Must name an entry of
    /// `rate_limits.limits`. Default: `rate_limits.default`.
    pub rate_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CorsFile {
    /// Exact origins allowed (`https://app.example.com`), or `*` (only with `credentials:
    /// false`).
    pub origins: Vec<String>,
    /// Route names this rule covers. Default: every route.
    pub routes: Option<Vec<String>>,
    /// Request headers a preflight may ask for. Default: `[Authorization, Content-Type]`.
    pub headers: Option<Vec<String>>,
    /// Response headers the app may read. Default: `[RateLimit-Limit, RateLimit-Remaining,
    /// RateLimit-Reset, Retry-After, X-Request-Id]`.
    pub expose: Option<Vec<String>>,
    /// Whether the browser may send cookies and read the answer (`Access-Control-Allow-Credentials`).
    /// Default: `false`.
    pub credentials: bool,
    /// How long a browser may cache a preflight answer. Default: `10m`.
    pub max_age: Option<Duration>,
}
