//! Windowed stream-stream joins: inner, left and outer, with [`JoinWindows`].
//!
//! Each side keeps its records in a window store (duplicates retained) for the join window plus
//! grace. A record joins every record of the other side whose timestamp is within the window and
//! that the other side's store still holds. For left and outer joins, a record that found no partner
//! is held in a shared store and emitted with `None` only once its window has closed (stream time
//! passed it by `after`/`before` plus grace), so no spurious `None` result is emitted for a record
//! whose partner arrives later (Kafka Streams' behaviour since 3.1).
//!
//! The details follow Kafka Streams 4.3 record for record (the differential tests compare them):
//! closed held records are emitted before the current record's results, and only when the current
//! record is not out of order; a late record is still joined with what the other store holds (Kafka
//! Streams does not drop late join records; KAFKA-16123, which proposed it, was closed unmerged), and
//! an unmatched one whose window already lies behind stream time is emitted at once.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::dsl::kstream::KStream;
use crate::dsl::ops::{Emit, Stateless};
use crate::error::Result;
use crate::header::Headers;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};
use crate::serde::{Serde, SerdeError, SharedSerde};
use crate::store::{millis, Stores};
use crate::task::TaskId;

/// How far apart in time two records may be to join: `before` (the other record is older) and
/// `after` (it is newer), and how long late records are still accepted.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::JoinWindows;
/// let w = JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(1))
///     .after(Duration::from_secs(10));
/// assert_eq!((w.before_ms(), w.after_ms(), w.grace_ms()), (5_000, 10_000, 1_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
}

impl JoinWindows {
    /// Records at most `difference` apart join; late records are not accepted.
    pub fn of_time_difference_with_no_grace(difference: Duration) -> Self {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }
    /// Records at most `difference` apart join; records up to `grace` late are still joined.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let d = millis(difference);
        JoinWindows { before_ms: d, after_ms: d, grace_ms: millis(grace) }
    }
    /// How much older the other record may be.
    pub fn before(mut self, before: Duration) -> Self {
        self.before_ms = millis(before);
        self
    }
    /// How much newer the other record may be.
    pub fn after(mut self, after: Duration) -> Self {
        self.after_ms = millis(after);
        self
    }
    /// `before` in milliseconds.
    pub fn before_ms(&self) -> i64 {
        self.before_ms
    }
    /// `after` in milliseconds.
    pub fn after_ms(&self) -> i64 {
        self.after_ms
    }
    /// Grace in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// Serdes of the two sides' window stores (defaults: the streams' serdes).
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::{Consumed, JoinWindows, Produced, StreamJoined, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let views = builder.stream("views", Consumed::with(Serdes::string(), Serdes::string()));
/// let clicks = builder.stream("clicks", Consumed::with(Serdes::string(), Serdes::string()));
/// views
///     .join_stream(
///         &clicks,
///         |v: &String, c: &String| format!("{v}->{c}"),
///         JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(10)),
///         StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string()).with_name("view-click"),
///     )
///     .to("view-clicks", Produced::default());
/// assert!(builder.build().unwrap().describe().to_string().contains("view-click-this-join"));
/// ```
pub struct StreamJoined<K, V, VO> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) other_value_serde: Option<SharedSerde<VO>>,
    pub(crate) name: Option<String>,
}

impl<K, V, VO> Default for StreamJoined<K, V, VO> {
    fn default() -> Self {
        StreamJoined { key_serde: None, value_serde: None, other_value_serde: None, name: None }
    }
}

