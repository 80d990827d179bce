//! The input partitions of one task, whose records are taken in timestamp order (Kafka Streams'
//! `PartitionGroup`).
//!
//! A task reading several partitions (a join's two sides, merged topics) must see their records
//! interleaved by time, not in the order the consumer happened to fetch them: otherwise a stream
//! record can meet a table that is missing the update written just before it. Each consumed record
//! waits in its partition's queue; the task takes the head with the smallest timestamp, but only
//! while every partition has something buffered. When one is empty the task waits up to
//! `max.task.idle.ms` for it (0, the default, does not wait), then goes on with what it has.
//!
//! Ordering uses the records' Kafka timestamps; a custom timestamp extractor applies when the
//! record is processed.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::header::Headers;

/// A consumed record waiting for its task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
}

/// The queues of a task's input partitions.
#[derive(Debug, Default)]
pub(crate) struct PartitionGroup {
    queues: BTreeMap<(String, i32), VecDeque<Pending>>,
    /// Since when some partition has been empty while another had records.
    idle_since: Option<Instant>,
}

impl PartitionGroup {
    /// A group over `partitions`, all empty.
    pub(crate) fn new(partitions: impl IntoIterator<Item = (String, i32)>) -> Self {
        PartitionGroup { queues: partitions.into_iter().map(|tp| (tp, VecDeque::new())).collect(), idle_since: None }
    }

    /// Queues a record of one of the group's partitions (others get a queue of their own).
    pub(crate) fn push(&mut self, record: Pending) {
        self.queues.entry((record.topic.clone(), record.partition)).or_default().push_back(record);
    }

    /// Records buffered in `topic`/`partition`.
    pub(crate) fn buffered(&self, topic: &str, partition: i32) -> usize {
        self.queues.get(&(topic.to_string(), partition)).map_or(0, VecDeque::len)
    }

    /// The next record to process: the oldest head among the partitions, once every partition has
    /// one or `max_idle` has passed since one ran empty; `None` when the task should wait.
    pub(crate) fn next(&mut self, max_idle: Duration, now: Instant) -> Option<Pending> {
        let mut any_empty = false;
        let mut oldest: Option<(&(String, i32), i64)> = None;
        for (tp, queue) in &self.queues {
            match queue.front() {
                None => any_empty = true,
                Some(head) => {
                    if oldest.is_none_or(|(_, ts)| head.timestamp < ts) {
                        oldest = Some((tp, head.timestamp));
                    }
                }
            }
        }
        let tp = oldest?.0.clone();
        if any_empty && !max_idle.is_zero() {
            let since = *self.idle_since.get_or_insert(now);
            if now.duration_since(since) < max_idle {
                return None;
            }
        } else if !any_empty {
            self.idle_since = None;
        }
        self.queues.get_mut(&tp).and_then(VecDeque::pop_front)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, offset: i64, timestamp: i64) -> Pending {
        Pending {
            topic: topic.into(),
            partition: 0,
            offset,
            key: None,
            value: None,
            timestamp,
            headers: Headers::new(),
        }
    }

    fn order(group: &mut PartitionGroup, idle: Duration, now: Instant) -> Vec<(String, i64)> {
        std::iter::from_fn(|| group.next(idle, now)).map(|r| (r.topic, r.offset)).collect()
    }

    #[test]
    fn heads_are_taken_oldest_first_across_partitions() {
        let mut g = PartitionGroup::new([("a".to_string(), 0), ("b".to_string(), 0)]);
        for (o, ts) in [(0, 10), (1, 30), (2, 50)] {
            g.push(rec("a", o, ts));
        }
        for (o, ts) in [(0, 20), (1, 40), (2, 60)] {
            g.push(rec("b", o, ts));
        }
        let now = Instant::now();
        // With max.task.idle.ms = 0, a partition running empty does not stop the other.
        let got = order(&mut g, Duration::ZERO, now);
        let names: Vec<_> = got.iter().map(|(t, o)| format!("{t}{o}")).collect();
        assert_eq!(names, ["a0", "b0", "a1", "b1", "a2", "b2"]);
    }

    #[test]
    fn an_empty_partition_holds_the_task_for_max_task_idle() {
        let mut g = PartitionGroup::new([("a".to_string(), 0), ("b".to_string(), 0)]);
        g.push(rec("a", 0, 100));
        let start = Instant::now();
        let idle = Duration::from_millis(500);
        assert!(g.next(idle, start).is_none(), "waits for b");
        assert!(g.next(idle, start + Duration::from_millis(400)).is_none(), "still within max.task.idle.ms");
        // b's record arrives with an older timestamp: it goes first.
        g.push(rec("b", 0, 50));
        assert_eq!(g.next(idle, start + Duration::from_millis(450)).map(|r| r.topic), Some("b".into()));
        // b is empty again: the idle clock restarts, then a goes after max.task.idle.ms.
        let later = start + Duration::from_millis(460);
        assert!(g.next(idle, later).is_none());
        assert_eq!(g.next(idle, later + idle).map(|r| r.topic), Some("a".into()));
        assert_eq!(g.buffered("a", 0), 0);
    }
}
