//! The layers and the factory, over the in-memory backend (and RocksDB for the factory).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use kstreams_state::keys::{decode_session_key, decode_window_key, encode_window_key};
use kstreams_state::layers::{CachingKeyValueStore, CachingWindowStore, ChangeLoggingStore, MeteredStore};
use kstreams_state::memory::{InMemoryKeyValueStore, InMemorySessionStore, InMemoryWindowStore};
use kstreams_state::store::{
    ChangelogRecord, ChangelogSink, KeyValueBytesStore, SessionBytesStore, SessionWindow, StateStore, StoreKind,
    WindowBytesStore,
};
use kstreams_state::{
    open_store_with, Backend, DirtyEntry, StateResult, StoreContext, StoreHandle, StoreMetrics, StoreOptions,
    StoreSpec, ThreadCache,
};

type Logged = (String, i32, Vec<u8>, Option<Vec<u8>>, i64);

#[derive(Default)]
struct Recorder(Mutex<Vec<Logged>>);

impl ChangelogSink for Recorder {
    fn send(&self, r: ChangelogRecord<'_>) -> StateResult<()> {
        self.0.lock().unwrap().push((
            r.topic.to_string(),
            r.partition,
            r.key.to_vec(),
            r.value.map(<[u8]>::to_vec),
            r.timestamp,
        ));
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<Logged> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn drain(q: &kstreams_state::DirtyQueue) -> Vec<DirtyEntry> {
    std::mem::take(&mut *q.lock().unwrap())
}

#[test]
fn logging_sends_every_change_with_topic_partition_and_timestamp() {
    let sink = Arc::new(Recorder::default());
    let ts = Arc::new(AtomicI64::new(100));
    let inner: Box<dyn KeyValueBytesStore> = Box::new(InMemoryKeyValueStore::new("kv"));
    let mut s = ChangeLoggingStore::new(inner, sink.clone(), "app-kv-changelog", 3, ts.clone());
    s.put(b"a", Some(b"1")).unwrap();
    ts.store(200, Ordering::Relaxed);
    s.delete(b"a").unwrap();
    assert_eq!(s.put_if_absent(b"c", b"3").unwrap(), None);
    assert_eq!(
        sink.take(),
        vec![
            (b("app-kv-changelog"), 3, b("a"), Some(b("1")), 100),
            (b("app-kv-changelog"), 3, b("a"), None, 200),
            (b("app-kv-changelog"), 3, b("c"), Some(b("3")), 200),
        ]
        .into_iter()
        .map(|(t, p, k, v, ts)| (String::from_utf8(t).unwrap(), p, k, v, ts))
        .collect::<Vec<_>>()
    );
    // Restoration bypasses logging.
    s.restore_batch(&[(b("r"), Some(b("x")))]).unwrap();
    assert!(sink.take().is_empty());
    assert_eq!(s.get(b"r").unwrap(), Some(b("x")));
}

#[test]
fn logging_window_and_session_use_kafka_layouts_and_skip_expired() {
    let sink = Arc::new(Recorder::default());
    let ts = Arc::new(AtomicI64::new(7));
    let inner: Box<dyn WindowBytesStore> = Box::new(InMemoryWindowStore::new("w", 1_000, false));
    let mut w = ChangeLoggingStore::new(inner, sink.clone(), "t", 0, ts.clone());
    assert!(w.put(b"k", Some(b"v"), 5_000).unwrap());
    assert!(!w.put(b"k", Some(b"late"), 0).unwrap());
    let logged = sink.take();
    assert_eq!(logged.len(), 1, "expired writes are not logged");
    assert_eq!(decode_window_key(&logged[0].2), Some((&b"k"[..], 5_000, 0)));

    let inner: Box<dyn WindowBytesStore> = Box::new(InMemoryWindowStore::new("d", 1_000, true));
    let mut d = ChangeLoggingStore::new(inner, sink.clone(), "t", 0, ts.clone()).retaining_duplicates();
    d.put(b"k", Some(b"1"), 10).unwrap();
    d.put(b"k", Some(b"2"), 10).unwrap();
    let seqs: Vec<u32> = sink.take().iter().map(|l| decode_window_key(&l.2).map(|x| x.2).unwrap()).collect();
    assert_eq!(seqs, vec![1, 2], "duplicates get distinct seqnums so compaction keeps both");

    let inner: Box<dyn SessionBytesStore> = Box::new(InMemorySessionStore::new("s", 1_000));
    let mut s = ChangeLoggingStore::new(inner, sink.clone(), "t", 0, ts);
    let win = SessionWindow { start: 1, end: 9 };
    s.put(b"u", win, Some(b"x")).unwrap();
    s.remove(b"u", win).unwrap();
    let logged = sink.take();
    assert_eq!(logged.len(), 2);
    assert_eq!(decode_session_key(&logged[1].2), Some((&b"u"[..], win)));
    assert_eq!(logged[1].3, None);
}

#[test]
fn caching_coalesces_and_forwards_on_flush_with_old_values() {
    let sink = Arc::new(Recorder::default());
    let ts = Arc::new(AtomicI64::new(1));
    let inner: Box<dyn KeyValueBytesStore> = Box::new(InMemoryKeyValueStore::new("kv"));
    let logged: Box<dyn KeyValueBytesStore> =
        Box::new(ChangeLoggingStore::new(inner, sink.clone(), "t", 0, ts.clone()));
    let queue = Arc::new(Mutex::new(Vec::new()));
    let mut s = CachingKeyValueStore::new(logged, ThreadCache::new(1 << 20), queue.clone(), ts.clone());
    s.put(b"a", Some(b"1")).unwrap();
    s.flush().unwrap();
    assert_eq!(drain(&queue), vec![DirtyEntry { key: b("a"), new_value: Some(b("1")), old_value: None, timestamp: 1 }]);
    for i in 2..=5 {
        ts.store(i, Ordering::Relaxed);
        s.put(b"a", Some(i.to_string().as_bytes())).unwrap();
    }
    assert_eq!(s.get(b"a").unwrap(), Some(b("5")), "reads see the cache");
    assert!(drain(&queue).is_empty(), "nothing leaves the cache before flush");
    assert_eq!(sink.take().len(), 1, "only the first flush reached the changelog so far");
    s.flush().unwrap();
    assert_eq!(
        drain(&queue),
        vec![DirtyEntry { key: b("a"), new_value: Some(b("5")), old_value: Some(b("1")), timestamp: 5 }]
    );
    assert_eq!(sink.take().len(), 1, "four updates coalesced into one changelog record");
    s.flush().unwrap();
    assert!(drain(&queue).is_empty(), "a clean cache forwards nothing");
    // Put then delete of a new key between flushes: nothing to forward.
    s.put(b"tmp", Some(b"x")).unwrap();
    s.delete(b"tmp").unwrap();
    s.flush().unwrap();
    assert!(drain(&queue).is_empty());
}

#[test]
fn caching_evicts_lru_dirty_entries_when_over_budget() {
    let queue = Arc::new(Mutex::new(Vec::new()));
    let cache = ThreadCache::new(1_000);
    let inner: Box<dyn KeyValueBytesStore> = Box::new(InMemoryKeyValueStore::new("kv"));
    let mut s = CachingKeyValueStore::new(inner, cache.clone(), queue.clone(), Arc::new(AtomicI64::new(0)));
    for i in 0..50u8 {
        s.put(&[i], Some(&[i; 40])).unwrap();
    }
    assert!(cache.used_bytes() <= cache.max_bytes());
    let evicted = drain(&queue);
    assert!(!evicted.is_empty());
    assert_eq!(evicted[0].key, vec![0], "least recently used goes first");
    assert_eq!(evicted.len() + s.cached_entries(), 50);
    // Everything is readable, evicted or not.
    for i in 0..50u8 {
        assert_eq!(s.get(&[i]).unwrap(), Some(vec![i; 40]));
    }
}

#[test]
fn caching_range_merges_cache_over_store() {
    let queue = Arc::new(Mutex::new(Vec::new()));
    let mut inner = InMemoryKeyValueStore::new("kv");
    for k in ["a", "b", "c", "d"] {
        inner.put(k.as_bytes(), Some(b"store")).unwrap();
    }
    let mut s =
        CachingKeyValueStore::new(Box::new(inner), ThreadCache::new(1 << 20), queue, Arc::new(AtomicI64::new(0)));
    s.put(b"b", Some(b"cache")).unwrap();
    s.put(b"c", None).unwrap();
    s.put(b"bb", Some(b"cache")).unwrap();
    s.put(b"e", Some(b"cache")).unwrap();
    let all: Vec<_> = s.all().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(
        all,
        vec![
            (b("a"), b("store")),
            (b("b"), b("cache")),
            (b("bb"), b("cache")),
            (b("d"), b("store")),
            (b("e"), b("cache"))
        ]
    );
    let ranged: Vec<_> = s.range(Some(b"b"), Some(b"d")).unwrap().map(|r| r.unwrap().0).collect();
    assert_eq!(ranged, vec![b("b"), b("bb"), b("d")]);
    let prefixed: Vec<_> = s.prefix_scan(b"b").unwrap().map(|r| r.unwrap().0).collect();
    assert_eq!(prefixed, vec![b("b"), b("bb")]);
}

#[test]
fn caching_window_merges_and_forwards_window_keys() {
    let queue = Arc::new(Mutex::new(Vec::new()));
    let mut inner = InMemoryWindowStore::new("w", 100_000, false);
    inner.put(b"k", Some(b"old"), 1_000).unwrap();
    inner.put(b"k", Some(b"kept"), 2_000).unwrap();
    let mut s =
        CachingWindowStore::new(Box::new(inner), ThreadCache::new(1 << 20), queue.clone(), Arc::new(AtomicI64::new(9)));
    s.put(b"k", Some(b"new"), 1_000).unwrap();
    s.put(b"k", Some(b"fresh"), 3_000).unwrap();
    s.put(b"k", None, 2_000).unwrap();
    s.put(b"kk", Some(b"other"), 1_000).unwrap();
    assert_eq!(s.fetch_range(b"k", 0, 5_000).unwrap(), vec![(1_000, b("new")), (3_000, b("fresh"))]);
    assert_eq!(s.fetch_all(0, 5_000).unwrap().len(), 3);
    s.flush().unwrap();
    let mut flushed = drain(&queue);
    flushed.sort_by(|a, b| a.key.cmp(&b.key));
    let first = flushed.iter().find(|e| e.key == encode_window_key(b"k", 1_000, 0)).unwrap();
    assert_eq!(
        (first.old_value.clone(), first.new_value.clone(), first.timestamp),
        (Some(b("old")), Some(b("new")), 9)
    );
    assert_eq!(flushed.len(), 4);
}

#[test]
fn metered_records_latencies_and_restores() {
    let registry = prometheus::Registry::new();
    let metrics = StoreMetrics::register(&registry).unwrap();
    assert!(StoreMetrics::register(&registry).is_err(), "registering twice is reported");
    let inner: Box<dyn KeyValueBytesStore> = Box::new(InMemoryKeyValueStore::new("kv"));
    let mut s = MeteredStore::new(inner, &metrics, "kv", "0_0");
    s.put(b"a", Some(b"1")).unwrap();
    s.put(b"b", Some(b"1")).unwrap();
    s.get(b"a").unwrap();
    s.restore_batch(&[(b("c"), Some(b("1")))]).unwrap();
    s.flush().unwrap();
    let families = registry.gather();
    let find = |name: &str| families.iter().find(|f| f.name() == name).unwrap().get_metric()[0].clone();
    assert_eq!(find("kstreams_state_put_latency_seconds").get_histogram().get_sample_count(), 2);
    assert_eq!(find("kstreams_state_get_latency_seconds").get_histogram().get_sample_count(), 1);
    assert_eq!(find("kstreams_state_restore_records_total").get_counter().value(), 1.0);
    assert_eq!(find("kstreams_state_size_estimate").get_gauge().value(), 3.0);
    let labels: Vec<_> =
        find("kstreams_state_put_latency_seconds").get_label().iter().map(|l| l.value().to_string()).collect();
    assert_eq!(labels, vec!["kv".to_string(), "0_0".to_string()]);
}

fn ctx(dir: &std::path::Path, sink: Arc<Recorder>) -> StoreContext {
    StoreContext {
        application_id: "app".into(),
        task_dir: dir.join("app").join("0_2"),
        partition: 2,
        changelog: Some(sink),
        record_timestamp: Arc::new(AtomicI64::new(42)),
    }
}

#[test]
fn factory_stacks_layers_per_spec() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recorder::default());
    let registry = prometheus::Registry::new();
    let opts = StoreOptions {
        cache: Some(ThreadCache::new(1 << 20)),
        metrics: Some(StoreMetrics::register(&registry).unwrap()),
        ..Default::default()
    };
    let spec = StoreSpec::key_value("counts");
    let mut opened = open_store_with(&spec, &ctx(dir.path(), sink.clone()), &opts).unwrap();
    assert!(opened.fresh);
    assert_eq!(opened.changelog_topic.as_deref(), Some("app-counts-changelog"));
    assert!(dir.path().join("app/0_2/rocksdb/counts").exists());
    let StoreHandle::KeyValue(store) = &mut opened.store else { panic!("expected a key-value store") };
    store.put(b"k", Some(b"1")).unwrap();
    store.put(b"k", Some(b"2")).unwrap();
    assert!(sink.take().is_empty(), "cached: nothing logged before flush");
    opened.store.flush().unwrap();
    let logged = sink.take();
    assert_eq!(logged, vec![("app-counts-changelog".to_string(), 2, b("k"), Some(b("2")), 42)]);
    let queue = opened.dirty.clone().unwrap();
    assert_eq!(drain(&queue).len(), 1);
    assert!(registry.gather().iter().any(|f| f.name() == "kstreams_state_flush_latency_seconds"));
    opened.store.close().unwrap();
    drop(opened);

