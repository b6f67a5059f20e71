//! parse → validate → compile. One `load` serves `check`, startup and reload.

mod compile;
mod diagnostics;
pub mod file;
mod keys;
mod operations;
pub mod positions;
mod routes;
mod server;
mod tokens;
pub mod units;
mod values;

pub use diagnostics::ConfigError;
pub use keys::KEY_EXPIRY_WARNING;

use crate::snapshot::Snapshot;
use diagnostics::Diagnostics;
use positions::Pos;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (exit code 2).
    #[error("cannot read policy file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is invalid (exit code 1); every problem found is listed.
    #[error("{}", list(.0))]
    Invalid(Vec<ConfigError>),
}

fn list(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loaded policy and the warnings (`FILE:LINE:COL: warning: …`) it raised.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub warnings: Vec<ConfigError>,
}

/// Reads, validates and compiles a policy file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path, &|name| std::env::var(name).ok())
}

/// Validates and compiles policy text; `env` resolves `*_env` variables.
pub fn load_str(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, LoadError> {
    let mut diag = Diagnostics {
        file: path.to_path_buf(),
        text,
        positions: std::cell::OnceCell::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        suppressed: Vec::new(),
    };
    let file = match parse(text, &mut diag) {
        Some(file) => file,
        None => return Err(LoadError::Invalid(diag.errors)),
    };
    let base_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let snapshot = compile::compile(file, &mut diag, &base_dir, env);
    match snapshot {
        Some(snapshot) if diag.errors.is_empty() => Ok(Loaded {
            snapshot,
            warnings: diag.warnings,
        }),
        _ => {
            diag.errors.sort_by_key(|e| (e.line, e.col));
            Err(LoadError::Invalid(diag.errors))
        }
    }
}

/// The YAML → file types step. serde stops at its first error, so after one
/// the offending key is taken out and the rest read again, until the file
/// reads whole: every broken key is reported, and the remainder still goes
/// through the semantic checks (with errors under a removed key suppressed).
fn parse(text: &str, diag: &mut Diagnostics) -> Option<file::FileConfig> {
    // The common case, a valid file, is read once, straight into the file types.
    if let Ok(file) = serde_yaml::from_str::<Option<file::FileConfig>>(text) {
        return Some(file.unwrap_or_default());
    }
    let mut value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(serde_yaml::Value::Null) => serde_yaml::Value::Mapping(Default::default()),
        Ok(v) => v,
        Err(e) => {
            let pos = e
                .location()
                .map(|l| Pos {
                    line: l.line(),
                    col: l.column(),
                })
                .unwrap_or(Pos { line: 1, col: 1 });
            let e = diag.at(
                pos,
                format!("not valid YAML: {}", strip_location(&e.to_string())),
            );
            diag.errors.push(e);
            return None;
        }
    };
    let mut emptied: HashSet<String> = HashSet::new();
    // Each round removes one key, so the loop ends; the cap bounds hostile files.
    for _ in 0..MAX_STRUCTURAL_ERRORS {
        let e = match from_value(value.clone()) {
            Ok(file) => return Some(file),
            Err(e) => e,
        };
        let target = match &e.unknown_field {
            Some(field) => positions::join(&parent_of(&e.path, field), field),
            None => e.path.clone(),
        };
        report(diag, &target, &e);
        diag.suppressed.push(target.clone());
        // A list item is first emptied (keeping later indices, so positions stay
        // right), and removed only if an empty item is still wrong.
        let replace = target.ends_with(']') && emptied.insert(target.clone());
        if target.is_empty() || !prune(&mut value, &target, replace) {
            return None;
        }
    }
    None
}

/// How many structural errors one check reports before it gives up.
const MAX_STRUCTURAL_ERRORS: usize = 100;

/// Removes (or, with `replace`, empties) the node at a dotted path.
fn prune(root: &mut serde_yaml::Value, path: &str, replace: bool) -> bool {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            segments.push(Err(name));
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            match idx.trim_end_matches(']').parse::<usize>() {
                Ok(n) => segments.push(Ok(n)),
                Err(_) => return false,
            }
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = root;
    for seg in parents {
        let next = match seg {
            Ok(i) => node.as_sequence_mut().and_then(|s| s.get_mut(*i)),
            Err(k) => node.as_mapping_mut().and_then(|m| m.get_mut(*k)),
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match last {
        Ok(i) => match node.as_sequence_mut() {
            Some(seq) if *i < seq.len() => {
                if replace {
                    seq[*i] = serde_yaml::Value::Mapping(Default::default());
                } else {
                    seq.remove(*i);
                }
                true
            }
            _ => false,
        },
        Err(k) => node
            .as_mapping_mut()
            .is_some_and(|m| m.remove(*k).is_some()),
    }
}

struct FieldError {
    path: String,
    message: String,
    unknown_field: Option<String>,
}

fn from_value(value: serde_yaml::Value) -> Result<file::FileConfig, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = dotted(e.path());
        let message = e.inner().to_string();
        let unknown_field = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .map(str::to_string);
        FieldError {
            path,
            message,
            unknown_field,
        }
    })
}

fn report(diag: &mut Diagnostics, target: &str, e: &FieldError) {
    let (pos, message) = match &e.unknown_field {
        Some(_) => (
            diag.positions().key(target),
            format!(
                "{target}: {}; check the spelling (docs/policy.md lists every key)",
                e.message
            ),
        ),
        None => (
            diag.positions().value(target),
            format!("{target}: {}", e.message),
        ),
    };
    let err = diag.at(pos, message);
    diag.errors.push(err);
}

/// serde_path_to_error may or may not end the path with the unknown key itself.
fn parent_of(path: &str, field: &str) -> String {
    path.strip_suffix(field)
        .map(|p| p.trim_end_matches('.').to_string())
        .unwrap_or_else(|| path.to_string())
}

fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// serde_yaml appends " at line L column C"; the position is printed in front already.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
