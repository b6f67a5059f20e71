//! parse → validate → compile. One `load` serves `check`, startup and reload.

mod compile;
pub mod file;
pub mod positions;
pub mod units;

use crate::snapshot::Snapshot;
use positions::{Pos, Positions};
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in the policy file, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

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
        positions: Positions::of(text),
        errors: Vec::new(),
        warnings: Vec::new(),
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
        _ => Err(LoadError::Invalid(diag.errors)),
    }
}

/// Collects errors with positions while the file is checked.
pub(crate) struct Diagnostics {
    file: PathBuf,
    positions: Positions,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Diagnostics {
    fn at(&self, pos: Pos, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            message,
        }
    }

    /// An error about the value at a dotted path such as `routes[2].path`.
    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        let e = self.at(self.positions.value(path), message.into());
        self.errors.push(e);
    }

    pub(crate) fn warning(&mut self, path: &str, message: impl Into<String>) {
        let e = self.at(
            self.positions.value(path),
            format!("warning: {}", message.into()),
        );
        self.warnings.push(e);
    }
}

/// The YAML → file types step. serde stops at its first error, so when the
/// whole file fails, each top-level section (and each list item) is
/// deserialized on its own to report every broken part, not just the first.
fn parse(text: &str, diag: &mut Diagnostics) -> Option<file::FileConfig> {
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
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
    match from_value(value.clone()) {
        Ok(file) => return Some(file),
        Err(e) if !value.is_mapping() => {
            diag.error("", e.message);
            return None;
        }
        Err(_) => {}
    }
    let before = diag.errors.len();
    diagnose(diag, &|v| v, value, "", "", 0);
    if diag.errors.len() == before {
        // Parts were fine alone but not together; never pass silently.
        diag.error("", "the policy file could not be read as a whole");
    }
    None
}

/// Deserializes `value` (placed back into a document by `wrap`) and, where it
/// fails, narrows down to the failing children so each broken part is
/// reported once. `real` is the value's path in the file; `wrapped` its path
/// in the trimmed document, where list items always stand at index 0.
fn diagnose(
    diag: &mut Diagnostics,
    wrap: &dyn Fn(serde_yaml::Value) -> serde_yaml::Value,
    value: serde_yaml::Value,
    real: &str,
    wrapped: &str,
    depth: usize,
) {
    let Err(mut e) = from_value(wrap(value.clone())) else {
        return;
    };
    let before = diag.errors.len();
    // Struct fields are isolated only down to the sections (depth 1); below
    // that, leaving out a sibling could trigger a false "missing field".
    match value {
        serde_yaml::Value::Mapping(map) if depth <= 1 => {
            for (k, v) in map {
                let Some(name) = k.as_str().map(str::to_string) else {
                    continue;
                };
                let child = |x: serde_yaml::Value| {
                    let mut m = serde_yaml::Mapping::new();
                    m.insert(k.clone(), x);
                    wrap(serde_yaml::Value::Mapping(m))
                };
                diagnose(
                    diag,
                    &child,
                    v,
                    &positions::join(real, &name),
                    &positions::join(wrapped, &name),
                    depth + 1,
                );
            }
        }
        serde_yaml::Value::Sequence(items) if depth <= 2 => {
            for (i, item) in items.into_iter().enumerate() {
                let child = |x: serde_yaml::Value| wrap(serde_yaml::Value::Sequence(vec![x]));
                diagnose(
                    diag,
                    &child,
                    item,
                    &format!("{real}[{i}]"),
                    &format!("{wrapped}[0]"),
                    usize::MAX,
                );
            }
        }
        _ => {}
    }
    if diag.errors.len() == before {
        if let Some(rest) = e.path.strip_prefix(wrapped) {
            e.path = format!("{real}{rest}");
        }
        report(diag, e);
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

fn report(diag: &mut Diagnostics, e: FieldError) {
    match &e.unknown_field {
        Some(field) => {
            let path = positions::join(&parent_of(&e.path, field), field);
            let pos = diag.positions.key(&path);
            let msg = format!(
                "{}: {}; check the spelling (SPEC §2 lists every key)",
                path, e.message
            );
            let err = diag.at(pos, msg);
            diag.errors.push(err);
        }
        None => {
            let pos = diag.positions.value(&e.path);
            let err = diag.at(pos, format!("{}: {}", e.path, e.message));
            diag.errors.push(err);
        }
    }
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
