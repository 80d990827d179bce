//! Time segments of the RocksDB window and session stores.
//!
//! A segmented store is one RocksDB instance in which each segment is a column family named
//! `segment-<id>`, where `id = timestamp.div_euclid(segment_interval)` and the timestamp is the window
//! start (window stores) or the session end (session stores). As in Kafka Streams, the segment
//! interval is `max(retention / 2, 60 s)`, and the store tracks the observed stream time (the largest
//! timestamp written): every segment whose whole time range is expired, i.e. whose id is below
//! `segment_id(observed - retention + 1)`, is dropped as a unit (`drop_cf`), which frees its files
//! without per-key deletes. Records inside the oldest live segment that are already expired are
//! filtered out by reads.
//!
//! # At-least-once
//!
//! Without a commit buffer (at-least-once), writes and restored changes skip RocksDB's write-ahead
//! log, as in Kafka Streams (the changelog topic is the durable copy), and `flush`, `commit` and
//! `close` flush the memtables of every segment to SST files (see [`rocksdb`](super)). Dropping an
//! expired segment's column family is unaffected.
//!
//! The observed stream time is not persisted: after a reopen it starts unknown and is re-established
//! by the first write (or by restoration), as in Kafka Streams.
//!
//! # Exactly-once
//!
//! Under `exactly_once_v2` the segments buffer their writes until the store's commit, as the
//! key-value store does (see [`eos`](super::eos)): pending changes are kept per segment, reads merge
//! them over RocksDB, and the commit applies every segment's changes together with the changelog
//! offset in one synced write batch (a `WriteBatch` spans column families). Expired segments are
//! hidden from reads at once but dropped only after the commit that made them expire: until the
//! transaction commits, a crash may rewind stream time, and the replayed records must still find the
//! windows they update.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::{ensure_meta_cf, flush_memtables, no_wal, open_db, read_offset, rocks_err, within, write_with_offset};
use crate::error::{StateError, StateResult};
use crate::layers::caching_kv::merge_over;
use crate::memory::expired;
use crate::store::KeyValueIter;

/// Kafka Streams' lower bound on the segment interval.
pub const MIN_SEGMENT_INTERVAL_MS: i64 = 60_000;

/// The segment interval Kafka Streams uses for a retention: `max(retention / 2, 60 s)`.
pub fn segment_interval(retention_ms: i64) -> i64 {
    (retention_ms / 2).max(MIN_SEGMENT_INTERVAL_MS)
}

const PREFIX: &str = "segment-";

/// Changes waiting for the next commit, by segment id, then storage key (looked up by `&[u8]`,
/// without allocating); `None` deletes.
type Pending = BTreeMap<i64, BTreeMap<Vec<u8>, Option<Vec<u8>>>>;

/// A restored change: the timestamp that places it in a segment, its storage key, and its value
/// (`None` deletes).
pub(crate) type RestoredChange<'a> = (i64, Vec<u8>, Option<&'a [u8]>);

/// The exactly-once write buffer of a segmented store.
#[derive(Default)]
struct CommitBuffer {
    pending: Pending,
    /// Column families of segments that expired since the last commit, dropped by the next one.
    expired: Vec<String>,
}

/// The segments of one store.
pub(crate) struct Segments {
    name: String,
    db: Option<DB>,
    opts: Options,
    interval: i64,
    retention_ms: i64,
    observed: i64,
    live: BTreeMap<i64, String>,
    fresh: bool,
    buffer: Option<CommitBuffer>,
    /// Options of the unbuffered (at-least-once) writes: no write-ahead log.
    no_wal: WriteOptions,
}

impl Segments {
    /// Opens the store at `path`, finding its existing segments.
    pub(crate) fn open(name: &str, path: &Path, opts: Options, retention_ms: i64) -> StateResult<Self> {
        let (db, fresh) = open_db(name, path, &opts)?;
        let mut live = BTreeMap::new();
        for cf in DB::list_cf(&opts, path).map_err(rocks_err(name))? {
            if let Some(id) = cf.strip_prefix(PREFIX).and_then(|id| id.parse::<i64>().ok()) {
                live.insert(id, cf);
            }
        }
        Ok(Segments {
            name: name.to_string(),
            db: Some(db),
            opts,
            interval: segment_interval(retention_ms),
            retention_ms,
            observed: i64::MIN,
            live,
            fresh,
            buffer: None,
            no_wal: no_wal(),
        })
    }

