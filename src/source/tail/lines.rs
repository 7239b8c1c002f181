//! The partial line of one open file between two reads. Owns [`LineBuf`]: the bytes of a
//! line whose `\n` has not come yet, or, for a line already longer than the limit, only its
//! length; and whether reading began in the middle of a line. Cutting what is read into lines
//! is [`super::batch`]'s job; this is what it leaves for the next read, and what a file let
//! go of with an unfinished last line is judged by.
//!
//! A line longer than the limit is never passed on, not even its head: a cut line ends
//! wherever the writer's input made it end, and an attacker who controls part of a line
//! (a user name in a login form) controls where a cut falls — `… from 6.6.7.1` followed by
//! the real address would ban 6.6.7.1. So such a line is reported as skipped when its
//! `\n` comes, and reading goes on after that `\n`: its tail is never a line either. Only
//! its length is kept meanwhile: memory is bounded by the limit.

/// The partial line of one file. See the module documentation.
#[derive(Debug, Default)]
pub(super) struct LineBuf {
    /// The current line's bytes while it fits (at most `max_line`); empty once it does not.
    pub(super) bytes: Vec<u8>,
    /// The current line's length so far (past `bytes.len()` once it is too long).
    pub(super) len: u64,
    /// Drop everything up to the next `\n` without reporting it: reading started in the
    /// middle of a line (`tail` with no `\n` in sight), whose head is not ours to judge.
    pub(super) skip_partial: bool,
    /// Bytes looked at and moved by the reads so far (tests check it stays linear).
    #[cfg(test)]
    pub(super) work: u64,
}

impl LineBuf {
    /// A buffer that drops what comes before the first `\n` (see `skip_partial`).
    pub(super) fn mid_line() -> LineBuf {
        LineBuf {
            skip_partial: true,
            ..LineBuf::default()
        }
    }

    /// Forgets the partial line (reading restarts at a line start).
    pub(super) fn reset(&mut self) {
        self.bytes = Vec::new();
        self.len = 0;
        self.skip_partial = false;
    }

    /// Whether a partial line is held (bytes after the last `\n`, to be read whole later).
    pub(super) fn holds_partial(&self) -> bool {
        self.len > 0 && !self.skip_partial
    }

    /// Length of the partial line so far.
    pub(super) fn partial_len(&self) -> u64 {
        self.len
    }
}
