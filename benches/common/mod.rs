//! What the decision benchmarks share: fresh live state and one call of
//! `decide` (docs/requests.md steps 1–7) as the request path makes it.

use authgate::auth::AuthServices;
use authgate::error::GatewayError;
use authgate::pipeline::decide::{decide, Admitted, Live, RequestCtx};
use authgate::pipeline::headers::TraceParent;
use authgate::ratelimit::RateLimits;
use authgate::revocation::RevocationStore;
use authgate::snapshot::Snapshot;

/// Live state as a started gateway has it, and a runtime to await in.
pub struct Bench {
    pub services: AuthServices,
    pub limits: RateLimits,
    pub revocations: RevocationStore,
    pub runtime: tokio::runtime::Runtime,
}

impl Bench {
    pub fn new() -> Bench {
        Bench {
            services: AuthServices::default(),
            limits: RateLimits::default(),
            revocations: RevocationStore::default(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime"),
        }
    }

    /// Steps 1–7 on `parts`, from a main-listener peer on loopback.
    pub fn decide<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        parts: &mut http::request::Parts,
    ) -> Result<Admitted<'a>, GatewayError> {
        let mut record = authgate::access_log::RequestRecord::start(
            String::new(),
            std::net::Ipv4Addr::LOCALHOST.into(),
            parts,
            Some("TLSv1.3"),
            "main",
        );
        let mut ctx = RequestCtx {
            snapshot,
            live: Live {
                limits: &self.limits,
                revocations: &self.revocations,
                auth: &self.services,
            },
            rate_limit: None,
            trace: TraceParent::of(&parts.headers),
            client_cert: None,
        };
        self.runtime.block_on(decide(&mut ctx, &mut record, parts))
    }
}
