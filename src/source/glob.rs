//! Log path patterns. Owns the expansion of a `logpath` pattern the way Python's
//! `glob.glob` does it (compat §1.6): `*`, `?` and `[...]` (`[!...]` negates) inside one path
//! component, no `**` recursion, names starting with `.` only matched by a component that
//! starts with `.`. Receives a pattern; emits the matching regular files (sorted, so the
//! order is stable from one expansion to the next) and the dangling symlinks it skipped.
//!
//! The caller re-expands periodically so files that appear later are picked up.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The result of [`expand`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// Existing files (symlinks to files included), sorted.
    pub files: Vec<PathBuf>,
    /// Symlinks whose target does not exist (fail2ban skips them with a warning).
    pub dangling: Vec<PathBuf>,
}

/// Whether `s` has glob magic (`*`, `?` or `[`), as Python's `glob.has_magic`.
pub fn has_magic(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Expands `pattern`. A pattern without magic yields itself if it exists.
pub fn expand(pattern: &str) -> Expansion {
    let mut found = Vec::new();
    let path = Path::new(pattern);
    let mut base = PathBuf::new();
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => base.push("/"),
            Component::CurDir if parts.is_empty() && base.as_os_str().is_empty() => base.push("."),
            Component::Prefix(_) => {}
            other => parts.push(other.as_os_str()),
        }
    }
    walk(&base, &parts, &mut found);
    let mut out = Expansion::default();
    for p in found {
        match fs::metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => out.files.push(p),
            Err(_) => {
                if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                    out.dangling.push(p);
                }
            }
        }
    }
    out.files.sort();
    out.files.dedup();
    out.dangling.sort();
    out
}

fn walk(dir: &Path, parts: &[&OsStr], found: &mut Vec<PathBuf>) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let bytes = first.as_bytes();
    let last = rest.is_empty();
    if !bytes.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
        let next = join(dir, first);
        // `lexists`, as Python: a dangling symlink is found (and reported by the caller).
        if fs::symlink_metadata(&next).is_ok() {
            if last {
                found.push(next);
            } else {
                walk(&next, rest, found);
            }
        }
        return;
    }
    let read_from = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = fs::read_dir(read_from) else {
        return;
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let nb = name.as_bytes();
        if nb.first() == Some(&b'.') && bytes.first() != Some(&b'.') {
            continue;
        }
        if !fnmatch(bytes, nb) {
            continue;
        }
        let next = join(dir, &name);
        if last {
            found.push(next);
        } else if fs::metadata(&next).is_ok_and(|m| m.is_dir()) {
            walk(&next, rest, found);
        }
    }
}

fn join(dir: &Path, name: &OsStr) -> PathBuf {
    if dir.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
}

/// Python's `fnmatch.fnmatchcase` on one path component (no `/` in either).
pub fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    // Iterative matching with one backtrack point for the last `*` (linear for the patterns
    // log paths use, never exponential).
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = class(pat, p, name[n]) {
                        if hit {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unclosed `[` is a literal.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pat[at] == b'['`. `None` if the class is not
/// closed (then `[` is literal); else whether `c` is in it and where the pattern continues.
fn class(pat: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = pat.get(i) == Some(&b'!');
    if negate {
        i += 1;
    }
    // A `]` right after `[` or `[!` is a member, not the end.
    let start = i;
    let mut end = None;
    let mut j = i;
    while j < pat.len() {
        if pat[j] == b']' && j > start {
            end = Some(j);
            break;
        }
        j += 1;
    }
    let end = end?;
    let mut hit = false;
    while i < end {
        if i + 2 < end && pat[i + 1] == b'-' {
            if pat[i] <= c && c <= pat[i + 2] {
                hit = true;
            }
            i += 3;
        } else {
            if pat[i] == c {
                hit = true;
            }
            i += 1;
        }
    }
    Some((hit != negate, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_python() {
        let yes: &[(&str, &str)] = &[
            ("*.log", "auth.log"),
            ("*", "x"),
            ("a?c", "abc"),
            ("[ab]*", "bx"),
            ("[!ab]*", "cx"),
            ("[a-c]x", "bx"),
            ("[]]", "]"),
            ("[!]]", "a"),
            ("a[", "a["),
            ("*access*log", "site-access.log"),
            ("[*]", "*"),
            ("**", "anything"),
        ];
        for (p, n) in yes {
            assert!(fnmatch(p.as_bytes(), n.as_bytes()), "{p} ~ {n}");
        }
        let no: &[(&str, &str)] = &[
            ("*.log", "auth.log.1"),
            ("a?c", "ac"),
            ("[ab]*", "cx"),
            ("[!ab]*", "ax"),
            ("[a-c]x", "dx"),
            ("x", "X"),
            ("[^a]", "b"), // `^` is a member in Python's fnmatch, not a negation
        ];
        for (p, n) in no {
            assert!(!fnmatch(p.as_bytes(), n.as_bytes()), "{p} !~ {n}");
        }
    }

    #[test]
    fn expands_files_and_skips_dangling_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["a.log", "b.log", "c.txt", ".hidden.log"] {
            fs::write(d.join(f), b"").unwrap();
        }
        fs::create_dir_all(d.join("sub1")).unwrap();
        fs::create_dir_all(d.join("sub2")).unwrap();
        fs::create_dir_all(d.join("dir.log")).unwrap();
        fs::write(d.join("sub1/x.log"), b"").unwrap();
        fs::write(d.join("sub2/x.log"), b"").unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling.log")).unwrap();
        std::os::unix::fs::symlink(d.join("a.log"), d.join("link.log")).unwrap();

        let pat = format!("{}/*.log", d.display());
        let e = expand(&pat);
        assert_eq!(
            e.files,
            ["a.log", "b.log", "link.log"].map(|f| d.join(f)).to_vec()
        );
        assert_eq!(e.dangling, [d.join("dangling.log")]);

        let e = expand(&format!("{}/sub[0-9]/x.log", d.display()));
        assert_eq!(e.files, [d.join("sub1/x.log"), d.join("sub2/x.log")]);
        let e = expand(&format!("{}/.h*", d.display()));
        assert_eq!(e.files, [d.join(".hidden.log")]);
        // Without magic: itself if it exists.
        assert_eq!(
            expand(&format!("{}/c.txt", d.display())).files,
            [d.join("c.txt")]
        );
        assert!(expand(&format!("{}/none.txt", d.display()))
            .files
            .is_empty());
        assert!(has_magic("/var/log/*.log") && !has_magic("/var/log/auth.log"));
    }
}
