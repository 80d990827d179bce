//! What a committed input offset carries besides the offset: the partition's time.
//!
//! Kafka Streams writes each input partition's partition time (the largest record timestamp seen)
//! into the metadata of the offset it commits, and reads it back when a task starts, so that stream
//! time survives restarts and task moves: a record that was too late before a restart is still too
//! late after it. The format is Kafka Streams' own (base64 of a magic byte, 1 or 2, then the time as
//! a big-endian long; version 2 appends processor metadata, which is ignored here), so a Java
//! application and a kstreams one read each other's commits.

use base64::Engine as _;

const MAGIC_V1: u8 = 1;
const MAGIC_V2: u8 = 2;

/// The metadata of a committed offset whose partition time is `time`.
pub(crate) fn encode(time: i64) -> String {
    let mut bytes = Vec::with_capacity(9);
    bytes.push(MAGIC_V1);
    bytes.extend_from_slice(&time.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The partition time in a committed offset's metadata; `None` for metadata of another kind (or
/// none).
pub(crate) fn decode(metadata: &str) -> Option<i64> {
    if metadata.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(metadata).ok()?;
    match bytes.split_first() {
        Some((&(MAGIC_V1 | MAGIC_V2), rest)) if rest.len() >= 8 => {
            let time: [u8; 8] = rest[..8].try_into().ok()?;
            Some(i64::from_be_bytes(time))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_times_round_trip_in_kafka_streams_format() {
        assert_eq!(encode(0), "AQAAAAAAAAAA", "magic 1, then eight zero bytes");
        for t in [0, 1, 1_700_000_000_000, i64::MAX] {
            assert_eq!(decode(&encode(t)), Some(t));
        }
        // Version 2 (with processor metadata after the time) is read too.
        let mut v2 = vec![MAGIC_V2];
        v2.extend_from_slice(&42i64.to_be_bytes());
        v2.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode(&base64::engine::general_purpose::STANDARD.encode(v2)), Some(42));
        assert_eq!(decode(""), None);
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode(&base64::engine::general_purpose::STANDARD.encode([9u8; 9])), None, "unknown magic");
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(20261203),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// Metadata another client committed (any text, or base64 of any bytes) is read or ignored.
        #[test]
        fn any_metadata_is_read_or_ignored(
            text in "\\PC{0,40}",
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
        ) {
            let _ = decode(&text);
            let _ = decode(&base64::engine::general_purpose::STANDARD.encode(&bytes));
        }
    }
}
