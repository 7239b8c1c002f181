//! The config file source. Owns `ConfigTree`: an embedded set of files overlaid, file by file,
//! by an optional directory on disk. Receives relative paths (`filter.d/sshd.conf`) or absolute
//! ones; emits file contents with a display path (files of at most `MAX_FILE_BYTES`, regular
//! files only), existence checks and sorted `.d` listings. This is the only place in the crate
//! that touches the file system.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::budget::MAX_FILE_BYTES;
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
        self.list_at_most(dir, suffix, usize::MAX)
            .unwrap_or_default()
    }

    /// `list`, or `None` as soon as more than `max` names are found (so a directory of
    /// millions of files costs no memory before it is refused).
    pub(crate) fn list_at_most(&self, dir: &str, suffix: &str, max: usize) -> Option<Vec<String>> {
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
                        // Embedded names may be counted twice here; the bound is generous.
                        if names.len() >= max.saturating_mul(2) {
                            return None;
                        }
                        names.push(name);
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        if names.len() > max {
            return None;
        }
        Some(names.into_iter().map(|n| format!("{prefix}{n}")).collect())
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

/// A config file's text. Missing files and directories read as `None` (Python skips an
/// include it cannot read); anything else that is not a regular file (a FIFO, which would
/// block the open, or `/dev/zero`, which never ends) and files over `MAX_FILE_BYTES` are
/// errors, checked before a byte is read.
fn read_disk(p: &Path) -> Result<Option<String>, ConfigError> {
    let io_err = |source: std::io::Error| ConfigError::Io {
        path: p.display().to_string(),
        source,
    };
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        return Err(io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let too_big = || {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ))
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    // The file may grow between the stat and the read: read at most one byte past the bound.
    let mut bytes = Vec::new();
    let file = std::fs::File::open(p).map_err(io_err)?;
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| io_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}
