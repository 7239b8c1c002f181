//! File identity. Owns the [`Fingerprint`] of a log file: its device and inode plus a hash of
//! its first line (or of its first bytes while no full line exists yet). Receives an open
//! file; emits a fingerprint, a [`Verdict`] on whether an open file still holds the content it
//! was fingerprinted with (copytruncate/truncation detection), and the fingerprint's text form
//! stored in checkpoints.
//!
//! Why both parts: the inode tells a rename+create rotation apart at run time (the path now
//! names another inode), the first-line hash tells a truncated-and-rewritten file apart (same
//! inode, new content) and keeps a checkpoint from being applied to another file that reuses
//! an inode. The hash is FNV-1a (64 bit, written here) because it must stay the same across
//! builds and Rust releases: a checkpoint written by one version is read by the next.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// How many bytes at most are hashed. A first line longer than this is identified by its
/// first `HEAD_MAX` bytes (a [`Kind::Prefix`] that no longer grows).
pub const HEAD_MAX: usize = 4096;

/// What the hash covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The whole first line, its `\n` included: final.
    Line,
    /// The first `len` bytes of a file that had no `\n` in them yet. It grows (is
    /// recomputed) as the file grows, until it becomes a [`Kind::Line`] or reaches
    /// [`HEAD_MAX`].
    Prefix,
}

/// Identity of one log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    /// What `hash` covers.
    pub kind: Kind,
    /// Number of bytes hashed.
    pub len: u32,
    /// FNV-1a 64 of the first `len` bytes.
    pub hash: u64,
}

/// The result of [`Fingerprint::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The file still starts with the fingerprinted bytes. Carries the fingerprint as
    /// computed now (a [`Kind::Prefix`] may have grown).
    Same(Fingerprint),
    /// The file no longer starts with those bytes: it was truncated (and maybe rewritten).
    Changed(Fingerprint),
}

impl Fingerprint {
    /// Fingerprints an open file (one `fstat`, one positional read of at most [`HEAD_MAX`]
    /// bytes; the file position is not moved).
    pub fn of_file(file: &File) -> io::Result<Fingerprint> {
        let meta = file.metadata()?;
        let mut head = [0u8; HEAD_MAX];
        let n = read_head(file, &mut head)?;
        Ok(Self::of_head(meta.dev(), meta.ino(), &head[..n]))
    }

    /// Fingerprint of a file with this identity whose first bytes are `head` (at most
    /// [`HEAD_MAX`] are looked at).
    pub fn of_head(dev: u64, ino: u64, head: &[u8]) -> Fingerprint {
        let head = &head[..head.len().min(HEAD_MAX)];
        let (kind, covered) = match memchr::memchr(b'\n', head) {
            Some(i) => (Kind::Line, &head[..=i]),
            None => (Kind::Prefix, head),
        };
        Fingerprint {
            dev,
            ino,
            kind,
            // `covered` is at most HEAD_MAX (4096) bytes long.
            len: u32::try_from(covered.len()).unwrap_or(u32::MAX),
            hash: fnv1a(covered),
        }
    }

    /// Whether `file` still starts with the bytes this fingerprint was taken from. A
    /// [`Kind::Prefix`] whose bytes are still there is [`Verdict::Same`] and carries the grown
    /// fingerprint; the inode is not compared (the caller reads through its own descriptor).
    pub fn verify(&self, file: &File) -> io::Result<Verdict> {
        let meta = file.metadata()?;
        let mut head = [0u8; HEAD_MAX];
        let n = read_head(file, &mut head)?;
        let now = Self::of_head(meta.dev(), meta.ino(), &head[..n]);
        Ok(if self.matches_head(&head[..n]) {
            Verdict::Same(now)
        } else {
            Verdict::Changed(now)
        })
    }

    /// Whether a checkpoint taken with this fingerprint applies to `file`: same inode (not
    /// device: device numbers of some filesystems, e.g. btrfs, change across mounts) and the
    /// same first bytes.
    pub fn matches_file(&self, file: &File) -> io::Result<bool> {
        let meta = file.metadata()?;
        if meta.ino() != self.ino {
            return Ok(false);
        }
        let mut head = [0u8; HEAD_MAX];
        let n = read_head(file, &mut head)?;
        Ok(self.matches_head(&head[..n]))
    }

