//! [`ChunkedSlab`]: a slab that grows by fixed-size chunks instead of by doubling one vector.
//!
//! An FL proxy's pending table holds up to hundreds of thousands of entries. In one `Slab`,
//! every doubling copies the whole table into a fresh allocation whose pages the kernel must
//! zero first: at a million pending commands that copying and zeroing was a tenth of the
//! router's CPU (perf: `finish_grow` → `memmove` → `clear_page_erms`). Here a full chunk is
//! never moved; a new one is added beside it. Keys are `chunk * CHUNK + key in chunk`, stable
//! while the entry lives, as in `slab`.

use slab::Slab;

/// Entries per chunk: large enough that the chunk list stays short, small enough that the
/// last chunk's unused room is a few hundred KiB.
const CHUNK: usize = 4096;

pub struct ChunkedSlab<T> {
    chunks: Vec<Slab<T>>,
    /// Chunks that may have room (checked on use: an index can go stale).
    open: Vec<usize>,
    len: usize,
}

impl<T> Default for ChunkedSlab<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            open: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedSlab<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn insert(&mut self, value: T) -> usize {
        let c = loop {
            match self.open.last() {
                Some(&c) if self.chunks[c].len() < CHUNK => break c,
                Some(_) => {
                    self.open.pop();
                }
                None => {
                    self.chunks.push(Slab::with_capacity(CHUNK));
                    self.open.push(self.chunks.len() - 1);
                }
            }
        };
        let chunk = &mut self.chunks[c];
        // Within capacity: the chunk never reallocates, so its keys stay below CHUNK.
        let k = chunk.insert(value);
        if chunk.len() == CHUNK {
            self.open.pop();
        }
        self.len += 1;
        c * CHUNK + k
    }

    pub fn get(&self, key: usize) -> Option<&T> {
        self.chunks.get(key / CHUNK)?.get(key % CHUNK)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.chunks.get_mut(key / CHUNK)?.get_mut(key % CHUNK)
    }

    pub fn try_remove(&mut self, key: usize) -> Option<T> {
        let c = key / CHUNK;
        let chunk = self.chunks.get_mut(c)?;
        let value = chunk.try_remove(key % CHUNK)?;
        if chunk.len() == CHUNK - 1 {
            self.open.push(c);
        }
        self.len -= 1;
        Some(value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.chunks
            .iter()
            .enumerate()
            .flat_map(|(c, chunk)| chunk.iter().map(move |(k, v)| (c * CHUNK + k, v)))
    }

    /// Takes every entry out; the chunks are freed.
    pub fn take_all(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in self.chunks.drain(..) {
            out.extend(chunk.into_iter().map(|(_, v)| v));
        }
        self.open.clear();
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_valid_across_chunks_and_freed_room_is_reused() {
        let mut s = ChunkedSlab::default();
        let keys: Vec<usize> = (0..CHUNK * 2 + 10).map(|i| s.insert(i)).collect();
        assert_eq!(s.len(), CHUNK * 2 + 10);
        assert_eq!(s.chunks.len(), 3, "grew by chunks");
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(s.get(k), Some(&i));
        }
        // Free a slot in the first (full) chunk: the next insert reuses it, no new chunk.
        assert_eq!(s.try_remove(keys[7]), Some(7));
        assert_eq!(s.get(keys[7]), None);
        assert_eq!(s.try_remove(keys[7]), None, "removed once");
        let k = s.insert(99_999);
        assert_eq!(k, keys[7]);
        assert_eq!(s.chunks.len(), 3);
        *s.get_mut(k).unwrap() += 1;
        assert_eq!(s.get(k), Some(&100_000));
        let mut seen: Vec<usize> = s.iter().map(|(k, _)| k).collect();
        seen.sort_unstable();
        let mut want = keys.clone();
        want.sort_unstable();
        assert_eq!(seen, want);
        let all = s.take_all();
        assert_eq!(all.len(), CHUNK * 2 + 10);
        assert!(s.is_empty() && s.get(keys[0]).is_none());
    }
}