    /// Buffers writes until [`commit`](Self::commit) (exactly-once; see the module docs).
    pub(crate) fn buffer_until_commit(&mut self) -> StateResult<()> {
        let db = self.db.as_mut().ok_or_else(|| StateError::Closed(self.name.clone()))?;
        ensure_meta_cf(db, &self.opts, &self.name)?;
        self.buffer.get_or_insert_with(CommitBuffer::default);
        Ok(())
    }

    pub(crate) fn fresh(&self) -> bool {
        self.fresh
    }

    fn db(&self) -> StateResult<&DB> {
        self.db.as_ref().ok_or_else(|| StateError::Closed(self.name.clone()))
    }

    /// With a buffer (exactly-once), syncs the write-ahead log; buffered changes stay buffered.
    /// Without one, flushes every segment's memtable to SST files (the writes skip the WAL).
    pub(crate) fn flush(&self) -> StateResult<()> {
        self.flush_db(self.db()?)
    }

    fn flush_db(&self, db: &DB) -> StateResult<()> {
        if self.buffer.is_some() {
            db.flush_wal(true).map_err(rocks_err(&self.name))
        } else {
            flush_memtables(db, self.live.values().map(String::as_str), &self.name)
        }
    }

    pub(crate) fn close(&mut self) -> StateResult<()> {
        if let Some(buffer) = self.buffer.as_mut().filter(|b| !b.pending.is_empty()) {
            tracing::warn!(store = %self.name, discarded = buffer.pending.values().map(BTreeMap::len).sum::<usize>(),
                "closing with uncommitted writes; they will be replayed from the changelog");
            buffer.pending.clear();
        }
        if let Some(db) = self.db.take() {
            self.flush_db(&db)?;
        }
        Ok(())
    }

