//! The in-memory key-value store.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::ensure_open;
use crate::error::StateResult;
use crate::store::{KeyValueBytesStore, KeyValueIter, StateStore};

/// A key-value store in a `BTreeMap`, ordered by the unsigned bytes of the key.
///
/// ```
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::store::KeyValueBytesStore;
///
/// let mut store = InMemoryKeyValueStore::new("counts");
/// store.put(b"a", Some(b"1")).unwrap();
/// store.put(b"b", Some(b"2")).unwrap();
/// let keys: Vec<_> = store.all().unwrap().map(|kv| kv.unwrap().0).collect();
/// assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
/// ```
#[derive(Debug)]
pub struct InMemoryKeyValueStore {
    name: String,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    open: bool,
}

impl InMemoryKeyValueStore {
    /// An empty store called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        InMemoryKeyValueStore { name: name.into(), map: BTreeMap::new(), open: true }
    }

    fn iter_range<'a>(&'a self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> KeyValueIter<'a> {
        Box::new(self.map.range::<[u8], _>((from, to)).map(|(k, v)| Ok((k.clone(), v.clone()))))
    }
}

impl StateStore for InMemoryKeyValueStore {
    in_memory_state_store!();

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        ensure_open(self.open, &self.name)?;
        for (key, value) in batch {
            match value {
                Some(v) => self.map.insert(key.clone(), v.clone()),
                None => self.map.remove(key),
            };
        }
        Ok(())
    }
}

impl KeyValueBytesStore for InMemoryKeyValueStore {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        ensure_open(self.open, &self.name)?;
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        ensure_open(self.open, &self.name)?;
        match value {
            Some(v) => self.map.insert(key.to_vec(), v.to_vec()),
            None => self.map.remove(key),
        };
        Ok(())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        ensure_open(self.open, &self.name)?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                // Kafka Streams returns an empty iterator for an inverted range.
                tracing::warn!(store = %self.name, "range query with from > to returns nothing");
                return Ok(Box::new(std::iter::empty()));
            }
        }
        let lo = from.map_or(Bound::Unbounded, Bound::Included);
        let hi = to.map_or(Bound::Unbounded, Bound::Included);
        Ok(self.iter_range(lo, hi))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        ensure_open(self.open, &self.name)?;
        let prefix = prefix.to_vec();
        Ok(Box::new(
            self.map
                .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
                .take_while(move |(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| Ok((k.clone(), v.clone()))),
        ))
    }

    fn approximate_num_entries(&self) -> StateResult<u64> {
        ensure_open(self.open, &self.name)?;
        Ok(self.map.len() as u64)
    }
}
