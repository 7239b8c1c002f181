//! The config file source. Owns `ConfigTree`: an embedded set of files overlaid, file by file,
//! by an optional directory on disk. Receives relative paths (`filter.d/sshd.conf`) or absolute
//! ones; emits file contents with a display path, existence checks and sorted `.d` listings.
//! This is the only place in the crate that touches the file system.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// A config tree: an optional directory on disk overlaying an embedded tree file by file
/// (a file under the dir with the same relative path replaces the embedded one; every other
/// file falls back to the embedded tree). Relative paths use '/' e.g. "filter.d/sshd.conf".
#[derive(Debug, Clone)]
pub struct ConfigTree {
    embedded: BTreeMap<&'static str, &'static str>,
    overlay: Option<PathBuf>,
}

/// A file location: inside the tree (relative, '/'-separated) or an explicit path on disk.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Loc {
    Tree(String),
    Disk(PathBuf),
}

impl ConfigTree {
    /// A tree of `embedded` (relative path, content) files, overlaid by `overlay` if given.
    pub fn new(
        embedded: &'static [(&'static str, &'static str)],
        overlay: Option<PathBuf>,
    ) -> Self {
        ConfigTree {
            embedded: embedded.iter().copied().collect(),
            overlay,
        }
    }

    /// The overlay directory, if any.
    pub fn overlay(&self) -> Option<&Path> {
        self.overlay.as_deref()
    }

    /// Display path used in messages: the real path for overlay files, "<embedded>/rel" for
    /// embedded ones (and the overlay path for files that exist nowhere, when there is an overlay).
    pub fn display(&self, rel: &str) -> String {
        if let Some(dir) = &self.overlay {
            let p = dir.join(rel);
            if p.is_file() || !self.embedded.contains_key(rel) {
                return p.display().to_string();
            }
        }
        format!("<embedded>/{rel}")
    }

    /// Whether the relative file exists in the overlay or the embedded tree.
    pub fn exists(&self, rel: &str) -> bool {
        if let Some(dir) = &self.overlay {
            if dir.join(rel).is_file() {
                return true;
            }
        }
        self.embedded.contains_key(rel)
    }

    /// The content of a relative file, or `None` if it exists nowhere.
    pub fn read(&self, rel: &str) -> Result<Option<String>, ConfigError> {
        if let Some(dir) = &self.overlay {
            let p = dir.join(rel);
            if p.is_file() {
                return read_disk(&p);
            }
        }
        Ok(self.embedded.get(rel).map(|s| (*s).to_string()))
    }

    /// Relative paths of the files directly in `dir` (relative) whose name ends with `suffix`,
    /// sorted by name: the union of the overlay and embedded trees (Python `sorted(glob(...))`).
    pub fn list(&self, dir: &str, suffix: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        for rel in self.embedded.keys() {
            if let Some(name) = rel.strip_prefix(&prefix) {
                if !name.contains('/') && name.ends_with(suffix) && !name.starts_with('.') {
                    names.push(name.to_string());
                }
            }
        }
        if let Some(d) = &self.overlay {
            if let Ok(rd) = std::fs::read_dir(d.join(dir)) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.ends_with(suffix) && !name.starts_with('.') && e.path().is_file() {
                        names.push(name);
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names.into_iter().map(|n| format!("{prefix}{n}")).collect()
    }

    /// The directory used as `fail2ban_confpath`.
    pub(crate) fn confpath(&self) -> String {
        match &self.overlay {
            Some(d) => d.display().to_string().trim_end_matches('/').to_string(),
            None => "<embedded>".to_string(),
        }
    }

    pub(crate) fn loc_display(&self, loc: &Loc) -> String {
        match loc {
            Loc::Tree(rel) => self.display(rel),
            Loc::Disk(p) => p.display().to_string(),
        }
    }

    pub(crate) fn loc_read(&self, loc: &Loc) -> Result<Option<String>, ConfigError> {
        match loc {
            Loc::Tree(rel) => self.read(rel),
            Loc::Disk(p) => read_disk(p),
        }
    }

    pub(crate) fn loc_exists(&self, loc: &Loc) -> bool {
        match loc {
            Loc::Tree(rel) => self.exists(rel),
            Loc::Disk(p) => p.is_file(),
        }
    }

    /// Resolve an include path written in the file at `from` (relative to its directory, or
    /// absolute). Absolute paths under the overlay dir map back into the tree so that they
    /// keep falling back to embedded files.
    pub(crate) fn resolve_include(&self, from: &Loc, inc: &str) -> Loc {
        let inc_path = Path::new(inc);
        if inc_path.is_absolute() {
            if let Some(dir) = &self.overlay {
                if let Ok(rest) = inc_path.strip_prefix(dir) {
                    if let Some(rel) = normalize_rel(&rest.to_string_lossy()) {
                        return Loc::Tree(rel);
                    }
                }
            }
            return Loc::Disk(inc_path.to_path_buf());
        }
        match from {
            Loc::Tree(rel) => {
                let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let joined = if dir.is_empty() {
                    inc.to_string()
                } else {
                    format!("{dir}/{inc}")
                };
                match normalize_rel(&joined) {
                    Some(r) => Loc::Tree(r),
                    None => match &self.overlay {
                        Some(d) => Loc::Disk(d.join(joined)),
                        None => Loc::Tree(joined),
                    },
                }
            }
            Loc::Disk(p) => {
                let dir = p.parent().unwrap_or(Path::new("/"));
                let on_disk = dir.join(inc);
                if on_disk.exists() {
                    return Loc::Disk(on_disk);
                }
                // An explicit file outside the tree (fail2ban-regex's foreign filter): includes
                // missing next to it fall back to the tree, under the same directory name
                // (`filter.d/common.conf`) or `filter.d/`.
                let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
                let candidates = [
                    dir_name.map(|d| format!("{d}/{inc}")),
                    Some(format!("filter.d/{inc}")),
                ];
                for c in candidates.into_iter().flatten() {
                    if let Some(rel) = normalize_rel(&c) {
                        if self.exists(&rel) {
                            return Loc::Tree(rel);
                        }
                    }
                }
                Loc::Disk(on_disk)
            }
        }
    }
}

/// Normalise `a/./b/../c` to `a/c`; `None` if it climbs above the root.
pub(crate) fn normalize_rel(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

fn read_disk(p: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read(p) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(s)),
            Err(e) => Err(ConfigError::Io {
                path: p.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // An include naming a directory is skipped like a missing file (Python fails to read it).
        Err(_) if p.is_dir() => Ok(None),
        Err(e) => Err(ConfigError::Io {
            path: p.display().to_string(),
            source: e,
        }),
    }
}
