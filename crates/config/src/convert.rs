//! fail2ban's conversions of option text into typed values, shared by the jail and action
//! readers and the dump: booleans (`_as_bool`, what `convertOptions` applies to `bool`
//! options) and word lists (`splitwords`). Receives option text; emits a bool or the words.

/// fail2ban's `_as_bool`: `1`, `on`, `true`, `yes` (any case, surrounding space ignored).
pub(crate) fn as_bool(v: &str) -> bool {
    matches!(
        v.trim().to_lowercase().as_str(),
        "1" | "on" | "true" | "yes"
    )
}

/// fail2ban's `splitwords`: split on spaces, commas and newlines, empty words dropped.
pub(crate) fn splitwords(v: &str) -> Vec<String> {
    v.split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_and_words() {
        for t in ["1", "on", " True ", "YES"] {
            assert!(as_bool(t), "{t}");
        }
        for f in ["0", "off", "false", "no", "", "y"] {
            assert!(!as_bool(f), "{f}");
        }
        assert_eq!(
            splitwords(" a, b\n c,,d "),
            ["a", "b", "c", "d"].map(String::from)
        );
    }
}
