//! Browser sessions from OpenID Connect sign-in (docs/sign-in.md): the
//! compiled `SessionPolicy` and live `SessionServices` (`policy`), a
//! session cookie turned into an identity and refreshed (`refresh`),
//! signing in and out (`login`), the cookies and their seal (`cookies`),
//! the provider's endpoints (`provider`), where sessions live (`store`).

pub mod cookies;
mod login;
mod policy;
pub mod provider;
mod refresh;
pub mod store;

pub use login::{is_local_path, is_navigation, same_origin, LoggedOut, SignedIn};
pub use policy::{
    session_key, Ended, OwnPath, Services, SessionPolicy, SessionServices, LOGIN_STATE_LIFETIME,
};
