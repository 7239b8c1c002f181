//! Errors of this crate. Owns the error types and the `file:line` origin that every message
//! carries; receives nothing; emits `ConfigError` (a malformed or unusable config, printed as
//! `file:line: what is wrong (what was expected)`) and `DurationError` (a bad duration string).

use std::fmt;

/// Where a piece of configuration text comes from: a display path and a 1-based line
/// (0 when the line is unknown, e.g. a whole missing file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Display path: the real path for files on disk, `<embedded>/rel` for embedded ones.
    pub file: String,
    /// 1-based line number, 0 if not applicable.
    pub line: usize,
}

impl Origin {
    /// An origin at `file:line`.
    pub fn new(file: impl Into<String>, line: usize) -> Self {
        Origin {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// A configuration error. Displays as `file:line: what is wrong (expected ...)`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text of a file does not follow the configparser dialect.
    #[error("{origin}: {message} (expected {expected})")]
    Syntax {
        /// Where.
        origin: Origin,
        /// What is wrong.
        message: String,
        /// What was expected.
        expected: String,
    },
    /// A value is well-formed text but unusable (bad reference, bad duration, unknown filter...).
    #[error("{origin}: {message} (expected {expected})")]
    Value {
        /// Where.
        origin: Origin,
        /// What is wrong.
        message: String,
        /// What was expected.
        expected: String,
    },
    /// A file or section that must exist does not.
    #[error("{origin}: {message} (expected {expected})")]
    NotFound {
        /// Where (the referencing option, or the file/tree looked in).
        origin: Origin,
        /// What is missing.
        message: String,
        /// What was expected.
        expected: String,
    },
    /// A file exists but cannot be read.
    #[error("{path}: cannot read file: {source} (expected a readable UTF-8 file)")]
    Io {
        /// Display path.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    pub(crate) fn syntax(
        origin: &Origin,
        message: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::Syntax {
            origin: origin.clone(),
            message: message.into(),
            expected: expected.into(),
        }
    }
    pub(crate) fn value(
        origin: &Origin,
        message: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::Value {
            origin: origin.clone(),
            message: message.into(),
            expected: expected.into(),
        }
    }
    pub(crate) fn not_found(
        origin: &Origin,
        message: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::NotFound {
            origin: origin.clone(),
            message: message.into(),
            expected: expected.into(),
        }
    }
    /// The origin of the error (file:line), if it has one.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::Syntax { origin, .. }
            | ConfigError::Value { origin, .. }
            | ConfigError::NotFound { origin, .. } => Some(origin),
            ConfigError::Io { .. } => None,
        }
    }
}

/// A duration string that `parse_duration` cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {}: {message} (expected e.g. `600`, `10m`, `1h 30m`, `2*1d`, `-1`)",
    excerpt(.text)
)]
pub struct DurationError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub message: String,
}

/// How many characters of a config text an error message shows.
const SHOWN: usize = 60;

/// At most the first 60 characters of `text`, `…`-terminated when cut, as `{:?}` shows it:
/// error messages quote config text, which may be huge.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(SHOWN) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

/// At most the first 60 characters of a name (a section's), `…`-terminated when cut.
pub(crate) fn cut(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(SHOWN) {
        None => name.into(),
        Some((at, _)) => format!("{}…", &name[..at]).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_cut_at_sixty_chars() {
        assert_eq!(excerpt("a\nb"), "\"a\\nb\"");
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long), format!("{:?}…", "é".repeat(60)));
        assert_eq!(cut("web"), "web");
        assert_eq!(cut(&long), format!("{}…", "é".repeat(60)));
    }
}
