//! What the state directory and the changelogs hand the stores is decoded without panicking:
//! checkpoint files, window and session changelog keys, and whole changelog batches of random
//! records restored into every window and session store (timestamps at the ends of `i64` too). Each
//! either decodes or is an error.
//!
//! `cargo test` runs 256 cases per property with a fixed seed; a longer run is
//! `PROPTEST_CASES=1000000 cargo test --release -p kstreams-state --test decoders`.

use kstreams_state::checkpoint::Checkpoint;
use kstreams_state::keys::{decode_session_key, decode_window_key, encode_session_key, encode_window_key};
use kstreams_state::memory::{InMemorySessionStore, InMemoryWindowStore};
use kstreams_state::rocksdb::{RocksDbResources, RocksDbSessionStore, RocksDbWindowStore};
use kstreams_state::store::{SessionWindow, StateStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32) -> Config {
    let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: env("PROPTEST_CASES").map_or(cases, |n| n.min(u32::MAX as u64) as u32),
        rng_seed: RngSeed::Fixed(env("KSTREAMS_PROPTEST_SEED").unwrap_or(20261203)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Timestamps, often at or near the ends of the range.
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(0i64), any::<i64>(), 0i64..10_000]
}

/// A changelog record: a well-formed key (random timestamps), a random byte string, or a tombstone.
fn window_record() -> impl Strategy<Value = (Vec<u8>, Option<Vec<u8>>)> {
    let key = prop_oneof![
        (proptest::collection::vec(any::<u8>(), 0..6), timestamp(), any::<u32>())
            .prop_map(|(k, start, seq)| encode_window_key(&k, start, seq)),
        proptest::collection::vec(any::<u8>(), 0..20),
    ];
    (key, proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)))
}

fn session_record() -> impl Strategy<Value = (Vec<u8>, Option<Vec<u8>>)> {
    let key = prop_oneof![
        (proptest::collection::vec(any::<u8>(), 0..6), timestamp(), timestamp())
            .prop_map(|(k, start, end)| encode_session_key(&k, SessionWindow { start, end })),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    (key, proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)))
}

fn retention() -> impl Strategy<Value = i64> {
    prop_oneof![Just(i64::MAX), Just(1i64), 1i64..100_000]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn checkpoint_files_parse_or_say_what_is_wrong(text in "\\PC{0,80}") {
        let _ = Checkpoint::parse(&text);
    }

    #[test]
    fn checkpoint_mutations_parse_or_say_what_is_wrong(
        version in prop_oneof![Just("0".to_string()), "[0-9]{1,3}"],
        count in "[0-9-]{0,4}",
        lines in proptest::collection::vec(("[a-z-]{0,8}", "-?[0-9]{0,12}", "-?[0-9]{0,22}"), 0..4),
    ) {
        let mut text = format!("{version}\n{count}\n");
        for (topic, partition, offset) in lines {
            text.push_str(&format!("{topic} {partition} {offset}\n"));
        }
        let _ = Checkpoint::parse(&text);
    }

    #[test]
    fn changelog_keys_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = decode_window_key(&bytes);
        let _ = decode_session_key(&bytes);
    }

    #[test]
    fn in_memory_stores_restore_any_changelog_batch(
        windows in proptest::collection::vec(window_record(), 0..12),
        sessions in proptest::collection::vec(session_record(), 0..12),
        retention in retention(),
        duplicates in any::<bool>(),
    ) {
        let mut window = InMemoryWindowStore::new("w", retention, duplicates);
        let _ = window.restore_batch(&windows);
        let mut session = InMemorySessionStore::new("s", retention);
        let _ = session.restore_batch(&sessions);
    }
}

proptest! {
    // RocksDB stores open a folder per case: fewer cases.
    #![proptest_config(config(48))]

    #[test]
    fn rocksdb_stores_restore_any_changelog_batch(
        windows in proptest::collection::vec(window_record(), 0..12),
        sessions in proptest::collection::vec(session_record(), 0..12),
        retention in retention(),
        duplicates in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let resources = RocksDbResources::shared_default();
        let mut window = RocksDbWindowStore::open("w", dir.path().join("w"), retention, duplicates, &resources).unwrap();
        let _ = window.restore_batch(&windows);
        let mut session = RocksDbSessionStore::open("s", dir.path().join("s"), retention, &resources).unwrap();
        let _ = session.restore_batch(&sessions);
    }
}
