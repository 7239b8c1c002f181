//! Cutting a file's bytes into lines. Owns the partial line of one open file ([`LineBuf`]):
//! the bytes of a line whose `\n` has not come yet, or, for a line already longer than the
//! limit, only its length. Receives chunks of bytes at known offsets; emits [`Piece`]s:
//! whole lines, and lines skipped for being longer than the limit.
//!
//! A line longer than the limit is never passed on, not even its head: a cut line ends
//! wherever the writer's input made it end, and an attacker who controls part of a line
//! (a user name in a login form) controls where a cut falls — `… from 6.6.7.1` followed by
//! the real address would ban 6.6.7.1. So such a line is reported as skipped when its
//! `\n` comes, and reading goes on after that `\n`: its tail is never a line either.
//!
//! Memory is bounded by the limit (the buffer never holds more than `max_line` bytes), and
//! work is linear: each byte is looked at once and copied at most once ([`LineBuf::work`]
//! counts both, for the property tests).

use std::ops::ControlFlow;

/// What [`LineBuf::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// A whole line, without its `\n` (a `\r` before it is the caller's to strip).
    Line(&'a [u8]),
    /// A line longer than the limit, skipped whole.
    Skipped {
        /// Its length, without the `\n`.
        len: u64,
    },
}

/// The partial line of one file. See the module documentation.
#[derive(Debug, Default)]
pub(super) struct LineBuf {
    /// The current line's bytes while it fits (at most `max_line`); empty once it does not.
    buf: Vec<u8>,
    /// The current line's length so far (past `buf.len()` once it is too long).
    len: u64,
    /// Drop everything up to the next `\n` without reporting it: reading started in the
    /// middle of a line (`tail` with no `\n` in sight), whose head is not ours to judge.
    skip_partial: bool,
    /// Bytes looked at plus bytes copied, over this buffer's life.
    work: u64,
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
        self.buf.clear();
        self.len = 0;
        self.skip_partial = false;
    }

    /// Whether a partial line is held (bytes after the last `\n`, to be read whole later).
    pub(super) fn holds_partial(&self) -> bool {
        self.len > 0 && !self.skip_partial
    }

    /// Whether the next byte fed starts a line of its own (nothing held, nothing to drop).
    pub(super) fn at_line_start(&self) -> bool {
        self.len == 0 && !self.skip_partial
    }

    /// Length of the partial line so far.
    pub(super) fn partial_len(&self) -> u64 {
        self.len
    }

    /// Bytes looked at plus bytes copied so far (linear in the input: the property tests
    /// check it).
    #[cfg(test)]
    pub(super) fn work(&self) -> u64 {
        self.work
    }

    /// Bytes held in memory at most so far (the buffer's capacity).
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Feeds `data`, which starts at file offset `base`: `out` gets each complete line (or
    /// skipped line) with the offset just after its `\n`. When `out` says `Break`, feeding
    /// stops there and the state is undefined: the caller [`reset`](Self::reset)s and reads
    /// again from the last line start it kept.
    pub(super) fn feed(
        &mut self,
        data: &[u8],
        base: u64,
        max_line: usize,
        out: &mut dyn FnMut(Piece<'_>, u64) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.work += data.len() as u64;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            let piece = &data[start..nl];
            let offset_after = base + nl as u64 + 1;
            start = nl + 1;
            if self.skip_partial {
                self.skip_partial = false;
                self.len = 0;
                continue;
            }
            let len = self.len + piece.len() as u64;
            let fits = len <= max_line as u64;
            let flow = if !fits {
                out(Piece::Skipped { len }, offset_after)
            } else if self.buf.is_empty() {
                // The whole line is in this chunk: no copy.
                out(Piece::Line(piece), offset_after)
            } else {
                self.work += piece.len() as u64;
                grow(&mut self.buf, piece.len(), max_line);
                self.buf.extend_from_slice(piece);
                out(Piece::Line(&self.buf), offset_after)
            };
            self.buf.clear();
            self.len = 0;
            flow?;
        }
        let rest = &data[start..];
        if self.skip_partial || rest.is_empty() {
            return ControlFlow::Continue(());
        }
        let len = self.len + rest.len() as u64;
        if len <= max_line as u64 {
            self.work += rest.len() as u64;
            grow(&mut self.buf, rest.len(), max_line);
            self.buf.extend_from_slice(rest);
        } else {
            // Too long already: only its length is kept from now on.
            self.buf.clear();
        }
        self.len = len;
        ControlFlow::Continue(())
    }
}

