//! Filter resolution (fail2ban's `FilterReader`). Owns turning `filter.d/<name>` (or an
//! explicit file) plus `name[...]` args and the jail's options into a typed `FilterSpec`:
//! `logtype` auto-set from the backend, options resolved per `definit`, jail-level
//! `failregex`/`ignoreregex`/`prefregex`/`maxlines`/`datepattern`/`journalmatch`/`usedns`
//! replacing the filter's (as fail2ban 1.0.2 sends them). Receives a tree and references;
//! emits `FilterSpec`s. `<HOST>`-style regex tags are left for the matcher.

use std::path::Path;

use crate::args::parse_name_args_at;
use crate::budget::Budget;
use crate::definit::{DefInit, Kv};
use crate::error::{excerpt, ConfigError, Origin};
use crate::layered;
use crate::tree::{ConfigTree, Loc};
use crate::Options;

/// The `[Definition]` options fail2ban's filter reader knows (in its order).
pub(crate) const FILTER_OPTS: &[&str] = &[
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// A resolved filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    /// Filter name, e.g. "sshd".
    pub name: String,
    /// Display path of the main .conf (or the explicit file).
    pub file: String,
    /// Pre-filter; tags like `<HOST>`, `<F-CONTENT>` left unexpanded (the matcher expands them).
    pub prefregex: Option<String>,
    /// Split on '\n', empty lines dropped, after `%()s` and `<tag>` substitution.
    pub failregex: Vec<String>,
    /// Same shape as `failregex`.
    pub ignoreregex: Vec<String>,
    /// Line buffer size.
    pub maxlines: Option<usize>,
    /// `datepattern` as written (after substitution).
    pub datepattern: Option<String>,
    /// journal match lines (each a space-separated match expression).
    pub journalmatch: Vec<String>,
    /// `usedns` if the filter or jail sets it.
    pub usedns: Option<String>,
    /// `file`, `journal`, `short`, `rfc5424`...
    pub logtype: String,
    /// Every resolved option incl. `[Init]` values and args (e.g. "mode").
    pub options: Options,
}

/// A filter file set being read.
pub(crate) struct FilterRead<'b> {
    pub name: String,
    pub di: DefInit<'b>,
}

impl<'b> FilterRead<'b> {
    /// Load `filter.d/<name>` with `args`.
    pub fn load(
        tree: &ConfigTree,
        name: &str,
        args: &Options,
        origin: &Origin,
        budget: &'b Budget,
    ) -> Result<Self, ConfigError> {
        let rel = format!("filter.d/{name}");
        let Some(cfg) = layered::read(tree, &rel, budget)? else {
            return Err(ConfigError::not_found(
                origin,
                format!(
                    "unable to read the filter {name:?}: no {} found",
                    tree.display(&format!("{rel}.conf"))
                ),
                format!("a filter file filter.d/{name}.conf or .local"),
            ));
        };
        let file = tree.display(&format!("{rel}.conf"));
        let file = if tree.exists(&format!("{rel}.conf")) {
            file
        } else {
            tree.display(&format!("{rel}.local"))
        };
        Ok(FilterRead {
            name: name.to_string(),
            di: DefInit::new(cfg, file, args, budget),
        })
    }

    /// fail2ban `applyAutoOptions`: logtype from the backend unless set by args or Definition.
    pub fn apply_auto_options(&mut self, backend: &str) {
        if self.di.init.get("logtype").is_none_or(str::is_empty)
            && !self.di.definition_has("logtype")
        {
            let lt = if backend.starts_with("systemd") {
                "journal"
            } else {
                "file"
            };
            self.di.init.set("logtype", lt.to_string());
        }
    }

