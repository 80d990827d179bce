//! One suite, run against both backends: every test is written once against the byte-store traits and
//! instantiated for the in-memory and the RocksDB stores by `backend_suite!`.

use std::path::Path;

use kstreams_state::keys::{encode_session_key, encode_window_key};
use kstreams_state::memory::{InMemoryKeyValueStore, InMemorySessionStore, InMemoryWindowStore};
use kstreams_state::rocksdb::{RocksDbKeyValueStore, RocksDbResources, RocksDbSessionStore, RocksDbWindowStore};
use kstreams_state::store::{KeyValueBytesStore, SessionBytesStore, SessionWindow, WindowBytesStore};

type Kv = Box<dyn KeyValueBytesStore>;
type Win = Box<dyn WindowBytesStore>;
type Ses = Box<dyn SessionBytesStore>;

fn mem_kv(_: &Path) -> Kv {
    Box::new(InMemoryKeyValueStore::new("kv"))
}
fn mem_window(_: &Path, retention: i64, dups: bool) -> Win {
    Box::new(InMemoryWindowStore::new("win", retention, dups))
}
fn mem_session(_: &Path, retention: i64) -> Ses {
    Box::new(InMemorySessionStore::new("ses", retention))
}
fn rocks_kv(dir: &Path) -> Kv {
    Box::new(RocksDbKeyValueStore::open("kv", dir.join("kv"), &RocksDbResources::shared_default()).unwrap())
}
fn rocks_window(dir: &Path, retention: i64, dups: bool) -> Win {
    Box::new(
        RocksDbWindowStore::open("win", dir.join("win"), retention, dups, &RocksDbResources::shared_default()).unwrap(),
    )
}
fn rocks_session(dir: &Path, retention: i64) -> Ses {
    Box::new(RocksDbSessionStore::open("ses", dir.join("ses"), retention, &RocksDbResources::shared_default()).unwrap())
}

fn keys(iter: kstreams_state::store::KeyValueIter<'_>) -> Vec<Vec<u8>> {
    iter.map(|kv| kv.unwrap().0).collect()
}

fn fill(store: &mut Kv, ks: &[&str]) {
    for k in ks {
        store.put(k.as_bytes(), Some(format!("v-{k}").as_bytes())).unwrap();
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

const HOUR: i64 = 3_600_000;

pub fn kv_get_put_delete(mut s: Kv) {
    assert_eq!(s.get(b"a").unwrap(), None);
    s.put(b"a", Some(b"1")).unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b("1")));
    s.put(b"a", Some(b"2")).unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b("2")));
    assert_eq!(s.delete(b"a").unwrap(), Some(b("2")));
    assert_eq!(s.get(b"a").unwrap(), None);
    assert_eq!(s.delete(b"a").unwrap(), None);
    s.put(b"b", Some(b"x")).unwrap();
    s.put(b"b", None).unwrap();
    assert_eq!(s.get(b"b").unwrap(), None);
}

pub fn kv_put_if_absent(mut s: Kv) {
    assert_eq!(s.put_if_absent(b"k", b"first").unwrap(), None);
    assert_eq!(s.put_if_absent(b"k", b"second").unwrap(), Some(b("first")));
    assert_eq!(s.get(b"k").unwrap(), Some(b("first")));
}

pub fn kv_ranges(mut s: Kv) {
    fill(&mut s, &["d", "a", "c", "b", "e"]);
    assert_eq!(keys(s.range(Some(b"b"), Some(b"d")).unwrap()), vec![b("b"), b("c"), b("d")]);
    assert_eq!(keys(s.range(None, Some(b"b")).unwrap()), vec![b("a"), b("b")]);
    assert_eq!(keys(s.range(Some(b"d"), None).unwrap()), vec![b("d"), b("e")]);
    assert_eq!(keys(s.range(Some(b"bb"), Some(b"cc")).unwrap()), vec![b("c")]);
    assert!(keys(s.range(Some(b"d"), Some(b"b")).unwrap()).is_empty());
    assert_eq!(keys(s.all().unwrap()), vec![b("a"), b("b"), b("c"), b("d"), b("e")]);
    let first = s.range(Some(b"c"), Some(b"c")).unwrap().next().unwrap().unwrap();
    assert_eq!(first, (b("c"), b("v-c")));
}

