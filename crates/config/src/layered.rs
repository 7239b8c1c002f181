//! A logical config (`jail`, `fail2ban`, `filter.d/sshd`, ...) merged from its layered files.
//! Owns the file order (X.conf → X.d/*.conf → X.local → X.d/*.local, each file preceded by its
//! `[INCLUDES] before` and followed by its `after` files, recursively, with `.local` siblings)
//! and the merge (DEFAULT updated; sections updated with the overridden values saved under
//! `KNOWN/<section>`; `[S?cond]` sections merged into `[S]` as `key?cond`). Receives a tree, a
//! name (or one explicit file) and the read's budget, which every file read, include-order
//! entry and merge is charged to; `[INCLUDES]` nesting and `.d` sizes are bounded. Emits a
//! `Layered` config. Mirrors fail2ban's configparserinc.

use std::collections::{HashMap, HashSet};

use crate::budget::{Budget, FILE_COST, MAX_INCLUDE_DEPTH, VALUE_COST};
use crate::error::{ConfigError, Origin};
use crate::ini::{self, Entry, OrdMap, Section};
use crate::tree::{ConfigTree, Loc};

/// The merged config of one logical name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layered {
    pub defaults: OrdMap,
    pub sections: Vec<Section>,
    index: HashMap<String, usize>,
    /// Display paths of the files read, in merge order.
    pub files: Vec<String>,
}

/// The name prefix of the hidden sections keeping pre-override values.
pub(crate) const KNOWN_PREFIX: &str = "KNOWN/";

impl Layered {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.index.get(name).map(|&i| &self.sections[i])
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Visible sections (no `KNOWN/*`), in first-appearance order.
    pub fn visible_sections(&self) -> impl Iterator<Item = &Section> {
        self.sections
            .iter()
            .filter(|s| !s.name.starts_with(KNOWN_PREFIX))
    }

    fn section_mut_or_insert(&mut self, name: &str, origin: &Origin) -> &mut Section {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.sections.push(Section {
                    name: name.to_string(),
                    origin: origin.clone(),
                    options: OrdMap::default(),
                });
                self.index.insert(name.to_string(), self.sections.len() - 1);
                self.sections.len() - 1
            }
        };
        &mut self.sections[i]
    }

    /// Add options to a section (created if needed), each key prefixed with `pref` — fail2ban's
    /// `merge_section` (used to expose filter options to the jail as `known/<opt>`).
    pub fn merge_into(
        &mut self,
        section: &str,
        options: &[(String, String)],
        pref: &str,
        origin: &Origin,
    ) {
        let sec = self.section_mut_or_insert(section, origin);
        for (k, v) in options {
            if !pref.is_empty() && k.starts_with(pref) {
                continue;
            }
            sec.options.insert(
                format!("{pref}{k}"),
                Entry {
                    value: v.clone(),
                    origin: origin.clone(),
                },
            );
        }
    }

    /// Add options to `[DEFAULT]` (overriding).
    pub fn merge_defaults(&mut self, options: &[(&str, String)], origin: &Origin) {
        for (k, v) in options {
            self.defaults.insert(
                (*k).to_string(),
                Entry {
                    value: v.clone(),
                    origin: origin.clone(),
                },
            );
        }
    }

    /// Merge one parsed file on top.
    fn merge_file(&mut self, file: ini::IniFile) {
        for (k, e) in file.defaults.iter() {
            self.defaults.insert(k.clone(), e.clone());
        }
        for sec in file.sections {
            let (name, options) = match split_conditional(&sec.name) {
                Some((base, cond)) => {
                    let mut renamed = OrdMap::default();
                    for (k, e) in sec.options.iter() {
                        renamed.insert(format!("{k}{cond}"), e.clone());
                    }
                    (base.to_string(), renamed)
                }
                None => (sec.name.clone(), sec.options),
            };
            if let Some(&i) = self.index.get(&name) {
                // Save the values about to be overridden (what `%(known/x)s` reads).
                let saved: Vec<(String, Entry)> = options
                    .keys()
                    .filter_map(|k| {
                        self.sections[i]
                            .options
                            .get(k)
                            .map(|e| (k.clone(), e.clone()))
                    })
                    .collect();
                let known = format!("{KNOWN_PREFIX}{name}");
                let ks = self.section_mut_or_insert(&known, &sec.origin);
                for (k, e) in saved {
                    ks.options.insert(k, e);
                }
                let s = &mut self.sections[i];
                for (k, e) in options.iter() {
                    s.options.insert(k.clone(), e.clone());
                }
            } else {
                self.sections.push(Section {
                    name: name.clone(),
                    origin: sec.origin.clone(),
                    options,
                });
                self.index.insert(name, self.sections.len() - 1);
            }
        }
    }
}

