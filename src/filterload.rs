//! Turns a user's filter reference into a compiled [`Filter`].
//!
//! Owns fail2ban-regex's rules for reading its FILTER argument: an existing path
//! (optionally with `[k=v]` args), else a filter name looked up in the config tree,
//! else a literal regex. Receives the argument and the config tree; emits a
//! [`LoadedFilter`] (compiled filter plus what `regex` prints about where it came from).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use banhammer_config::{ConfigTree, FilterSpec, Options};
use banhammer_core::filter::{Filter, FilterConfig, UseDns};

use crate::embedded::EMBEDDED_CONFIG;

/// Where a filter came from, worded as fail2ban-regex prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOrigin {
    /// A filter loaded with the full `.conf`/`.local` layering from a config tree.
    Named { name: String, basedir: String },
    /// A filter file outside any `filter.d` folder, read as it is.
    File { path: String },
    /// A literal failregex given on the command line.
    Line { regex: String },
}

/// Settings the command line may force over what the filter file says.
#[derive(Debug, Clone, Default)]
pub struct FilterOverrides {
    pub datepattern: Option<String>,
    pub maxlines: Option<usize>,
    pub usedns: Option<String>,
    pub timezone: Option<String>,
    /// Extra ignoreregex (the third positional argument of `regex`).
    pub ignoreregex: Option<String>,
}

/// The resolved filter spec (before compiling), and where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedFilter {
    pub origin: FilterOrigin,
    pub args: Options,
    pub spec: FilterSpec,
}

/// Does `value` look like fail2ban-regex's "filter name or path, maybe with [args]"?
fn looks_like_filter_ref(value: &str) -> bool {
    // fail2ban-regex: ^/{0,3}[\w/_\-.]+(?:\[.*\])?$ (multi-line, dot-all)
    let name_end = value.find('[').unwrap_or(value.len());
    let (name, rest) = value.split_at(name_end);
    let name = name.trim_start_matches('/');
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '-' | '.'));
    let args_ok = rest.is_empty() || (rest.starts_with('[') && rest.ends_with(']'));
    name_ok && args_ok && value.len() - name.len() <= 3 + rest.len()
}

/// Resolve the FILTER argument of `regex` the way fail2ban-regex does.
///
/// `config_dir` is the `-c` option (None = embedded tree only).
pub fn resolve_filter_arg(value: &str, config_dir: Option<&Path>) -> Result<ResolvedFilter> {
    let tree = ConfigTree::new(EMBEDDED_CONFIG, config_dir.map(Path::to_path_buf));
    if looks_like_filter_ref(value) {
        let (name, args) = banhammer_config::parse_name_args(value)
            .with_context(|| format!("wrong filter name or options: {value}"))?;
        if name.contains('/') || name.ends_with(".conf") || name.ends_with(".local") {
            // A path: inside a `filter.d` folder it is loaded with full layering from the
            // folder above (so `.local` files apply); elsewhere it is read as it is.
            let path = PathBuf::from(&name);
            if path.is_file() {
                return resolve_path(&path, args);
            }
        }
        if !name.contains('/') {
            let stem = name
                .strip_suffix(".conf")
                .or_else(|| name.strip_suffix(".local"))
                .unwrap_or(&name);
            if tree.exists(&format!("filter.d/{stem}.conf"))
                || tree.exists(&format!("filter.d/{stem}.local"))
            {
                let spec =
                    banhammer_config::read_filter(&tree, &filter_ref(stem, &args), &Options::new())
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                let basedir = config_dir
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "<embedded>".to_string());
                return Ok(ResolvedFilter {
                    origin: FilterOrigin::Named {
                        name: stem.to_string(),
                        basedir,
                    },
                    args,
                    spec,
                });
            }
        }
    }
    Ok(ResolvedFilter {
        origin: FilterOrigin::Line {
            regex: value.to_string(),
        },
        args: Options::new(),
        spec: literal_spec(value),
    })
}

fn resolve_path(path: &Path, args: Options) -> Result<ResolvedFilter> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let in_filter_d = parent.file_name().is_some_and(|n| n == "filter.d");
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if in_filter_d {
        let basedir = parent.parent().unwrap_or(Path::new(".")).to_path_buf();
        let basedir = if basedir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            basedir
        };
        let tree = ConfigTree::new(EMBEDDED_CONFIG, Some(basedir.clone()));
        let spec = banhammer_config::read_filter(&tree, &filter_ref(&stem, &args), &Options::new())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(ResolvedFilter {
            origin: FilterOrigin::Named {
                name: stem,
                basedir: basedir.display().to_string(),
            },
            args,
            spec,
        });
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let tree = ConfigTree::new(EMBEDDED_CONFIG, None);
    let spec = banhammer_config::read_filter_file(&tree, &abs, &args)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ResolvedFilter {
        origin: FilterOrigin::File {
            path: abs.display().to_string(),
        },
        args,
        spec,
    })
}