pub fn kv_prefix_scan(mut s: Kv) {
    fill(&mut s, &["ab", "abc", "abd", "ac", "b", "a"]);
    assert_eq!(keys(s.prefix_scan(b"ab").unwrap()), vec![b("ab"), b("abc"), b("abd")]);
    assert_eq!(keys(s.prefix_scan(b"a").unwrap()).len(), 5);
    assert!(keys(s.prefix_scan(b"z").unwrap()).is_empty());
    // A prefix of 0xff bytes must not wrap around.
    s.put(&[0xff, 0xff], Some(b"x")).unwrap();
    assert_eq!(keys(s.prefix_scan(&[0xff]).unwrap()), vec![vec![0xff, 0xff]]);
}

pub fn kv_approximate_count(mut s: Kv) {
    assert_eq!(s.approximate_num_entries().unwrap(), 0);
    for i in 0..100u32 {
        s.put(&i.to_be_bytes(), Some(b"v")).unwrap();
    }
    let n = s.approximate_num_entries().unwrap();
    assert!((50..=200).contains(&n), "estimate {n} too far from 100");
}

pub fn kv_restore_batch(mut s: Kv) {
    s.put(b"gone", Some(b"old")).unwrap();
    s.restore_batch(&[(b("a"), Some(b("1"))), (b("b"), Some(b("2"))), (b("a"), Some(b("3"))), (b("gone"), None)])
        .unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b("3")));
    assert_eq!(s.get(b"b").unwrap(), Some(b("2")));
    assert_eq!(s.get(b"gone").unwrap(), None);
}

pub fn kv_closed(mut s: Kv) {
    s.put(b"a", Some(b"1")).unwrap();
    s.close().unwrap();
    assert!(matches!(s.get(b"a"), Err(kstreams_state::StateError::Closed(_))));
}

pub fn window_fetch(mut s: Win) {
    assert!(s.put(b"k", Some(b"0"), 0).unwrap());
    assert!(s.put(b"k", Some(b"10"), 10_000).unwrap());
    assert!(s.put(b"k", Some(b"20"), 20_000).unwrap());
    assert!(s.put(b"kk", Some(b"x"), 10_000).unwrap());
    assert!(s.put(b"j", Some(b"y"), 10_000).unwrap());
    assert_eq!(s.fetch(b"k", 10_000).unwrap(), Some(b("10")));
    assert_eq!(s.fetch(b"k", 5_000).unwrap(), None);
    assert_eq!(s.fetch_range(b"k", 0, 15_000).unwrap(), vec![(0, b("0")), (10_000, b("10"))]);
    assert_eq!(s.fetch_range(b"k", 10_000, 10_000).unwrap(), vec![(10_000, b("10"))]);
    assert!(s.fetch_range(b"k", 20_001, 10_000).unwrap().is_empty());
    let all = s.fetch_all(10_000, 20_000).unwrap();
    let got: Vec<_> = all.iter().map(|e| (e.key.clone(), e.window_start)).collect();
    assert_eq!(got, vec![(b("j"), 10_000), (b("k"), 10_000), (b("k"), 20_000), (b("kk"), 10_000)]);
    assert_eq!(s.all().unwrap().len(), 5);
    // Replace and delete.
    s.put(b"k", Some(b"new"), 10_000).unwrap();
    assert_eq!(s.fetch(b"k", 10_000).unwrap(), Some(b("new")));
    s.put(b"k", None, 10_000).unwrap();
    assert_eq!(s.fetch(b"k", 10_000).unwrap(), None);
    assert_eq!(s.fetch_range(b"k", 0, 30_000).unwrap().len(), 2);
}

