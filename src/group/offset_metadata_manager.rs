//! Committed offsets (the job of Kafka's `OffsetMetadataManager`): commit, fetch, delete and
//! expire, for groups of either kind.
//!
//! It knows group ids, not group types: whether a commit is allowed, which topics a group
//! still consumes and since when it has been empty are the caller's answers. Every change
//! comes in two halves: `prepare_*` builds the records to append and changes nothing,
//! `apply_*` changes memory once they are stored; expiry is the exception (tombstones for
//! offsets that are gone either way).

use std::collections::{BTreeMap, HashMap, HashSet};

use kafka_protocol::error::ResponseError as E;

use super::records::{
    encode_offset_commit_value, fits_record, offset_commit_key, KeyValue, OffsetCommitValue,
};

/// One group's committed offsets by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), OffsetCommitValue>;

/// One partition's offset in an OffsetCommit.
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// An OffsetCommit ready to be stored: one result per entry, the records of the accepted ones.
pub struct PreparedCommit {
    pub results: Vec<Result<(), E>>,
    pub records: Vec<KeyValue>,
    accepted: Vec<((String, i32), OffsetCommitValue)>,
}

/// Per-partition results of one topic: (partition, result).
pub type PartitionResults = Vec<(i32, Result<(), E>)>;

/// An OffsetDelete ready to be stored.
pub struct PreparedDelete {
    /// (topic, its partitions' results)
    pub results: Vec<(String, PartitionResults)>,
    pub records: Vec<KeyValue>,
    removed: Vec<(String, i32)>,
}

/// OffsetFetch's answer: (topic, [(partition, committed offset)]).
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<OffsetCommitValue>)>)>;

struct GroupOffsets {
    /// The `__consumer_offsets` partition of the group.
    partition: i32,
    offsets: Offsets,
}

/// Offsets a transaction committed (TxnOffsetCommit) that become visible with its commit
/// marker and are dropped by its abort marker: (group, offsets partition, key, value).
type PendingTxnOffsets = Vec<(String, i32, (String, i32), OffsetCommitValue)>;

#[derive(Default)]
pub struct OffsetMetadataManager {
    groups: HashMap<String, GroupOffsets>,
    /// By producer id (Kafka's `pendingTransactionalOffsetCommits`).
    pending_txn: HashMap<i64, PendingTxnOffsets>,
}

impl OffsetMetadataManager {
    pub fn new() -> OffsetMetadataManager {
        OffsetMetadataManager::default()
    }

    /// A replayed offset (loading `__consumer_offsets`).
    pub fn load(
        &mut self,
        group_id: String,
        partition: i32,
        key: (String, i32),
        value: OffsetCommitValue,
    ) {
        self.groups
            .entry(group_id)
            .or_insert_with(|| GroupOffsets {
                partition,
                offsets: Offsets::new(),
            })
            .offsets
            .insert(key, value);
    }

