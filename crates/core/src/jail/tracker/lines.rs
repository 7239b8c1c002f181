//! The kept matched lines of one tracker entry, in a single heap block (see [`Lines`]).

/// An entry's kept matched lines, oldest first, in a single heap block: each line as its
/// byte length (LEB128: one byte below 128, two below 16 384) followed by its bytes.
///
/// Why not `Vec<String>`: that is a 24-byte header in the entry, one block for the vector
/// and one per line (each with the allocator's header and rounding): about 56 B more per
/// key for the usual single line. Lines may hold anything, `\n` included (multi-line
/// filters), hence lengths rather than a separator. Empty = no allocation.
#[derive(Debug, Clone, Default)]
pub(super) struct Lines(Box<[u8]>);

impl Lines {
    /// The lines, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> + Clone {
        let mut rest: &[u8] = &self.0;
        std::iter::from_fn(move || {
            let (len, used) = read_len(rest)?;
            let (line, tail) = rest.get(used..)?.split_at_checked(len)?;
            rest = tail;
            Some(line)
        })
    }

    pub(super) fn to_vec(&self) -> Vec<String> {
        // Always valid UTF-8: every line was written from a `String`.
        self.iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// Append `new` lines and keep only the newest `max` (0 keeps none).
    pub(super) fn push(&mut self, new: Vec<String>, max: usize) {
        if max == 0 {
            self.0 = Box::default();
            return;
        }
        let old = self.iter().count();
        if new.is_empty() && old <= max {
            return;
        }
        // The `gone` oldest lines go: first from the kept ones, then from `new`.
        let gone = (old + new.len()).saturating_sub(max);
        let kept = self.iter().skip(gone).chain(
            new.iter()
                .skip(gone.saturating_sub(old))
                .map(String::as_bytes),
        );
        let size = kept.clone().map(|l| len_len(l.len()) + l.len()).sum();
        let mut block = Vec::with_capacity(size);
        for line in kept {
            write_len(&mut block, line.len());
            block.extend_from_slice(line);
        }
        self.0 = block.into_boxed_slice();
    }

    /// The block's size as a typical malloc rounds it (glibc: 8-byte header, 16-byte
    /// granularity, 32 at least).
    pub(super) fn heap_bytes(&self) -> usize {
        match self.0.len() {
            0 => 0,
            n => (n + 8).next_multiple_of(16).max(32),
        }
    }
}

/// Read a LEB128 length: (value, bytes used), `None` if cut short.
fn read_len(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, i + 1));
        }
    }
    None
}

fn write_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes [`write_len`] writes for `n`.
fn len_len(mut n: usize) -> usize {
    let mut bytes = 1;
    while n >= 0x80 {
        n >>= 7;
        bytes += 1;
    }
    bytes
}
