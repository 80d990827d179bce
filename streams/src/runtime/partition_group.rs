//! The input partitions of one task, whose records are taken in timestamp order (Kafka Streams'
//! `PartitionGroup`).
//!
//! A task reading several partitions (a join's two sides, merged topics) must see their records
//! interleaved by time, not in the order the consumer happened to fetch them: otherwise a stream
//! record can meet a table that is missing the update written just before it. Each consumed record
//! waits in its partition's queue; the task takes the head with the smallest timestamp, but only
//! while every partition has something buffered. When one is empty, the task asks how far behind
//! the broker's end that partition is (as Kafka Streams does since KIP-695):
//! - behind: the data is on its way; the task waits (however long `max.task.idle.ms` is);
//! - caught up: the task waits until the partition has been empty and caught up for
//!   `max.task.idle.ms` (0, the default: not at all), then goes on; the clock starts over when the
//!   partition receives records or falls behind;
//! - not known yet (no fetch answered for it since the assignment): the task waits.
//!
//! Waiting for a partition that is behind or unknown is bounded by [`LAG_WAIT`] (Kafka Streams has
//! no bound): fetches answer within milliseconds, so the bound only keeps a task from stalling if
//! the consumer's position were ever stuck short of the end (e.g. below records it skips).
//! - with `max.task.idle.ms = -1` the task never waits.
//!
//! Ordering uses the records' event times, as the task's timestamp extractors give them (Kafka
//! Streams' `RecordQueue`): the record at the head of each queue is deserialized, and its
//! timestamp extracted, when it becomes the head, and processed from that decoding. A record that
//! cannot be deserialized is ordered by its Kafka timestamp (its handler decides what happens to
//! it when it is taken). Ordering by Kafka timestamps instead would interleave two feeds by when
//! they were written to Kafka: two change-data-capture feeds of one database history, replayed
//! with different lags, would then mix months apart. Each queue also remembers the offset after
//! the last record taken from it: the input position the next commit writes.
//!
//! This is on every record's path: topics are shared `Arc<str>`s and queues are found by a short
//! linear search (a task reads a handful of partitions), so queuing a record allocates only its
//! key and value.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::header::Headers;
use crate::processor::node::ConsumedBytes;
use crate::record::RawRecord;

/// A consumed record waiting for its task.
pub(crate) struct Pending {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Headers,
    /// The record as its task's source decoded it (typed, with its extracted timestamp), once it
    /// reached the head of its queue.
    pub decoded: Option<Result<RawRecord>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("decoded", &self.decoded.as_ref().map(|d| d.as_ref().map(|r| r.timestamp)))
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// The record's bytes, as a source node reads them.
    pub(crate) fn bytes(&self) -> ConsumedBytes<'_> {
        ConsumedBytes {
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            timestamp: self.timestamp,
            headers: self.headers.clone(),
        }
    }

    /// The time that orders the record among the task's partitions: its extracted timestamp once
    /// decoded (its Kafka timestamp if it could not be).
    fn order_time(&self) -> i64 {
        match &self.decoded {
            Some(Ok(record)) => record.timestamp,
            _ => self.timestamp,
        }
    }
}

/// Decodes a record at the head of its queue (its task's source for the topic).
pub(crate) type Decode<'a> = dyn FnMut(&Pending) -> Result<RawRecord> + 'a;

/// How far an empty partition is from the end of its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lag {
    /// Nothing is known yet.
    Unknown,
    /// Records are on the broker that the consumer has not returned yet.
    Behind,
    /// The consumer has returned everything up to the end of the log.
    CaughtUp,
}

/// The longest a task waits for an empty partition that is behind or whose lag is unknown.
pub(crate) const LAG_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Queue {
    topic: Arc<str>,
    partition: i32,
    records: VecDeque<Pending>,
    /// The offset after the last record taken since the offsets were last taken for a commit.
    next_offset: Option<i64>,
    /// Where consumption started (the committed offset), -1 if unknown: the consumer's position
    /// before it returns a record.
    start: i64,
    /// The offset after the last record queued: where fetching resumes after a rebalance.
    fetched: Option<i64>,
    /// Empty and caught up: the task may go on without it from then on.
    idle_deadline: Option<Instant>,
    /// Empty and behind (or of unknown lag) since then.
    waiting_since: Option<Instant>,
}