    /// The combined options (fail2ban `getOptions` + `getCombined`), maxlines as an int.
    pub fn combined(
        &mut self,
        p_opts: &Options,
        all: bool,
    ) -> Result<(Kv, Kv, Options), ConfigError> {
        let (opts, vars) = self.di.get_options(p_opts, FILTER_OPTS, all)?;
        let mut comb = self.di.combined(&opts, &vars, &|_| false)?;
        if let Some(m) = comb.get("maxlines") {
            if let Ok(n) = m.trim().parse::<i64>() {
                comb.set("maxlines", n.to_string());
            }
        }
        Ok((opts, comb, vars))
    }

    /// Build the spec; `jail_over` are jail-level values of `FILTER_OPTS` (they replace).
    pub fn spec(
        &mut self,
        p_opts: &Options,
        jail_over: &Kv,
        all: bool,
    ) -> Result<FilterSpec, ConfigError> {
        let (opts, comb, vars) = self.combined(p_opts, all)?;
        let full = self.di.all_resolved(&opts, &vars, &|_| false)?;
        let pick = |k: &str| -> Option<String> {
            jail_over.get(k).or_else(|| comb.get(k)).map(str::to_string)
        };
        let lines = |v: Option<String>| -> Vec<String> {
            v.map(|s| {
                s.split('\n')
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
        };
        let origin = Origin::new(self.di.file.clone(), 0);
        let maxlines = match pick("maxlines") {
            None => None,
            Some(m) if m.trim().is_empty() => None,
            Some(m) => Some(m.trim().parse::<usize>().map_err(|_| {
                ConfigError::value(
                    &origin,
                    format!("maxlines {} is not a number", excerpt(&m)),
                    "a positive integer",
                )
            })?),
        };
        let mut options: Options = full
            .pairs()
            .iter()
            .filter(|(k, _)| !k.starts_with("known/"))
            .cloned()
            .collect();
        for (k, v) in jail_over.pairs() {
            options.insert(k.clone(), v.clone());
        }
        Ok(FilterSpec {
            name: self.name.clone(),
            file: self.di.file.clone(),
            prefregex: pick("prefregex").filter(|s| !s.is_empty()),
            failregex: lines(pick("failregex")),
            ignoreregex: lines(pick("ignoreregex")),
            maxlines,
            datepattern: pick("datepattern").filter(|s| !s.is_empty()),
            journalmatch: lines(pick("journalmatch")),
            usedns: pick("usedns").filter(|s| !s.is_empty()),
            logtype: comb.get("logtype").unwrap_or("file").to_string(),
            options,
        })
    }
}

/// `filter_ref` is "name" or "name[k=v,...]"; `vars` act like jail options (a `backend`
/// var chooses the default logtype: "journal" for systemd*, else "file").
pub fn read_filter(
    tree: &ConfigTree,
    filter_ref: &str,
    vars: &Options,
) -> Result<FilterSpec, ConfigError> {
    let origin = Origin::new("<filter reference>", 0);
    let (name, args) = parse_name_args_at(filter_ref.trim(), &origin)?;
    let budget = Budget::new();
    let mut fr = FilterRead::load(tree, &name, &args, &origin, &budget)?;
    fr.apply_auto_options(vars.get("backend").map_or("", String::as_str));
    fr.spec(vars, &Kv::default(), true)
}

/// fail2ban-regex's "foreign file" case: read this exact file (plus its includes relative to
/// it, which fall back to the tree's `filter.d/`) with these args.
pub fn read_filter_file(
    tree: &ConfigTree,
    path: &Path,
    args: &Options,
) -> Result<FilterSpec, ConfigError> {
    let display = path.display().to_string();
    let origin = Origin::new(display.clone(), 0);
    let budget = Budget::new();
    let Some(cfg) = layered::read_explicit(tree, Loc::Disk(path.to_path_buf()), &budget)? else {
        return Err(ConfigError::not_found(
            &origin,
            "no such filter file",
            "an existing filter file",
        ));
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut fr = FilterRead {
        name,
        di: DefInit::new(cfg, display, args, &budget),
    };
    fr.apply_auto_options("");
    fr.spec(&Options::new(), &Kv::default(), true)
}