impl<K, V, VO> StreamJoined<K, V, VO> {
    /// Serdes for the key and both sides' values.
    pub fn with(key: SharedSerde<K>, value: SharedSerde<V>, other: SharedSerde<VO>) -> Self {
        StreamJoined { key_serde: Some(key), value_serde: Some(value), other_value_serde: Some(other), name: None }
    }
    /// Names the join processors and stores.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// A record that found no partner yet, kept until its window closes: the left or the right value.
#[derive(Clone)]
enum Pending<VL, VR> {
    Left(VL),
    Right(VR),
}

/// Key of the pending store: timestamp (sign-flipped big-endian, so a scan goes oldest first), side
/// (right before left, as Kafka Streams' `TimestampedKeyAndJoinSide` orders them), then the record
/// key. Several unmatched records of one side with the same key and timestamp share an entry: its
/// value is the list of them, in arrival order (Kafka Streams' list-value store).
#[derive(Clone)]
struct PendingKey<K> {
    timestamp: i64,
    left: bool,
    key: K,
}

struct PendingKeySerde<K> {
    key: SharedSerde<K>,
}

impl<K: Data> Serde<PendingKey<K>> for PendingKeySerde<K> {
    fn serialize(&self, topic: &str, headers: &Headers, d: &PendingKey<K>) -> Result<Option<Vec<u8>>, SerdeError> {
        let mut out = ((d.timestamp as u64) ^ (1 << 63)).to_be_bytes().to_vec();
        out.push(u8::from(d.left));
        out.extend(self.key.serialize(topic, headers, &d.key)?.unwrap_or_default());
        Ok(Some(out))
    }
    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<PendingKey<K>, SerdeError> {
        let b = data.ok_or(SerdeError::Null { topic: topic.into(), serde: "join pending key", what: "data" })?;
        if b.len() < 9 {
            return Err(SerdeError::Malformed {
                topic: topic.into(),
                serde: "join pending key",
                detail: format!("{} bytes, expected at least 9", b.len()),
            });
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        Ok(PendingKey {
            timestamp: (u64::from_be_bytes(ts) ^ (1 << 63)) as i64,
            left: b[8] == 1,
            key: self.key.deserialize(topic, headers, Some(&b[9..]))?,
        })
    }
}

/// The pending records under one key: each as a side flag, a 4-byte big-endian length and its bytes.
struct PendingListSerde<VL, VR> {
    left: SharedSerde<VL>,
    right: SharedSerde<VR>,
}

impl<VL: Data, VR: Data> Serde<Vec<Pending<VL, VR>>> for PendingListSerde<VL, VR> {
    fn serialize(
        &self,
        topic: &str,
        headers: &Headers,
        list: &Vec<Pending<VL, VR>>,
    ) -> Result<Option<Vec<u8>>, SerdeError> {
        let mut out = Vec::new();
        for item in list {
            let (flag, bytes) = match item {
                Pending::Left(v) => (1u8, self.left.serialize(topic, headers, v)?),
                Pending::Right(v) => (0u8, self.right.serialize(topic, headers, v)?),
            };
            let bytes = bytes.unwrap_or_default();
            out.push(flag);
            out.extend((bytes.len() as u32).to_be_bytes());
            out.extend(bytes);
        }
        Ok(Some(out))
    }
    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: Option<&[u8]>,
    ) -> Result<Vec<Pending<VL, VR>>, SerdeError> {
        let mut rest =
            data.ok_or(SerdeError::Null { topic: topic.into(), serde: "join pending value", what: "data" })?;
        let malformed = |detail: &str| SerdeError::Malformed {
            topic: topic.into(),
            serde: "join pending value",
            detail: detail.into(),
        };
        let mut list = Vec::new();
        while !rest.is_empty() {
            if rest.len() < 5 {
                return Err(malformed("truncated entry header"));
            }
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            let body = rest.get(5..5 + len).ok_or_else(|| malformed("truncated entry"))?;
            list.push(match rest[0] {
                1 => Pending::Left(self.left.deserialize(topic, headers, Some(body))?),
                0 => Pending::Right(self.right.deserialize(topic, headers, Some(body))?),
                _ => return Err(malformed("bad side flag")),
            });
            rest = &rest[5 + len..];
        }
        Ok(list)
    }
}

type Joiner<VL, VR, VO> = Arc<dyn Fn(Option<&VL>, Option<&VR>) -> VO + Send + Sync>;

/// The time both sides of one join share within a task (Kafka Streams' `TimeTracker`): the largest
/// timestamp either side has seen, and a lower bound of the pending records' timestamps that lets
/// most records skip the scan for closed windows. Kept in memory, as in Kafka Streams: after a
/// restart it starts over.
#[derive(Debug, Clone, Copy)]
struct TimeTracker {
    stream_time: i64,
    min_time: i64,
}

impl Default for TimeTracker {
    fn default() -> Self {
        TimeTracker { stream_time: -1, min_time: i64::MAX }
    }
}

type Trackers = Arc<Mutex<HashMap<TaskId, TimeTracker>>>;

/// What both sides of one join share.
struct JoinSpec<VL, VR, VO> {
    left_store: String,
    right_store: String,
    pending_store: Option<String>,
    /// Unmatched left records are emitted (left and outer joins).
    emit_left: bool,
    /// Unmatched right records are emitted (outer joins).
    emit_right: bool,
    /// A right record joins a left record at `ts` if its time is in `[ts - before, ts + after]`.
    before: i64,
    after: i64,
    grace: i64,
    joiner: Joiner<VL, VR, VO>,
    trackers: Trackers,
}

impl<VL, VR, VO> Clone for JoinSpec<VL, VR, VO> {
    fn clone(&self) -> Self {
        JoinSpec {
            left_store: self.left_store.clone(),
            right_store: self.right_store.clone(),
            pending_store: self.pending_store.clone(),
            emit_left: self.emit_left,
            emit_right: self.emit_right,
            before: self.before,
            after: self.after,
            grace: self.grace,
            joiner: self.joiner.clone(),
            trackers: self.trackers.clone(),
        }
    }
}

/// One side of the join; `LEFT` tells which. Input values are `VL` on the left and `VR` on the right.
///
/// As Kafka Streams 4.3's `KStreamKStreamJoin`: a record joins whatever the other side's window
/// store still holds within its window, whatever its lateness (the store forgets records older than
/// its retention, window size plus grace); an unmatched record of an emitting side is held in the
/// pending store, or emitted at once when its window already lies behind stream time; held records
/// whose window plus grace has passed are emitted before the current record's results, and only
/// when the current record is not out of order.
struct JoinSide<K, VL, VR, VO, const LEFT: bool> {
    spec: JoinSpec<VL, VR, VO>,
    task: Option<TaskId>,
    _k: PhantomData<fn(K)>,
}

impl<K: Data, VL: Data, VR: Data, VO: Data, const LEFT: bool> JoinSide<K, VL, VR, VO, LEFT> {
    fn tracker(&self) -> TimeTracker {
        let trackers = self.spec.trackers.lock().unwrap_or_else(|e| e.into_inner());
        self.task.and_then(|t| trackers.get(&t).copied()).unwrap_or_default()
    }

