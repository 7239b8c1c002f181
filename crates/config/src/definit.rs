//! The shared machinery of filter and action files (fail2ban's `DefinitionInitConfigReader`).
//! Owns how `[Definition]`, `[Init]`, the `name[...]` args ("init options") and the caller's
//! vars (jail options) combine: Definition options are read with vars = jail options + init
//! options (vars win); `[Init]` values become init options unless given as args, and are also
//! kept as `known/<opt>`; then `<tag>`s are substituted over the combined set, with
//! `getCombOption` (vars > Definition > DEFAULT, `sec/opt` refs) as fallback. Receives a
//! merged file set and the read's budget; emits ordered resolved options.

use std::collections::{HashMap, HashSet};

use crate::budget::{too_large, Budget};
use crate::error::{excerpt, ConfigError, Origin};
use crate::interp;
use crate::layered::{split_conditional, Layered, KNOWN_PREFIX};
use crate::tags::{self, TagError};
use crate::Options;

/// An insertion-ordered list of (key, value) with Python dict update semantics, indexed so
/// that building one of n options costs n lookups, not n² comparisons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Kv {
    pairs: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Kv {
    /// From pairs in order (a later duplicate key updates the earlier one in place).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut kv = Kv::default();
        for (k, v) in pairs {
            kv.set(&k, v);
        }
        kv
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.index.get(k).map(|&i| self.pairs[i].1.as_str())
    }
    pub fn contains(&self, k: &str) -> bool {
        self.index.contains_key(k)
    }
    pub fn set(&mut self, k: &str, v: String) {
        match self.index.get(k) {
            Some(&i) => self.pairs[i].1 = v,
            None => {
                self.index.insert(k.to_string(), self.pairs.len());
                self.pairs.push((k.to_string(), v));
            }
        }
    }
    /// The pairs in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
    /// The pairs in order, values to be changed in place (keys must stay as they are: the
    /// index maps them).
    fn pairs_mut(&mut self) -> &mut [(String, String)] {
        &mut self.pairs
    }
    /// The pairs in order, consumed.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }
    /// `{**self, **other}`.
    pub fn merged(&self, other: &Kv) -> Kv {
        let mut out = self.clone();
        for (k, v) in &other.pairs {
            out.set(k, v.clone());
        }
        out
    }
}

/// One filter or action file set, with its init options.
pub(crate) struct DefInit<'b> {
    pub cfg: Layered,
    /// Display path of the main file.
    pub file: String,
    /// Args + automatic options + `[Init]` values (+ `known/<init opt>`).
    pub init: Kv,
    /// The budget of the read this file set belongs to.
    budget: &'b Budget,
}

/// Tags that only the running daemon can fill in; never resolved while reading.
pub(crate) const RUNTIME_TAGS: &[&str] = &[
    "ip",
    "ip-rev",
    "ip-host",
    "fid",
    "failures",
    "time",
    "bantime",
    "timeout",
    "br",
    "sp",
    "family",
    "restored",
    "matches",
    "ipmatches",
    "ipjailmatches",
    "ipfailures",
    "ipjailfailures",
    "bancount",
    "raw-ticket",
    "fq-hostname",
    "sh-hostname",
    "jail.banned",
    "jail.banned_total",
    "jail.found",
    "jail.found_total",
];

impl<'b> DefInit<'b> {
    pub fn new(cfg: Layered, file: String, args: &Options, budget: &'b Budget) -> Self {
        DefInit {
            cfg,
            file,
            init: Kv::from_pairs(args.iter().map(|(k, v)| (k.clone(), v.clone()))),
            budget,
        }
    }

    /// Where option `key` was written: `[Definition]` (or DEFAULT), else `[Init]`, else the
    /// file itself (an argument, or an option set automatically).
    fn origin_of(&self, key: &str) -> Origin {
        interp::get_raw(&self.cfg, "Definition", key)
            .or_else(|| interp::get_raw(&self.cfg, "Init", key))
            .map(|(_, o)| o)
            .unwrap_or_else(|| Origin::new(self.file.clone(), 0))
    }

    /// Whether `[Definition]` itself (not DEFAULT) has `opt`.
    pub fn definition_has(&self, opt: &str) -> bool {
        self.cfg
            .section("Definition")
            .is_some_and(|s| s.options.contains(opt))
    }

