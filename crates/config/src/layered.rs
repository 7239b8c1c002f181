//! A logical config (`jail`, `fail2ban`, `filter.d/sshd`, ...) merged from its layered files.
//! Owns the file order (X.conf → X.d/*.conf → X.local → X.d/*.local, each file preceded by its
//! `[INCLUDES] before` and followed by its `after` files, recursively, with `.local` siblings)
//! and the merge (DEFAULT updated; sections updated with the overridden values saved under
//! `KNOWN/<section>`; `[S?cond]` sections merged into `[S]` as `key?cond`). Receives a tree and a
//! name (or one explicit file); emits a `Layered` config. Mirrors fail2ban's configparserinc.

use std::collections::HashMap;

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
    cache: HashMap<Loc, Option<ini::IniFile>>,
}

impl Reader<'_> {
    fn parsed(&mut self, loc: &Loc) -> Result<Option<&ini::IniFile>, ConfigError> {
        if !self.cache.contains_key(loc) {
            let parsed = match self.tree.loc_read(loc)? {
                Some(text) => Some(ini::parse(&self.tree.loc_display(loc), &text)?),
                None => None,
            };
            self.cache.insert(loc.clone(), parsed);
        }
        Ok(self.cache.get(loc).and_then(Option::as_ref))
    }

    /// `_getIncludes`: each file followed by its `.local` sibling (if it exists and is not
    /// already listed), each expanded with its includes.
    fn includes(&mut self, files: &[Loc], seen: &[Loc]) -> Result<Vec<Loc>, ConfigError> {
        let mut expanded: Vec<Loc> = Vec::new();
        for f in files {
            expanded.push(f.clone());
            if let Some(local) = local_sibling(f) {
                if !files.contains(&local) && self.tree.loc_exists(&local) {
                    expanded.push(local);
                }
            }
        }
        let mut out = Vec::new();
        for f in &expanded {
            out.extend(self.includes_of(f, seen)?);
        }
        Ok(out)
    }

    /// `before-includes..., file, after-includes...` for one file; a file already in the
    /// include chain is skipped (loop guard); missing files yield nothing.
    fn includes_of(&mut self, file: &Loc, seen: &[Loc]) -> Result<Vec<Loc>, ConfigError> {
        let (before, after) = match self.parsed(file)? {
            None => return Ok(Vec::new()),
            Some(p) => match p.section("INCLUDES") {
                None => (None, None),
                Some(s) => (
                    s.options.get("before").map(|e| e.value.clone()),
                    s.options.get("after").map(|e| e.value.clone()),
                ),
            },
        };
        let mut chain = seen.to_vec();
        chain.push(file.clone());
        let mut lists = [Vec::new(), Vec::new()];
        for (slot, value) in [before, after].into_iter().enumerate() {
            let Some(value) = value else { continue };
            for inc in value.split('\n') {
                let r = self.tree.resolve_include(file, inc);
                // fail2ban checks the chain *above* this file (so a file including itself is
                // read twice, once per level); reproduce that exactly.
                if seen.contains(&r) {
                    continue;
                }
                if inc.trim().is_empty() {
                    continue;
                }
                let sub = self.includes(std::slice::from_ref(&r), &chain)?;
                lists[slot].extend(sub);
            }
        }
        let [mut before, after] = lists;
        before.push(file.clone());
        before.extend(after);
        Ok(before)
    }

    fn merge(&mut self, files: &[Loc]) -> Result<Layered, ConfigError> {
        let order = self.includes(files, &[])?;
        let mut out = Layered::default();
        for loc in &order {
            if let Some(p) = self.parsed(loc)? {
                let p = p.clone();
                out.files.push(self.tree.loc_display(loc));
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
pub(crate) fn layer_files(tree: &ConfigTree, name: &str) -> Vec<Loc> {
    let mut files = vec![format!("{name}.conf")];
    files.extend(tree.list(&format!("{name}.d"), ".conf"));
    files.push(format!("{name}.local"));
    files.extend(tree.list(&format!("{name}.d"), ".local"));
    files
        .into_iter()
        .filter(|f| tree.exists(f))
        .map(Loc::Tree)
        .collect()
}

/// Read logical config `name` from the tree; `None` if none of its files exists.
pub(crate) fn read(tree: &ConfigTree, name: &str) -> Result<Option<Layered>, ConfigError> {
    let files = layer_files(tree, name);
    if files.is_empty() {
        return Ok(None);
    }
    let mut r = Reader {
        tree,
        cache: HashMap::new(),
    };
    r.merge(&files).map(Some)
}

/// Read one explicit file (with its includes); `None` if it does not exist.
pub(crate) fn read_explicit(tree: &ConfigTree, file: Loc) -> Result<Option<Layered>, ConfigError> {
    if !tree.loc_exists(&file) {
        return Ok(None);
    }
    let mut r = Reader {
        tree,
        cache: HashMap::new(),
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
        let l = read(&t, "jail").unwrap().unwrap();
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
        let l = read(&t, "filter.d/x").unwrap().unwrap();
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
        let l = read(&t, "a").unwrap().unwrap();
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
        let l = read(&t, "action.d/x").unwrap().unwrap();
        assert_eq!(val(&l, "Init", "t").unwrap(), "ip4");
        assert_eq!(val(&l, "Init", "t?family=inet6").unwrap(), "ip6");
        assert_eq!(val(&l, "Definition", "ban?family=inet6").unwrap(), "six");
        assert!(!l.has_section("Init?family=inet6"));
    }

    #[test]
    fn missing_name_is_none() {
        let (_d, t) = tree_with(&[]);
        assert!(read(&t, "filter.d/nope").unwrap().is_none());
    }
}