    fn set_tracker(&self, tracker: TimeTracker) {
        if let Some(task) = self.task {
            self.spec.trackers.lock().unwrap_or_else(|e| e.into_inner()).insert(task, tracker);
        }
    }

    /// This side's reach into the other's records: `(before, after)` seen from this side.
    fn reach(&self) -> (i64, i64) {
        if LEFT {
            (self.spec.before, self.spec.after)
        } else {
            (self.spec.after, self.spec.before)
        }
    }

    /// Emits the held records whose window (plus grace) has closed, oldest first.
    fn emit_closed(&self, ctx: &mut ProcessorContext<'_, K, VO>, store: &str) -> Result<()> {
        let mut tracker = self.tracker();
        let (_, this_after) = self.reach();
        if tracker.min_time.saturating_add(this_after).saturating_add(self.spec.grace) >= tracker.stream_time {
            return Ok(());
        }
        tracker.min_time = i64::MAX;
        let entries = ctx.key_value_store::<PendingKey<K>, Vec<Pending<VL, VR>>>(store)?.all()?;
        let (mut left_open, mut right_open) = (false, false);
        let mut emitted = Vec::new();
        for (key, list) in entries {
            tracker.min_time = key.timestamp;
            if left_open && right_open {
                break;
            }
            // A left record waits for right records up to `after` later, a right one for left
            // records up to `before` later.
            let look_back = if key.left { self.spec.after } else { self.spec.before };
            if key.timestamp.saturating_add(look_back).saturating_add(self.spec.grace) >= tracker.stream_time {
                if key.left {
                    left_open = true;
                } else {
                    right_open = true;
                }
                continue;
            }
            for value in &list {
                let result = match value {
                    Pending::Left(l) => (self.spec.joiner)(Some(l), None),
                    Pending::Right(r) => (self.spec.joiner)(None, Some(r)),
                };
                ctx.forward(Record::new(key.key.clone(), result, key.timestamp))?;
            }
            emitted.push(key);
        }
        for key in emitted {
            ctx.key_value_store::<PendingKey<K>, Vec<Pending<VL, VR>>>(store)?.delete(&key)?;
        }
        self.set_tracker(tracker);
        Ok(())
    }