    /// Own option names of `section` (no DEFAULT).
    pub fn own_keys(&self, section: &str) -> Vec<String> {
        self.cfg
            .section(section)
            .map(|s| s.options.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// fail2ban `getOptions(pOpts, all)`: returns (Definition options read, the vars used).
    pub fn get_options(
        &mut self,
        p_opts: &Options,
        config_opts: &[&str],
        all: bool,
    ) -> Result<(Kv, Options), ConfigError> {
        let mut vars: Options = p_opts.clone();
        for (k, v) in self.init.pairs() {
            vars.insert(k.to_lowercase(), v.clone());
        }
        let mut opts = Kv::default();
        let has_def = self.cfg.has_section("Definition");
        if has_def {
            for name in config_opts {
                if vars.contains_key(*name) {
                    continue;
                }
                if let Some(v) = interp::get(&self.cfg, "Definition", name, &vars, self.budget)? {
                    opts.set(name, v);
                }
            }
        }
        if self.cfg.has_section("Init") {
            let empty = Options::new();
            for opt in self.own_keys("Init") {
                let v =
                    interp::get(&self.cfg, "Init", &opt, &empty, self.budget)?.unwrap_or_default();
                if !opt.starts_with("known/") {
                    self.init.set(&format!("known/{opt}"), v.clone());
                }
                if !self.init.contains(&opt) {
                    self.init.set(&opt, v);
                }
            }
        }
        if all && has_def {
            let empty = Options::new();
            for opt in self.own_keys("Definition") {
                if opts.contains(&opt) {
                    continue;
                }
                if let Some(v) = interp::get(&self.cfg, "Definition", &opt, &empty, self.budget)? {
                    opts.set(&opt, v);
                }
            }
        }
        Ok((opts, vars))
    }

    /// fail2ban `getCombOption` (`get_ex` on `[Definition]` with vars): the fallback of tag
    /// substitution. Missing section/option → None; interpolation errors propagate.
    pub fn comb_option(&self, name: &str, vars: &Options) -> Result<Option<String>, ConfigError> {
        let none = Options::new();
        let not_found = |r: Result<Option<String>, ConfigError>| match r {
            Err(ConfigError::NotFound { .. }) => Ok(None),
            other => other,
        };
        if let Some((sec, opt)) = name.split_once('/') {
            let sec_ok = !sec.is_empty()
                && sec
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            let opt_ok = !opt.is_empty() && !opt.chars().any(|c| c.is_whitespace() || c == '>');
            if sec_ok && opt_ok {
                let secs: Vec<String> = match sec.to_lowercase().as_str() {
                    "known" => vec![format!("{KNOWN_PREFIX}Definition"), "Definition".into()],
                    "default" => vec!["DEFAULT".into()],
                    _ => vec![sec.to_string()],
                };
                for s in secs {
                    if let Some(v) = not_found(interp::get(&self.cfg, &s, opt, &none, self.budget))?
                    {
                        return Ok(Some(v));
                    }
                }
            }
        }
        not_found(interp::get(
            &self.cfg,
            "Definition",
            name,
            vars,
            self.budget,
        ))
    }

    /// fail2ban `getCombined`: `opts` + init options with tags substituted.
    /// `extra_ignore` tags are neither resolved nor processed; conditional (`x?cond`) keys make
    /// their base tag `x` ignored too (left for run time).
    pub fn combined(
        &self,
        opts: &Kv,
        vars: &Options,
        extra_ignore: &dyn Fn(&str) -> bool,
    ) -> Result<Kv, ConfigError> {
        let mut comb = opts.merged(&self.init);
        self.substitute(&mut comb, vars, extra_ignore)?;
        Ok(comb)
    }

    /// Every option of the file (Definition own keys, init options), resolved as far as
    /// possible, for `options` maps. Keys that fail to resolve keep their raw text.
    pub fn all_resolved(
        &self,
        opts: &Kv,
        vars: &Options,
        extra_ignore: &dyn Fn(&str) -> bool,
    ) -> Result<Kv, ConfigError> {
        let mut full = opts.clone();
        for k in self.own_keys("Definition") {
            if !full.contains(&k) && !self.init.contains(&k) {
                let v = match self.comb_option(&k, vars) {
                    Ok(Some(v)) => v,
                    // Lenient, except when the read has run out of budget: stop then.
                    Err(e) if self.budget.exhausted() => return Err(e),
                    _ => interp::get_raw(&self.cfg, "Definition", &k)
                        .map(|(v, _)| v)
                        .unwrap_or_default(),
                };
                full.set(&k, v);
            }
        }
        let mut full = full.merged(&self.init);
        if let Err(e) = self.substitute(&mut full, vars, extra_ignore) {
            if self.budget.exhausted() {
                return Err(e);
            }
            // Fall back to what fail2ban itself resolves.
            return self.combined(opts, vars, extra_ignore);
        }
        Ok(full)
    }

    fn substitute(
        &self,
        comb: &mut Kv,
        vars: &Options,
        extra_ignore: &dyn Fn(&str) -> bool,
    ) -> Result<(), ConfigError> {
        let cond_bases: HashSet<String> = comb
            .pairs()
            .iter()
            .filter_map(|(k, _)| split_conditional(k).map(|(b, _)| b.to_string()))
            .collect();
        let is_ignored = |t: &str| cond_bases.contains(t) || extra_ignore(t);
        let mut fallback = |t: &str| self.comb_option(t, vars);
        let r = tags::substitute_recursive(
            comb.pairs_mut(),
            "",
            &is_ignored,
            &mut fallback,
            self.budget,
        )?;
        match r {
            Ok(()) => Ok(()),
            Err(TagError::Loop { tag, found, value }) => Err(ConfigError::value(
                &self.origin_of(&tag),
                format!(
                    "tag <{tag}> refers to itself through <{found}> (value {})",
                    excerpt(&value)
                ),
                "tag definitions without cycles",
            )),
            Err(TagError::TooLarge { tag, found }) => Err(too_large(
                &self.origin_of(&tag),
                &format!("option {tag:?} with its <tags> substituted"),
                &format!(", when replacing <{found}>"),
            )),
            Err(TagError::OverBudget { tag }) => Err(self.budget.error(
                &self.origin_of(&tag),
                &format!("substituting the <tags> of option {tag:?}"),
            )),
        }
    }
}

/// `true` for tags only the daemon fills in (see `RUNTIME_TAGS`, plus `F-*` ticket groups).
pub(crate) fn is_runtime_tag(t: &str) -> bool {
    RUNTIME_TAGS.contains(&t) || t.starts_with("F-") || t.starts_with("/F-")
}
