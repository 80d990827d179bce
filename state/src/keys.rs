//! Byte layouts of window and session keys, shared by the changelog, the record cache and the RocksDB
//! backends.
//!
//! Changelog layouts follow Kafka Streams, so changelogs written by either can be read by the other:
//!
//! | store   | changelog key                                          |
//! |---------|--------------------------------------------------------|
//! | window  | `[key][8-byte BE window start][4-byte BE seqnum]`      |
//! | session | `[key][8-byte BE session end][8-byte BE session start]` |
//!
//! The RocksDB backends store the same layouts with the sign bit of each timestamp flipped
//! ([`order_ts`]), so that negative timestamps sort before positive ones in RocksDB's byte order.
//!
//! ```
//! use kstreams_state::keys::{decode_window_key, encode_window_key};
//!
//! let bytes = encode_window_key(b"user-1", 60_000, 0);
//! assert_eq!(bytes.len(), 6 + 12);
//! assert_eq!(decode_window_key(&bytes), Some((&b"user-1"[..], 60_000, 0)));
//! ```

use crate::store::SessionWindow;

/// Length of the suffix after the record key in a window key: 8-byte start and 4-byte seqnum.
pub const WINDOW_SUFFIX_LEN: usize = 12;
/// Length of the suffix after the record key in a session key: 8-byte end and 8-byte start.
pub const SESSION_SUFFIX_LEN: usize = 16;

/// Maps a timestamp to a `u64` whose big-endian bytes sort like the signed timestamp.
pub fn order_ts(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

/// The inverse of [`order_ts`].
pub fn unorder_ts(bits: u64) -> i64 {
    (bits ^ (1 << 63)) as i64
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}

fn read_u32(bytes: &[u8]) -> Option<u32> {
    let arr: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// Kafka Streams' window changelog key: `[key][8-byte BE start][4-byte BE seqnum]`.
pub fn encode_window_key(key: &[u8], window_start: i64, seqnum: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + WINDOW_SUFFIX_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(&window_start.to_be_bytes());
    out.extend_from_slice(&seqnum.to_be_bytes());
    out
}

/// Splits a window changelog key into (key, window start, seqnum); `None` if it is too short.
pub fn decode_window_key(bytes: &[u8]) -> Option<(&[u8], i64, u32)> {
    let split = bytes.len().checked_sub(WINDOW_SUFFIX_LEN)?;
    let (key, suffix) = bytes.split_at(split);
    Some((key, read_u64(suffix)? as i64, read_u32(&suffix[8..])?))
}

/// Kafka Streams' session changelog key: `[key][8-byte BE end][8-byte BE start]`.
pub fn encode_session_key(key: &[u8], window: SessionWindow) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + SESSION_SUFFIX_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(&window.end.to_be_bytes());
    out.extend_from_slice(&window.start.to_be_bytes());
    out
}

/// Splits a session changelog key into (key, window); `None` if it is too short.
pub fn decode_session_key(bytes: &[u8]) -> Option<(&[u8], SessionWindow)> {
    let split = bytes.len().checked_sub(SESSION_SUFFIX_LEN)?;
    let (key, suffix) = bytes.split_at(split);
    let end = read_u64(suffix)? as i64;
    let start = read_u64(&suffix[8..])? as i64;
    Some((key, SessionWindow { start, end }))
}

/// The storage form of a window key: like the changelog layout with order-preserving timestamps.
pub(crate) fn window_storage_key(key: &[u8], window_start: i64, seqnum: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + WINDOW_SUFFIX_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(&order_ts(window_start).to_be_bytes());
    out.extend_from_slice(&seqnum.to_be_bytes());
    out
}

/// Inverse of [`window_storage_key`].
pub(crate) fn decode_window_storage_key(bytes: &[u8]) -> Option<(&[u8], i64, u32)> {
    let split = bytes.len().checked_sub(WINDOW_SUFFIX_LEN)?;
    let (key, suffix) = bytes.split_at(split);
    Some((key, unorder_ts(read_u64(suffix)?), read_u32(&suffix[8..])?))
}

/// The storage form of a session key: `[key][ordered end][ordered start]`.
pub(crate) fn session_storage_key(key: &[u8], window: SessionWindow) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + SESSION_SUFFIX_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(&order_ts(window.end).to_be_bytes());
    out.extend_from_slice(&order_ts(window.start).to_be_bytes());
    out
}

/// Inverse of [`session_storage_key`].
pub(crate) fn decode_session_storage_key(bytes: &[u8]) -> Option<(&[u8], SessionWindow)> {
    let split = bytes.len().checked_sub(SESSION_SUFFIX_LEN)?;
    let (key, suffix) = bytes.split_at(split);
    let end = unorder_ts(read_u64(suffix)?);
    let start = unorder_ts(read_u64(&suffix[8..])?);
    Some((key, SessionWindow { start, end }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_key_round_trips_and_matches_kafka_layout() {
        let bytes = encode_window_key(b"k", 0x0102, 7);
        assert_eq!(bytes, [b'k', 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 7]);
        assert_eq!(decode_window_key(&bytes), Some((&b"k"[..], 0x0102, 7)));
        assert_eq!(decode_window_key(b"short"), None);
    }

    #[test]
    fn session_key_round_trips_and_puts_end_first() {
        let w = SessionWindow { start: 5, end: 9 };
        let bytes = encode_session_key(b"ab", w);
        assert_eq!(&bytes[2..10], &9i64.to_be_bytes());
        assert_eq!(&bytes[10..], &5i64.to_be_bytes());
        assert_eq!(decode_session_key(&bytes), Some((&b"ab"[..], w)));
        assert_eq!(decode_session_key(&bytes[..15]), None);
    }

    #[test]
    fn storage_keys_sort_like_signed_timestamps() {
        let neg = window_storage_key(b"k", -5, 0);
        let pos = window_storage_key(b"k", 3, 0);
        assert!(neg < pos);
        assert_eq!(decode_window_storage_key(&neg), Some((&b"k"[..], -5, 0)));
        let s = SessionWindow { start: -10, end: -1 };
        assert_eq!(decode_session_storage_key(&session_storage_key(b"x", s)), Some((&b"x"[..], s)));
    }
}
