//! Batches of lines: the unit a [`super::Tailer`] passes on. Owns [`LineBatch`] (complete
//! lines of one file, in order, in one buffer) and the [`Batcher`] that fills one while a
//! file is read: the file is read straight into the batch's buffer, which is cut into lines
//! in place, and the batch handed over when it is full or when reading stops. Receives
//! reads at known file offsets and the partial line left by the last read
//! ([`super::lines::LineBuf`]); emits batches through the tailer's callback, lines skipped
//! for length as notices, and moves the file's checkpoint offset only past batches the
//! callback took (and past skipped lines once all before them was taken).
//!
//! One event per batch instead of one per line: a busy log costs a channel operation and an
//! allocation per few hundred lines, not per line, no copy of its bytes but the kernel's,
//! and the reader can skip through a batch without touching most of its lines. Nothing
//! waits to fill a batch: whatever was read goes out when the file has nothing more to give
//! right now, so a single line is handed over as soon as it is read.
//!
//! Memory is bounded: a batch's buffer holds at most its limit in lines plus the current
//! line (at most `max_line`: the bytes of a longer line are let go of as they come, only
//! its length kept) plus one read, in room that grows by doubling (so at most twice that);
//! what a batch keeps when handed over is at most an eighth more than its lines. Work is
//! linear: each byte is looked at once, moved down at most once (lines after a cut `\r` or a
//! skipped line close the gap) and copied at most once when a batch is handed over (the
//! smaller side of the cut); the tests count it.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;

use super::lines::LineBuf;
use super::{trim_cr, Notice, TailOptions, TailStats};

/// Most bytes read at once.
const READ_CHUNK: usize = 64 * 1024;
/// Fewest bytes worth a read (less when the batch limit is smaller): a batch with less room
/// left than this is handed over first.
const MIN_READ: usize = 4096;

/// Complete lines of one file, in file order, in one buffer, with where each ends. Each
/// line is followed by one `\n`; a line holds no `\n` (its terminator — `\n` and any `\r`
/// before it, as fail2ban's `rstrip('\r\n')` — is cut off before the `\n` is written). Raw
/// bytes: invalid UTF-8 is the reader's to decode. Bounded: at most
/// [`super::TailOptions::batch_bytes`] bytes and a sixteenth of that in lines, or one line
/// when a single line is longer (lines are at most [`super::TailOptions::max_line`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineBatch {
    bytes: Vec<u8>,
    /// Index in `bytes` of each line's `\n`: the tailer found them anyway, and the reader
    /// need not look for them again.
    ends: Vec<usize>,
    offset_after: u64,
}

impl LineBatch {
    /// A batch of the lines of `text` (lines each ended by `\n`; a last line without one is
    /// given one), ending at file offset `offset_after`. For tests and for sources that
    /// gather lines themselves.
    pub fn from_text(mut text: Vec<u8>, offset_after: u64) -> LineBatch {
        if text.last().is_some_and(|&b| b != b'\n') {
            text.push(b'\n');
        }
        LineBatch {
            ends: memchr::memchr_iter(b'\n', &text).collect(),
            bytes: text,
            offset_after,
        }
    }

    /// The lines, each followed by `\n`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Index in [`Self::bytes`] of each line's `\n`, in order: line `i` is
    /// `bytes[ends[i - 1] + 1..ends[i]]` (from 0 for the first).
    pub fn ends(&self) -> &[usize] {
        &self.ends
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Offset just after the last line's `\n` in the file it came from: where the next line
    /// starts, and the checkpoint once this batch is taken.
    pub fn offset_after(&self) -> u64 {
        self.offset_after
    }

    /// The room its buffers hold (bytes, line ends): what it costs in memory.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> (usize, usize) {
        (self.bytes.capacity(), self.ends.capacity())
    }

    /// The lines, without their `\n`.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|e| e + 1));
        starts
            .zip(&self.ends)
            .map(|(s, &e)| self.bytes.get(s..e).unwrap_or_default())
    }
}

