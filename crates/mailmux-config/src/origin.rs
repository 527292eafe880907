//! Where each parameter's value came from: its file and line, or nothing (the default).
//!
//! Recorded while loading, for `mailmux check --effective` ([`crate::effective`]); the values
//! themselves are in the typed configuration, never here (a `BindPass` must not be copied
//! into a second place that prints).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where one setting was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file: a `.cfg` file or the vdmap file.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: usize,
    /// Written in a vdmap entry (laid over the service file's settings).
    pub vdmap: bool,
}

/// The origins of a configuration's settings, by parameter (lower case, one spelling).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(HashMap<String, Origin>);

impl Origins {
    /// Records that `key` was set at `file:line`; a later setting replaces an earlier one,
    /// as its value does.
    pub fn set(&mut self, key: &str, file: &Path, line: usize, vdmap: bool) {
        self.0.insert(key.to_owned(), Origin { file: file.to_path_buf(), line, vdmap });
    }

    /// Where `key` (lower case, one spelling) was set, if it was.
    pub fn get(&self, key: &str) -> Option<&Origin> {
        self.0.get(key)
    }
}
