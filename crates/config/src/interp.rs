//! `%(name)s` interpolation at read time (Python `BasicInterpolation` plus fail2ban's
//! extensions). Owns the lookup rules: call vars > the section > `[DEFAULT]`, `%(__name__)s`,
//! `%(section/opt)s`, `%(known/opt)s` (the pre-override value from `KNOWN/<section>`, falling
//! back to DEFAULT), `%(default/opt)s`, `%%`, recursion depth 10, and the read's bounds (a
//! value of at most `MAX_VALUE_BYTES`, every byte and lookup charged to its `Budget`). Receives
//! a merged config, a section, a value, vars and the budget; emits the interpolated string or a
//! `file:line` error.

use std::cell::RefCell;

use crate::budget::{too_large, Budget, MAX_VALUE_BYTES, VALUE_COST};
use crate::error::{excerpt, ConfigError, Origin};
use crate::ini::Entry;
use crate::layered::{Layered, KNOWN_PREFIX};
use crate::Options;

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;

/// Python `ConfigParser.get(section, option, vars=vars)`: `Ok(None)` when the option is
/// missing; an error when the section is missing (`NotFound`) or interpolation fails,
/// including when the value expands past `MAX_VALUE_BYTES` or the read's budget runs out.
pub(crate) fn get(
    cfg: &Layered,
    section: &str,
    option: &str,
    vars: &Options,
    budget: &Budget,
) -> Result<Option<String>, ConfigError> {
    let option = option.to_lowercase();
    let sec = if section == "DEFAULT" {
        None
    } else {
        cfg.section(section)
    };
    if section != "DEFAULT" && sec.is_none() {
        return Err(ConfigError::not_found(
            &Origin::new(cfg.files.last().cloned().unwrap_or_default(), 0),
            format!("no section [{section}]"),
            format!("a [{section}] section"),
        ));
    }
    let var_origin;
    let (raw, origin) = if let Some(v) = vars.get(&option) {
        var_origin = Origin::new(format!("[{section}] {option}"), 0);
        (v.as_str(), &var_origin)
    } else if let Some(e) = sec.and_then(|s| s.options.get(&option)) {
        (e.value.as_str(), &e.origin)
    } else if let Some(e) = cfg.defaults.get(&option) {
        (e.value.as_str(), &e.origin)
    } else {
        return Ok(None);
    };
    let what = format!("option {option:?} of [{section}]");
    let doing = format!("expanding {what}");
    let x = Expansion {
        cfg,
        section,
        vars,
        origin,
        what: &what,
        doing: &doing,
        budget,
        through: RefCell::new(Vec::new()),
    };
    // The value kept (or dropped) costs beyond its bytes.
    x.charge(VALUE_COST)?;
    let mut out = String::with_capacity(raw.len().min(4096));
    x.expand(raw, origin, 1, &mut out)?;
    Ok(Some(out))
}

/// Like `get` but returns the raw (uninterpolated) value and its origin.
pub(crate) fn get_raw(cfg: &Layered, section: &str, option: &str) -> Option<(String, Origin)> {
    let sec = cfg.section(section);
    sec.and_then(|s| s.options.get(option))
        .or_else(|| cfg.defaults.get(option))
        .map(|e| (e.value.clone(), e.origin.clone()))
}

/// One top-level interpolation: the context every nested reference is read in, and the
/// option whose `file:line` size and work errors name.
struct Expansion<'a> {
    cfg: &'a Layered,
    section: &'a str,
    vars: &'a Options,
    origin: &'a Origin,
    /// `option "x" of [s]`, and what running out of budget was in the middle of.
    what: &'a str,
    doing: &'a str,
    budget: &'a Budget,
    /// The nested references being expanded, outermost first (`%(port)s (jail.local:3)`):
    /// a size or work error says through which ones it got there.
    through: RefCell<Vec<String>>,
}

