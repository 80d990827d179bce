//! The top layer of a task's store: shared with readers on other threads (interactive queries).
//!
//! A task's stores belong to its stream thread, which writes them record by record. Interactive
//! queries read them from other threads (the application's, the HTTP server's). [`SharedStore::share`]
//! puts a store stack behind a mutex that is taken for one call at a time, never across calls: the
//! stream thread holds it for one get or put, a reader for one lookup or one scan (collected before
//! the lock is released). A reader never sees half of a write, and never waits for a whole commit:
//! a commit takes the lock once per store, for that store's flush.
//!
//! Readers go through the whole stack (metering, record cache), as in Kafka Streams: they see what
//! the task has written, committed or not yet (committed-or-newer).
//!
//! ```
//! use kstreams_state::layers::SharedStore;
//! use kstreams_state::memory::InMemoryKeyValueStore;
//! use kstreams_state::{KeyValueBytesStore, StoreHandle};
//!
//! let (task_side, readers) = SharedStore::share(StoreHandle::KeyValue(Box::new(InMemoryKeyValueStore::new("counts"))));
//! let StoreHandle::KeyValue(mut store) = task_side else { unreachable!() };
//! store.put(b"apple", Some(b"3")).unwrap();
//! let value = readers.key_value(|s| s.get(b"apple")).unwrap().unwrap();
//! assert_eq!(value.as_deref(), Some(&b"3"[..]));
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::StateResult;
use crate::factory::StoreHandle;
use crate::store::{
    KeyValueBytesStore, KeyValueIter, SessionBytesStore, SessionWindow, StateStore, WindowBytesStore, WindowEntry,
};

type Locked<T> = Arc<Mutex<Box<T>>>;

/// A store of any shape as readers on other threads hold it; clones share the store.
#[derive(Clone)]
pub enum SharedStore {
    /// A key-value store.
    KeyValue(Locked<dyn KeyValueBytesStore>),
    /// A window store.
    Window(Locked<dyn WindowBytesStore>),
    /// A session store.
    Session(Locked<dyn SessionBytesStore>),
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            SharedStore::KeyValue(_) => "KeyValue",
            SharedStore::Window(_) => "Window",
            SharedStore::Session(_) => "Session",
        };
        write!(f, "SharedStore::{kind}")
    }
}

/// A panic inside one store call leaves the store as the call left it; the next call may use it.
fn lock<T: ?Sized>(store: &Mutex<Box<T>>) -> MutexGuard<'_, Box<T>> {
    store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SharedStore {
    /// Puts `handle` behind the shared lock: returns the handle the task writes through (same shape)
    /// and the readers' handle.
    pub fn share(handle: StoreHandle) -> (StoreHandle, SharedStore) {
        match handle {
            StoreHandle::KeyValue(s) => {
                let (name, persistent) = (s.name().to_string(), s.persistent());
                let shared: Locked<dyn KeyValueBytesStore> = Arc::new(Mutex::new(s));
                let task = LockedStore { name, persistent, inner: shared.clone() };
                (StoreHandle::KeyValue(Box::new(task)), SharedStore::KeyValue(shared))
            }
            StoreHandle::Window(s) => {
                let (name, persistent) = (s.name().to_string(), s.persistent());
                let shared: Locked<dyn WindowBytesStore> = Arc::new(Mutex::new(s));
                let task = LockedStore { name, persistent, inner: shared.clone() };
                (StoreHandle::Window(Box::new(task)), SharedStore::Window(shared))
            }
            StoreHandle::Session(s) => {
                let (name, persistent) = (s.name().to_string(), s.persistent());
                let shared: Locked<dyn SessionBytesStore> = Arc::new(Mutex::new(s));
                let task = LockedStore { name, persistent, inner: shared.clone() };
                (StoreHandle::Session(Box::new(task)), SharedStore::Session(shared))
            }
        }
    }

    /// Runs `read` on the store if it is a key-value store (`None` otherwise), holding the lock
    /// for that call only.
    pub fn key_value<R>(&self, read: impl FnOnce(&dyn KeyValueBytesStore) -> R) -> Option<R> {
        match self {
            SharedStore::KeyValue(s) => Some(read(lock(s).as_ref())),
            _ => None,
        }
    }

    /// Runs `read` on the store if it is a window store.
    pub fn window<R>(&self, read: impl FnOnce(&dyn WindowBytesStore) -> R) -> Option<R> {
        match self {
            SharedStore::Window(s) => Some(read(lock(s).as_ref())),
            _ => None,
        }
    }

    /// Runs `read` on the store if it is a session store.
    pub fn session<R>(&self, read: impl FnOnce(&dyn SessionBytesStore) -> R) -> Option<R> {
        match self {
            SharedStore::Session(s) => Some(read(lock(s).as_ref())),
            _ => None,
        }
    }
}

/// The task's side of a shared store: every call takes the lock for its own duration.
struct LockedStore<T: ?Sized> {
    name: String,
    persistent: bool,
    inner: Locked<T>,
}

impl<T: ?Sized> LockedStore<T> {
    fn get(&self) -> MutexGuard<'_, Box<T>> {
        lock(&self.inner)
    }
}

