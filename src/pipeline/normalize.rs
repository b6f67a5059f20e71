//! Path normalization (RFC 3986 §6.2.2) with the refusals of docs/requests.md step 1.
//! The normalized path is both what routes match and what goes upstream, so
//! the gateway and the upstream can never disagree about which path was asked for.

use crate::reason::Reason;
use std::borrow::Cow;

/// Why a path was refused; each becomes a 400 with this reason in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (`/…`), or a malformed percent-encoding.
    Malformed,
    /// `%2F` or `%5C`: an encoded separator some upstreams decode before routing.
    EncodedSeparator,
    /// A raw `\`, which some servers treat as `/`.
    Backslash,
    /// `%00`.
    Nul,
    /// `;` or `%3B`: path parameters, which some upstreams strip before routing.
    PathParameter,
    /// `..` above the root.
    AboveRoot,
}

impl PathError {
    pub fn reason(self) -> Reason {
        match self {
            PathError::Malformed => Reason::MalformedPath,
            PathError::EncodedSeparator => Reason::EncodedSeparator,
            PathError::Backslash => Reason::BackslashInPath,
            PathError::Nul => Reason::NulInPath,
            PathError::PathParameter => Reason::PathParameter,
            PathError::AboveRoot => Reason::PathAboveRoot,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            PathError::Malformed => "The request path is malformed.",
            PathError::EncodedSeparator => {
                "The request path contains an encoded slash or backslash."
            }
            PathError::Backslash => "The request path contains a backslash.",
            PathError::Nul => "The request path contains a NUL byte.",
            PathError::PathParameter => "The request path contains a path parameter (;).",
            PathError::AboveRoot => "The request path climbs above the root.",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether the path is already normal, so the common case allocates nothing.
fn already_normal(path: &str) -> bool {
    let b = path.as_bytes();
    b.first() == Some(&b'/')
        && !b.iter().any(|c| matches!(c, b'%' | b'\\' | b';'))
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..")
}

/// Normalizes a request path (without its query).
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if already_normal(path) {
        return Ok(Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::Malformed);
    }
    // 1. Percent-decoding of unreserved characters; the rest is kept encoded
    //    with upper-case hex digits (RFC 3986 §6.2.2.1, §6.2.2.2).
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex_value),
                    bytes.get(i + 2).copied().and_then(hex_value),
                ) else {
                    return Err(PathError::Malformed);
                };
                let byte = hi << 4 | lo;
                match byte {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0 => return Err(PathError::Nul),
                    b';' => return Err(PathError::PathParameter),
                    b if is_unreserved(b) => decoded.push(b as char),
                    b => {
                        decoded.push('%');
                        decoded.push_str(&format!("{b:02X}"));
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            0 => return Err(PathError::Nul),
            _ => {
                // Multi-byte UTF-8 is copied whole; `path` is a &str so boundaries are valid.
                let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
                decoded.push_str(&path[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    // 2. Dot-segment removal and merging of repeated slashes (§6.2.2.3).
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in decoded.split('/').skip(1) {
        trailing_slash = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalize(p).map(Cow::into_owned)
    }

    #[test]
    fn removes_dot_segments_and_repeated_slashes() {
        assert_eq!(n("/orders/../admin/x"), Ok("/admin/x".into()));
        assert_eq!(n("/a/./b//c"), Ok("/a/b/c".into()));
        assert_eq!(n("//a///b"), Ok("/a/b".into()));
        assert_eq!(n("/a/b/.."), Ok("/a/".into()));
        assert_eq!(n("/a/."), Ok("/a/".into()));
        assert_eq!(n("/orders/"), Ok("/orders/".into()));
        assert_eq!(n("/"), Ok("/".into()));
        assert_eq!(n("/a/.."), Ok("/".into()));
    }

    #[test]
    fn decodes_unreserved_and_uppercases_the_rest() {
        assert_eq!(n("/%61dmin"), Ok("/admin".into()));
        assert_eq!(n("/a%2e%2e/b"), Ok("/a../b".into()));
        assert_eq!(n("/x/%2e%2e/admin"), Ok("/admin".into()));
        assert_eq!(n("/caf%c3%a9"), Ok("/caf%C3%A9".into()));
        assert_eq!(n("/a%20b"), Ok("/a%20b".into()));
    }

    #[test]
    fn refuses_what_upstreams_might_read_differently() {
        assert_eq!(n("/a%2Fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%5Cb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a\\b"), Err(PathError::Backslash));
        assert_eq!(n("/a%00b"), Err(PathError::Nul));
        assert_eq!(n("/a;jsessionid=1"), Err(PathError::PathParameter));
        assert_eq!(n("/a%3Bb"), Err(PathError::PathParameter));
        assert_eq!(n("/../etc"), Err(PathError::AboveRoot));
        assert_eq!(n("/a/../../etc"), Err(PathError::AboveRoot));
        assert_eq!(n("/a%zz"), Err(PathError::Malformed));
        assert_eq!(n("/a%4"), Err(PathError::Malformed));
        assert_eq!(n("a/b"), Err(PathError::Malformed));
        assert_eq!(n("*"), Err(PathError::Malformed));
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for p in ["/a/./b/../c//d/", "/%7e/x%41", "/x/%2e/y", "/caf%c3%a9/.."] {
            let once = n(p).expect("valid");
            assert_eq!(n(&once), Ok(once.clone()), "{p}");
        }
    }
}