impl Queue {
    fn new(topic: Arc<str>, partition: i32) -> Queue {
        Queue {
            topic,
            partition,
            records: VecDeque::new(),
            next_offset: None,
            start: -1,
            fetched: None,
            idle_deadline: None,
            waiting_since: None,
        }
    }
}

/// The queues of a task's input partitions.
#[derive(Debug, Default)]
pub(crate) struct PartitionGroup {
    queues: Vec<Queue>,
}

impl PartitionGroup {
    /// A group over `partitions`, all empty.
    pub(crate) fn new(partitions: impl IntoIterator<Item = (String, i32)>) -> Self {
        let queues = partitions.into_iter().map(|(topic, partition)| Queue::new(topic.into(), partition)).collect();
        PartitionGroup { queues }
    }

    /// Notes where consumption of `topic`/`partition` starts (its committed offset).
    pub(crate) fn set_start(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(i) = self.position(topic, partition) {
            self.queues[i].start = offset;
        }
    }

    fn position(&self, topic: &str, partition: i32) -> Option<usize> {
        self.queues.iter().position(|q| q.partition == partition && &*q.topic == topic)
    }

    /// Queues a record of one of the group's partitions (others get a queue of their own); returns
    /// how many records its partition now has buffered.
    pub(crate) fn push(&mut self, c: ConsumedBytes<'_>) -> usize {
        let i = match self.position(c.topic, c.partition) {
            Some(i) => i,
            None => {
                self.queues.push(Queue::new(c.topic.into(), c.partition));
                self.queues.len() - 1
            }
        };
        let queue = &mut self.queues[i];
        queue.fetched = Some(c.offset + 1);
        queue.idle_deadline = None;
        queue.waiting_since = None;
        queue.records.push_back(Pending {
            topic: queue.topic.clone(),
            partition: c.partition,
            offset: c.offset,
            key: c.key.map(<[u8]>::to_vec),
            value: c.value.map(<[u8]>::to_vec),
            timestamp: c.timestamp,
            headers: c.headers,
            decoded: None,
        });
        queue.records.len()
    }