    pub fn has_offsets(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| !g.offsets.is_empty())
    }

    /// The committed offset of one partition.
    pub fn get(&self, group_id: &str, topic: &str, partition: i32) -> Option<&OffsetCommitValue> {
        self.groups
            .get(group_id)?
            .offsets
            .get(&(topic.to_string(), partition))
    }

    /// Every committed offset: (group, topic, partition, offset).
    pub fn all_committed(&self) -> Vec<(String, String, i32, i64)> {
        self.groups
            .iter()
            .flat_map(|(group, g)| {
                g.offsets
                    .iter()
                    .map(move |((topic, p), v)| (group.clone(), topic.clone(), *p, v.offset))
            })
            .collect()
    }

    /// Forgets the offsets of groups `keep` rejects (a partition no longer led here).
    pub fn retain_partitions(&mut self, keep: impl Fn(i32) -> bool) {
        self.groups.retain(|_, g| keep(g.partition));
        for pending in self.pending_txn.values_mut() {
            pending.retain(|(_, p, _, _)| keep(*p));
        }
        self.pending_txn.retain(|_, pending| !pending.is_empty());
    }

    pub fn clear(&mut self) {
        self.groups.clear();
        self.pending_txn.clear();
    }

    /// A stored TxnOffsetCommit (or one replayed): its offsets wait for the marker of
    /// `producer_id`'s transaction.
    pub fn add_pending_txn(
        &mut self,
        producer_id: i64,
        group_id: &str,
        partition: i32,
        commit: PreparedCommit,
    ) -> Vec<Result<(), E>> {
        let pending = self.pending_txn.entry(producer_id).or_default();
        for (key, value) in commit.accepted {
            pending.push((group_id.to_string(), partition, key, value));
        }
        commit.results
    }

    /// A replayed TxnOffsetCommit whose transaction has not ended.
    pub fn load_pending_txn(
        &mut self,
        producer_id: i64,
        group_id: String,
        partition: i32,
        key: (String, i32),
        value: OffsetCommitValue,
    ) {
        self.pending_txn
            .entry(producer_id)
            .or_default()
            .push((group_id, partition, key, value));
    }

    /// A transaction marker of `producer_id` in offsets partition `partition`: its pending
    /// offsets there become committed (commit) or are dropped (abort), as Kafka's
    /// `completePendingTxnOffsetCommit`.
    pub fn complete_txn(&mut self, producer_id: i64, partition: i32, commit: bool) {
        let Some(pending) = self.pending_txn.get_mut(&producer_id) else {
            return;
        };
        let (done, kept): (Vec<_>, Vec<_>) = std::mem::take(pending)
            .into_iter()
            .partition(|(_, p, _, _)| *p == partition);
        *pending = kept;
        if pending.is_empty() {
            self.pending_txn.remove(&producer_id);
        }
        if commit {
            for (group, p, key, value) in done {
                self.load(group, p, key, value);
            }
        }
    }

    /// KIP-447: whether an open transaction holds an offset of the group's partition
    /// (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_txn(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn
            .values()
            .flatten()
            .any(|(g, _, (t, p), _)| g == group_id && t == topic && *p == partition)
    }

    /// Validates each entry (the topic exists, the metadata fits) and builds its record,
    /// stamped `now_ms`.
    pub fn prepare_commit(
        &self,
        group_id: &str,
        entries: &[CommitEntry],
        topic_exists: &dyn Fn(&str, i32) -> bool,
        metadata_max_bytes: usize,
        now_ms: i64,
    ) -> PreparedCommit {
        let mut out = PreparedCommit {
            results: Vec::with_capacity(entries.len()),
            records: Vec::new(),
            accepted: Vec::new(),
        };
        for e in entries {
            let meta = e.metadata.clone().unwrap_or_default();
            if !topic_exists(&e.topic, e.partition) {
                out.results.push(Err(E::UnknownTopicOrPartition));
            } else if meta.len() > metadata_max_bytes || !fits_record(&meta) {
                out.results.push(Err(E::OffsetMetadataTooLarge));
            } else {
                let value = OffsetCommitValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: meta,
                    commit_timestamp: now_ms,
                    expire_timestamp: -1,
                };
                out.records.push((
                    offset_commit_key(group_id, &e.topic, e.partition),
                    Some(encode_offset_commit_value(&value)),
                ));
                out.accepted.push(((e.topic.clone(), e.partition), value));
                out.results.push(Ok(()));
            }
        }
        out
    }

    /// Makes a stored commit visible; returns its per-entry results.
    pub fn apply_commit(
        &mut self,
        group_id: &str,
        partition: i32,
        commit: PreparedCommit,
    ) -> Vec<Result<(), E>> {
        let g = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupOffsets {
                partition,
                offsets: Offsets::new(),
            });
        g.offsets.extend(commit.accepted);
        commit.results
    }

    /// OffsetFetch: the committed offsets of `topics` (all of the group's if None).
    pub fn fetch(&self, group_id: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> FetchedOffsets {
        let offsets = self.groups.get(group_id).map(|g| &g.offsets);
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, parts)| {
                    let parts = parts
                        .into_iter()
                        .map(|p| {
                            let v = offsets.and_then(|o| o.get(&(topic.clone(), p)).cloned());
                            (p, v)
                        })
                        .collect();
                    (topic, parts)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetCommitValue>)>> =
                    BTreeMap::new();
                for ((t, p), v) in offsets.into_iter().flatten() {
                    by_topic
                        .entry(t.clone())
                        .or_default()
                        .push((*p, Some(v.clone())));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// OffsetDelete: tombstones for the requested partitions of topics the group does not
    /// consume (`subscribed`); those it consumes get GROUP_SUBSCRIBED_TO_TOPIC.
    pub fn prepare_delete(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
        subscribed: &HashSet<String>,
    ) -> PreparedDelete {
        let offsets = self.groups.get(group_id).map(|g| &g.offsets);
        let mut records = Vec::new();
        let mut removed = Vec::new();
        let results = topics
            .iter()
            .map(|(t, parts)| {
                let results = parts
                    .iter()
                    .map(|p| {
                        if subscribed.contains(t) {
                            return (*p, Err(E::GroupSubscribedToTopic));
                        }
                        if offsets.is_some_and(|o| o.contains_key(&(t.clone(), *p))) {
                            records.push((offset_commit_key(group_id, t, *p), None));
                            removed.push((t.clone(), *p));
                        }
                        (*p, Ok(()))
                    })
                    .collect();
                (t.clone(), results)
            })
            .collect();
        PreparedDelete {
            results,
            records,
            removed,
        }
    }

    pub fn apply_delete(&mut self, group_id: &str, delete: &PreparedDelete) {
        if let Some(g) = self.groups.get_mut(group_id) {
            for k in &delete.removed {
                g.offsets.remove(k);
            }
        }
    }

    /// Tombstones for all of a group's offsets (DeleteGroups).
    pub fn group_tombstones(&self, group_id: &str) -> Vec<KeyValue> {
        self.groups
            .get(group_id)
            .map(|g| {
                g.offsets
                    .keys()
                    .map(|(t, p)| (offset_commit_key(group_id, t, *p), None))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn remove_group(&mut self, group_id: &str) {
        self.groups.remove(group_id);
    }

    /// Kafka's offset retention, for the groups of offsets partition `partition`: an offset
    /// expires at its explicit expire timestamp (OffsetCommit v1's retention), else `retention_ms`
    /// after the later of its commit and the group becoming empty. `empty_since` answers when
    /// a group became empty, None while it has members (its offsets are kept). Returns the
    /// tombstones of the expired offsets; they are removed from memory now.
    pub fn expire(
        &mut self,
        partition: i32,
        now_ms: i64,
        retention_ms: i64,
        empty_since: &dyn Fn(&str) -> Option<i64>,
    ) -> Vec<KeyValue> {
        let mut out = Vec::new();
        for (group_id, g) in self.groups.iter_mut() {
            if g.partition != partition {
                continue;
            }
            let Some(since) = empty_since(group_id) else {
                continue;
            };
            g.offsets.retain(|(t, p), v| {
                let expired = if v.expire_timestamp > 0 {
                    v.expire_timestamp <= now_ms
                } else {
                    v.commit_timestamp.max(since) + retention_ms <= now_ms
                };
                if expired {
                    out.push((offset_commit_key(group_id, t, *p), None));
                }
                !expired
            });
        }
        self.groups.retain(|_, g| !g.offsets.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(topic: &str, partition: i32, offset: i64) -> CommitEntry {
        CommitEntry {
            topic: topic.to_string(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
        }
    }

    #[test]
    fn commit_is_visible_only_once_applied() {
        let mut m = OffsetMetadataManager::new();
        let exists = |t: &str, _p: i32| t == "t";
        let c = m.prepare_commit(
            "g",
            &[entry("t", 0, 5), entry("missing", 0, 1)],
            &exists,
            4096,
            1000,
        );
        assert_eq!(c.results, vec![Ok(()), Err(E::UnknownTopicOrPartition)]);
        assert_eq!(c.records.len(), 1);
        assert!(m.get("g", "t", 0).is_none());
        m.apply_commit("g", 3, c);
        assert_eq!(m.get("g", "t", 0).map(|v| v.offset), Some(5));
        assert_eq!(m.get("g", "t", 0).map(|v| v.commit_timestamp), Some(1000));
    }

    #[test]
    fn offsets_expire_after_retention_once_the_group_is_empty() {
        let mut m = OffsetMetadataManager::new();
        let exists = |_: &str, _: i32| true;
        let c = m.prepare_commit(
            "g",
            &[entry("t", 0, 7), entry("t", 1, 8)],
            &exists,
            4096,
            1_000,
        );
        m.apply_commit("g", 2, c);
        // Still consumed: kept however old.
        assert!(m.expire(2, 1_000_000, 100, &|_| None).is_empty());
        assert!(m.has_offsets("g"));
        // Empty since 5_000: expires at max(commit, since) + retention = 5_100.
        assert!(m.expire(2, 5_099, 100, &|_| Some(5_000)).is_empty());
        assert!(
            m.expire(1, 5_100, 100, &|_| Some(5_000)).is_empty(),
            "other partition"
        );
        let tombstones = m.expire(2, 5_100, 100, &|_| Some(5_000));
        assert_eq!(tombstones.len(), 2);
        assert!(tombstones.iter().all(|(_, v)| v.is_none()));
        assert!(!m.has_offsets("g"));
    }
}