    /// Applies the buffered changes (if buffering) with `changelog_offset` in one synced write batch,
    /// then drops the segments that expired meanwhile. Without a buffer it [flushes](Self::flush) the
    /// memtables.
    pub(crate) fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
        let Some(buffer) = self.buffer.as_mut() else {
            return self.flush();
        };
        let pending = std::mem::take(&mut buffer.pending);
        let expired = std::mem::take(&mut buffer.expired);
        let db = self.db.as_mut().ok_or_else(|| StateError::Closed(self.name.clone()))?;
        let mut wb = WriteBatch::default();
        for (id, changes) in &pending {
            let Some(cf) = self.live.get(id).and_then(|cf| db.cf_handle(cf)) else {
                continue; // the segment expired before the commit
            };
            for (key, value) in changes {
                match value {
                    Some(v) => wb.put_cf(cf, key, v),
                    None => wb.delete_cf(cf, key),
                }
            }
        }
        write_with_offset(db, wb, changelog_offset, &self.name)?;
        for cf in expired {
            db.drop_cf(&cf).map_err(rocks_err(&self.name))?;
            tracing::debug!(store = %self.name, segment = %cf, "dropped expired segment");
        }
        Ok(())
    }

    /// The changelog offset recorded by the last buffered [`commit`](Self::commit).
    pub(crate) fn committed_offset(&self) -> StateResult<Option<i64>> {
        read_offset(self.db()?, &self.name)
    }

    pub(crate) fn segment_id(&self, ts: i64) -> i64 {
        ts.div_euclid(self.interval)
    }

    /// Ids of the live segments, oldest first.
    pub(crate) fn segment_ids(&self) -> Vec<i64> {
        self.live.keys().copied().collect()
    }

    /// Whether a timestamp is past retention.
    pub(crate) fn is_expired(&self, ts: i64) -> bool {
        expired(ts, self.retention_ms, self.observed)
    }

    /// The earliest timestamp reads may return.
    pub(crate) fn earliest_live(&self) -> i64 {
        if self.observed == i64::MIN {
            i64::MIN
        } else {
            self.observed.saturating_sub(self.retention_ms).saturating_add(1)
        }
    }

    /// Advances the observed stream time to `ts` and drops segments that are wholly expired (when
    /// buffering, hides them and drops them at the next commit).
    pub(crate) fn observe(&mut self, ts: i64) -> StateResult<()> {
        if ts <= self.observed {
            return Ok(());
        }
        self.observed = ts;
        let min_live = self.segment_id(self.earliest_live());
        let dead: Vec<i64> = self.live.range(..min_live).map(|(id, _)| *id).collect();
        for id in dead {
            let Some(cf) = self.live.remove(&id) else { continue };
            if let Some(buffer) = self.buffer.as_mut() {
                buffer.pending.remove(&id);
                buffer.expired.push(cf);
                continue;
            }
            let db = self.db.as_mut().ok_or_else(|| StateError::Closed(self.name.clone()))?;
            db.drop_cf(&cf).map_err(rocks_err(&self.name))?;
            tracing::debug!(store = %self.name, segment = id, "dropped expired segment");
        }
        Ok(())
    }

    /// Creates the segment holding `ts` if it does not exist.
    fn ensure(&mut self, ts: i64) -> StateResult<()> {
        let id = self.segment_id(ts);
        if self.live.contains_key(&id) {
            return Ok(());
        }
        let cf = format!("{PREFIX}{id}");
        let db = self.db.as_mut().ok_or_else(|| StateError::Closed(self.name.clone()))?;
        db.create_cf(&cf, &self.opts).map_err(rocks_err(&self.name))?;
        self.live.insert(id, cf);
        Ok(())
    }

    /// Writes `key` (a storage key) into the segment of `ts`, which must not be expired; `None`
    /// deletes. Buffered until the commit under exactly-once.
    pub(crate) fn write(&mut self, ts: i64, key: Vec<u8>, value: Option<&[u8]>) -> StateResult<()> {
        self.ensure(ts)?;
        let id = self.segment_id(ts);
        if let Some(buffer) = self.buffer.as_mut() {
            buffer.pending.entry(id).or_default().insert(key, value.map(<[u8]>::to_vec));
            return Ok(());
        }
        let db = self.db()?;
        let cf = self.live.get(&id).and_then(|cf| db.cf_handle(cf)).ok_or_else(|| self.missing_segment(ts))?;
        match value {
            Some(v) => db.put_cf_opt(cf, key, v, &self.no_wal),
            None => db.delete_cf_opt(cf, key, &self.no_wal),
        }
        .map_err(rocks_err(&self.name))
    }

    /// Applies restored changes `(timestamp, storage key, value)` in one write batch, straight to
    /// RocksDB (restored changes are committed ones); changes already past retention are skipped.
    /// With a buffer the batch goes through the WAL (the offset committed after the restore is synced
    /// to it and must not land without the changes); without one it skips the WAL.
    pub(crate) fn restore(&mut self, changes: Vec<RestoredChange<'_>>) -> StateResult<()> {
        if let Some(max) = changes.iter().map(|c| c.0).max() {
            self.observe(max)?;
        }
        let live: Vec<_> = changes.into_iter().filter(|c| !self.is_expired(c.0)).collect();
        for (ts, _, _) in &live {
            self.ensure(*ts)?;
        }
        let db = self.db()?;
        let mut wb = WriteBatch::default();
        for (ts, key, value) in live {
            let cf = self
                .live
                .get(&self.segment_id(ts))
                .and_then(|cf| db.cf_handle(cf))
                .ok_or_else(|| self.missing_segment(ts))?;
            match value {
                Some(v) => wb.put_cf(cf, key, v),
                None => wb.delete_cf(cf, key),
            }
        }
        if self.buffer.is_some() { db.write(wb) } else { db.write_opt(wb, &self.no_wal) }.map_err(rocks_err(&self.name))
    }

    fn missing_segment(&self, ts: i64) -> StateError {
        StateError::Corrupt { store: self.name.clone(), detail: format!("segment for timestamp {ts} vanished") }
    }

    /// The value of `key` (a storage key) in the segment of `ts`, buffered changes first.
    pub(crate) fn get(&self, ts: i64, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        let id = self.segment_id(ts);
        if let Some(change) = self.buffer.as_ref().and_then(|b| b.pending.get(&id)).and_then(|m| m.get(key)) {
            return Ok(change.clone());
        }
        let db = self.db()?;
        match self.live.get(&id).and_then(|cf| db.cf_handle(cf)) {
            Some(cf) => db.get_cf(cf, key).map_err(rocks_err(&self.name)),
            None => Ok(None),
        }
    }

    /// The live segments overlapping `[from, to]`, oldest first.
    pub(crate) fn ids_between(&self, from: i64, to: i64) -> Vec<i64> {
        if from > to {
            return Vec::new();
        }
        let (lo, hi) = (self.segment_id(from), self.segment_id(to));
        self.live.range(lo..=hi).map(|(id, _)| *id).collect()
    }

    /// Entries of segment `id` with `lo <= key <= hi` (`hi` open when `None`), in key order, with
    /// buffered changes merged over RocksDB's.
    pub(crate) fn scan(&self, id: i64, lo: &[u8], hi: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        let db = self.db()?;
        let Some(cf) = self.live.get(&id).and_then(|cf| db.cf_handle(cf)) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let name = self.name.clone();
        let upper = hi.map(<[u8]>::to_vec);
        let below: KeyValueIter<'_> = Box::new(
            db.iterator_cf(cf, IteratorMode::From(lo, Direction::Forward)).map_while(move |item| match item {
                Ok((k, v)) if within(&k, upper.as_deref()) => Some(Ok((k.into_vec(), v.into_vec()))),
                Ok(_) => None,
                Err(e) => Some(Err(rocks_err(&name)(e))),
            }),
        );
        let Some(changes) = self.buffer.as_ref().and_then(|b| b.pending.get(&id)).filter(|m| !m.is_empty()) else {
            return Ok(below);
        };
        if hi.is_some_and(|hi| hi < lo) {
            return Ok(Box::new(std::iter::empty()));
        }
        let end = match hi {
            Some(hi) => Bound::Included(hi),
            None => Bound::Unbounded,
        };
        let over = changes.range::<[u8], _>((Bound::Included(lo), end)).map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(merge_over(over, below))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{sst_files, wal_bytes};
    use super::super::{RocksDbResources, RocksDbSessionStore, RocksDbWindowStore};
    use crate::keys::encode_window_key;
    use crate::store::{SessionBytesStore, SessionWindow, StateStore, WindowBytesStore};

    const RETENTION: i64 = 120_000; // segment interval 60 s

    fn window(path: &std::path::Path) -> RocksDbWindowStore {
        let res = RocksDbResources::shared_default();
        RocksDbWindowStore::open("w", path, RETENTION, false, &res).unwrap().buffer_until_commit().unwrap()
    }

    fn entries(s: &RocksDbWindowStore) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
        s.fetch_all(i64::MIN, i64::MAX).unwrap().into_iter().map(|e| (e.key, e.window_start, e.value)).collect()
    }

    #[test]
    fn window_writes_are_durable_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        {
            let mut s = window(&path);
            assert_eq!(s.committed_offset().unwrap(), None);
            s.put(b"a", Some(b"1"), 1_000).unwrap();
            s.put(b"b", Some(b"1"), 61_000).unwrap(); // second segment
            s.commit(Some(10)).unwrap();
            s.put(b"a", Some(b"2"), 1_000).unwrap();
            s.put(b"b", None, 61_000).unwrap();
            s.put(b"c", Some(b"3"), 62_000).unwrap();
            // Reads see the buffer merged over RocksDB, across segments.
            assert_eq!(s.fetch(b"a", 1_000).unwrap(), Some(b"2".to_vec()));
            assert_eq!(s.fetch(b"b", 61_000).unwrap(), None);
            assert_eq!(s.fetch_range(b"c", 0, 100_000).unwrap(), vec![(62_000, b"3".to_vec())]);
            assert_eq!(
                entries(&s),
                vec![(b"a".to_vec(), 1_000, b"2".to_vec()), (b"c".to_vec(), 62_000, b"3".to_vec())]
            );
            s.flush().unwrap(); // flushing must not leak the buffer
        } // crash: dropped without commit
        let mut s = window(&path);
        assert_eq!(s.committed_offset().unwrap(), Some(10));
        assert_eq!(entries(&s), vec![(b"a".to_vec(), 1_000, b"1".to_vec()), (b"b".to_vec(), 61_000, b"1".to_vec())]);
        s.put(b"c", Some(b"3"), 62_000).unwrap();
        s.commit(Some(11)).unwrap();
        drop(s);
        let s = window(&path);
        assert_eq!(s.committed_offset().unwrap(), Some(11));
        assert_eq!(entries(&s).len(), 3);
    }

    #[test]
    fn unbuffered_writes_skip_the_wal_and_a_commit_flushes_every_segment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let res = RocksDbResources::shared_default();
        let open = || RocksDbWindowStore::open("w", &path, RETENTION, false, &res).unwrap();
        {
            let mut s = open();
            s.put(b"a", Some(b"1"), 1_000).unwrap();
            s.put(b"b", Some(b"1"), 61_000).unwrap(); // second segment
            s.put(b"a", None, 1_000).unwrap();
            s.restore_batch(&[(encode_window_key(b"c", 62_000, 0), Some(b"3".to_vec()))]).unwrap();
            assert_eq!(wal_bytes(&path), 0, "writes and restored batches skip the WAL");
            assert_eq!(sst_files(&path), 0);
            s.commit(None).unwrap();
            assert_eq!(sst_files(&path), 2, "the commit flushed both segments' memtables");
            assert_eq!(wal_bytes(&path), 0);
        }
        let s = open();
        assert_eq!(entries(&s), vec![(b"b".to_vec(), 61_000, b"1".to_vec()), (b"c".to_vec(), 62_000, b"3".to_vec())]);
    }

    #[test]
    fn buffered_restores_keep_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let mut s = window(&path);
        s.restore_batch(&[(encode_window_key(b"c", 62_000, 0), Some(b"3".to_vec()))]).unwrap();
        assert!(wal_bytes(&path) > 0, "the restored batch went through the WAL");
        s.commit(Some(1)).unwrap();
    }

    #[test]
    fn expired_segments_are_dropped_only_by_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        {
            let mut s = window(&path);
            s.put(b"a", Some(b"1"), 1_000).unwrap();
            s.commit(Some(1)).unwrap();
            s.put(b"z", Some(b"9"), 600_000).unwrap(); // stream time 600 s: segment 0 expires
            assert_eq!(s.fetch(b"a", 1_000).unwrap(), None, "expired data is hidden at once");
            assert_eq!(s.segment_ids(), vec![10]);
        } // crash before the commit: stream time rewinds, segment 0 must still be there
        let mut s = window(&path);
        assert_eq!(s.segment_ids(), vec![0, 10], "segment 10 was created (empty) before the crash");
        assert_eq!(entries(&s), vec![(b"a".to_vec(), 1_000, b"1".to_vec())]);
        s.put(b"z", Some(b"9"), 600_000).unwrap();
        s.commit(Some(2)).unwrap();
        drop(s);
        let s = window(&path);
        assert_eq!(s.segment_ids(), vec![10], "the commit dropped the expired segment");
        assert_eq!(entries(&s), vec![(b"z".to_vec(), 600_000, b"9".to_vec())]);
    }

    #[test]
    fn session_writes_are_durable_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let res = RocksDbResources::shared_default();
        let open = || RocksDbSessionStore::open("s", &path, 600_000, &res).unwrap().buffer_until_commit().unwrap();
        let (w1, w2, w3) = (
            SessionWindow { start: 0, end: 1_000 },
            SessionWindow { start: 5_000, end: 6_000 },
            SessionWindow { start: 8_000, end: 9_000 },
        );
        {
            let mut s = open();
            s.put(b"u", w1, Some(b"1")).unwrap();
            s.put(b"u", w2, Some(b"2")).unwrap();
            s.commit(Some(5)).unwrap();
            s.put(b"u", w1, None).unwrap();
            s.put(b"u", w3, Some(b"3")).unwrap();
            let found = s.find_sessions(b"u", 0, i64::MAX).unwrap();
            assert_eq!(found, vec![(w2, b"2".to_vec()), (w3, b"3".to_vec())]);
            assert_eq!(s.fetch_session(b"u", w3).unwrap(), Some(b"3".to_vec()));
        }
        let s = open();
        assert_eq!(s.committed_offset().unwrap(), Some(5));
        assert_eq!(s.find_sessions(b"u", 0, i64::MAX).unwrap(), vec![(w1, b"1".to_vec()), (w2, b"2".to_vec())]);
        assert_eq!(s.fetch_session(b"u", w3).unwrap(), None);
    }
}
