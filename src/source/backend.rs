//! `backend = NAME[key=value, …]` values of the sources that take arguments (`systemd`,
//! `syslog`): the parse and the wording of their errors, shared so that both read alike.

use banhammer_config::Options;

/// A parsed backend value: its arguments, and the value itself for error messages.
pub(crate) struct BackendArgs<'a> {
    value: &'a str,
    pub(crate) args: Options,
}

impl<'a> BackendArgs<'a> {
    /// Parses `backend`, which must name `expected` (any case); `kind` says what kind of
    /// backend that is, for the error.
    pub(crate) fn parse(
        backend: &'a str,
        expected: &str,
        kind: &str,
    ) -> Result<BackendArgs<'a>, String> {
        let value = backend.trim();
        let err = |what: String| format!("backend = {value}: {what}");
        let (name, args) = banhammer_config::parse_name_args(value).map_err(|e| {
            // The parser names its input `<value>`; the prefix here says which value.
            err(e.to_string().trim_start_matches("<value>: ").to_string())
        })?;
        if !name.eq_ignore_ascii_case(expected) {
            return Err(err(format!(
                "not a {kind} backend (expected {expected}, not {name})"
            )));
        }
        Ok(BackendArgs { value, args })
    }

    /// An error about this value: `backend = VALUE: what`.
    pub(crate) fn err(&self, what: String) -> String {
        format!("backend = {}: {what}", self.value)
    }

    /// An error naming the `unknown` argument names, if any (`known`: the accepted ones, as
    /// a phrase).
    pub(crate) fn reject_unknown(&self, unknown: &[&str], known: &str) -> Result<(), String> {
        if unknown.is_empty() {
            return Ok(());
        }
        Err(self.err(format!(
            "unknown argument{} {} (expected {known})",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )))
    }
}
