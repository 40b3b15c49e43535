//! The cleaner's offset map (Kafka's `SkimpyOffsetMap`): key hash -> offset of the newest
//! record with that key in the dirty section, in a fixed amount of memory.
//!
//! Open addressing over a table sized from `log.cleaner.dedupe.buffer.size`: each slot holds
//! a 128-bit hash of the key and an offset (24 bytes), and the map counts as full at 90% of
//! its slots (Kafka's `log.cleaner.io.buffer.load.factor`). Two keys whose 128-bit hashes
//! collide would share a slot; as with Kafka's MD5, the odds are negligible.

use std::hash::{Hash, Hasher};

const SLOT_BYTES: usize = 24;
const LOAD_FACTOR: f64 = 0.9;

#[derive(Clone, Copy)]
struct Slot {
    hash: u128,
    /// -1: empty.
    offset: i64,
}

pub struct OffsetMap {
    slots: Vec<Slot>,
    used: usize,
    max_entries: usize,
}

/// 128 bits of hash of a key: two SipHash runs with different prefixes (stable within a
/// process, which is all a cleaning pass needs).
pub fn key_hash(key: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    0xa5u8.hash(&mut a);
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x5au8.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl OffsetMap {
    /// A map using at most `memory_bytes`, sized for `expected_entries` if that is smaller
    /// (so a small dirty section does not allocate the whole buffer).
    pub fn new(memory_bytes: usize, expected_entries: usize) -> OffsetMap {
        let max_slots = (memory_bytes / SLOT_BYTES).max(2);
        let wanted = ((expected_entries as f64 / LOAD_FACTOR) as usize + 2).max(16);
        let slots = wanted.min(max_slots);
        OffsetMap {
            slots: vec![
                Slot {
                    hash: 0,
                    offset: -1
                };
                slots
            ],
            used: 0,
            max_entries: ((slots as f64 * LOAD_FACTOR) as usize).max(1),
        }
    }

    /// Entries the map can still take before it is full.
    pub fn room(&self) -> usize {
        self.max_entries.saturating_sub(self.used)
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Bytes allocated for the table.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }

    fn probe(&self, hash: u128) -> usize {
        let n = self.slots.len();
        let mut i = (hash as u64 as usize) % n;
        loop {
            let s = &self.slots[i];
            if s.offset < 0 || s.hash == hash {
                return i;
            }
            i = (i + 1) % n;
        }
    }

    /// Records `offset` as the newest for `hash`. False (and nothing stored) when the key is
    /// new and the map is full.
    pub fn put(&mut self, hash: u128, offset: i64) -> bool {
        let i = self.probe(hash);
        if self.slots[i].offset < 0 {
            if self.used >= self.max_entries {
                return false;
            }
            self.used += 1;
        }
        self.slots[i] = Slot { hash, offset };
        true
    }

    pub fn get(&self, hash: u128) -> Option<i64> {
        let s = self.slots[self.probe(hash)];
        (s.offset >= 0).then_some(s.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_offset_and_stops_when_full() {
        let mut m = OffsetMap::new(24 * 100, 1_000_000);
        assert_eq!(m.memory_bytes(), 2400);
        for i in 0..90 {
            assert!(m.put(key_hash(format!("k{i}").as_bytes()), i));
        }
        assert_eq!(m.room(), 0);
        assert!(!m.put(key_hash(b"new"), 500), "full");
        assert!(m.put(key_hash(b"k7"), 700), "an existing key still updates");
        assert_eq!(m.get(key_hash(b"k7")), Some(700));
        assert_eq!(m.get(key_hash(b"k8")), Some(8));
        assert_eq!(m.get(key_hash(b"new")), None);
        assert_eq!(m.len(), 90);
        let small = OffsetMap::new(1 << 30, 10);
        assert!(small.memory_bytes() < 1024, "sized for what it will hold");
    }
}
