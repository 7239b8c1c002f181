//! The tracker's key index: key hash → slot position (see [`Index`]).

/// Key hash → slot position: open addressing with linear probing over 8-byte buckets
/// (a position and the key's 32-bit hash), at most 3/4 full, removal by backward shift
/// (no tombstones).
///
/// Why not `HashMap<K, Entry>`: a hash table keeps a quarter to over half of its buckets
/// empty — at 1 000 000 keys hashbrown has 2 097 152 — and an empty bucket costs as much
/// as a full one (65 B for `(FailureKey, Entry)`). Here the 64-byte entries sit densely in
/// a `Vec` and only these 8-byte buckets carry the slack. The stored hash makes probing
/// compare keys only on a 32-bit match and lets the table resize without rehashing keys.
#[derive(Clone, Default)]
pub(super) struct Index {
    /// Empty, or a power of two of them.
    buckets: Vec<Bucket>,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Position in `FailTracker::slots`; `u32::MAX` = empty bucket.
    pos: u32,
    hash: u32,
}

const EMPTY: Bucket = Bucket {
    pos: u32::MAX,
    hash: 0,
};

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("len", &self.len)
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

impl Index {
    pub(super) const MIN_BUCKETS: usize = 16;

    /// Buckets for `n` keys at most 3/4 full.
    pub(super) fn buckets_for(n: usize) -> usize {
        (n.saturating_mul(4) / 3 + 1)
            .next_power_of_two()
            .max(Self::MIN_BUCKETS)
    }

    pub(super) fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Where a key of `hash` sits, or would go: its home bucket, then the next ones.
    pub(super) fn probe(&self, hash: u32) -> impl Iterator<Item = usize> {
        let mask = self.mask();
        let home = hash as usize & mask;
        // Ends after one lap; never reached, as there is always an empty bucket.
        (0..self.buckets.len()).map(move |i| (home + i) & mask)
    }

    /// The position whose bucket has `hash` and satisfies `is_match`.
    pub(super) fn find(&self, hash: u32, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        for i in self.probe(hash) {
            let b = self.buckets[i];
            if b.pos == EMPTY.pos {
                return None;
            }
            if b.hash == hash && is_match(b.pos) {
                return Some(b.pos);
            }
        }
        None
    }

    /// The bucket holding position `pos` (whose key hashes to `hash`).
    pub(super) fn bucket_of(&self, hash: u32, pos: u32) -> Option<usize> {
        self.probe(hash)
            .take_while(|&i| self.buckets[i].pos != EMPTY.pos)
            .find(|&i| self.buckets[i].pos == pos)
    }

    /// Record a new key (not present yet) at `pos`.
    pub(super) fn insert(&mut self, hash: u32, pos: u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.resize((self.buckets.len() * 2).max(Self::MIN_BUCKETS));
        }
        self.place(Bucket { pos, hash });
        self.len += 1;
    }

    /// Put `b` in the first empty bucket of its probe sequence.
    fn place(&mut self, b: Bucket) {
        if let Some(i) = self
            .probe(b.hash)
            .find(|&i| self.buckets[i].pos == EMPTY.pos)
        {
            self.buckets[i] = b;
        }
    }

    /// Forget position `pos` (whose key hashes to `hash`). The buckets after it in the same
    /// run move back into the hole when that keeps them reachable from their home bucket,
    /// so lookups never need tombstones.
    pub(super) fn remove(&mut self, hash: u32, pos: u32) {
        let Some(mut hole) = self.bucket_of(hash, pos) else {
            return;
        };
        self.len -= 1;
        let mask = self.mask();
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            let b = self.buckets[i];
            if b.pos == EMPTY.pos {
                break;
            }
            // `b` may fill the hole when the hole lies on its probe path, i.e. no farther
            // from `i` than its home bucket is (distances counted cyclically).
            let home = b.hash as usize & mask;
            if i.wrapping_sub(home) & mask >= i.wrapping_sub(hole) & mask {
                self.buckets[hole] = b;
                hole = i;
            }
        }
        self.buckets[hole] = EMPTY;
    }

    /// The key of `hash` moved from position `from` to `to`.
    pub(super) fn repoint(&mut self, hash: u32, from: u32, to: u32) {
        if let Some(i) = self.bucket_of(hash, from) {
            self.buckets[i].pos = to;
        }
    }

    /// Rebuild with `buckets` buckets (a power of two, more than `len · 4/3`).
    pub(super) fn resize(&mut self, buckets: usize) {
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; buckets]);
        for b in old {
            if b.pos != EMPTY.pos {
                self.place(b);
            }
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }
}
