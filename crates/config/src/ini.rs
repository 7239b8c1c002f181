//! One file in Python `configparser` dialect (as fail2ban configures it). Owns the parse of a
//! single file's text into ordered sections of options, each value remembering its `file:line`.
//! Receives the text and its display path; emits an `IniFile` or a `file:line` syntax error.
//! Rules (compat §1.3): keys lower-cased; `=` or `:`; `#`/`;` full-line comments anywhere (also
//! inside a multi-line value, where they are dropped); inline comments only `;` at line start or
//! after whitespace; lines indented deeper than the key line continue the value, joined with
//! `\n`; blank lines inside a value kept, trailing ones removed; duplicates in one file are errors.

use std::collections::HashMap;

use crate::error::{cut, excerpt, ConfigError, Origin};

/// One option value and where it was written (the key line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub value: String,
    pub origin: Origin,
}

/// An insertion-ordered map of options (Python dict semantics: updating a key keeps its place).
#[derive(Debug, Clone, Default)]
pub(crate) struct OrdMap {
    items: Vec<(String, Entry)>,
    index: HashMap<String, usize>,
}

impl OrdMap {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.items[i].1)
    }
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }
    pub fn insert(&mut self, key: String, entry: Entry) {
        match self.index.get(&key) {
            Some(&i) => self.items[i].1 = entry,
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push((key, entry));
            }
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.items.iter().map(|(k, e)| (k, e))
    }
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.items.iter().map(|(k, _)| k)
    }
}

/// A section: its name as written (case-sensitive), header origin and options.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub name: String,
    pub origin: Origin,
    pub options: OrdMap,
}

/// A parsed file: `[DEFAULT]` options apart, other sections in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct IniFile {
    pub defaults: OrdMap,
    pub sections: Vec<Section>,
}

impl IniFile {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// How many sections and options the file holds (what keeping it costs beyond its text).
    pub fn entries(&self) -> usize {
        self.defaults.items.len()
            + self
                .sections
                .iter()
                .map(|s| 1 + s.options.items.len())
                .sum::<usize>()
    }
}

const DEFAULT: &str = "DEFAULT";

/// Where the option currently being built lives.
enum Target {
    None,
    Default,
    Section(usize),
}