pub fn window_retention(mut s: Win) {
    let retention = s.retention_ms();
    assert!(s.put(b"k", Some(b"old"), 0).unwrap());
    assert!(s.put(b"k", Some(b"mid"), retention - 1).unwrap());
    assert_eq!(s.fetch(b"k", 0).unwrap(), Some(b("old")), "not yet expired: 0 + retention > stream time");
    // Stream time reaches `retention`: window 0 expires (0 + retention <= stream time).
    assert!(s.put(b"other", Some(b"x"), retention).unwrap());
    assert_eq!(s.fetch(b"k", 0).unwrap(), None);
    assert_eq!(s.fetch_range(b"k", 0, retention).unwrap(), vec![(retention - 1, b("mid"))]);
    assert!(!s.put(b"k", Some(b"late"), 0).unwrap(), "writes to expired windows are dropped");
    assert_eq!(s.fetch_all(i64::MIN, i64::MAX).unwrap().len(), 2);
}

pub fn window_duplicates(mut s: Win) {
    assert!(s.put(b"k", Some(b"a"), 1_000).unwrap());
    assert!(s.put(b"k", Some(b"b"), 1_000).unwrap());
    assert!(s.put(b"k", Some(b"c"), 2_000).unwrap());
    assert!(s.put(b"k", None, 1_000).unwrap());
    assert_eq!(s.fetch_range(b"k", 0, 5_000).unwrap(), vec![(1_000, b("a")), (1_000, b("b")), (2_000, b("c"))]);
    assert_eq!(s.fetch_all(0, 5_000).unwrap().len(), 3);
}

pub fn window_restore_batch(mut s: Win) {
    s.restore_batch(&[
        (encode_window_key(b"k", 1_000, 0), Some(b("a"))),
        (encode_window_key(b"k", 2_000, 0), Some(b("b"))),
        (encode_window_key(b"q", 2_000, 0), Some(b("c"))),
        (encode_window_key(b"k", 1_000, 0), None),
    ])
    .unwrap();
    assert_eq!(s.fetch_range(b"k", 0, 5_000).unwrap(), vec![(2_000, b("b"))]);
    assert_eq!(s.fetch(b"q", 2_000).unwrap(), Some(b("c")));
    assert!(s.restore_batch(&[(b("short"), None)]).is_err(), "a key without the 12-byte suffix is corrupt");
}

pub fn window_restore_duplicates(mut s: Win) {
    s.restore_batch(&[
        (encode_window_key(b"k", 1_000, 1), Some(b("a"))),
        (encode_window_key(b"k", 1_000, 2), Some(b("b"))),
    ])
    .unwrap();
    // New puts continue after the restored seqnums instead of overwriting them.
    s.put(b"k", Some(b"c"), 1_000).unwrap();
    assert_eq!(s.fetch_range(b"k", 0, 5_000).unwrap(), vec![(1_000, b("a")), (1_000, b("b")), (1_000, b("c"))]);
}

pub fn session_find(mut s: Ses) {
    let w = |start, end| SessionWindow { start, end };
    assert!(s.put(b"u", w(0, 10), Some(b"a")).unwrap());
    assert!(s.put(b"u", w(20, 30), Some(b"b")).unwrap());
    assert!(s.put(b"u", w(100, 110), Some(b"c")).unwrap());
    assert!(s.put(b"uu", w(20, 30), Some(b"other key")).unwrap());
    assert!(s.put(b"t", w(20, 30), Some(b"other key")).unwrap());
    // The sessions a record at 25 with gap 5 merges with: end >= 20, start <= 30.
    assert_eq!(s.find_sessions(b"u", 20, 30).unwrap(), vec![(w(20, 30), b("b"))]);
    // A record at 15 with gap 10 bridges the first two sessions.
    assert_eq!(s.find_sessions(b"u", 5, 25).unwrap(), vec![(w(0, 10), b("a")), (w(20, 30), b("b"))]);
    assert_eq!(s.fetch(b"u").unwrap().len(), 3);
    assert_eq!(s.fetch_session(b"u", w(20, 30)).unwrap(), Some(b("b")));
    assert_eq!(s.fetch_session(b"u", w(20, 31)).unwrap(), None);
    // Merge: remove the two old sessions, put the merged one.
    s.remove(b"u", w(0, 10)).unwrap();
    s.remove(b"u", w(20, 30)).unwrap();
    s.put(b"u", w(0, 30), Some(b"ab")).unwrap();
    assert_eq!(s.fetch(b"u").unwrap(), vec![(w(0, 30), b("ab")), (w(100, 110), b("c"))]);
    assert_eq!(s.fetch(b"uu").unwrap().len(), 1);
}