    /// Whether a file starting with `head` starts with the bytes this fingerprint covers.
    pub fn matches_head(&self, head: &[u8]) -> bool {
        let len = self.len as usize;
        if head.len() < len {
            return false;
        }
        let covered = &head[..len];
        if fnv1a(covered) != self.hash {
            return false;
        }
        match self.kind {
            // The line must end exactly there (the `\n` is part of the hash) and have no
            // earlier `\n`.
            Kind::Line => memchr::memchr(b'\n', covered) == Some(len.wrapping_sub(1)),
            Kind::Prefix => memchr::memchr(b'\n', covered).is_none(),
        }
    }

    /// Parses the text form written by `Display` (`v1:DEV:INO:L|P LEN:HASH`).
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let mut it = s.split(':');
        if it.next()? != "v1" {
            return None;
        }
        let dev = it.next()?.parse().ok()?;
        let ino = it.next()?.parse().ok()?;
        let kl = it.next()?;
        let kind = match kl.as_bytes().first()? {
            b'L' => Kind::Line,
            b'P' => Kind::Prefix,
            _ => return None,
        };
        let len = kl.get(1..)?.parse().ok()?;
        let hash = u64::from_str_radix(it.next()?, 16).ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(Fingerprint {
            dev,
            ino,
            kind,
            len,
            hash,
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            Kind::Line => 'L',
            Kind::Prefix => 'P',
        };
        write!(
            f,
            "v1:{}:{}:{}{}:{:016x}",
            self.dev, self.ino, k, self.len, self.hash
        )
    }
}

/// Reads up to `buf.len()` bytes from offset 0 (short reads retried until EOF).
fn read_head(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// FNV-1a, 64 bit: stable forever, which is what a stored checkpoint needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> File {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        File::open(p).unwrap()
    }

    #[test]
    fn line_and_prefix() {
        let fp = Fingerprint::of_head(1, 2, b"first\nsecond\n");
        assert_eq!((fp.kind, fp.len), (Kind::Line, 6));
        let fp = Fingerprint::of_head(1, 2, b"firs");
        assert_eq!((fp.kind, fp.len), (Kind::Prefix, 4));
        let long = vec![b'x'; HEAD_MAX + 10];
        let fp = Fingerprint::of_head(1, 2, &long);
        assert_eq!((fp.kind, fp.len as usize), (Kind::Prefix, HEAD_MAX));
    }

    #[test]
    fn text_round_trip() {
        for fp in [
            Fingerprint::of_head(2049, 77, b"a line\n"),
            Fingerprint::of_head(0, u64::MAX, b"partial"),
        ] {
            assert_eq!(Fingerprint::parse(&fp.to_string()), Some(fp));
        }
        for bad in [
            "",
            "v2:1:2:L3:00",
            "v1:1:2:X3:00",
            "v1:1:2:L3:zz",
            "v1:1:2:L3:00:9",
        ] {
            assert_eq!(Fingerprint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn verify_detects_truncation_and_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, b"one\ntwo\n").unwrap();
        let f = File::open(&p).unwrap();
        let fp = Fingerprint::of_file(&f).unwrap();
        assert!(matches!(fp.verify(&f).unwrap(), Verdict::Same(_)));
        // Appending keeps the identity.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        assert!(matches!(fp.verify(&f).unwrap(), Verdict::Same(_)));
        // Truncated and rewritten with a different first line, same inode.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap()
            .write_all(b"uno\ndos\ntres\nquatro\n")
            .unwrap();
        assert!(matches!(fp.verify(&f).unwrap(), Verdict::Changed(_)));
        // Truncated to nothing.
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(fp.verify(&f).unwrap(), Verdict::Changed(_)));
    }

    #[test]
    fn prefix_grows_into_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = file_with(&dir, "log", b"begin");
        let fp = Fingerprint::of_file(&f).unwrap();
        assert_eq!(fp.kind, Kind::Prefix);
        let p = dir.path().join("log");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"ning\nnext\n")
            .unwrap();
        match fp.verify(&f).unwrap() {
            Verdict::Same(now) => assert_eq!((now.kind, now.len), (Kind::Line, 10)),
            v => panic!("{v:?}"),
        }
        assert!(fp.matches_file(&f).unwrap());
        // A different file with the same length but other bytes does not match.
        let g = file_with(&dir, "other", b"BEGINning\n");
        assert!(!fp.matches_head(b"BEGINning\n"));
        assert!(!fp.matches_file(&g).unwrap());
    }

    #[test]
    fn checkpoint_needs_same_inode() {
        let dir = tempfile::tempdir().unwrap();
        let a = file_with(&dir, "a", b"same first line\n");
        let b = file_with(&dir, "b", b"same first line\n");
        let fa = Fingerprint::of_file(&a).unwrap();
        assert!(fa.matches_file(&a).unwrap());
        assert!(!fa.matches_file(&b).unwrap());
    }
}
