//! Batches of lines: the unit a [`super::Tailer`] passes on. Owns [`LineBatch`] (complete
//! lines of one file, in order, in one buffer) and the [`Batcher`] that fills one while a
//! file is read and hands it over when it is full or when reading stops. Receives whole
//! lines with the file offset after each; emits batches through the tailer's callback, and
//! moves the file's checkpoint offset only past batches the callback took.
//!
//! One event per batch instead of one per line: a busy log costs a channel operation and an
//! allocation per few hundred lines, not per line, and the reader can skip through a batch
//! without touching most of its lines. Nothing waits to fill a batch: whatever was read goes
//! out when the file has nothing more to give right now, so a single line is handed over as
//! soon as it is read.

use std::ops::ControlFlow;

use super::{trim_cr, TailStats};

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

/// Fills batches while one file is read (see the module documentation).
pub(super) struct Batcher<'e> {
    batch: LineBatch,
    /// Most bytes in a batch (a longer single line goes alone).
    limit: usize,
    /// Most lines in a batch: `limit / 16`, so that the line ends of a flood of short lines
    /// weigh at most half the bytes.
    max_lines: usize,
    /// Room to make for a new batch: the bytes the current read brought (a flood fills whole
    /// batches: room for `limit` at once; a live line gets a small buffer).
    hint: usize,
    emit: &'e mut dyn FnMut(LineBatch) -> ControlFlow<()>,
}

impl<'e> Batcher<'e> {
    pub(super) fn new(limit: usize, emit: &'e mut dyn FnMut(LineBatch) -> ControlFlow<()>) -> Self {
        Batcher {
            batch: LineBatch::default(),
            limit: limit.max(1),
            max_lines: (limit / 16).max(1),
            hint: 0,
            emit,
        }
    }

    /// Says how many bytes the last read brought (`None`: as many as asked, more may follow).
    pub(super) fn read(&mut self, bytes: Option<usize>) {
        self.hint = bytes.unwrap_or(usize::MAX);
    }

    /// Adds the whole lines at the front of `data` — which starts a line, at file offset
    /// `base` — copying runs of them at once: the bulk of a busy log goes here, not line by
    /// line through [`Self::push`]. Stops before a line longer than `max_line` (the caller
    /// skips it) and before the unfinished last line; returns how many bytes it took (whole
    /// lines with their `\n`). A `\r` before a `\n` is cut off, as [`Self::push`]'s caller
    /// does. `Break`: a batch was not taken (see [`Self::flush`]).
    pub(super) fn push_lines(
        &mut self,
        data: &[u8],
        base: u64,
        max_line: usize,
        offset: &mut u64,
        stats: &mut TailStats,
    ) -> ControlFlow<(), usize> {
        // `data[run..start]`: lines already counted in `ends`, not yet copied
        let mut run = 0;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            let line = &data[start..nl];
            if line.len() > max_line {
                break;
            }
            let kept = trim_cr(line).len();
            let pending = start - run;
            let full = self.batch.bytes.len() + pending + kept + 1 > self.limit
                || self.batch.len() >= self.max_lines;
            if full && !self.batch.is_empty() {
                self.append(&data[run..start]);
                run = start;
                self.flush(offset, stats)?;
            }
            if self.batch.bytes.is_empty() && start == run {
                self.make_room(kept + 1);
            }
            self.grow_ends();
            if kept == line.len() {
                self.batch.ends.push(self.batch.bytes.len() + (nl - run));
            } else {
                self.append(&data[run..start]);
                self.batch.ends.push(self.batch.bytes.len() + kept);
                self.append(&line[..kept]);
                self.append(b"\n");
                run = nl + 1;
            }
            self.batch.offset_after = base + nl as u64 + 1;
            start = nl + 1;
        }
        self.append(&data[run..start]);
        ControlFlow::Continue(start)
    }

    /// Room for a new batch whose first line takes `need` bytes.
    fn make_room(&mut self, need: usize) {
        let room = need.max(self.hint.min(self.limit));
        self.batch.bytes.reserve_exact(room);
        // lines of a flood are rarely under 32 bytes
        self.batch
            .ends
            .reserve_exact((room / 32 + 1).min(self.max_lines));
    }

    /// Adds bytes to the batch, growing it (when it must) straight to its limit rather
    /// than doubling: a batch's buffer stays within its bound, not twice it.
    fn append(&mut self, bytes: &[u8]) {
        let b = &mut self.batch.bytes;
        let need = b.len() + bytes.len();
        if need > b.capacity() {
            b.reserve_exact(need.max(self.limit) - b.len());
        }
        b.extend_from_slice(bytes);
    }

    /// Room for one more line end, growing straight to the most a batch holds.
    fn grow_ends(&mut self) {
        let e = &mut self.batch.ends;
        if e.len() == e.capacity() {
            e.reserve_exact(self.max_lines.saturating_sub(e.len()).max(1));
        }
    }

    /// Adds a line that ends at `offset_after`; hands the batch over first when the line
    /// does not fit. `Break`: the batch was not taken (see [`Self::flush`]).
    pub(super) fn push(
        &mut self,
        line: &[u8],
        offset_after: u64,
        offset: &mut u64,
        stats: &mut TailStats,
    ) -> ControlFlow<()> {
        let need = line.len() + 1;
        let full = self.batch.bytes.len() + need > self.limit || self.batch.len() >= self.max_lines;
        if full && !self.batch.is_empty() {
            self.flush(offset, stats)?;
        }
        if self.batch.bytes.is_empty() {
            self.make_room(need);
        }
        self.grow_ends();
        self.batch.ends.push(self.batch.bytes.len() + line.len());
        self.append(line);
        self.append(b"\n");
        self.batch.offset_after = offset_after;
        ControlFlow::Continue(())
    }

    /// Hands the batch over, if it holds lines. Taken: `offset` (the file's first byte not yet
    /// passed on) moves past it and its lines are counted. `Break`: not taken; `offset` stays
    /// at the batch's first line, which the caller reads again next time.
    pub(super) fn flush(&mut self, offset: &mut u64, stats: &mut TailStats) -> ControlFlow<()> {
        if self.batch.is_empty() {
            return ControlFlow::Continue(());
        }
        let batch = std::mem::take(&mut self.batch);
        let (lines, after) = (batch.len() as u64, batch.offset_after);
        (self.emit)(batch)?;
        stats.lines += lines;
        *offset = after;
        ControlFlow::Continue(())
    }
}
