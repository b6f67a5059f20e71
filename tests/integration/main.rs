//! One integration-test binary (it links once, which matters on 2 cores).

mod cli;
mod forwarding;
mod harness;
mod idp;
mod jwks_clock;
mod lifecycle;
mod readme;
mod requests;
mod security;
mod tokens;