/// Reads a file into batches and cuts them into lines (see the module documentation).
///
/// The buffer of the batch being filled: `bytes[..kept]` its lines, each with its `\n`;
/// `bytes[line..]` the current line as far as read (no `\n` in `bytes[line..scanned]`, the
/// rest not looked at yet); `bytes[kept..line]` bytes let go of (a cut `\r`, a skipped
/// line, a dropped head), closed up as lines move down.
pub(super) struct Batcher<'e> {
    batch: LineBatch,
    kept: usize,
    line: usize,
    scanned: usize,
    /// The current line is longer than `max_line`: its length so far (its bytes are gone).
    long: Option<u64>,
    /// The current line began before reading did: dropped up to its `\n`, unreported.
    drop_first: bool,
    /// Most bytes of lines in a batch (a longer single line goes alone).
    limit: usize,
    /// Most lines in a batch: `limit / 16`, so that the line ends of a flood of short lines
    /// weigh at most half the bytes.
    max_lines: usize,
    /// Longest line passed on.
    max_line: usize,
    /// Fewest bytes worth a read.
    min_read: usize,
    emit: &'e mut dyn FnMut(LineBatch) -> ControlFlow<()>,
    /// Bytes looked at and moved (tests only).
    #[cfg(test)]
    work: u64,
}

impl<'e> Batcher<'e> {
    /// A batcher continuing from the partial line `held` left (taken from it: it is
    /// [`Self::finish`]'s to give it back, or the caller's to reset it).
    pub(super) fn new(
        opts: &TailOptions,
        held: &mut LineBuf,
        emit: &'e mut dyn FnMut(LineBatch) -> ControlFlow<()>,
    ) -> Self {
        let bytes = std::mem::take(&mut held.bytes);
        let long = (held.len > bytes.len() as u64).then_some(held.len);
        let limit = opts.batch_bytes.max(1);
        Batcher {
            scanned: bytes.len(),
            batch: LineBatch {
                bytes,
                ends: Vec::new(),
                offset_after: 0,
            },
            kept: 0,
            line: 0,
            long,
            drop_first: held.skip_partial,
            limit,
            max_lines: (limit / 16).max(1),
            max_line: opts.max_line,
            min_read: MIN_READ.min(limit),
            emit,
            #[cfg(test)]
            work: 0,
        }
    }

    /// How much to read next, at most `most`: what fits in the batch, or `min_read` (the
    /// batch handed over first when its lines leave less room than that). `Break`: that
    /// batch was not taken.
    pub(super) fn room(
        &mut self,
        most: usize,
        offset: &mut u64,
        stats: &mut TailStats,
    ) -> ControlFlow<(), usize> {
        if self.batch.bytes.len() + self.min_read > self.limit {
            self.flush(self.line, offset, stats)?;
        }
        let room = self.limit.saturating_sub(self.batch.bytes.len());
        ControlFlow::Continue(most.min(READ_CHUNK).min(room.max(self.min_read)).max(1))
    }

