//! Where the problems of a policy file are collected, each with its line
//! and column.

use super::positions::{Pos, Positions};
use std::fmt;
use std::path::PathBuf;

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

/// Collects errors with positions while the file is checked.
pub(crate) struct Diagnostics<'a> {
    pub(super) file: PathBuf,
    pub(super) text: &'a str,
    /// Read only when a message needs a position: a valid file skips the second parse.
    pub(super) positions: std::cell::OnceCell<Positions>,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigError>,
    /// Paths whose broken value was removed; later errors below them are echoes.
    pub(super) suppressed: Vec<String>,
}

impl Diagnostics<'_> {
    pub(super) fn positions(&self) -> &Positions {
        self.positions.get_or_init(|| Positions::of(self.text))
    }

    pub(super) fn at(&self, pos: Pos, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            message,
        }
    }

    /// An error about the value at a dotted path such as `routes[2].path`.
    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        let echo = self.suppressed.iter().any(|s| {
            path.strip_prefix(s.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        });
        if echo {
            return;
        }
        let e = self.at(self.positions().value(path), message.into());
        self.errors.push(e);
    }

    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn warning(&mut self, path: &str, message: impl Into<String>) {
        let e = self.at(
            self.positions().value(path),
            format!("warning: {}", message.into()),
        );
        self.warnings.push(e);
    }
}