#[cfg(test)]
impl Layered {
    /// One file's text as a config of its own (property tests build many small ones).
    pub(crate) fn from_text(file: &str, text: &str) -> Result<Layered, ConfigError> {
        let mut l = Layered::default();
        l.merge_file(ini::parse(file, text)?);
        Ok(l)
    }
}

/// The bytes that merging `file` adds by renaming the options of its `[S?cond]` sections to
/// `key?cond` (a long condition over many options multiplies).
fn renaming_cost(file: &ini::IniFile) -> usize {
    file.sections
        .iter()
        .filter_map(|s| {
            let (_, cond) = split_conditional(&s.name)?;
            Some(cond.len().saturating_mul(s.options.keys().count()))
        })
        .fold(0, usize::saturating_add)
}

/// `Name?cond` (Name = word chars) → ("Name", "?cond").
pub(crate) fn split_conditional(name: &str) -> Option<(&str, &str)> {
    let q = name.find('?')?;
    let base = &name[..q];
    if base.is_empty()
        || q + 1 >= name.len()
        || !base.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((base, &name[q..]))
}

/// Reads and caches parsed files while one logical config is being assembled.
struct Reader<'a> {
    tree: &'a ConfigTree,
    /// Each file parsed once, with what merging it once more costs (its bytes and entries).
    cache: HashMap<Loc, Option<(ini::IniFile, usize)>>,
    budget: &'a Budget,
}

impl Reader<'_> {
    fn parsed(&mut self, loc: &Loc) -> Result<Option<&(ini::IniFile, usize)>, ConfigError> {
        if !self.cache.contains_key(loc) {
            let parsed = match self.tree.loc_read(loc)? {
                Some(text) => {
                    let origin = Origin::new(self.tree.loc_display(loc), 0);
                    self.charge(text.len(), &origin, "reading this file")?;
                    let parsed = ini::parse(&origin.file, &text)?;
                    let cost = text
                        .len()
                        .saturating_add(parsed.entries().saturating_mul(VALUE_COST))
                        .saturating_add(renaming_cost(&parsed));
                    self.charge(cost - text.len(), &origin, "parsing this file")?;
                    Some((parsed, cost))
                }
                None => None,
            };
            self.cache.insert(loc.clone(), parsed);
        }
        Ok(self.cache.get(loc).and_then(Option::as_ref))
    }

    /// Spend one file's worth of work plus `bytes`, or fail naming `origin`.
    fn charge(&self, bytes: usize, origin: &Origin, what: &str) -> Result<(), ConfigError> {
        self.budget
            .charge(bytes.saturating_add(FILE_COST))
            .map_err(|_| self.budget.error(origin, what))
    }

    /// `_getIncludes`: each file followed by its `.local` sibling (if it exists and is not
    /// already listed), each expanded with its includes, appended to `out`. `chain` holds the
    /// files whose includes are being expanded (outermost first).
    fn includes(
        &mut self,
        files: &[Loc],
        chain: &mut Vec<Loc>,
        out: &mut Vec<Loc>,
    ) -> Result<(), ConfigError> {
        // Hashed: `files` may be a `.d` directory of thousands.
        let listed: HashSet<&Loc> = files.iter().collect();
        let mut expanded: Vec<Loc> = Vec::new();
        for f in files {
            expanded.push(f.clone());
            if let Some(local) = local_sibling(f) {
                if !listed.contains(&local) && self.tree.loc_exists(&local) {
                    expanded.push(local);
                }
            }
        }
        for f in &expanded {
            self.includes_of(f, chain, out)?;
        }
        Ok(())
    }

    /// `before-includes..., file, after-includes...` for one file, appended to `out`; a file
    /// already in the include chain is skipped (loop guard); missing files yield nothing.
    /// Each entry costs budget (a diamond of includes can list one file exponentially
    /// often), and nesting deeper than `MAX_INCLUDE_DEPTH` is refused (each level recurses).
    fn includes_of(
        &mut self,
        file: &Loc,
        chain: &mut Vec<Loc>,
        out: &mut Vec<Loc>,
    ) -> Result<(), ConfigError> {
        let (before, after) = match self.parsed(file)? {
            None => return Ok(()),
            Some((p, _)) => match p.section("INCLUDES") {
                None => (None, None),
                Some(s) => (
                    s.options.get("before").cloned(),
                    s.options.get("after").cloned(),
                ),
            },
        };
        // fail2ban checks the chain *above* this file (so a file including itself is read
        // twice, once per level); reproduce that exactly.
        let mut lists: [Vec<(Loc, Origin)>; 2] = [Vec::new(), Vec::new()];
        for (slot, entry) in [before, after].into_iter().enumerate() {
            let Some(entry) = entry else { continue };
            for inc in entry.value.split('\n') {
                self.charge(inc.len(), &entry.origin, "following [INCLUDES]")?;
                let r = self.tree.resolve_include(file, inc);
                if chain.contains(&r) || inc.trim().is_empty() {
                    continue;
                }
                lists[slot].push((r, entry.origin.clone()));
            }
        }
        let [before, after] = lists;
        chain.push(file.clone());
        let r = self.expand_list(&before, chain, out).and_then(|()| {
            let origin = Origin::new(self.tree.loc_display(file), 0);
            self.charge(0, &origin, "following [INCLUDES]")?;
            out.push(file.clone());
            self.expand_list(&after, chain, out)
        });
        chain.pop();
        r
    }

    fn expand_list(
        &mut self,
        list: &[(Loc, Origin)],
        chain: &mut Vec<Loc>,
        out: &mut Vec<Loc>,
    ) -> Result<(), ConfigError> {
        for (inc, origin) in list {
            if chain.len() >= MAX_INCLUDE_DEPTH {
                return Err(ConfigError::value(
                    origin,
                    format!(
                        "including {} nests [INCLUDES] deeper than {MAX_INCLUDE_DEPTH} files",
                        self.tree.loc_display(inc)
                    ),
                    format!("at most {MAX_INCLUDE_DEPTH} levels of files including files"),
                ));
            }
            self.includes(std::slice::from_ref(inc), chain, out)?;
        }
        Ok(())
    }

    fn merge(&mut self, files: &[Loc]) -> Result<Layered, ConfigError> {
        let mut order = Vec::new();
        self.includes(files, &mut Vec::new(), &mut order)?;
        let mut out = Layered::default();
        for loc in &order {
            let Some(cost) = self.parsed(loc)?.map(|(_, cost)| *cost) else {
                continue;
            };
            // Merging copies the file's options once more: paid for before it is done.
            let display = self.tree.loc_display(loc);
            self.charge(cost, &Origin::new(display.clone(), 0), "merging this file")?;
            if let Some((p, _)) = self.parsed(loc)? {
                let p = p.clone();
                out.files.push(display);
                out.merge_file(p);
            }
        }
        Ok(out)
    }
}