    // Reopened: not fresh, data still there.
    let opened = open_store_with(&spec, &ctx(dir.path(), sink.clone()), &StoreOptions::default()).unwrap();
    assert!(!opened.fresh);
    assert!(opened.dirty.is_none(), "no cache configured: no queue");
    let StoreHandle::KeyValue(store) = &opened.store else { panic!("expected a key-value store") };
    assert_eq!(store.get(b"k").unwrap(), Some(b("2")));
}

#[test]
fn factory_honours_logging_caching_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recorder::default());
    let opts = StoreOptions { cache: Some(ThreadCache::new(0)), ..Default::default() };
    let mut spec = StoreSpec::key_value("w");
    spec.backend = Backend::InMemory;
    spec.kind = StoreKind::Window { retention_ms: 10_000, window_size_ms: 1_000, retain_duplicates: false };
    let mut opened = open_store_with(&spec, &ctx(dir.path(), sink.clone()), &opts).unwrap();
    assert!(opened.dirty.is_none(), "a cache of 0 bytes disables caching");
    let StoreHandle::Window(w) = &mut opened.store else { panic!("expected a window store") };
    w.put(b"k", Some(b"v"), 1_000).unwrap();
    assert_eq!(sink.take().len(), 1, "uncached: logged at once");

    spec.logging = false;
    spec.kind = StoreKind::Session { retention_ms: 10_000 };
    let mut opened = open_store_with(&spec, &ctx(dir.path(), sink.clone()), &opts).unwrap();
    assert!(opened.changelog_topic.is_none());
    let StoreHandle::Session(s) = &mut opened.store else { panic!("expected a session store") };
    s.put(b"k", SessionWindow { start: 0, end: 5 }, Some(b"v")).unwrap();
    assert!(sink.take().is_empty(), "logging off");

    spec.logging = true;
    spec.kind = StoreKind::Window { retention_ms: 10_000, window_size_ms: 1_000, retain_duplicates: true };
    let opts = StoreOptions { cache: Some(ThreadCache::new(1 << 20)), ..Default::default() };
    let opened = open_store_with(&spec, &ctx(dir.path(), sink), &opts).unwrap();
    assert!(opened.dirty.is_none(), "stores retaining duplicates are never cached");
}

#[test]
fn changelog_topic_configs_per_kind() {
    let mut spec = StoreSpec::key_value("kv");
    assert_eq!(spec.changelog_topic_configs().get("cleanup.policy").map(String::as_str), Some("compact"));
    assert!(!spec.changelog_topic_configs().contains_key("retention.ms"));
    spec.kind = StoreKind::Window { retention_ms: 1_000, window_size_ms: 100, retain_duplicates: false };
    spec.changelog_configs.insert("min.insync.replicas".into(), "2".into());
    let c = spec.changelog_topic_configs();
    assert_eq!(c["cleanup.policy"], "compact,delete");
    assert_eq!(c["retention.ms"], (1_000 + 86_400_000).to_string());
    assert_eq!(c["min.insync.replicas"], "2");
}