    fn join(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VO>,
        key: K,
        this: Pending<VL, VR>,
        ts: i64,
        headers: Headers,
    ) -> Result<()> {
        let mut tracker = self.tracker();
        tracker.stream_time = tracker.stream_time.max(ts);
        self.set_tracker(tracker);
        if let Some(store) = &self.spec.pending_store {
            if ts == tracker.stream_time {
                self.emit_closed(ctx, store)?;
            }
        }
        let (before, after) = self.reach();
        let (from, to) = (ts.saturating_sub(before).max(0), ts.saturating_add(after).max(0));
        let emit_unmatched = if LEFT { self.spec.emit_left } else { self.spec.emit_right };
        let matched = match &this {
            Pending::Left(l) => {
                let others = ctx.window_store::<K, VR>(&self.spec.right_store)?.fetch_range(&key, from, to)?;
                for (other_ts, r) in &others {
                    self.forget_pending(ctx, &key, *other_ts, false)?;
                    let value = (self.spec.joiner)(Some(l), Some(r));
                    ctx.forward(Record {
                        key: key.clone(),
                        value,
                        timestamp: ts.max(*other_ts),
                        headers: headers.clone(),
                    })?;
                }
                !others.is_empty()
            }
            Pending::Right(r) => {
                let others = ctx.window_store::<K, VL>(&self.spec.left_store)?.fetch_range(&key, from, to)?;
                for (other_ts, l) in &others {
                    self.forget_pending(ctx, &key, *other_ts, true)?;
                    let value = (self.spec.joiner)(Some(l), Some(r));
                    ctx.forward(Record {
                        key: key.clone(),
                        value,
                        timestamp: ts.max(*other_ts),
                        headers: headers.clone(),
                    })?;
                }
                !others.is_empty()
            }
        };
        if !matched && emit_unmatched {
            let stream_time = self.tracker().stream_time;
            match &self.spec.pending_store {
                // Its window lies wholly behind stream time: no partner can come any more.
                Some(store) if to >= stream_time => {
                    let mut tracker = self.tracker();
                    tracker.min_time = tracker.min_time.min(ts);
                    self.set_tracker(tracker);
                    let pending_key = PendingKey { timestamp: ts, left: LEFT, key: key.clone() };
                    let pending = ctx.key_value_store::<PendingKey<K>, Vec<Pending<VL, VR>>>(store)?;
                    let mut list = pending.get(&pending_key)?.unwrap_or_default();
                    list.push(this.clone());
                    pending.put(&pending_key, &list)?;
                }
                _ => {
                    let value = match &this {
                        Pending::Left(l) => (self.spec.joiner)(Some(l), None),
                        Pending::Right(r) => (self.spec.joiner)(None, Some(r)),
                    };
                    ctx.forward(Record { key: key.clone(), value, timestamp: ts, headers: headers.clone() })?;
                }
            }
        }
        // As Kafka Streams' `KStreamJoinWindow`, the record enters its own side's store after it
        // has been joined.
        match this {
            Pending::Left(l) => {
                ctx.window_store::<K, VL>(&self.spec.left_store)?.put(&key, &l, ts)?;
            }
            Pending::Right(r) => {
                ctx.window_store::<K, VR>(&self.spec.right_store)?.put(&key, &r, ts)?;
            }
        }
        Ok(())
    }

