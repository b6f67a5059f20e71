//! File model → immutable `Snapshot`. Every check records its error and goes
//! on, so one run of `authgate check` lists every problem in the file.

use super::diagnostics::Diagnostics;
use super::file::FileConfig;
use crate::auth::{AuthPolicy, KindSet};
use crate::snapshot::Snapshot;
use std::path::{Path, PathBuf};

pub(super) fn compile(
    file: FileConfig,
    diag: &mut Diagnostics,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Snapshot> {
    let resolve = |p: PathBuf| {
        if p.is_absolute() {
            p
        } else {
            base_dir.join(p)
        }
    };
    let admin = super::operations::admin(file.admin, diag, env);
    let (limits, redis_url) = super::operations::rate_limits(file.rate_limits, diag, env);
    if let Some(r) = &file.revocation {
        match r.backend.as_deref() {
            None | Some("memory") => {}
            Some("redis") if redis_url.is_some() => {}
            Some("redis") => diag.error("revocation.backend", "`revocation.backend: redis` uses the Redis of `rate_limits`; set `rate_limits.backend: redis` and `redis_url_env` too"),
            Some(other) => diag.error("revocation.backend", format!("`{other}` is not a backend; write `memory` or `redis`")),
        }
    }
    let revocation_max_entries = match file.revocation.as_ref().and_then(|r| r.max_entries) {
        Some(0) => {
            diag.error("revocation.max_entries", "`max_entries: 0` would refuse every revocation; give a bound of at least 1 (default 100000)");
            crate::revocation::DEFAULT_MAX_ENTRIES
        }
        Some(n) => n,
        None => crate::revocation::DEFAULT_MAX_ENTRIES,
    };
    let token_cache_entries = file.server.token_cache_entries;
    let server = super::server::server(file.server, diag, &resolve);
    let upstream = super::server::upstream(file.upstream, diag, &resolve);
    let forward_auth =
        super::operations::forward_auth(file.forward_auth, server.as_ref(), admin.as_ref(), diag);
    // On error the defaults stand in, so the rest of the file is still checked.
    let mut identity_file = file.identity;
    let assertion_file = identity_file.assertion.take();
    let identity =
        super::keys::identity(identity_file, assertion_file.as_ref(), diag).unwrap_or_default();
    let assertion =
        assertion_file.and_then(|f| super::credentials::assertion(f, &identity, diag, &resolve));
    // A section that is present configures its kind even when empty: a
    // route may name it before the first key or issuer is added.
    let kinds = KindSet {
        api_key: file.api_keys.is_some(),
        jwt: file.jwt.is_some(),
        introspection: file.introspection.is_some(),
        session: file.sessions.is_some(),
        mtls: file.mtls.is_some(),
    };
    let mtls = file.mtls.map(|f| {
        let tls = server.as_ref().map(|s| &s.tls);
        super::credentials::mtls(f, tls, &identity, &limits, diag)
    });
    let api_keys = super::keys::api_keys(file.api_keys.unwrap_or_default(), &identity, diag);
    let mut jwt = super::tokens::issuers(file.jwt.unwrap_or_default(), diag, &resolve, env);
    jwt.cache_capacity = token_cache_entries.unwrap_or(crate::auth::token_cache::DEFAULT_CAPACITY);
    let introspection =
        super::tokens::introspection(file.introspection.unwrap_or_default(), diag, &resolve, env);
    let sessions = file.sessions.and_then(|f| {
        super::sessions::sessions(f, &limits, redis_url.is_some(), diag, &resolve, env)
    });
    let routes = super::routes::routes(file.routes, kinds, &limits, diag);
    let cors = super::cors::cors(file.cors.unwrap_or_default(), &routes, diag);
    super::operations::check_limit_names(&api_keys, &jwt, &limits, diag);
    let access_log = super::server::access_log(file.access_log, diag, &resolve);
    Some(Snapshot {
        server: server?,
        upstream: upstream?,
        auth: AuthPolicy {
            identity,
            kinds,
            api_keys,
            jwt,
            introspection,
            sessions,
            mtls: mtls.unwrap_or_default(),
            assertion,
        },
        routes,
        cors,
        access_log: access_log?,
        admin,
        forward_auth,
        limits,
        redis_url,
        revocation_max_entries,
    })
}