/// Re-serialise a name and its args as a `name[k="v", ...]` reference.
pub fn filter_ref(name: &str, args: &Options) -> String {
    if args.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = args
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('"', "\\\"")))
        .collect();
    format!("{name}[{}]", inner.join(", "))
}

fn literal_spec(regex: &str) -> FilterSpec {
    FilterSpec {
        name: String::new(),
        file: String::new(),
        prefregex: None,
        failregex: vec![regex.to_string()],
        ignoreregex: Vec::new(),
        maxlines: None,
        datepattern: None,
        journalmatch: Vec::new(),
        usedns: None,
        logtype: "file".to_string(),
        options: Options::new(),
    }
}

/// Parse a `usedns` value (`yes`, `warn`, `no`, `raw`), naming the bad value.
pub fn parse_usedns(value: &str) -> Result<UseDns> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(UseDns::Yes),
        "warn" => Ok(UseDns::Warn),
        "no" | "false" | "off" | "0" => Ok(UseDns::No),
        "raw" => Ok(UseDns::Raw),
        other => anyhow::bail!("invalid usedns value {other:?} (expected yes, warn, no or raw)"),
    }
}

/// Resolve a time zone name as fail2ban's `logtimezone` accepts it (`UTC`, `UTC+0200`,
/// `CET`…), or an IANA/POSIX name; None = the system's local zone.
pub fn parse_timezone(value: Option<&str>) -> Result<jiff::tz::TimeZone> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(jiff::tz::TimeZone::system());
    };
    if let Some(offset) = banhammer_core::date::zone_offset_seconds(value) {
        let off = jiff::tz::Offset::from_seconds(offset)
            .map_err(|e| anyhow::anyhow!("invalid time zone {value:?}: {e}"))?;
        return Ok(jiff::tz::TimeZone::fixed(off));
    }
    if let Ok(tz) = jiff::tz::TimeZone::get(value) {
        return Ok(tz);
    }
    jiff::tz::TimeZone::posix(value).map_err(|_| {
        anyhow::anyhow!(
            "unknown time zone {value:?} (expected e.g. UTC, UTC+0200, CET or Europe/Paris)"
        )
    })
}

/// Compile a resolved filter with command-line overrides applied.
pub fn compile(resolved: &ResolvedFilter, overrides: &FilterOverrides, now: i64) -> Result<Filter> {
    let spec = &resolved.spec;
    let mut ignoreregex = spec.ignoreregex.clone();
    if let Some(extra) = &overrides.ignoreregex {
        ignoreregex.push(extra.clone());
    }
    let usedns = match overrides.usedns.as_deref().or(spec.usedns.as_deref()) {
        Some(v) => parse_usedns(v)?,
        None => UseDns::Yes,
    };
    let cfg = FilterConfig {
        prefregex: spec.prefregex.clone(),
        failregex: spec.failregex.clone(),
        ignoreregex,
        maxlines: overrides.maxlines.or(spec.maxlines).unwrap_or(1).max(1),
        datepattern: overrides
            .datepattern
            .clone()
            .or_else(|| spec.datepattern.clone()),
        usedns,
        timezone: parse_timezone(overrides.timezone.as_deref())?,
        now,
    };
    Filter::new(&cfg).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_ref_shapes() {
        assert!(looks_like_filter_ref("sshd"));
        assert!(looks_like_filter_ref("sshd[mode=aggressive]"));
        assert!(looks_like_filter_ref("filter.d/wordpress.conf"));
        assert!(looks_like_filter_ref("/etc/fail2ban/filter.d/sshd.conf"));
        assert!(!looks_like_filter_ref("^Failed for .* from <HOST>$"));
        assert!(!looks_like_filter_ref("from <HOST>"));
    }

    #[test]
    fn filter_ref_round_trip() {
        let mut args = Options::new();
        args.insert("mode".into(), "aggressive".into());
        assert_eq!(filter_ref("sshd", &args), "sshd[mode=\"aggressive\"]");
        assert_eq!(filter_ref("sshd", &Options::new()), "sshd");
    }

    #[test]
    fn usedns_values() {
        assert!(matches!(parse_usedns("No"), Ok(UseDns::No)));
        assert!(parse_usedns("maybe").is_err());
    }
}
