//! Server-side assignors of KIP-848 consumer groups: `uniform` (Kafka's default: balanced
//! and sticky) and `range` (contiguous ranges per topic, as the classic RangeAssignor).
//!
//! Input: each member's subscribed topics and current assignment, and each subscribed
//! topic's id and partition count. Output: the target assignment of every member. Both are
//! deterministic, so every coordinator computes the same answer from the same state.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

pub type TopicAssignment = BTreeMap<Uuid, BTreeSet<i32>>;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

pub fn is_supported(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// One member as the assignor sees it.
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    pub subscribed: &'a BTreeSet<Uuid>,
    pub current: &'a TopicAssignment,
}

/// Computes the target assignment. `topics` maps each subscribed topic's id to its
/// partition count; members are given in member-id order.
pub fn assign(
    assignor: &str,
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, TopicAssignment> {
    let mut out: BTreeMap<String, TopicAssignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), TopicAssignment::new()))
        .collect();
    for (topic_index, (topic, partitions)) in topics.iter().enumerate() {
        let subscribers: Vec<&AssignorMember<'_>> = members
            .iter()
            .filter(|m| m.subscribed.contains(topic))
            .collect();
        if subscribers.is_empty() || *partitions <= 0 {
            continue;
        }
        let per_member = if assignor == RANGE {
            range_topic(&subscribers, *partitions)
        } else {
            uniform_topic(&subscribers, *topic, *partitions, topic_index)
        };
        for (member, parts) in per_member {
            if !parts.is_empty() {
                out.entry(member)
                    .or_default()
                    .insert(*topic, parts.into_iter().collect());
            }
        }
    }
    out
}

/// Range: subscribers in member-id order take contiguous ranges; the first
/// `partitions % n` take one more.
fn range_topic(subscribers: &[&AssignorMember<'_>], partitions: i32) -> Vec<(String, Vec<i32>)> {
    let n = subscribers.len() as i32;
    let base = partitions / n;
    let extra = partitions % n;
    let mut next = 0;
    subscribers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let count = base + i32::from((i as i32) < extra);
            let parts: Vec<i32> = (next..next + count).collect();
            next += count;
            (m.member_id.to_string(), parts)
        })
        .collect()
}

/// Uniform: every subscriber gets `partitions / n` or one more, keeping as many of its
/// current partitions as that allows (sticky), and the members that get the extra
/// partitions rotate from topic to topic so that many small topics still spread evenly.
fn uniform_topic(
    subscribers: &[&AssignorMember<'_>],
    topic: Uuid,
    partitions: i32,
    topic_index: usize,
) -> Vec<(String, Vec<i32>)> {
    let n = subscribers.len();
    let base = partitions as usize / n;
    let extra = partitions as usize % n;
    // Quotas: members that already hold more of this topic get the extra slots first, so
    // fewer partitions move; ties rotate by topic.
    let mut order: Vec<usize> = (0..n).collect();
    let held = |i: usize| {
        subscribers[i]
            .current
            .get(&topic)
            .map_or(0, |ps| ps.iter().filter(|p| **p < partitions).count())
    };
    order.sort_by_key(|&i| (std::cmp::Reverse(held(i)), (i + n - topic_index % n) % n));
    let mut quota = vec![base; n];
    for &i in order.iter().take(extra) {
        quota[i] += 1;
    }
    let mut taken: BTreeSet<i32> = BTreeSet::new();
    let mut result: Vec<Vec<i32>> = vec![Vec::new(); n];
    // Keep current partitions up to the quota.
    for i in 0..n {
        if let Some(ps) = subscribers[i].current.get(&topic) {
            for &p in ps {
                if p < partitions && result[i].len() < quota[i] && taken.insert(p) {
                    result[i].push(p);
                }
            }
        }
    }
    // Hand out the rest in partition order to members below quota.
    let mut free = (0..partitions).filter(|p| !taken.contains(p));
    for i in order {
        while result[i].len() < quota[i] {
            match free.next() {
                Some(p) => result[i].push(p),
                None => break,
            }
        }
    }
    subscribers
        .iter()
        .zip(result)
        .map(|(m, mut parts)| {
            parts.sort_unstable();
            (m.member_id.to_string(), parts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members<'a>(
        ids: &'a [&'a str],
        subs: &'a BTreeSet<Uuid>,
        current: &'a [TopicAssignment],
    ) -> Vec<AssignorMember<'a>> {
        ids.iter()
            .zip(current)
            .map(|(id, cur)| AssignorMember {
                member_id: id,
                subscribed: subs,
                current: cur,
            })
            .collect()
    }

    fn count(a: &BTreeMap<String, TopicAssignment>, m: &str) -> usize {
        a[m].values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_balances_and_covers_every_partition_once() {
        let t1 = Uuid::from_u128(1);
        let t2 = Uuid::from_u128(2);
        let subs: BTreeSet<Uuid> = [t1, t2].into();
        let topics: BTreeMap<Uuid, i32> = [(t1, 6), (t2, 1)].into();
        let empty = vec![TopicAssignment::new(); 3];
        let a = assign(UNIFORM, &members(&["a", "b", "c"], &subs, &empty), &topics);
        let mut all: Vec<(Uuid, i32)> = a
            .values()
            .flat_map(|t| t.iter().flat_map(|(id, ps)| ps.iter().map(|p| (*id, *p))))
            .collect();
        all.sort();
        let mut want: Vec<(Uuid, i32)> = (0..6).map(|p| (t1, p)).collect();
        want.push((t2, 0));
        assert_eq!(all, want);
        let counts: Vec<usize> = ["a", "b", "c"].iter().map(|m| count(&a, m)).collect();
        assert!(counts.iter().all(|c| (2..=3).contains(c)), "{counts:?}");
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let t = Uuid::from_u128(7);
        let subs: BTreeSet<Uuid> = [t].into();
        let topics: BTreeMap<Uuid, i32> = [(t, 6)].into();
        let current = vec![
            TopicAssignment::from([(t, BTreeSet::from([0, 1, 2]))]),
            TopicAssignment::from([(t, BTreeSet::from([3, 4, 5]))]),
            TopicAssignment::new(),
        ];
        let a = assign(
            UNIFORM,
            &members(&["a", "b", "c"], &subs, &current),
            &topics,
        );
        // a and b keep two of their three each; c gets the two that moved.
        assert_eq!(count(&a, "a"), 2);
        assert_eq!(count(&a, "b"), 2);
        assert_eq!(count(&a, "c"), 2);
        assert!(a["a"][&t].is_subset(&BTreeSet::from([0, 1, 2])));
        assert!(a["b"][&t].is_subset(&BTreeSet::from([3, 4, 5])));
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let t = Uuid::from_u128(3);
        let subs: BTreeSet<Uuid> = [t].into();
        let topics: BTreeMap<Uuid, i32> = [(t, 7)].into();
        let empty = vec![TopicAssignment::new(); 3];
        let a = assign(RANGE, &members(&["a", "b", "c"], &subs, &empty), &topics);
        assert_eq!(a["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(a["b"][&t], BTreeSet::from([3, 4]));
        assert_eq!(a["c"][&t], BTreeSet::from([5, 6]));
    }
}