    /// Where fetching `topic`/`partition` resumes: after the last record queued, if any was (the
    /// queued ones are processed, not fetched again).
    pub(crate) fn fetch_position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.position(topic, partition).and_then(|i| self.queues[i].fetched)
    }

    /// Where fetching `topic`/`partition` goes on when its partition resumes: after the last record
    /// queued, or where consumption started if none was; `None` if neither is known.
    pub(crate) fn resume_position(&self, topic: &str, partition: i32) -> Option<i64> {
        let queue = &self.queues[self.position(topic, partition)?];
        queue.fetched.or((queue.start >= 0).then_some(queue.start))
    }

    /// Records buffered in `topic`/`partition`.
    pub(crate) fn buffered(&self, topic: &str, partition: i32) -> usize {
        self.position(topic, partition).map_or(0, |i| self.queues[i].records.len())
    }

    /// The next record to process: the oldest head among the partitions (by extracted timestamp;
    /// `decode` decodes a new head), once no empty partition holds the task back (see the module
    /// docs; `max_idle` is `None` for `max.task.idle.ms = -1`); `None` when the task should wait.
    /// `lag(topic, partition, start)` says how far an empty partition is behind. Taking a record
    /// moves its partition's commit position past it.
    pub(crate) fn next(
        &mut self,
        max_idle: Option<Duration>,
        now: Instant,
        lag: &mut dyn FnMut(&str, i32, i64) -> Lag,
        decode: &mut Decode<'_>,
    ) -> Option<Pending> {
        let mut oldest: Option<(usize, i64)> = None;
        let mut any_empty = false;
        for (i, queue) in self.queues.iter_mut().enumerate() {
            match queue.records.front_mut() {
                None => any_empty = true,
                Some(head) => {
                    if head.decoded.is_none() {
                        head.decoded = Some(decode(head));
                    }
                    let time = head.order_time();
                    if oldest.is_none_or(|(_, ts)| time < ts) {
                        oldest = Some((i, time));
                    }
                }
            }
        }
        // The empty partitions' clocks run whether or not another partition holds records (Kafka
        // Streams' `readyToProcess`): a partition that stayed empty and caught up for
        // `max.task.idle.ms` holds nothing back when records arrive elsewhere.
        if let (true, true, Some(max_idle)) = (any_empty, self.queues.len() > 1, max_idle) {
            let waiting = oldest.is_some();
            let mut held = false;
            for queue in self.queues.iter_mut().filter(|q| q.records.is_empty()) {
                match lag(&queue.topic, queue.partition, queue.start) {
                    Lag::Behind | Lag::Unknown => {
                        queue.idle_deadline = None;
                        let since = *queue.waiting_since.get_or_insert(now);
                        if now.duration_since(since) < LAG_WAIT {
                            held = true;
                        } else if waiting {
                            tracing::debug!(topic = %queue.topic, partition = queue.partition, "enforced processing: a partition behind stayed empty for {LAG_WAIT:?}");
                        }
                    }
                    Lag::CaughtUp => {
                        queue.waiting_since = None;
                        if now < *queue.idle_deadline.get_or_insert(now + max_idle) {
                            held = true;
                        } else if waiting {
                            tracing::debug!(topic = %queue.topic, partition = queue.partition, "enforced processing: a caught-up partition stayed empty for max.task.idle.ms");
                        }
                    }
                }
            }
            if held {
                return None;
            }
        }
        let (i, _) = oldest?;
        let queue = &mut self.queues[i];
        let record = queue.records.pop_front()?;
        queue.next_offset = Some(record.offset + 1);
        Some(record)
    }

    /// The commit positions `(topic, partition, next offset)` of partitions that moved since the
    /// last [`clear_offsets`](Self::clear_offsets).
    pub(crate) fn offsets(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.queues.iter().filter_map(|q| q.next_offset.map(|o| (&*q.topic, q.partition, o)))
    }

    /// Forgets the commit positions (after a commit, or an aborted transaction).
    pub(crate) fn clear_offsets(&mut self) {
        for queue in &mut self.queues {
            queue.next_offset = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, offset: i64, timestamp: i64) -> ConsumedBytes<'_> {
        ConsumedBytes { topic, partition: 0, offset, key: None, value: None, timestamp, headers: Headers::new() }
    }

    fn caught_up(_: &str, _: i32, _: i64) -> Lag {
        Lag::CaughtUp
    }

    /// Decodes a record keeping its Kafka timestamp (no extractor).
    fn kafka_time(p: &Pending) -> Result<RawRecord> {
        Ok(RawRecord::from_typed(crate::record::Record {
            key: (),
            value: (),
            timestamp: p.timestamp,
            headers: Headers::new(),
        }))
    }

    fn order(group: &mut PartitionGroup, idle: Option<Duration>, now: Instant) -> Vec<(String, i64)> {
        std::iter::from_fn(|| group.next(idle, now, &mut caught_up, &mut kafka_time))
            .map(|r| (r.topic.to_string(), r.offset))
            .collect()
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
        // With max.task.idle.ms = 0, a caught-up partition running empty does not stop the other.
        let got = order(&mut g, Some(Duration::ZERO), now);
        let names: Vec<_> = got.iter().map(|(t, o)| format!("{t}{o}")).collect();
        assert_eq!(names, ["a0", "b0", "a1", "b1", "a2", "b2"]);
    }

    #[test]
    fn heads_are_ordered_by_their_extracted_timestamps_and_decoded_once() {
        // Written to Kafka in one order (Kafka timestamps 1, 2, 3 on each side), but the event
        // times in the values say otherwise: b's records are older.
        let mut g = PartitionGroup::new([("a".to_string(), 0), ("b".to_string(), 0)]);
        let values = [("a", [(0, 1, 500), (1, 2, 600)]), ("b", [(0, 1, 100), (1, 2, 700)])];
        for (topic, records) in values {
            for (offset, ts, event) in records {
                let value = event.to_string();
                g.push(ConsumedBytes {
                    topic,
                    partition: 0,
                    offset,
                    key: None,
                    value: Some(value.as_bytes()),
                    timestamp: ts,
                    headers: Headers::new(),
                });
            }
        }
        let mut decoded = 0;
        let mut event_time = |p: &Pending| {
            decoded += 1;
            let event: i64 = String::from_utf8_lossy(p.value.as_deref().unwrap_or_default()).parse().unwrap_or(-1);
            Ok(RawRecord::from_typed(crate::record::Record {
                key: (),
                value: (),
                timestamp: event,
                headers: Headers::new(),
            }))
        };
        let now = Instant::now();
        let got: Vec<String> =
            std::iter::from_fn(|| g.next(Some(Duration::ZERO), now, &mut caught_up, &mut event_time))
                .map(|r| {
                    assert!(r.decoded.as_ref().is_some_and(|d| d.is_ok()), "taken decoded");
                    format!("{}{}", r.topic, r.offset)
                })
                .collect();
        assert_eq!(got, ["b0", "a0", "a1", "b1"]);
        assert_eq!(decoded, 4, "each record is decoded once, when it becomes its queue's head");
    }

    #[test]
    fn the_idle_clock_runs_from_when_a_partition_is_empty_and_caught_up() {
        let mut g = PartitionGroup::new([("a".to_string(), 0), ("b".to_string(), 0)]);
        let idle = Some(Duration::from_millis(500));
        let start = Instant::now();
        // Both empty: b's clock (and a's) runs already.
        assert!(g.next(idle, start, &mut caught_up, &mut kafka_time).is_none());
        let later = start + Duration::from_secs(10);
        g.push(rec("a", 0, 100));
        assert_eq!(
            g.next(idle, later, &mut caught_up, &mut kafka_time).map(|r| r.offset),
            Some(0),
            "b idled long enough"
        );
        // a just emptied: b's record waits for a, from now.
        g.push(rec("b", 0, 150));
        assert!(g.next(idle, later, &mut caught_up, &mut kafka_time).is_none(), "a fresh wait for a");
        let t = later + Duration::from_millis(500);
        assert_eq!(g.next(idle, t, &mut caught_up, &mut kafka_time).map(|r| r.topic), Some("b".into()));
        // b received a record: its clock starts over now that it is empty again.
        assert!(g.next(idle, t, &mut caught_up, &mut kafka_time).is_none(), "nothing buffered");
        g.push(rec("a", 1, 200));
        assert!(g.next(idle, t + Duration::from_millis(499), &mut caught_up, &mut kafka_time).is_none());
        assert_eq!(
            g.next(idle, t + Duration::from_millis(500), &mut caught_up, &mut kafka_time).map(|r| r.offset),
            Some(1)
        );
    }

    #[test]
    fn a_caught_up_empty_partition_holds_the_task_for_max_task_idle() {
        let mut g = PartitionGroup::new([("a".to_string(), 0), ("b".to_string(), 0)]);
        g.push(rec("a", 0, 100));
        let start = Instant::now();
        let idle = Some(Duration::from_millis(500));
        assert!(g.next(idle, start, &mut caught_up, &mut kafka_time).is_none(), "waits for b");
        let t = start + Duration::from_millis(400);
        assert!(g.next(idle, t, &mut caught_up, &mut kafka_time).is_none(), "still within max.task.idle.ms");
        // b's record arrives with an older timestamp: it goes first.
        g.push(rec("b", 0, 50));
        let t = start + Duration::from_millis(450);
        assert_eq!(g.next(idle, t, &mut caught_up, &mut kafka_time).map(|r| r.topic), Some("b".into()));
        // b is empty again: the idle clock restarts, then a goes after max.task.idle.ms.
        let later = start + Duration::from_millis(460);
        assert!(g.next(idle, later, &mut caught_up, &mut kafka_time).is_none());
        assert_eq!(
            g.next(idle, later + Duration::from_millis(500), &mut caught_up, &mut kafka_time).map(|r| r.topic),
            Some("a".into())
        );
        assert_eq!(g.buffered("a", 0), 0);
    }

    #[test]
    fn a_partition_behind_holds_the_task_even_with_no_idle_time() {
        let mut g = PartitionGroup::new([("stream".to_string(), 0), ("table".to_string(), 0)]);
        g.set_start("table", 0, 42);
        g.push(rec("stream", 0, 100));
        let now = Instant::now();
        let asked = std::cell::RefCell::new(Vec::new());
        let mut behind = |t: &str, p: i32, start: i64| {
            asked.borrow_mut().push((t.to_string(), p, start));
            Lag::Behind
        };
        // Behind: wait (the records are on their way), at most LAG_WAIT.
        assert!(g.next(Some(Duration::ZERO), now, &mut behind, &mut kafka_time).is_none());
        let almost = now + LAG_WAIT - Duration::from_millis(1);
        assert!(g.next(Some(Duration::ZERO), almost, &mut behind, &mut kafka_time).is_none());
        assert_eq!(asked.borrow()[0], ("table".to_string(), 0, 42), "the lag is asked with the committed start");
        assert!(g.next(Some(Duration::ZERO), now + LAG_WAIT, &mut behind, &mut kafka_time).is_some());
        // The table's record arrives and is taken (the oldest): the wait starts over next time.
        g.push(rec("stream", 1, 101));
        g.push(rec("table", 42, 0));
        assert_eq!(
            g.next(Some(Duration::ZERO), now + LAG_WAIT, &mut behind, &mut kafka_time).map(|r| r.offset),
            Some(42)
        );
        // Unknown: the same.
        let mut unknown = |_: &str, _: i32, _: i64| Lag::Unknown;
        let later = now + Duration::from_secs(10);
        assert!(g.next(Some(Duration::ZERO), later, &mut unknown, &mut kafka_time).is_none());
        assert!(g.next(Some(Duration::ZERO), later + LAG_WAIT, &mut unknown, &mut kafka_time).is_some());
        // max.task.idle.ms = -1: never wait.
        g.push(rec("stream", 2, 102));
        assert!(g.next(None, now, &mut behind, &mut kafka_time).is_some());
    }

    #[test]
    fn taking_records_moves_the_commit_positions() {
        let mut g = PartitionGroup::new([("a".to_string(), 0), ("b".to_string(), 0)]);
        assert_eq!(g.push(rec("a", 7, 10)), 1);
        assert_eq!(g.push(rec("a", 8, 20)), 2);
        assert_eq!(g.push(rec("b", 3, 15)), 1);
        assert_eq!(g.offsets().count(), 0, "nothing taken yet");
        let now = Instant::now();
        let idle = Some(Duration::ZERO);
        assert_eq!(g.next(idle, now, &mut caught_up, &mut kafka_time).map(|r| r.offset), Some(7));
        assert_eq!(g.next(idle, now, &mut caught_up, &mut kafka_time).map(|r| r.offset), Some(3));
        let mut got: Vec<_> = g.offsets().map(|(t, p, o)| (t.to_string(), p, o)).collect();
        got.sort();
        assert_eq!(got, [("a".to_string(), 0, 8), ("b".to_string(), 0, 4)]);
        g.clear_offsets();
        assert_eq!(g.offsets().count(), 0);
        assert_eq!(g.next(idle, now, &mut caught_up, &mut kafka_time).map(|r| r.offset), Some(8));
        assert_eq!(g.offsets().map(|(_, _, o)| o).collect::<Vec<_>>(), [9]);
    }
}
