//! `authgate scan`: finds leaked API keys in files. Every string shaped like
//! an authgate key is hashed and looked up in the policy's key index, the
//! way the gateway itself recognises a key; a finding names the file, the
//! line and the key's id, never the key.

use crate::auth::api_key::{ApiKeyIndex, KEY_PREFIX};
use crate::secret::sha256;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Characters after `agk_` needed before a string counts as a key: shorter
/// ones are prose ("agk_" in a sentence), not credentials.
const MIN_KEY_BODY: usize = 8;
/// A file whose first bytes hold a NUL is binary and skipped.
const BINARY_SNIFF: usize = 8 * 1024;

/// One key found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    pub line: usize,
    /// The policy's id for the key; `None` for an unknown key.
    pub key_id: Option<String>,
    /// A key of the policy that is not `disabled`: it would authenticate.
    pub live: bool,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = format!("{}:{}", self.path.display(), self.line);
        match (&self.key_id, self.live) {
            (Some(id), true) => write!(f, "{at}: key of {id}"),
            (Some(id), false) => write!(f, "{at}: key of {id} (disabled)"),
            (None, _) => write!(f, "{at}: unknown authgate key"),
        }
    }
}

/// What a scan read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub skipped_binary: usize,
    pub findings: usize,
    pub live: usize,
}

/// Scans `paths` (files, or directories recursively, skipping `.git` and
/// symbolic links) and hands each finding to `found` as it is made.
pub fn scan(
    paths: &[PathBuf],
    keys: &ApiKeyIndex,
    found: &mut dyn FnMut(&Finding),
) -> std::io::Result<Summary> {
    let mut summary = Summary::default();
    for path in paths {
        walk(path, keys, found, &mut summary)?;
    }
    Ok(summary)
}

fn walk(
    path: &Path,
    keys: &ApiKeyIndex,
    found: &mut dyn FnMut(&Finding),
    summary: &mut Summary,
) -> std::io::Result<()> {
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let meta = std::fs::symlink_metadata(path).map_err(named)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(named)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_none_or(|n| n != ".git"))
            .collect();
        entries.sort();
        for entry in entries {
            walk(&entry, keys, found, summary)?;
        }
    } else if meta.is_file() {
        scan_file(path, keys, found, summary).map_err(named)?;
    }
    Ok(())
}

fn scan_file(
    path: &Path,
    keys: &ApiKeyIndex,
    found: &mut dyn FnMut(&Finding),
    summary: &mut Summary,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(std::fs::File::open(path)?);
    let head = reader.fill_buf()?;
    if head[..head.len().min(BINARY_SNIFF)].contains(&0) {
        summary.skipped_binary += 1;
        return Ok(());
    }
    summary.files += 1;
    let mut line = Vec::new();
    let mut number = 0;
    // Lines are read as bytes: a file need not be UTF-8 to hold a key.
    while reader.read_until(b'\n', &mut line)? > 0 {
        number += 1;
        for candidate in candidates(&line) {
            let entry = keys.by_digest.get(&sha256(candidate));
            let finding = Finding {
                path: path.to_path_buf(),
                line: number,
                key_id: entry.and_then(|e| e.identity.key_id.as_deref().map(str::to_string)),
                live: entry.is_some_and(|e| !e.disabled),
            };
            summary.findings += 1;
            summary.live += usize::from(finding.live);
            found(&finding);
        }
        line.clear();
    }
    Ok(())
}

fn key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Every `agk_…` run of base64url characters in `line` that starts at a
/// word boundary and is long enough to be a key.
fn candidates(line: &[u8]) -> Vec<&[u8]> {
    let prefix = KEY_PREFIX.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + prefix.len() <= line.len() {
        let at_boundary = i == 0 || !key_char(line[i - 1]);
        if at_boundary && line[i..].starts_with(prefix) {
            let end = line[i + prefix.len()..]
                .iter()
                .position(|b| !key_char(*b))
                .map_or(line.len(), |n| i + prefix.len() + n);
            if end - i - prefix.len() >= MIN_KEY_BODY {
                out.push(&line[i..end]);
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::candidates;

    #[test]
    fn keys_are_found_at_word_boundaries_only() {
        let line = b"x-api-key: agk_abcdefgh12, 'agk_ZZZZZZZZ-_9' xagk_notakey1234 agk_short";
        let found: Vec<&[u8]> = candidates(line);
        assert_eq!(found, vec![&b"agk_abcdefgh12"[..], &b"agk_ZZZZZZZZ-_9"[..]]);
        assert!(candidates(b"").is_empty());
        assert_eq!(candidates(b"agk_12345678"), vec![&b"agk_12345678"[..]]);
    }
}