    /// Reads from `file` at `pos` into the batch, after what it holds, into its spare room
    /// (never zeroed first): `want` bytes at most, unless a short read at the end of the
    /// file left more room (then as much as that room: still within the batch's bound). How
    /// many (0: the end of the file).
    pub(super) fn read(&mut self, file: &File, pos: u64, want: usize) -> io::Result<usize> {
        // Grown as a `Vec` grows (doubling), so that a line written a byte at a time is not
        // copied once per byte: its buffer stays within twice its bound.
        let (len, room) = (self.batch.bytes.len(), self.batch.bytes.capacity());
        self.batch.bytes.reserve(want.max(1));
        if self.batch.bytes.capacity() != room {
            // what the reallocation may have copied
            self.count_work(len);
        }
        let b = &mut self.batch.bytes;
        loop {
            match rustix::io::pread(file, rustix::buffer::spare_capacity(b), pos) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Cuts what the last [`Self::read`] brought (read at file offset `at`) into lines:
    /// whole lines join the batch (a `\r` before the `\n` cut off), a line longer than
    /// `max_line` is skipped whole and reported in `notices`, the batch is handed over when
    /// full. `offset` (the file's first byte not yet passed on) moves past batches taken and
    /// skipped lines. `Break`: a batch was not taken.
    pub(super) fn cut(
        &mut self,
        mut at: u64,
        offset: &mut u64,
        stats: &mut TailStats,
        notices: &mut Vec<Notice>,
    ) -> ControlFlow<()> {
        let mut scan = self.scanned;
        self.count_work(self.batch.bytes.len() - scan);
        while let Some(k) = memchr::memchr(b'\n', &self.batch.bytes[scan..]) {
            let nl = scan + k;
            let after = at + k as u64 + 1;
            at = after;
            scan = nl + 1;
            let mut start = self.line;
            self.line = nl + 1;
            if std::mem::take(&mut self.drop_first) {
                continue;
            }
            let len = self.long.take().unwrap_or(0) + (nl - start) as u64;
            if len > self.max_line as u64 {
                // What was read before it goes first: a batch not taken is read again, and
                // this line with it.
                scan -= self.flush(self.line, offset, stats)?;
                stats.skipped_lines += 1;
                stats.skipped_bytes += len;
                notices.push(Notice::Skipped { len });
                *offset = after;
                continue;
            }
            let keep = trim_cr(&self.batch.bytes[start..nl]).len();
            let full = self.kept + keep + 1 > self.limit || self.batch.ends.len() >= self.max_lines;
            if full && !self.batch.ends.is_empty() {
                let shift = self.flush(start, offset, stats)?;
                start -= shift;
                scan -= shift;
            }
            if self.kept != start {
                self.batch.bytes.copy_within(start..start + keep, self.kept);
                self.count_work(keep);
            }
            let b = &mut self.batch.bytes;
            // in place: the `\n` itself, or the first `\r` cut off
            b[self.kept + keep] = b'\n';
            self.grow_ends();
            self.batch.ends.push(self.kept + keep);
            self.kept += keep + 1;
            self.batch.offset_after = after;
        }
        // The current line: its bytes let go of once it is too long (only its length kept).
        let cur = self.batch.bytes.len() - self.line;
        if self.drop_first {
            self.batch.bytes.truncate(self.line);
        } else if let Some(l) = self.long {
            self.long = Some(l + cur as u64);
            self.batch.bytes.truncate(self.line);
        } else if cur > self.max_line {
            self.long = Some(cur as u64);
            self.batch.bytes.truncate(self.line);
        }
        // The gap closed: the current line moves down after the lines kept.
        if self.kept < self.line {
            let end = self.batch.bytes.len();
            self.count_work(end - self.line);
            self.batch.bytes.copy_within(self.line..end, self.kept);
            self.batch.bytes.truncate(self.kept + (end - self.line));
            self.line = self.kept;
        }
        self.scanned = self.batch.bytes.len();
        ControlFlow::Continue(())
    }

    /// Hands the last batch over and gives the partial line back to `held` for the next
    /// read. `Break`: the batch was not taken (the caller resets `held` and reads again).
    pub(super) fn finish(
        mut self,
        offset: &mut u64,
        stats: &mut TailStats,
        held: &mut LineBuf,
    ) -> ControlFlow<()> {
        self.flush(self.line, offset, stats)?;
        // After the flush (or with no line kept) the buffer holds the current line alone.
        // Kept as it is (room included) for the next read: shrinking it here and growing it
        // there would copy a line being written in small pieces once per piece.
        let mut bytes = std::mem::take(&mut self.batch.bytes);
        let gap = self.line.min(bytes.len());
        if gap > 0 {
            self.count_work(bytes.len() - gap);
            bytes.drain(..gap);
        }
        held.len = self.long.unwrap_or(bytes.len() as u64);
        held.bytes = bytes;
        held.skip_partial = self.drop_first;
        #[cfg(test)]
        {
            held.work += self.work;
        }
        ControlFlow::Continue(())
    }

    /// Room for one more line end, growing straight to the most a batch holds.
    fn grow_ends(&mut self) {
        let e = &mut self.batch.ends;
        if e.len() == e.capacity() {
            let first = (self.limit / 32 + 1).min(self.max_lines);
            let most = if e.is_empty() { first } else { self.max_lines };
            e.reserve_exact(most.saturating_sub(e.len()).max(1));
        }
    }

    /// Hands the batch over, if it holds lines; what follows them from `carry` on (the
    /// current line, and lines not cut yet) stays for the next batch. Of the two sides the
    /// smaller is copied: the rest into a new buffer (the usual case: a partial line; the
    /// buffer's indices then move down by the returned amount, `carry`), or the lines out of
    /// the buffer, which stays (0 returned; the lines cut next move down over the gap). So a
    /// byte is copied once at most, whatever the lines' lengths. Taken: `offset` (the file's
    /// first byte not yet passed on) moves past the batch and its lines are counted.
    /// `Break`: not taken; `offset` stays at the batch's first line, which the caller reads
    /// again next time.
    fn flush(
        &mut self,
        carry: usize,
        offset: &mut u64,
        stats: &mut TailStats,
    ) -> ControlFlow<(), usize> {
        if self.batch.is_empty() {
            return ControlFlow::Continue(0);
        }
        let rest = self.batch.bytes.len().saturating_sub(carry);
        let shift = if rest <= self.kept { carry } else { 0 };
        let mut bytes = if shift > 0 {
            let next = self.batch.bytes.get(carry..).unwrap_or_default().to_vec();
            let mut bytes = std::mem::replace(&mut self.batch.bytes, next);
            bytes.truncate(self.kept);
            bytes
        } else {
            self.batch.bytes[..self.kept].to_vec()
        };
        self.count_work(rest.min(self.kept));
        // A batch keeps little more room than its lines: a live line read into a big
        // buffer does not hold the whole buffer in the queue.
        if bytes.capacity() > bytes.len() + self.limit / 8 {
            bytes.shrink_to_fit();
        }
        let batch = LineBatch {
            bytes,
            ends: std::mem::take(&mut self.batch.ends),
            offset_after: self.batch.offset_after,
        };
        let (lines, after) = (batch.len() as u64, batch.offset_after);
        (self.emit)(batch)?;
        stats.lines += lines;
        *offset = after;
        self.kept = 0;
        self.line -= shift;
        self.scanned = self.scanned.saturating_sub(shift);
        ControlFlow::Continue(shift)
    }

    /// Counts bytes looked at or moved (the tests check that work stays linear).
    #[inline]
    fn count_work(&mut self, bytes: usize) {
        #[cfg(test)]
        {
            self.work += bytes as u64;
        }
        #[cfg(not(test))]
        let _ = bytes;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    /// What reading gave: the lines and the skipped lengths in order, the offset after each
    /// batch, the checkpoint offset at the end, the partial line left, the most room a
    /// batch's buffer took while reading.
    struct Run {
        lines: Vec<Vec<u8>>,
        skips: Vec<u64>,
        batch_ends: Vec<u64>,
        offset: u64,
        held: LineBuf,
        most_room: usize,
    }

    /// Appends `chunks` to a file one after the other and reads after each, as the tailer
    /// does (reads of at most `most` bytes), starting from `held`.
    fn run(chunks: &[&[u8]], max_line: usize, limit: usize, most: usize, held: LineBuf) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = File::create(&path).unwrap();
        let file = File::open(&path).unwrap();
        let opts = TailOptions {
            max_line,
            batch_bytes: limit,
            ..TailOptions::default()
        };
        let mut r = Run {
            lines: Vec::new(),
            skips: Vec::new(),
            batch_ends: Vec::new(),
            offset: 0,
            held,
            most_room: 0,
        };
        let mut stats = TailStats::default();
        let mut pos = 0u64;
        let mut batches = Vec::new();
        for c in chunks {
            w.write_all(c).unwrap();
            let mut emit = |b: LineBatch| {
                batches.push(b);
                ControlFlow::Continue(())
            };
            let mut notices = Vec::new();
            let mut out = Batcher::new(&opts, &mut r.held, &mut emit);
            loop {
                let want = match out.room(most, &mut r.offset, &mut stats) {
                    ControlFlow::Continue(w) => w,
                    ControlFlow::Break(()) => unreachable!("always taken"),
                };
                let n = out.read(&file, pos, want).unwrap();
                if n == 0 {
                    break;
                }
                assert!(out
                    .cut(pos, &mut r.offset, &mut stats, &mut notices)
                    .is_continue());
                r.most_room = r.most_room.max(out.batch.bytes.capacity());
                pos += n as u64;
            }
            assert!(out
                .finish(&mut r.offset, &mut stats, &mut r.held)
                .is_continue());
            r.skips.extend(notices.iter().map(|n| match n {
                Notice::Skipped { len } => *len,
                other => panic!("{other:?}"),
            }));
        }
        for b in batches {
            r.lines.extend(b.lines().map(<[u8]>::to_vec));
            r.batch_ends.push(b.offset_after());
        }
        r
    }

    #[test]
    fn a_too_long_line_is_skipped_whole_and_its_tail_is_not_a_line() {
        // The long line arrives in pieces; its tail after the limit holds a "line".
        let chunks: [&[u8]; 3] = [b"ok\n0123", b"456789 from 1.2.3.4", b"\nnext\n"];
        let r = run(&chunks, 8, 64, 4096, LineBuf::default());
        assert_eq!(r.lines, [b"ok".to_vec(), b"next".to_vec()]);
        assert_eq!(r.skips, [23]);
        assert_eq!(r.batch_ends, [3, 32]);
        assert_eq!(r.offset, 32);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_whole() {
        let r = run(&[b"0123", b"4567\n"], 8, 64, 4096, LineBuf::default());
        assert_eq!(r.lines, [b"01234567".to_vec()]);
        assert_eq!(r.offset, 9);
    }

    #[test]
    fn the_partial_last_line_is_held() {
        let r = run(&[b"half"], 8, 64, 4096, LineBuf::default());
        assert!(r.lines.is_empty());
        assert!(r.held.holds_partial());
        assert_eq!(r.held.partial_len(), 4);
        assert_eq!(r.held.bytes, b"half");
        let r = run(
            &[b"half", b" but too long"],
            8,
            64,
            4096,
            LineBuf::default(),
        );
        assert!(r.held.holds_partial());
        assert_eq!(r.held.partial_len(), 17);
        assert!(r.held.bytes.is_empty(), "a line too long keeps no bytes");
        let r = run(
            &[b"half", b" but too long", b"\n"],
            8,
            64,
            4096,
            LineBuf::default(),
        );
        assert_eq!(r.skips, [17]);
        assert!(r.lines.is_empty());
        assert!(!r.held.holds_partial());
    }

    #[test]
    fn mid_line_start_drops_the_first_piece_silently() {
        let r = run(
            &[b"tail of something long\nnew\n"],
            8,
            64,
            4096,
            LineBuf::mid_line(),
        );
        assert_eq!(r.lines, [b"new".to_vec()]);
        assert!(r.skips.is_empty());
        assert_eq!(r.offset, 27);
    }

    /// What the lines of `input` are, by the definition: split at `\n` (the last piece, with
    /// no `\n` after it, held back), trailing `\r`s cut, pieces longer than `max_line` (with
    /// their `\r`s) skipped; the offset after the last complete one.
    fn expected(input: &[u8], max_line: usize) -> (Vec<Vec<u8>>, Vec<u64>, u64) {
        let (mut lines, mut skips, mut end) = (Vec::new(), Vec::new(), 0);
        let mut start = 0;
        for (i, &b) in input.iter().enumerate() {
            if b == b'\n' {
                let piece = &input[start..i];
                if piece.len() <= max_line {
                    lines.push(trim_cr(piece).to_vec());
                } else {
                    skips.push(piece.len() as u64);
                }
                start = i + 1;
                end = start as u64;
            }
        }
        (lines, skips, end)
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
        /// Random bytes (newline-heavy so there are lines of every length, `\r`s among them),
        /// written and read in random pieces into batches of any size: exactly the lines of
        /// the input, skips for the long ones, never a piece of a long line; each batch ends
        /// where its last line does; memory bounded by the limits; work linear.
        #[test]
        fn any_chunking_gives_exactly_the_lines_of_the_input(
            input in proptest::collection::vec(
                prop_oneof![3 => Just(b'\n'), 1 => Just(b'\r'), 12 => any::<u8>()], 0..400),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            max_line in 1usize..40,
            limit in 1usize..100,
            most in 1usize..64,
        ) {
            let r = run(&chunks(&input, &cuts), max_line, limit, most, LineBuf::default());
            let (lines, skips, end) = expected(&input, max_line);
            prop_assert_eq!(&r.lines, &lines);
            prop_assert_eq!(&r.skips, &skips);
            prop_assert_eq!(r.offset, end);
            prop_assert_eq!(r.batch_ends.last().copied().unwrap_or(0) <= end, true);
            // a batch's buffer: its lines, the current line (bytes kept only while it fits),
            // one read; grown by doubling
            let bound = 2 * (limit + max_line + most);
            prop_assert!(r.most_room <= bound, "{} > {}", r.most_room, bound);
            prop_assert!(r.held.bytes.capacity() <= bound);
            prop_assert!(r.held.work <= 4 * input.len() as u64, "{} > 4 * {}", r.held.work, input.len());
            // The held partial line is the input after its last `\n`.
            let tail = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            prop_assert_eq!(r.held.partial_len(), (input.len() - tail) as u64);
        }

        /// One byte at a time, a long line: still linear work and bounded memory.
        #[test]
        fn byte_by_byte_stays_linear(len in 0usize..3000, max_line in 1usize..100) {
            let mut input = vec![b'x'; len];
            input.push(b'\n');
            let pieces: Vec<&[u8]> = input.chunks(1).collect();
            let r = run(&pieces, max_line, 64, 4096, LineBuf::default());
            prop_assert_eq!(r.lines.len() + r.skips.len(), 1);
            prop_assert!(r.held.work <= 4 * input.len() as u64);
            prop_assert!(r.most_room <= 2 * (64 + max_line + 4096));
        }
    }
}