fn local_sibling(loc: &Loc) -> Option<Loc> {
    match loc {
        Loc::Tree(rel) => {
            let stem = strip_ext(rel);
            Some(Loc::Tree(format!("{stem}.local")))
        }
        Loc::Disk(p) => Some(Loc::Disk(p.with_extension("local"))),
    }
}

/// Python `os.path.splitext(p)[0]`.
fn strip_ext(rel: &str) -> &str {
    let name_start = rel.rfind('/').map_or(0, |i| i + 1);
    let name = &rel[name_start..];
    match name.rfind('.') {
        Some(dot) if name[..dot].chars().any(|c| c != '.') => &rel[..name_start + dot],
        _ => rel,
    }
}

/// The files of logical name `name` in the tree: X.conf, X.d/*.conf, X.local, X.d/*.local.
/// A `.d` directory of more than `MAX_DIR_FILES` such files is refused.
fn layer_files(tree: &ConfigTree, name: &str, budget: &Budget) -> Result<Vec<Loc>, ConfigError> {
    let dir = format!("{name}.d");
    let max = budget.max_dir_files();
    let list = |suffix: &str| {
        tree.list_at_most(&dir, suffix, max).ok_or_else(|| {
            ConfigError::value(
                &Origin::new(tree.display(&dir), 0),
                format!("more than {max} `*{suffix}` files in this directory"),
                format!("at most {max} files per `.d` directory"),
            )
        })
    };
    let mut files = vec![format!("{name}.conf")];
    files.extend(list(".conf")?);
    files.push(format!("{name}.local"));
    files.extend(list(".local")?);
    Ok(files
        .into_iter()
        .filter(|f| tree.exists(f))
        .map(Loc::Tree)
        .collect())
}

/// Read logical config `name` from the tree, spending `budget`; `None` if none of its files
/// exists.
pub(crate) fn read(
    tree: &ConfigTree,
    name: &str,
    budget: &Budget,
) -> Result<Option<Layered>, ConfigError> {
    let files = layer_files(tree, name, budget)?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut r = Reader {
        tree,
        cache: HashMap::new(),
        budget,
    };
    r.merge(&files).map(Some)
}

