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
//! goes the whole way. Lines passed over are read as raw bytes, not decoded: when the
//! literals are ASCII, a line's raw bytes hold one exactly when its lossy decoding (what
//! `process_line` sees) does, and the date shortcut answers alike for both; with other
//! literals only valid UTF-8 lines are passed over. A line the shortcut cannot date goes the
//! whole way. So skipping changes nothing but the work done: the differential tests run
//! sample logs both ways and compare.

use super::runner::{FilterRunner, LineResult, ProcessOptions};

/// What [`FilterRunner::process_block`] went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockCounts {
    /// Lines in the block.
    pub lines: usize,
    /// Lines passed over by the fast path (no literal; dated by the sticky shortcut).
    pub skipped: usize,
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
        // Lines passed over are read as raw bytes: with ASCII literals that is all they need
        // (see `pass_over`), and only the lines that go the whole way are decoded. Else
        // they must be valid UTF-8, checked once for the whole block (the usual case: lines
        // are then slices of it).
        let raw_ok = pf.is_some_and(|p| p.is_ascii());
        let text = if raw_ok {
            None
        } else {
            std::str::from_utf8(block).ok()
        };
        let line_at = |from: usize, to: usize| match text {
            Some(t) => t.get(from..to),
            None => std::str::from_utf8(&block[from..to]).ok(),
        };
        let may_pass = |from: usize, to: usize| {
            raw_ok || text.is_some() || std::str::from_utf8(&block[from..to]).is_ok()
        };
        let mut counts = BlockCounts {
            lines: ends.len(),
            skipped: 0,
        };
        // Where the next literal starts (`usize::MAX`: none), as searched from a line at or
        // before `start`; searched again once `start` is past it.
        let mut literal: Option<usize> = None;
        let mut ready = false;
        let (mut i, mut start) = (0, 0);
        while i < ends.len() {
            if let Some(pf) = pf {
                let at = match literal {
                    Some(at) if at >= start => at,
                    _ => {
                        let at = pf.find(&block[start..]).map_or(usize::MAX, |at| start + at);
                        literal = Some(at);
                        at
                    }
                };
                // The lines that end before it hold none (the literals hold no `\n`, and the
                // searchers report one in the first line holding any): passed over while the
                // shortcut dates them, their dates recorded at once after the last.
                let mut last = None;
                let mut n = 0;
                while let Some(&e) = ends.get(i) {
                    let end = e.clamp(start, block.len());
                    if end >= at {
                        break;
                    }
                    if !may_pass(start, end) {
                        break;
                    }
                    let line = &block[start..end];
                    if !ready {
                        if !self.pass_ready(opts.now) {
                            break;
                        }
                        ready = true;
                    }
                    let Some(hit) = self.pass_over(line) else {
                        break;
                    };
                    last = Some((line, hit));
                    n += 1;
                    i += 1;
                    start = (end + 1).min(block.len());
                }
                if let Some((line, hit)) = last {
                    self.record_passed(n, line, &hit);
                    counts.skipped += n;
                }
            }
            // This line goes the whole way.
            let Some(&e) = ends.get(i) else {
                break;
            };
            let end = e.clamp(start, block.len());
            let result = match line_at(start, end) {
                Some(line) => self.process_line(line, opts),
                None => self.process_line(&String::from_utf8_lossy(&block[start..end]), opts),
            };
            i += 1;
            start = (end + 1).min(block.len());
            if !result.failures.is_empty() {
                found(result);
            }
        }
        counts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