pub fn session_retention(mut s: Ses) {
    let retention = s.retention_ms();
    let w = |start, end| SessionWindow { start, end };
    assert!(s.put(b"u", w(0, 100), Some(b"old")).unwrap());
    assert!(s.put(b"u", w(200, 300), Some(b"new")).unwrap());
    assert_eq!(s.fetch(b"u").unwrap().len(), 2);
    assert!(s.put(b"v", w(100 + retention, 100 + retention), Some(b"x")).unwrap());
    assert_eq!(s.fetch(b"u").unwrap(), vec![(w(200, 300), b("new"))]);
    assert_eq!(s.fetch_session(b"u", w(0, 100)).unwrap(), None);
    assert!(!s.put(b"u", w(50, 100), Some(b"late")).unwrap());
}

pub fn session_restore_batch(mut s: Ses) {
    let w = |start, end| SessionWindow { start, end };
    s.restore_batch(&[
        (encode_session_key(b"u", w(0, 10)), Some(b("a"))),
        (encode_session_key(b"u", w(20, 30)), Some(b("b"))),
        (encode_session_key(b"u", w(0, 10)), None),
    ])
    .unwrap();
    assert_eq!(s.fetch(b"u").unwrap(), vec![(w(20, 30), b("b"))]);
    assert!(s.restore_batch(&[(b("tiny"), Some(b("x")))]).is_err());
}

macro_rules! backend_suite {
    ($module:ident, $kv:ident, $window:ident, $session:ident) => {
        mod $module {
            use super::*;

            fn dir() -> tempfile::TempDir {
                tempfile::tempdir().unwrap()
            }

            #[test]
            fn kv_get_put_delete() {
                let d = dir();
                super::kv_get_put_delete($kv(d.path()))
            }
            #[test]
            fn kv_put_if_absent() {
                let d = dir();
                super::kv_put_if_absent($kv(d.path()))
            }
            #[test]
            fn kv_ranges() {
                let d = dir();
                super::kv_ranges($kv(d.path()))
            }
            #[test]
            fn kv_prefix_scan() {
                let d = dir();
                super::kv_prefix_scan($kv(d.path()))
            }
            #[test]
            fn kv_approximate_count() {
                let d = dir();
                super::kv_approximate_count($kv(d.path()))
            }
            #[test]
            fn kv_restore_batch() {
                let d = dir();
                super::kv_restore_batch($kv(d.path()))
            }
            #[test]
            fn kv_closed() {
                let d = dir();
                super::kv_closed($kv(d.path()))
            }
            #[test]
            fn window_fetch() {
                let d = dir();
                super::window_fetch($window(d.path(), HOUR, false))
            }
            #[test]
            fn window_retention() {
                let d = dir();
                super::window_retention($window(d.path(), 120_000, false))
            }
            #[test]
            fn window_duplicates() {
                let d = dir();
                super::window_duplicates($window(d.path(), HOUR, true))
            }
            #[test]
            fn window_restore_batch() {
                let d = dir();
                super::window_restore_batch($window(d.path(), HOUR, false))
            }
            #[test]
            fn window_restore_duplicates() {
                let d = dir();
                super::window_restore_duplicates($window(d.path(), HOUR, true))
            }
            #[test]
            fn session_find() {
                let d = dir();
                super::session_find($session(d.path(), HOUR))
            }
            #[test]
            fn session_retention() {
                let d = dir();
                super::session_retention($session(d.path(), 120_000))
            }
            #[test]
            fn session_restore_batch() {
                let d = dir();
                super::session_restore_batch($session(d.path(), HOUR))
            }
        }
    };
}

backend_suite!(in_memory, mem_kv, mem_window, mem_session);
backend_suite!(rocks, rocks_kv, rocks_window, rocks_session);

// RocksDB-only behaviour: segments, persistence, damage.

