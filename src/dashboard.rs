//! The admin listener's dashboard (docs/operations.md "Dashboard"): one
//! self-contained page, no outside script, font or request, so it works in
//! an air-gapped data center; it reads `GET /stats` every few seconds.

use aws_lc_rs::digest::{digest, SHA256};
use base64::Engine;
use std::sync::LazyLock;

/// The page.
pub const PAGE: &str = include_str!("dashboard.html");

/// `Content-Security-Policy` for the page: its own inline script (by hash)
/// and style, requests to its own origin only, nothing else.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    let script = PAGE
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .unwrap_or_default();
    let hash = base64::engine::general_purpose::STANDARD.encode(digest(&SHA256, script.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});
