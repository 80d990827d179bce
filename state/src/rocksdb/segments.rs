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
//! The observed stream time is not persisted: after a reopen it starts unknown and is re-established
//! by the first write (or by restoration), as in Kafka Streams.

use std::collections::BTreeMap;
use std::path::Path;

use rocksdb::{ColumnFamily, Options, DB};

use super::{open_db, rocks_err};
use crate::error::{StateError, StateResult};
use crate::memory::expired;

/// Kafka Streams' lower bound on the segment interval.
pub const MIN_SEGMENT_INTERVAL_MS: i64 = 60_000;

/// The segment interval Kafka Streams uses for a retention: `max(retention / 2, 60 s)`.
pub fn segment_interval(retention_ms: i64) -> i64 {
    (retention_ms / 2).max(MIN_SEGMENT_INTERVAL_MS)
}

const PREFIX: &str = "segment-";

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
        })
    }

    pub(crate) fn fresh(&self) -> bool {
        self.fresh
    }

    pub(crate) fn db(&self) -> StateResult<&DB> {
        self.db.as_ref().ok_or_else(|| StateError::Closed(self.name.clone()))
    }

    pub(crate) fn close(&mut self) -> StateResult<()> {
        if let Some(db) = self.db.take() {
            db.flush_wal(true).map_err(rocks_err(&self.name))?;
        }
        Ok(())
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

    /// Advances the observed stream time to `ts` and drops segments that are wholly expired.
    pub(crate) fn observe(&mut self, ts: i64) -> StateResult<()> {
        if ts <= self.observed {
            return Ok(());
        }
        self.observed = ts;
        let min_live = self.segment_id(self.earliest_live());
        let dead: Vec<i64> = self.live.range(..min_live).map(|(id, _)| *id).collect();
        for id in dead {
            if let Some(cf) = self.live.remove(&id) {
                let db = self.db.as_mut().ok_or_else(|| StateError::Closed(self.name.clone()))?;
                db.drop_cf(&cf).map_err(rocks_err(&self.name))?;
                tracing::debug!(store = %self.name, segment = id, "dropped expired segment");
            }
        }
        Ok(())
    }

    /// Creates the segment holding `ts` if it does not exist.
    pub(crate) fn ensure(&mut self, ts: i64) -> StateResult<()> {
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

    /// The column family of the segment holding `ts`, if it exists.
    pub(crate) fn cf_for(&self, ts: i64) -> StateResult<Option<&ColumnFamily>> {
        let db = self.db()?;
        Ok(self.live.get(&self.segment_id(ts)).and_then(|cf| db.cf_handle(cf)))
    }

    /// The live segments overlapping `[from, to]`, oldest first.
    pub(crate) fn cfs_between(&self, from: i64, to: i64) -> StateResult<Vec<&ColumnFamily>> {
        let db = self.db()?;
        if from > to {
            return Ok(Vec::new());
        }
        let (lo, hi) = (self.segment_id(from), self.segment_id(to));
        Ok(self.live.range(lo..=hi).filter_map(|(_, cf)| db.cf_handle(cf)).collect())
    }
}