#[test]
fn rocks_window_drops_whole_segments() {
    let d = tempfile::tempdir().unwrap();
    let res = RocksDbResources::shared_default();
    // retention 120 s -> segment interval max(60 s, 60 s) = 60 s.
    let mut s = RocksDbWindowStore::open("win", d.path().join("w"), 120_000, false, &res).unwrap();
    for start in [0, 60_000, 120_000, 180_000] {
        s.put(b"k", Some(b"v"), start).unwrap();
    }
    // Stream time 180 000: earliest live start is 60 001, so segment 0 (0..60 000) is already gone.
    assert_eq!(s.segment_ids(), vec![1, 2, 3]);
    // Stream time 300 000: earliest live start is 180 001 -> segments 0, 1 and 2 are wholly expired.
    s.put(b"k", Some(b"v"), 300_000).unwrap();
    assert_eq!(s.segment_ids(), vec![3, 5]);
    // Window 180 000 is expired but its segment (180 000..240 000) lives: reads must filter it out.
    assert_eq!(s.fetch(b"k", 180_000).unwrap(), None);
    assert_eq!(s.fetch_range(b"k", 0, 400_000).unwrap(), vec![(300_000, b("v"))]);
    drop(s);
    // Reopening finds the surviving segments.
    let s = RocksDbWindowStore::open("win", d.path().join("w"), 120_000, false, &res).unwrap();
    assert_eq!(s.segment_ids(), vec![3, 5]);
    assert!(!s.was_fresh());
    assert_eq!(s.fetch(b"k", 300_000).unwrap(), Some(b("v")));
}

#[test]
fn rocks_session_drops_whole_segments() {
    let d = tempfile::tempdir().unwrap();
    let res = RocksDbResources::shared_default();
    let mut s = RocksDbSessionStore::open("ses", d.path().join("s"), 60_000, &res).unwrap();
    let w = |start, end| SessionWindow { start, end };
    s.put(b"u", w(0, 10_000), Some(b"a")).unwrap();
    s.put(b"u", w(70_000, 80_000), Some(b"b")).unwrap();
    assert_eq!(s.segment_ids(), vec![0, 1]);
    // Stream time 200 000: earliest live end is 140 001 (segment 2, never created): 0 and 1 go.
    s.put(b"u", w(190_000, 200_000), Some(b"c")).unwrap();
    assert_eq!(s.segment_ids(), vec![3]);
    assert_eq!(s.fetch(b"u").unwrap(), vec![(w(190_000, 200_000), b("c"))]);
}

#[test]
fn rocks_kv_persists_and_wipes_corrupt_folder() {
    let d = tempfile::tempdir().unwrap();
    let res = RocksDbResources::shared_default();
    let path = d.path().join("kv");
    {
        let mut s = RocksDbKeyValueStore::open("kv", &path, &res).unwrap();
        assert!(s.was_fresh());
        s.put(b"a", Some(b"1")).unwrap();
    }
    {
        let s = RocksDbKeyValueStore::open("kv", &path, &res).unwrap();
        assert!(!s.was_fresh());
        assert_eq!(s.get(b"a").unwrap(), Some(b("1")));
    }
    std::fs::write(path.join("CURRENT"), b"garbage without newline").unwrap();
    let s = RocksDbKeyValueStore::open("kv", &path, &res).unwrap();
    assert!(s.was_fresh(), "a corrupt store is wiped and reported fresh");
    assert_eq!(s.get(b"a").unwrap(), None);
}

#[test]
fn rocks_resources_are_shared_and_tunable() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let res = RocksDbResources::new(8 << 20, 0.25).with_config_setter(move |_: &str, _: &mut rocksdb::Options| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(res.memtable_bytes(), 2 << 20);
    let d = tempfile::tempdir().unwrap();
    let mut a = RocksDbKeyValueStore::open("a", d.path().join("a"), &res).unwrap();
    let mut b2 = RocksDbKeyValueStore::open("b", d.path().join("b"), &res).unwrap();
    for i in 0..2_000u32 {
        a.put(&i.to_be_bytes(), Some(&[7u8; 100])).unwrap();
        b2.put(&i.to_be_bytes(), Some(&[7u8; 100])).unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(res.memtable_usage() > 0, "both stores' memtables are charged to the shared manager");
    assert!(res.block_cache_usage() >= res.memtable_usage());
}
