//! authgate: a TLS-terminating reverse proxy that authenticates, authorizes
//! and logs every request before it reaches the API behind it.
//!
//! The request path, stage by stage, is `pipeline::handle`; the policy is a
//! `snapshot::Snapshot` compiled by `config::load`.

pub mod access_log;
pub mod activity;
pub mod admin;
pub mod auth;
pub mod body;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod echo;
pub mod error;
pub mod explain;
pub mod forward;
pub mod forward_auth;
pub mod gateway;
pub mod json_line;
pub mod metrics;
pub mod pipeline;
pub mod ratelimit;
pub mod reason;
pub mod redis_backend;
pub mod reload;
pub mod report;
pub mod revocation;
pub mod scan;
pub mod secret;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod tcp_send;
pub mod tls;
pub mod upgrade;
pub mod upstream_pool;
pub mod write_batch;

pub use gateway::{run, serve, Control, Listeners, StartError};
