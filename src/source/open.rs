//! Opening a log path. Owns the one way the file source opens a configured path: without
//! ever blocking, and only for a regular file. Receives a path; emits an open [`File`] or
//! an [`OpenError`] saying why not.
//!
//! Why: a path in the config names whatever the file system holds there now. `open()` of a
//! FIFO blocks until a writer comes (the source thread then never sees its stop request,
//! and SIGTERM never completes); `/dev/zero` or a terminal reads forever. So the path is
//! opened with `O_NONBLOCK` (an open that never waits; it changes nothing for a regular
//! file) and `O_NOCTTY`, and the type is checked on the opened descriptor (`fstat`): a check
//! of the path alone could be raced by a rename between it and the open. (The path is
//! looked at first too, only so that a FIFO is not opened at all: opening its read end
//! would wake a writer waiting for a reader, which would then write into a pipe we close.)

use std::fs::FileType;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Why a path was not opened.
#[derive(Debug)]
pub enum OpenError {
    /// The open (or the `fstat` after it) failed.
    Io(io::Error),
    /// The path names something that is not a regular file (its kind, for the operator:
    /// `a FIFO`, `a character device`…). Closed again without reading.
    NotRegular(&'static str),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => e.fmt(f),
            OpenError::NotRegular(kind) => write!(f, "{kind}, not a regular file"),
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed), never blocking.
pub fn open_regular(path: &Path) -> Result<File, OpenError> {
    let t = std::fs::metadata(path)?.file_type();
    if !t.is_file() {
        return Err(OpenError::NotRegular(kind_of(t)));
    }
    // The bits are small positive constants; the cast cannot change them.
    let flags = (OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    // The descriptor's type is the one that counts (the path may have changed meanwhile).
    let t = file.metadata()?.file_type();
    if t.is_file() {
        return Ok(file);
    }
    Err(OpenError::NotRegular(kind_of(t)))
}

/// What a file type is, in words for a warning (`a FIFO`, `a character device`…).
pub fn kind_of(t: FileType) -> &'static str {
    if t.is_file() {
        "a regular file"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("log");
        std::fs::write(&f, b"x\n").unwrap();
        assert!(open_regular(&f).is_ok());
        // A symlink to a regular file is followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(open_regular(&link).is_ok());
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            open_regular(&zero),
            Err(OpenError::NotRegular("a character device"))
        ));
        assert!(matches!(
            open_regular(dir.path()),
            Err(OpenError::NotRegular("a directory"))
        ));
        let missing = open_regular(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, OpenError::Io(ref e) if e.kind() == io::ErrorKind::NotFound));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // A blocking open would wait here forever (no writer ever comes).
        assert!(matches!(
            open_regular(&fifo),
            Err(OpenError::NotRegular("a FIFO"))
        ));
    }
}
