//! The cookies of sign-in: finding one in `Cookie` headers, the
//! `Set-Cookie` values (always `Secure; HttpOnly; Path=/; SameSite=Lax`,
//! never a `Domain`), taking the gateway's own cookies out of what goes
//! upstream, and the sealed (encrypted and authenticated) login state.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::{HeaderValue, COOKIE};
use http::HeaderMap;

/// Each cookie pair of every `Cookie` header (HTTP/2 may send one header per cookie).
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name.trim(), value.trim()))
        })
}

/// The value of the first cookie called `name`.
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    pairs(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// A cookie for this host only, readable by no script.
pub fn set(name: &str, value: &str, max_age_secs: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Max-Age={max_age_secs}; Path=/; Secure; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

/// The `Set-Cookie` that makes a browser forget `name`.
pub fn expire(name: &str) -> HeaderValue {
    set(name, "", 0).unwrap_or_else(|| HeaderValue::from_static("authgate-invalid=; Max-Age=0"))
}

/// Removes the cookies `is_ours` names from the `Cookie` headers; other
/// cookies pass as they were, a header left empty goes.
pub fn strip(headers: &mut HeaderMap, is_ours: impl Fn(&str) -> bool) {
    if !pairs(headers).any(|(name, _)| is_ours(name)) {
        return;
    }
    let kept: Vec<String> = pairs(headers)
        .filter(|(name, _)| !is_ours(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(COOKIE, v);
        }
    }
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // aws-lc's generator fails only when the OS has no randomness at all.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        panic!("the operating system's random number generator failed");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// AES-256-GCM under a key derived from `sessions.key_env`: what the
/// gateway gives the browser to hold (login state) or puts in Redis
/// (sessions) can be read and changed by nobody without the key.
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

impl SealKey {
    /// The key for `secret` (at least 32 bytes, checked by the policy).
    pub fn derive(secret: &[u8]) -> SealKey {
        let mut input = b"authgate session seal v1\0".to_vec();
        input.extend_from_slice(secret);
        let key = crate::secret::sha256(&input);
        // A 32-byte key is always a valid AES-256 key.
        let unbound = UnboundKey::new(&AES_256_GCM, &key)
            .unwrap_or_else(|_| panic!("AES-256-GCM refused a 32-byte key"));
        SealKey(LessSafeKey::new(unbound))
    }

    /// base64url(nonce ‖ ciphertext ‖ tag); `context` is authenticated too,
    /// so a sealed value only opens where it was meant to be.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        if aws_lc_rs::rand::fill(&mut nonce).is_err() {
            panic!("the operating system's random number generator failed");
        }
        let mut data = plaintext.to_vec();
        if self
            .0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut data,
            )
            .is_err()
        {
            panic!("AES-256-GCM sealing failed");
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The plaintext, or `None` for anything not sealed by this key for `context`.
    pub fn open(&self, context: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = SealKey::derive(&[7u8; 32]);
        let sealed = key.seal(b"login", b"state");
        assert_eq!(key.open(b"login", &sealed).as_deref(), Some(&b"state"[..]));
        assert_eq!(key.open(b"other", &sealed), None);
        assert_eq!(SealKey::derive(&[8u8; 32]).open(b"login", &sealed), None);
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            key.open(b"login", &String::from_utf8(tampered).unwrap_or_default()),
            None
        );
        assert_eq!(format!("{key:?}"), "SealKey(***)");
    }

    #[test]
    fn strip_removes_only_our_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-authgate=secret"),
        );
        h.append(
            COOKIE,
            HeaderValue::from_static("__Host-authgate-login-x=s; b=2"),
        );
        assert_eq!(find(&h, "__Host-authgate"), Some("secret"));
        strip(&mut h, |n| n.starts_with("__Host-authgate"));
        let all: Vec<_> = h.get_all(COOKIE).iter().collect();
        assert_eq!(all, vec![HeaderValue::from_static("a=1; b=2")]);
        let mut only = HeaderMap::new();
        only.insert(COOKIE, HeaderValue::from_static("__Host-authgate=x"));
        strip(&mut only, |n| n == "__Host-authgate");
        assert!(only.get(COOKIE).is_none());
    }
}