    /// A partner arrived for records that were waiting unmatched: they will never be emitted alone.
    fn forget_pending(&self, ctx: &mut ProcessorContext<'_, K, VO>, key: &K, ts: i64, left: bool) -> Result<()> {
        if let Some(store) = &self.spec.pending_store {
            let pending_key = PendingKey { timestamp: ts, left, key: key.clone() };
            ctx.key_value_store::<PendingKey<K>, Vec<Pending<VL, VR>>>(store)?.delete(&pending_key)?;
        }
        Ok(())
    }

    fn start(&mut self, ctx: &ProcessorContext<'_, K, VO>) {
        let task = ctx.task_id();
        self.task = Some(task);
        self.spec.trackers.lock().unwrap_or_else(|e| e.into_inner()).entry(task).or_default();
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            self.spec.trackers.lock().unwrap_or_else(|e| e.into_inner()).remove(&task);
        }
    }
}

impl<K: Data, VL: Data, VR: Data, VO: Data> Processor<K, VL, K, VO> for JoinSide<K, VL, VR, VO, true> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, VO>) -> Result<()> {
        self.start(ctx);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, VO>, r: Record<K, VL>) -> Result<()> {
        self.join(ctx, r.key, Pending::Left(r.value), r.timestamp, r.headers)
    }

    fn close(&mut self) -> Result<()> {
        self.stop();
        Ok(())
    }
}

