//! Running a filter over a block of lines at once (the daemon's batches of file lines).
//! Receives the block's raw bytes and where each line ends; emits, in order, the result of
//! every line that has failures, exactly as [`FilterRunner::process_line`] line by line would
//! (lossy UTF-8 decoding included), and the number of lines.
//!
//! The fast path: with a single-line filter and its literal prefilter, one search over the
//! block finds the next literal; the lines that end before it hold none and cannot match.
//! Those are only dated ([`FilterRunner::pass_over`]: the date detector's sticky shortcut,
//! a few dozen instructions, no regex), because what `process_line` would do to the runner
//! for them — the date detector's counts, the last date seen — changes how later lines are
//! matched; the dates of a run of such lines are recorded at once, before the next line that
//! goes the whole way. A line the shortcut cannot date, or that is not valid UTF-8 (the
//! search saw its raw bytes, `process_line` would see its lossy decoding), goes the whole
//! way. So skipping changes nothing but the work done: the differential tests run sample
//! logs both ways and compare.

use super::runner::{FilterRunner, LineResult, ProcessOptions};
use crate::date::DateHit;

/// What [`FilterRunner::process_block`] went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockCounts {
    /// Lines in the block.
    pub lines: usize,
    /// Lines passed over by the fast path (no literal; dated by the sticky shortcut).
    pub skipped: usize,
}

/// Lines passed over and not yet recorded: how many, the last one and its date.
struct Passed<'b> {
    n: usize,
    line: &'b str,
    hit: DateHit,
}

impl FilterRunner<'_> {
    /// [`Self::process_line`] on every line of `block`, in order; `found` gets each result
    /// that has failures. Line `i` is `block[ends[i - 1] + 1..ends[i]]` (from 0 for the
    /// first; an end out of order or past the block is taken as the nearest one that is
    /// not): raw bytes, decoded lossily as the daemon decodes a line. With `skip`, lines
    /// the literal prefilter rules out are passed over (see the module documentation); the
    /// failures found, and the runner's state after the block, are the same either way.
    pub fn process_block(
        &mut self,
        block: &[u8],
        ends: &[usize],
        opts: &ProcessOptions,
        skip: bool,
        found: &mut dyn FnMut(LineResult),
    ) -> BlockCounts {
        let filter = self.filter();
        let pf = filter
            .prefilter()
            .filter(|p| skip && filter.maxlines() <= 1 && p.is_line_local());
        // Decoded once for the whole block (the usual case): lines are then slices of it.
        let text = std::str::from_utf8(block).ok();
        let mut counts = BlockCounts::default();
        // Where the next literal starts, searched from the start of the line that holds the
        // last one found (`usize::MAX`: none up to the block's end); `None`: to be searched.
        let mut next_literal: Option<usize> = None;
        let mut passed: Option<Passed<'_>> = None;
        let mut start = 0;
        for &e in ends {
            let end = e.clamp(start, block.len());
            let line_start = start;
            start = (end + 1).min(block.len());
            counts.lines += 1;
            let line = match text {
                Some(t) => t.get(line_start..end),
                None => std::str::from_utf8(&block[line_start..end]).ok(),
            };
            if let (Some(pf), Some(line)) = (pf, line) {
                let at = *next_literal.get_or_insert_with(|| {
                    pf.find(&block[line_start..])
                        .map_or(usize::MAX, |at| line_start + at)
                });
                // A line whose end comes before the literal holds none: the literals hold
                // no `\n`, and the searchers report one in the first line holding any.
                if end < at {
                    if let Some(hit) = self.pass_over(line, opts.now) {
                        counts.skipped += 1;
                        let n = passed.as_ref().map_or(0, |p| p.n);
                        passed = Some(Passed {
                            n: n + 1,
                            line,
                            hit,
                        });
                        continue;
                    }
                } else {
                    // This line holds it: search again after it.
                    next_literal = None;
                }
            }
            if let Some(p) = passed.take() {
                self.record_passed(p.n, p.line, &p.hit);
            }
            let result = match line {
                Some(line) => self.process_line(line, opts),
                None => self.process_line(&String::from_utf8_lossy(&block[line_start..end]), opts),
            };
            if !result.failures.is_empty() {
                found(result);
            }
        }
        if let Some(p) = passed {
            self.record_passed(p.n, p.line, &p.hit);
        }
        counts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