/// Read one explicit file (with its includes), spending `budget`; `None` if it does not
/// exist.
pub(crate) fn read_explicit(
    tree: &ConfigTree,
    file: Loc,
    budget: &Budget,
) -> Result<Option<Layered>, ConfigError> {
    if !tree.loc_exists(&file) {
        return Ok(None);
    }
    let mut r = Reader {
        tree,
        cache: HashMap::new(),
        budget,
    };
    r.merge(&[file]).map(Some)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A temp dir with the given files.
    pub(crate) fn tree_with(files: &[(&str, &str)]) -> (tempfile::TempDir, ConfigTree) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
        }
        let tree = ConfigTree::new(&[], Some(dir.path().to_path_buf()));
        (dir, tree)
    }

    fn val(l: &Layered, sec: &str, key: &str) -> Option<String> {
        l.section(sec)?.options.get(key).map(|e| e.value.clone())
    }

    #[test]
    fn layer_order_d_before_local() {
        let (_d, t) = tree_with(&[
            ("jail.conf", "[a]\nx = conf\ny = conf\nz = conf\nw = conf\n"),
            ("jail.d/b.conf", "[a]\nx = d-b\ny = d-b\n"),
            ("jail.d/a.conf", "[a]\nx = d-a\ny = d-a\nz = d-a\n"),
            ("jail.local", "[a]\nx = local\n"),
            ("jail.d/z.local", "[a]\nw = dlocal\n"),
        ]);
        let l = read(&t, "jail", &Budget::new()).unwrap().unwrap();
        assert_eq!(val(&l, "a", "x").unwrap(), "local");
        assert_eq!(val(&l, "a", "y").unwrap(), "d-b");
        assert_eq!(val(&l, "a", "z").unwrap(), "d-a");
        assert_eq!(val(&l, "a", "w").unwrap(), "dlocal");
        // KNOWN keeps the value right before the last override.
        assert_eq!(val(&l, "KNOWN/a", "x").unwrap(), "d-b");
        assert_eq!(l.files.len(), 5);
        assert!(l.files[1].ends_with("jail.d/a.conf"));
    }

    #[test]
    fn includes_relative_with_local_and_missing_ignored() {
        let (_d, t) = tree_with(&[
            ("filter.d/x.conf", "[INCLUDES]\nbefore = common.conf\n  missing.conf\nafter = x-after.conf\n[Definition]\na = x\n"),
            ("filter.d/common.conf", "[DEFAULT]\nc = common\n[Definition]\na = common\nb = common\n"),
            ("filter.d/common.local", "[DEFAULT]\nc = commonlocal\n"),
            ("filter.d/x-after.conf", "[Definition]\nb = after\n"),
        ]);
        let l = read(&t, "filter.d/x", &Budget::new()).unwrap().unwrap();
        assert_eq!(val(&l, "Definition", "a").unwrap(), "x");
        assert_eq!(val(&l, "Definition", "b").unwrap(), "after");
        assert_eq!(l.defaults.get("c").unwrap().value, "commonlocal");
        let names: Vec<_> = l
            .files
            .iter()
            .map(|f| f.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["common.conf", "common.local", "x.conf", "x-after.conf"]
        );
    }

    #[test]
    fn include_loop_guard() {
        let (_d, t) = tree_with(&[
            ("a.conf", "[INCLUDES]\nbefore = b.conf\n[s]\nv = a\n"),
            ("b.conf", "[INCLUDES]\nbefore = a.conf\n[s]\nv = b\n"),
        ]);
        let l = read(&t, "a", &Budget::new()).unwrap().unwrap();
        let names: Vec<_> = l
            .files
            .iter()
            .map(|f| f.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(names, ["b.conf", "a.conf"]);
        assert_eq!(val(&l, "s", "v").unwrap(), "a");
    }

    #[test]
    fn conditional_sections_merge() {
        let (_d, t) = tree_with(&[(
            "action.d/x.conf",
            "[Init]\nt = ip4\n[Init?family=inet6]\nt = ip6\n[Definition?family=inet6]\nban = six\n",
        )]);
        let l = read(&t, "action.d/x", &Budget::new()).unwrap().unwrap();
        assert_eq!(val(&l, "Init", "t").unwrap(), "ip4");
        assert_eq!(val(&l, "Init", "t?family=inet6").unwrap(), "ip6");
        assert_eq!(val(&l, "Definition", "ban?family=inet6").unwrap(), "six");
        assert!(!l.has_section("Init?family=inet6"));
    }

    #[test]
    fn missing_name_is_none() {
        let (_d, t) = tree_with(&[]);
        assert!(read(&t, "filter.d/nope", &Budget::new()).unwrap().is_none());
    }
}