macro_rules! locked_state_store {
    ($t:ty) => {
        impl StateStore for LockedStore<$t> {
            fn name(&self) -> &str {
                &self.name
            }
            fn persistent(&self) -> bool {
                self.persistent
            }
            fn flush(&mut self) -> StateResult<()> {
                self.get().flush()
            }
            fn flush_cache(&mut self) -> StateResult<()> {
                self.get().flush_cache()
            }
            fn close(&mut self) -> StateResult<()> {
                self.get().close()
            }
            fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
                self.get().restore_batch(batch)
            }
            fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
                self.get().commit(changelog_offset)
            }
            fn committed_offset(&self) -> StateResult<Option<i64>> {
                self.get().committed_offset()
            }
        }
    };
}

locked_state_store!(dyn KeyValueBytesStore);
locked_state_store!(dyn WindowBytesStore);
locked_state_store!(dyn SessionBytesStore);

/// A scan is collected under the lock: the caller iterates without holding it.
fn collected(entries: StateResult<KeyValueIter<'_>>) -> StateResult<KeyValueIter<'static>> {
    let all: Vec<StateResult<(Vec<u8>, Vec<u8>)>> = entries?.collect();
    Ok(Box::new(all.into_iter()))
}

impl KeyValueBytesStore for LockedStore<dyn KeyValueBytesStore> {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.get().get(key)
    }
    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        self.get().put(key, value)
    }
    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.get().put_if_absent(key, value)
    }
    fn delete(&mut self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.get().delete(key)
    }
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        collected(self.get().range(from, to))
    }
    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        collected(self.get().prefix_scan(prefix))
    }
    fn all(&self) -> StateResult<KeyValueIter<'_>> {
        collected(self.get().all())
    }
    fn approximate_num_entries(&self) -> StateResult<u64> {
        self.get().approximate_num_entries()
    }
}

impl WindowBytesStore for LockedStore<dyn WindowBytesStore> {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> StateResult<bool> {
        self.get().put(key, value, window_start)
    }
    fn fetch(&self, key: &[u8], window_start: i64) -> StateResult<Option<Vec<u8>>> {
        self.get().fetch(key, window_start)
    }
    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>> {
        self.get().fetch_range(key, time_from, time_to)
    }
    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>> {
        self.get().fetch_all(time_from, time_to)
    }
    fn all(&self) -> StateResult<Vec<WindowEntry>> {
        self.get().all()
    }
    fn retention_ms(&self) -> i64 {
        self.get().retention_ms()
    }
}

impl SessionBytesStore for LockedStore<dyn SessionBytesStore> {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        self.get().find_sessions(key, earliest_session_end, latest_session_start)
    }
    fn fetch_session(&self, key: &[u8], window: SessionWindow) -> StateResult<Option<Vec<u8>>> {
        self.get().fetch_session(key, window)
    }
    fn fetch(&self, key: &[u8]) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        self.get().fetch(key)
    }
    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool> {
        self.get().put(key, window, value)
    }
    fn remove(&mut self, key: &[u8], window: SessionWindow) -> StateResult<()> {
        self.get().remove(key, window)
    }
    fn retention_ms(&self) -> i64 {
        self.get().retention_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{InMemoryKeyValueStore, InMemoryWindowStore};

    #[test]
    fn readers_see_the_task_writes_while_it_keeps_writing() {
        let (task, readers) = SharedStore::share(StoreHandle::KeyValue(Box::new(InMemoryKeyValueStore::new("c"))));
        let StoreHandle::KeyValue(mut task) = task else { panic!("shape changed") };
        let reader = {
            let readers = readers.clone();
            std::thread::spawn(move || {
                // Each lookup sees a whole value: "n" repeated n times, never a torn one.
                let mut seen = 0;
                while seen < 200 {
                    if let Some(Ok(Some(v))) = readers.key_value(|s| s.get(b"k")) {
                        let n: usize = std::str::from_utf8(&v[..v.iter().position(|&b| b == b':').unwrap()])
                            .unwrap()
                            .parse()
                            .unwrap();
                        assert_eq!(v.len(), n.to_string().len() + 1 + n, "torn read");
                        seen = seen.max(n);
                    }
                }
            })
        };
        for n in 0..=200usize {
            let value = format!("{n}:{}", "x".repeat(n));
            task.put(b"k", Some(value.as_bytes())).unwrap();
        }
        reader.join().unwrap();
        assert_eq!(readers.key_value(|s| s.all().unwrap().count()), Some(1));
        assert!(readers.window(|_| ()).is_none(), "a key-value store is not a window store");
    }

    #[test]
    fn a_closed_store_tells_its_readers() {
        let (task, readers) =
            SharedStore::share(StoreHandle::Window(Box::new(InMemoryWindowStore::new("w", 1000, false))));
        let StoreHandle::Window(mut task) = task else { panic!("shape changed") };
        task.put(b"k", Some(b"1"), 0).unwrap();
        assert_eq!(readers.window(|s| s.fetch(b"k", 0)).unwrap().unwrap(), Some(b"1".to_vec()));
        task.close().unwrap();
        drop(task);
        // The readers' handle keeps the store alive; what a closed in-memory store answers is its own
        // business, but the call must not hang or panic.
        let _ = readers.window(|s| s.fetch(b"k", 0));
    }
}