impl<K: Data, VL: Data, VR: Data, VO: Data> Processor<K, VR, K, VO> for JoinSide<K, VL, VR, VO, false> {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, VO>) -> Result<()> {
        self.start(ctx);
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, VO>, r: Record<K, VR>) -> Result<()> {
        self.join(ctx, r.key, Pending::Right(r.value), r.timestamp, r.headers)
    }

    fn close(&mut self) -> Result<()> {
        self.stop();
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Inner,
    Left,
    Outer,
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Joins records of both streams with the same key whose timestamps are within `windows`.
    pub fn join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |l, r| match (l, r) {
            (Some(l), Some(r)) => joiner(l, r),
            // Inner joins keep no pending records, so the joiner only ever sees pairs.
            _ => unreachable!("an inner join has no unmatched results"),
        });
        self.join_streams(other, joiner, windows, joined, Kind::Inner)
    }

    /// Like [`join_stream`](Self::join_stream), and a record of this stream that finds no partner
    /// within its window is emitted with `None` once the window closes.
    pub fn left_join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |l, r| match l {
            Some(l) => joiner(l, r),
            None => unreachable!("a left join emits no unmatched right records"),
        });
        self.join_streams(other, joiner, windows, joined, Kind::Left)
    }

    /// Like [`join_stream`](Self::join_stream), and a record of either stream that finds no partner
    /// is emitted with `None` for the other side once its window closes.
    pub fn outer_join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        self.join_streams(other, Arc::new(joiner), windows, joined, Kind::Outer)
    }

    fn join_streams<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: Joiner<V, VO, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
        kind: Kind,
    ) -> KStream<K, VR> {
        let builder = self.builder.clone();
        let (this_prefix, other_prefix) = match kind {
            Kind::Inner => ("KSTREAM-JOINTHIS-", "KSTREAM-JOINOTHER-"),
            Kind::Left => ("KSTREAM-JOINTHIS-", "KSTREAM-OUTEROTHER-"),
            Kind::Outer => ("KSTREAM-OUTERTHIS-", "KSTREAM-OUTEROTHER-"),
        };
        let mut b = builder.borrow_mut();
        let ks = b.serde(joined.key_serde.clone(), self.key_serde.as_ref().or(other.key_serde.as_ref()), "join key");
        let vs = b.serde(joined.value_serde.clone(), self.value_serde.as_ref(), "join value (this side)");
        let os = b.serde(joined.other_value_serde.clone(), other.value_serde.as_ref(), "join value (other side)");
        let (this_name, other_name) = match &joined.name {
            Some(n) => (format!("{n}-this-join"), format!("{n}-other-join")),
            None => (b.new_name(this_prefix), b.new_name(other_prefix)),
        };
        drop(b);
        let left = if self.repartition_required {
            self.through_repartition_topic(&format!("{this_name}-left"), ks.clone(), vs.clone(), None, None)
        } else {
            self.clone()
        };
        let right = if other.repartition_required {
            other.through_repartition_topic(&format!("{other_name}-right"), ks.clone(), os.clone(), None, None)
        } else {
            other.clone()
        };
        let mut b = builder.borrow_mut();
        let merge = b.new_name("KSTREAM-MERGE-");
        let (left_store, right_store) = (format!("{this_name}-store"), format!("{other_name}-store"));
        let pending_store = match kind {
            Kind::Inner => None,
            _ => Some(format!("{}-store", b.new_name("KSTREAM-OUTERSHARED-"))),
        };
        let size = windows.before_ms.saturating_add(windows.after_ms);
        let retention = Duration::from_millis(size.saturating_add(windows.grace_ms).max(1) as u64);
        let window = Duration::from_millis(size.max(1) as u64);
        let spec = JoinSpec {
            left_store: left_store.clone(),
            right_store: right_store.clone(),
            pending_store: pending_store.clone(),
            emit_left: !matches!(kind, Kind::Inner),
            emit_right: matches!(kind, Kind::Outer),
            before: windows.before_ms,
            after: windows.after_ms,
            grace: windows.grace_ms,
            joiner,
            trackers: Trackers::default(),
        };
        let (s1, s2) = (spec.clone(), spec);
        let mut result = b
            .topology
            .add_processor(
                &this_name,
                move || JoinSide::<K, V, VO, VR, true> { spec: s1.clone(), task: None, _k: PhantomData },
                &[&left.node],
            )
            .and_then(|t| {
                t.add_processor(
                    &other_name,
                    move || JoinSide::<K, V, VO, VR, false> { spec: s2.clone(), task: None, _k: PhantomData },
                    &[&right.node],
                )
            })
            .and_then(|t| {
                t.add_state_store(
                    Stores::window(&left_store, retention, window, true, ks.clone(), vs.clone()),
                    &[&this_name, &other_name],
                )
            })
            .and_then(|t| {
                t.add_state_store(
                    Stores::window(&right_store, retention, window, true, ks.clone(), os.clone()),
                    &[&this_name, &other_name],
                )
            })
            .and_then(|t| {
                t.add_processor(&merge, Stateless::<K, VR, K, VR>::supplier(Emit::One), &[&this_name, &other_name])
            })
            .map(|_| ());
        if let Some(store) = &pending_store {
            let key_serde: SharedSerde<PendingKey<K>> = Arc::new(PendingKeySerde { key: ks.clone() });
            let value_serde: SharedSerde<Vec<Pending<V, VO>>> =
                Arc::new(PendingListSerde { left: vs.clone(), right: os.clone() });
            result = result.and_then(|_| {
                b.topology
                    .add_state_store(Stores::key_value(store, key_serde, value_serde), &[&this_name, &other_name])
                    .map(|_| ())
            });
        }
        b.check(result);
        let topics = [left.source_topics_of(&b), right.source_topics_of(&b)].concat();
        b.topology.require_copartitioned(topics);
        drop(b);
        KStream::new(builder, merge, left.key_serde.clone(), None, false)
    }
}
