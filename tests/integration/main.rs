//! One integration-test binary (it links once, which matters on 2 cores).

mod browser;
mod cli;
mod cors;
mod dashboard;
mod explain;
mod forward_auth;
mod forwarding;
mod front_proxies;
mod hardening;
mod harness;
mod hostile;
mod idp;
mod jwks_clock;
mod lifecycle;
mod limits;
mod live_state;
mod oidc;
mod properties;
mod readme;
mod report;
mod requests;
mod scale_out;
mod schema;
mod security;
mod signin;
mod tokens;