impl Expansion<'_> {
    /// Spend the work of scanning or copying `n` bytes (+1, so an empty value still costs).
    fn charge(&self, n: usize) -> Result<(), ConfigError> {
        self.budget.charge(n.saturating_add(1)).map_err(|_| {
            let doing = format!("{}{}", self.doing, self.through());
            self.budget.error(self.origin, &doing)
        })
    }

    /// `Err` when `out` has grown past `MAX_VALUE_BYTES`.
    fn check_len(&self, out: &str) -> Result<(), ConfigError> {
        if out.len() <= MAX_VALUE_BYTES {
            return Ok(());
        }
        Err(too_large(self.origin, self.what, &self.through()))
    }

    /// `, through %(a)s (f:1) → %(b)s (f:2)`, or nothing at the top level.
    fn through(&self) -> String {
        let through = self.through.borrow();
        if through.is_empty() {
            String::new()
        } else {
            format!(", through {}", through.join(" → "))
        }
    }

    /// Append `rest` to `out` with its references expanded. `origin` is where `rest` was
    /// written (syntax errors name it); `depth` counts nested references as Python does.
    fn expand(
        &self,
        rest: &str,
        origin: &Origin,
        depth: usize,
        out: &mut String,
    ) -> Result<(), ConfigError> {
        if depth > MAX_DEPTH {
            return Err(ConfigError::value(
                origin,
                format!(
                    "interpolation nested deeper than {MAX_DEPTH} levels in {}",
                    excerpt(rest)
                ),
                "no circular %(name)s references",
            ));
        }
        // Every byte of `rest` is scanned once and copied at most once.
        self.charge(rest.len())?;
        let mut rest = rest;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            let next = rest[1..].chars().next();
            match next {
                Some('%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some('(') => {
                    let close = rest
                        .find(')')
                        .filter(|&c| c > 2 && rest[c + 1..].starts_with('s'));
                    let Some(close) = close else {
                        return Err(ConfigError::value(
                            origin,
                            format!("bad interpolation variable reference {}", excerpt(rest)),
                            "`%(name)s` or `%%`",
                        ));
                    };
                    let name = &rest[2..close];
                    rest = &rest[close + 2..];
                    // A lookup lower-cases the name and probes several maps.
                    self.charge(VALUE_COST)?;
                    let (v, vorigin) = self.lookup(name).ok_or_else(|| {
                        ConfigError::value(
                            origin,
                            format!(
                                "bad option reference %({name})s in section [{}]",
                                self.section
                            ),
                            format!(
                                "an option {:?} in [{}] or [DEFAULT]",
                                name.to_lowercase(),
                                self.section
                            ),
                        )
                    })?;
                    if v.contains('%') {
                        // Report problems inside the referenced value at its own line.
                        let inner = vorigin.unwrap_or(origin);
                        self.through
                            .borrow_mut()
                            .push(format!("%({name})s ({inner})"));
                        self.expand(v, inner, depth + 1, out)?;
                        self.through.borrow_mut().pop();
                    } else {
                        self.charge(v.len())?;
                        out.push_str(v);
                    }
                }
                _ => {
                    return Err(ConfigError::value(
                        origin,
                        format!(
                            "'%' must be followed by '%' or '(', found {}",
                            excerpt(rest)
                        ),
                        "`%%` for a literal percent sign",
                    ));
                }
            }
            self.check_len(out)?;
        }
        out.push_str(rest);
        self.check_len(out)
    }

    /// The raw value of `%(name)s` and where it was written (None for vars and `__name__`).
    fn lookup(&self, name: &str) -> Option<(&str, Option<&Origin>)> {
        let key = name.to_lowercase();
        if let Some(v) = self.vars.get(&key) {
            return Some((v.as_str(), None));
        }
        lookup_entry(self.cfg, self.section, name, &key)
            .map(|e| (e.value.as_str(), Some(&e.origin)))
            .or_else(|| (key == "__name__").then_some((self.section, None)))
    }
}

fn lookup_entry<'a>(cfg: &'a Layered, section: &str, name: &str, key: &str) -> Option<&'a Entry> {
    let sec = cfg.section(section);
    if let Some(e) = sec.and_then(|s| s.options.get(key)) {
        return Some(e);
    }
    if let Some(e) = cfg.defaults.get(key) {
        return Some(e);
    }
    if key == "__name__" {
        return None;
    }
    // fail2ban's `%(sec/opt)s`: sec is [\w-]+.
    let (sname, opt) = name.split_once('/')?;
    if sname.is_empty()
        || !sname
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        || opt.is_empty()
    {
        return None;
    }
    let from_default = || cfg.defaults.get(opt);
    match sname.to_lowercase().as_str() {
        "default" => from_default(),
        "known" => cfg
            .section(&format!("{KNOWN_PREFIX}{section}"))
            .and_then(|s| s.options.get(opt))
            .or_else(from_default),
        _ => {
            let other = cfg.section(sname)?;
            other.options.get(opt).or_else(from_default)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layered;
    use crate::layered::tests::tree_with;

    #[test]
    fn basic_and_extensions() {
        let (_d, t) = tree_with(&[
            (
                "jail.conf",
                "[DEFAULT]\nbanaction = ipt\nmode = normal\nfilter = %(__name__)s[mode=%(mode)s]\nbackend = auto\ndefault_backend = %(default/backend)s\n\
                 [sshd]\nport = ssh\npct = 50%%\nact = %(banaction)s[port=\"%(port)s\"]\nother = %(lt_file/x)s\n[lt_file]\nx = %(port)s-lt\n",
            ),
            ("jail.local", "[sshd]\nport = %(known/port)s,2222\nbackend = polling\n"),
        ]);
        let b = Budget::new();
        let l = layered::read(&t, "jail", &b).unwrap().unwrap();
        let v = Options::new();
        let g = |k: &str| get(&l, "sshd", k, &v, &b).unwrap().unwrap();
        assert_eq!(g("filter"), "sshd[mode=normal]");
        assert_eq!(g("port"), "ssh,2222");
        assert_eq!(g("pct"), "50%");
        assert_eq!(g("act"), "ipt[port=\"ssh,2222\"]");
        // section ref: raw value, then interpolated in the *current* section
        assert_eq!(g("other"), "ssh,2222-lt");
        assert_eq!(g("default_backend"), "auto");
        assert_eq!(g("backend"), "polling");
        let mut vars = Options::new();
        vars.insert("port".into(), "http".into());
        assert_eq!(
            get(&l, "sshd", "act", &vars, &b).unwrap().unwrap(),
            "ipt[port=\"http\"]"
        );
        assert!(get(&l, "sshd", "nope", &v, &b).unwrap().is_none());
        assert!(get(&l, "nosec", "port", &v, &b).is_err());
    }

    #[test]
    fn errors_name_file_and_line() {
        let (_d, t) = tree_with(&[(
            "jail.conf",
            "[a]\nx = 1\ny = %(missing)s\nz = 5%\nr = %(r)s\n",
        )]);
        let b = Budget::new();
        let l = layered::read(&t, "jail", &b).unwrap().unwrap();
        let v = Options::new();
        let e = get(&l, "a", "y", &v, &b).unwrap_err().to_string();
        assert!(
            e.contains("jail.conf:3: bad option reference %(missing)s"),
            "{e}"
        );
        let e = get(&l, "a", "z", &v, &b).unwrap_err().to_string();
        assert!(e.contains("jail.conf:4: "), "{e}");
        let e = get(&l, "a", "r", &v, &b).unwrap_err().to_string();
        assert!(
            e.contains("jail.conf:5: interpolation nested deeper"),
            "{e}"
        );
    }
}