/// Makes room for `more` bytes, doubling as a `Vec` does but never past `max_line`: the
/// buffer's size is bounded by the limit, and growth stays amortised (a line fed one byte
/// at a time is not copied once per byte).
fn grow(buf: &mut Vec<u8>, more: usize, max_line: usize) {
    let needed = buf.len() + more;
    if needed <= buf.capacity() {
        return;
    }
    let target = needed
        .max(buf.capacity() * 2)
        .max(64)
        .min(max_line.max(needed));
    buf.reserve_exact(target - buf.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `chunks` in order; returns the lines (as `Ok`) and skips (as `Err(len)`), with
    /// their offsets.
    fn run(
        lb: &mut LineBuf,
        chunks: &[&[u8]],
        max_line: usize,
    ) -> Vec<(Result<Vec<u8>, u64>, u64)> {
        let mut out = Vec::new();
        let mut base = 0u64;
        for c in chunks {
            let flow = lb.feed(c, base, max_line, &mut |p, off| {
                out.push((
                    match p {
                        Piece::Line(l) => Ok(l.to_vec()),
                        Piece::Skipped { len } => Err(len),
                    },
                    off,
                ));
                ControlFlow::Continue(())
            });
            assert!(flow.is_continue());
            base += c.len() as u64;
        }
        out
    }

    #[test]
    fn a_too_long_line_is_skipped_whole_and_its_tail_is_not_a_line() {
        let mut lb = LineBuf::default();
        // The long line arrives in pieces; its tail after the limit holds a "line".
        let got = run(
            &mut lb,
            &[b"ok\n0123", b"456789 from 1.2.3.4", b"\nnext\n"],
            8,
        );
        assert_eq!(
            got,
            [
                (Ok(b"ok".to_vec()), 3),
                (Err(23), 27),
                (Ok(b"next".to_vec()), 32)
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_whole() {
        let mut lb = LineBuf::default();
        let got = run(&mut lb, &[b"0123", b"4567\n"], 8);
        assert_eq!(got, [(Ok(b"01234567".to_vec()), 9)]);
    }

    #[test]
    fn the_partial_last_line_is_held() {
        let mut lb = LineBuf::default();
        assert!(run(&mut lb, &[b"half"], 8).is_empty());
        assert!(lb.holds_partial());
        assert_eq!(lb.partial_len(), 4);
        assert!(run(&mut lb, &[b" but too long"], 8).is_empty());
        assert!(lb.holds_partial());
        assert_eq!(lb.partial_len(), 17);
        let got = run(&mut lb, &[b"\n"], 8);
        assert_eq!(got, [(Err(17), 1)]);
    }

    #[test]
    fn mid_line_start_drops_the_first_piece_silently() {
        let mut lb = LineBuf::mid_line();
        let got = run(&mut lb, &[b"tail of something long\nnew\n"], 8);
        assert_eq!(got, [(Ok(b"new".to_vec()), 27)]);
    }

    /// What the lines of `input` are, by the definition: split at `\n`, the last piece
    /// (no `\n` after it) held back, pieces longer than `max_line` skipped.
    fn expected(input: &[u8], max_line: usize) -> Vec<(Result<Vec<u8>, u64>, u64)> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, &b) in input.iter().enumerate() {
            if b == b'\n' {
                let piece = &input[start..i];
                let item = if piece.len() <= max_line {
                    Ok(piece.to_vec())
                } else {
                    Err(piece.len() as u64)
                };
                out.push((item, i as u64 + 1));
                start = i + 1;
            }
        }
        out
    }

    /// Cuts `input` at the given points (sorted, deduplicated, within bounds).
    fn chunks<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut out = Vec::new();
        let mut prev = 0;
        for p in points {
            out.push(&input[prev..p]);
            prev = p;
        }
        out.push(&input[prev..]);
        out
    }

    proptest! {
        /// Random bytes (newline-heavy so there are lines of every length), cut at random
        /// points: exactly the lines of the input, skips for the long ones, never a piece
        /// of a long line; memory bounded by the limit; work linear.
        #[test]
        fn any_chunking_gives_exactly_the_lines_of_the_input(
            input in proptest::collection::vec(
                prop_oneof![3 => Just(b'\n'), 1 => Just(b'\r'), 12 => any::<u8>()], 0..250),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            max_line in 1usize..40,
        ) {
            let mut lb = LineBuf::default();
            let got = run(&mut lb, &chunks(&input, &cuts), max_line);
            prop_assert_eq!(got, expected(&input, max_line));
            prop_assert!(lb.capacity() <= max_line.max(64), "{} > {}", lb.capacity(), max_line);
            prop_assert!(lb.work() <= 2 * input.len() as u64);
            // The held partial line is the input after its last `\n`.
            let tail = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            prop_assert_eq!(lb.partial_len(), (input.len() - tail) as u64);
        }

        /// One byte at a time, a long line: still linear work and bounded memory.
        #[test]
        fn byte_by_byte_stays_linear(len in 0usize..3000, max_line in 1usize..100) {
            let mut input = vec![b'x'; len];
            input.push(b'\n');
            let mut lb = LineBuf::default();
            let pieces: Vec<&[u8]> = input.chunks(1).collect();
            let got = run(&mut lb, &pieces, max_line);
            prop_assert_eq!(got.len(), 1);
            prop_assert!(lb.work() <= 2 * input.len() as u64);
            prop_assert!(lb.capacity() <= max_line.max(64));
        }
    }
}
