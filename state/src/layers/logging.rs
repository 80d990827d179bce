//! The change-logging layer: every accepted change goes to the store's changelog topic.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::error::StateResult;
use crate::keys::{encode_session_key, encode_window_key};
use crate::store::{
    ChangelogRecord, ChangelogSink, KeyValueBytesStore, KeyValueIter, SessionBytesStore, SessionWindow, StateStore,
    WindowBytesStore, WindowEntry,
};

/// Sends each change of the wrapped store to `topic`/`partition` through a [`ChangelogSink`], stamped
/// with the timestamp of the record being processed. Keys use the changelog layouts of
/// [`keys`](crate::keys). Restoration (`restore_batch`) bypasses logging.
///
/// `S` is `dyn KeyValueBytesStore`, `dyn WindowBytesStore` or `dyn SessionBytesStore`.
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::{Arc, Mutex};
/// use kstreams_state::layers::ChangeLoggingStore;
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::store::{ChangelogRecord, ChangelogSink, KeyValueBytesStore};
/// use kstreams_state::StateResult;
///
/// #[derive(Default)]
/// struct Recorder(Mutex<Vec<(String, Vec<u8>)>>);
/// impl ChangelogSink for Recorder {
///     fn send(&self, r: ChangelogRecord<'_>) -> StateResult<()> {
///         self.0.lock().unwrap().push((r.topic.to_string(), r.key.to_vec()));
///         Ok(())
///     }
/// }
/// let sink = Arc::new(Recorder::default());
/// let inner: Box<dyn KeyValueBytesStore> = Box::new(InMemoryKeyValueStore::new("s"));
/// let mut store = ChangeLoggingStore::new(inner, sink.clone(), "app-s-changelog", 0, Arc::new(AtomicI64::new(5)));
/// store.put(b"k", Some(b"v")).unwrap();
/// assert_eq!(sink.0.lock().unwrap()[0], ("app-s-changelog".to_string(), b"k".to_vec()));
/// ```
pub struct ChangeLoggingStore<S: ?Sized> {
    inner: Box<S>,
    sink: Arc<dyn ChangelogSink>,
    topic: String,
    partition: i32,
    record_timestamp: Arc<AtomicI64>,
    seqnum: u32,
    retain_duplicates: bool,
}

impl<S: ?Sized> ChangeLoggingStore<S> {
    /// Wraps `inner`, logging to `topic`'s `partition`.
    pub fn new(
        inner: Box<S>,
        sink: Arc<dyn ChangelogSink>,
        topic: impl Into<String>,
        partition: i32,
        record_timestamp: Arc<AtomicI64>,
    ) -> Self {
        ChangeLoggingStore {
            inner,
            sink,
            topic: topic.into(),
            partition,
            record_timestamp,
            seqnum: 0,
            retain_duplicates: false,
        }
    }

    /// For window stores that retain duplicates: number the changelog keys so that no duplicate
    /// replaces another after restoration.
    pub fn retaining_duplicates(mut self) -> Self {
        self.retain_duplicates = true;
        self
    }

    fn log(&self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        self.sink.send(ChangelogRecord {
            topic: &self.topic,
            partition: self.partition,
            key,
            value,
            timestamp: self.record_timestamp.load(Ordering::Relaxed),
        })
    }
}

macro_rules! delegate_state_store {
    ($t:ty) => {
        impl StateStore for ChangeLoggingStore<$t> {
            fn name(&self) -> &str {
                self.inner.name()
            }
            fn persistent(&self) -> bool {
                self.inner.persistent()
            }
            fn flush(&mut self) -> StateResult<()> {
                self.inner.flush()
            }
            fn close(&mut self) -> StateResult<()> {
                self.inner.close()
            }
            fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
                self.inner.restore_batch(batch)
            }
            fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
                self.inner.commit(changelog_offset)
            }
            fn committed_offset(&self) -> StateResult<Option<i64>> {
                self.inner.committed_offset()
            }
        }
    };
}

delegate_state_store!(dyn KeyValueBytesStore);
delegate_state_store!(dyn WindowBytesStore);
delegate_state_store!(dyn SessionBytesStore);

impl KeyValueBytesStore for ChangeLoggingStore<dyn KeyValueBytesStore> {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        self.inner.put(key, value)?;
        self.log(key, value)
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        self.inner.range(from, to)
    }

    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        self.inner.prefix_scan(prefix)
    }

    fn approximate_num_entries(&self) -> StateResult<u64> {
        self.inner.approximate_num_entries()
    }
}

impl WindowBytesStore for ChangeLoggingStore<dyn WindowBytesStore> {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> StateResult<bool> {
        if self.retain_duplicates && value.is_none() {
            return Ok(true); // ignored by stores that retain duplicates
        }
        if !self.inner.put(key, value, window_start)? {
            return Ok(false);
        }
        let seq = if self.retain_duplicates {
            self.seqnum = self.seqnum.wrapping_add(1);
            self.seqnum
        } else {
            0
        };
        self.log(&encode_window_key(key, window_start, seq), value)?;
        Ok(true)
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> StateResult<Option<Vec<u8>>> {
        self.inner.fetch(key, window_start)
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>> {
        self.inner.fetch_range(key, time_from, time_to)
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>> {
        self.inner.fetch_all(time_from, time_to)
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}

impl SessionBytesStore for ChangeLoggingStore<dyn SessionBytesStore> {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        self.inner.find_sessions(key, earliest_session_end, latest_session_start)
    }

    fn fetch_session(&self, key: &[u8], window: SessionWindow) -> StateResult<Option<Vec<u8>>> {
        self.inner.fetch_session(key, window)
    }

    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool> {
        if !self.inner.put(key, window, value)? {
            return Ok(false);
        }
        self.log(&encode_session_key(key, window), value)?;
        Ok(true)
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}
