//! `%(name)s` interpolation at read time (Python `BasicInterpolation` plus fail2ban's
//! extensions). Owns the lookup rules: call vars > the section > `[DEFAULT]`, `%(__name__)s`,
//! `%(section/opt)s`, `%(known/opt)s` (the pre-override value from `KNOWN/<section>`, falling
//! back to DEFAULT), `%(default/opt)s`, `%%`, recursion depth 10. Receives a merged config, a
//! section, a value and vars; emits the interpolated string or a `file:line` error.

use crate::error::{ConfigError, Origin};
use crate::layered::{Layered, KNOWN_PREFIX};
use crate::Options;

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;

/// Python `ConfigParser.get(section, option, vars=vars)`: `Ok(None)` when the option is
/// missing; an error when the section is missing (`NotFound`) or interpolation fails.
pub(crate) fn get(
    cfg: &Layered,
    section: &str,
    option: &str,
    vars: &Options,
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
    let (raw, origin) = if let Some(v) = vars.get(&option) {
        (v.clone(), Origin::new(format!("[{section}] {option}"), 0))
    } else if let Some(e) = sec.and_then(|s| s.options.get(&option)) {
        (e.value.clone(), e.origin.clone())
    } else if let Some(e) = cfg.defaults.get(&option) {
        (e.value.clone(), e.origin.clone())
    } else {
        return Ok(None);
    };
    interpolate(cfg, section, &raw, vars, &origin).map(Some)
}

/// Like `get` but returns the raw (uninterpolated) value and its origin.
pub(crate) fn get_raw(cfg: &Layered, section: &str, option: &str) -> Option<(String, Origin)> {
    let sec = cfg.section(section);
    sec.and_then(|s| s.options.get(option))
        .or_else(|| cfg.defaults.get(option))
        .map(|e| (e.value.clone(), e.origin.clone()))
}

/// Interpolate `value` in the context of `section` with `vars` (highest priority).
pub(crate) fn interpolate(
    cfg: &Layered,
    section: &str,
    value: &str,
    vars: &Options,
    origin: &Origin,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(value.len());
    expand(cfg, section, value, vars, origin, 1, &mut out)?;
    Ok(out)
}

fn expand(
    cfg: &Layered,
    section: &str,
    rest: &str,
    vars: &Options,
    origin: &Origin,
    depth: usize,
    out: &mut String,
) -> Result<(), ConfigError> {
    if depth > MAX_DEPTH {
        return Err(ConfigError::value(
            origin,
            format!("interpolation nested deeper than {MAX_DEPTH} levels in {rest:?}"),
            "no circular %(name)s references",
        ));
    }
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
                        format!("bad interpolation variable reference {rest:?}"),
                        "`%(name)s` or `%%`",
                    ));
                };
                let name = &rest[2..close];
                rest = &rest[close + 2..];
                let (v, vorigin) = lookup(cfg, section, name, vars).ok_or_else(|| {
                    ConfigError::value(
                        origin,
                        format!("bad option reference %({name})s in section [{section}]"),
                        format!(
                            "an option {:?} in [{section}] or [DEFAULT]",
                            name.to_lowercase()
                        ),
                    )
                })?;
                if v.contains('%') {
                    // Report problems inside the referenced value at its own line.
                    let inner = vorigin.as_ref().unwrap_or(origin);
                    expand(cfg, section, &v, vars, inner, depth + 1, out)?;
                } else {
                    out.push_str(&v);
                }
            }
            _ => {
                return Err(ConfigError::value(
                    origin,
                    format!("'%' must be followed by '%' or '(', found {rest:?}"),
                    "`%%` for a literal percent sign",
                ));
            }
        }
    }
    out.push_str(rest);
    Ok(())
}

/// Find the raw value of `%(name)s` and where it was written (None for vars).
fn lookup(
    cfg: &Layered,
    section: &str,
    name: &str,
    vars: &Options,
) -> Option<(String, Option<Origin>)> {
    let key = name.to_lowercase();
    if let Some(v) = vars.get(&key) {
        return Some((v.clone(), None));
    }
    lookup_entry(cfg, section, name, &key)
        .map(|e| (e.value.clone(), Some(e.origin.clone())))
        .or_else(|| (key == "__name__").then(|| (section.to_string(), None)))
}

fn lookup_entry<'a>(
    cfg: &'a Layered,
    section: &str,
    name: &str,
    key: &str,
) -> Option<&'a crate::ini::Entry> {
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
        let l = layered::read(&t, "jail").unwrap().unwrap();
        let v = Options::new();
        let g = |k: &str| get(&l, "sshd", k, &v).unwrap().unwrap();
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
            get(&l, "sshd", "act", &vars).unwrap().unwrap(),
            "ipt[port=\"http\"]"
        );
        assert!(get(&l, "sshd", "nope", &v).unwrap().is_none());
        assert!(get(&l, "nosec", "port", &v).is_err());
    }

    #[test]
    fn errors_name_file_and_line() {
        let (_d, t) = tree_with(&[(
            "jail.conf",
            "[a]\nx = 1\ny = %(missing)s\nz = 5%\nr = %(r)s\n",
        )]);
        let l = layered::read(&t, "jail").unwrap().unwrap();
        let v = Options::new();
        let e = get(&l, "a", "y", &v).unwrap_err().to_string();
        assert!(
            e.contains("jail.conf:3: bad option reference %(missing)s"),
            "{e}"
        );
        let e = get(&l, "a", "z", &v).unwrap_err().to_string();
        assert!(e.contains("jail.conf:4: "), "{e}");
        let e = get(&l, "a", "r", &v).unwrap_err().to_string();
        assert!(
            e.contains("jail.conf:5: interpolation nested deeper"),
            "{e}"
        );
    }
}