/// Parse `text` (the content of `file`, a display path).
pub(crate) fn parse(file: &str, text: &str) -> Result<IniFile, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = IniFile::default();
    let mut target = Target::None;
    // Current option: its key and accumulated lines (joined at the end).
    let mut cur_opt: Option<(String, Vec<String>, Origin)> = None;
    let mut indent_level = 0usize;
    // Hashed: a file of many sections must not cost a comparison per pair of them.
    let mut seen_sections: std::collections::HashSet<String> = Default::default();
    // Keyed by the section's number, not its name: a long name must not be copied per option.
    let mut seen_options: std::collections::HashSet<(usize, String)> = Default::default();
    let mut cur_section_name = String::new();
    let mut cur_section = 0usize;

    // Flush the current option into its section.
    fn flush(out: &mut IniFile, target: &Target, cur: &mut Option<(String, Vec<String>, Origin)>) {
        if let Some((key, lines, origin)) = cur.take() {
            let value = lines.join("\n").trim_end().to_string();
            let entry = Entry { value, origin };
            match target {
                Target::Default => out.defaults.insert(key, entry),
                Target::Section(i) => out.sections[*i].options.insert(key, entry),
                Target::None => {}
            }
        }
    }

    // Python iterates lines with universal newlines.
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    for (idx, line) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let origin = Origin::new(file, lineno);
        // Inline comment: `;` at index 0 or preceded by whitespace.
        let mut comment_start: Option<usize> = None;
        let mut prev: Option<char> = None;
        for (i, c) in line.char_indices() {
            if c == ';' && (i == 0 || prev.is_some_and(char::is_whitespace)) {
                comment_start = Some(i);
                break;
            }
            prev = Some(c);
        }
        let trimmed_full = line.trim();
        if trimmed_full.starts_with('#') || trimmed_full.starts_with(';') {
            comment_start = Some(0);
        }
        let value = match comment_start {
            Some(i) => line[..i].trim(),
            None => trimmed_full,
        };
        if value.is_empty() {
            // Blank line: kept inside a value, unless the line held a comment.
            if comment_start.is_none() {
                if let Some((_, lines, _)) = cur_opt.as_mut() {
                    lines.push(String::new());
                }
            }
            continue;
        }
        let cur_indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if cur_opt.is_some() && cur_indent > indent_level {
            if let Some((_, lines, _)) = cur_opt.as_mut() {
                lines.push(value.to_string());
            }
            continue;
        }
        indent_level = cur_indent;
        // Section header: `[` ... last `]`.
        if value.starts_with('[') {
            if let Some(end) = value.rfind(']') {
                if end > 1 {
                    flush(&mut out, &target, &mut cur_opt);
                    let name = &value[1..end];
                    if seen_sections.contains(name) {
                        return Err(ConfigError::syntax(
                            &origin,
                            format!("section [{}] already exists in this file", cut(name)),
                            "each section once per file",
                        ));
                    }
                    seen_sections.insert(name.to_string());
                    cur_section_name = name.to_string();
                    cur_section = seen_sections.len();
                    if name == DEFAULT {
                        target = Target::Default;
                    } else {
                        out.sections.push(Section {
                            name: name.to_string(),
                            origin: origin.clone(),
                            options: OrdMap::default(),
                        });
                        target = Target::Section(out.sections.len() - 1);
                    }
                    continue;
                }
            }
        }
        if matches!(target, Target::None) {
            return Err(ConfigError::syntax(
                &origin,
                format!("option line {} before any section header", excerpt(value)),
                "a `[section]` header first",
            ));
        }
        // Option line: key is everything before the first `=` or `:`.
        let Some(sep) = value.find(['=', ':']) else {
            return Err(ConfigError::syntax(
                &origin,
                format!("cannot parse line {}", excerpt(value)),
                "`key = value`, `key: value`, `[section]` or a comment",
            ));
        };
        let key = value[..sep].trim();
        if key.is_empty() {
            return Err(ConfigError::syntax(
                &origin,
                format!("option without a name in {}", excerpt(value)),
                "`key = value`",
            ));
        }
        let key = key.to_lowercase();
        flush(&mut out, &target, &mut cur_opt);
        if !seen_options.insert((cur_section, key.clone())) {
            return Err(ConfigError::syntax(
                &origin,
                format!(
                    "option {} in section [{}] already exists in this file",
                    excerpt(&key),
                    cut(&cur_section_name)
                ),
                "each option once per section and file",
            ));
        }
        let val = value[sep + 1..].trim().to_string();
        cur_opt = Some((key, vec![val], origin));
    }
    flush(&mut out, &target, &mut cur_opt);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(f: &IniFile, sec: &str, key: &str) -> Option<String> {
        if sec == "DEFAULT" {
            return f.defaults.get(key).map(|e| e.value.clone());
        }
        f.section(sec)?.options.get(key).map(|e| e.value.clone())
    }

    #[test]
    fn verified_multiline_example() {
        let f = parse(
            "t.conf",
            "[s]\nx = one\n    # c\n    two ; t\n    three;x\n\n    four\n",
        )
        .unwrap();
        assert_eq!(get(&f, "s", "x").unwrap(), "one\ntwo\nthree;x\n\nfour");
    }

    #[test]
    fn comments_and_separators() {
        let t = "# top\n[Definition]\nFailRegex: ^a#b$ ; inline\nb=c;d\n; full\n  e = 1\n[DEFAULT]\nx = 1\n";
        let f = parse("t.conf", t).unwrap();
        assert_eq!(get(&f, "Definition", "failregex").unwrap(), "^a#b$");
        assert_eq!(get(&f, "Definition", "b").unwrap(), "c;d\ne = 1");
        assert_eq!(get(&f, "DEFAULT", "x").unwrap(), "1");
        assert_eq!(f.section("Definition").unwrap().origin.line, 2);
    }

    #[test]
    fn trailing_blank_lines_removed_and_first_line_empty() {
        let f = parse("t", "[s]\na =\n   x\n   y\n\n\nb = 2\n").unwrap();
        assert_eq!(get(&f, "s", "a").unwrap(), "\nx\ny");
        assert_eq!(get(&f, "s", "b").unwrap(), "2");
    }

    #[test]
    fn unindented_comment_does_not_end_value() {
        let f = parse("t", "[s]\na = 1\n# c\n  2\n").unwrap();
        assert_eq!(get(&f, "s", "a").unwrap(), "1\n2");
    }

    #[test]
    fn key_up_to_first_separator() {
        let f = parse("t", "[s]\na:b = c\nd = e:f\n").unwrap();
        assert_eq!(get(&f, "s", "a").unwrap(), "b = c");
        assert_eq!(get(&f, "s", "d").unwrap(), "e:f");
    }

    #[test]
    fn duplicates_are_errors_with_line() {
        let e = parse("f.conf", "[s]\na = 1\nA = 2\n").unwrap_err();
        assert!(e.to_string().starts_with("f.conf:3: "), "{e}");
        let e = parse("f.conf", "[s]\na = 1\n[t]\n[s]\n").unwrap_err();
        assert!(e.to_string().starts_with("f.conf:4: "), "{e}");
    }

    #[test]
    fn garbage_is_error() {
        let e = parse("f.conf", "[s]\nnot an option\n").unwrap_err();
        assert!(e.to_string().starts_with("f.conf:2: cannot parse"), "{e}");
        let e = parse("f.conf", "a = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("f.conf:1: "), "{e}");
    }

    #[test]
    fn section_names_case_sensitive_and_header_to_last_bracket() {
        let f = parse(
            "t",
            "[Init]\na=1\n[init]\na=2\n[x?family=inet6]\nb=1\n[a]b]\nc=1\n",
        )
        .unwrap();
        assert_eq!(get(&f, "Init", "a").unwrap(), "1");
        assert_eq!(get(&f, "init", "a").unwrap(), "2");
        assert!(f.section("x?family=inet6").is_some());
        assert!(f.section("a]b").is_some());
    }
}
