//! The default partitioner: murmur2 over the serialized key, as in Kafka's Java client.
//!
//! A record with a key goes to partition `toPositive(murmur2(keyBytes)) % numPartitions`, exactly
//! as Java's `BuiltInPartitioner.partitionForKey` (and the older `DefaultPartitioner`) computes it,
//! so kstreams and Java producers put equal keys into the same partitions — which co-partitioned
//! joins and shared state rely on. Records without a key are left to the producer.
//!
//! ```
//! use kstreams_streams::partitioner::{default_partition, murmur2};
//! assert_eq!(murmur2(b"foobar"), -790_332_482); // Kafka's UtilsTest.testMurmur2
//! assert_eq!(default_partition(b"foobar", 6), 0); // 1357151166 % 6
//! ```

/// Kafka's murmur2 hash, bit for bit `org.apache.kafka.common.utils.Utils.murmur2`: MurmurHash2
/// (32-bit) with seed `0x9747b28c`, returning Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java: `int h = seed ^ length` (lengths beyond i32 cannot occur in Java; wrap as it would).
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R; // `>>>`: unsigned shift
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // Java's fall-through switch over `length % 4`.
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (`h & 0x7fffffff`), not `abs`, so `i32::MIN`
/// maps to 0.
pub const fn to_positive(h: i32) -> i32 {
    h & 0x7fff_ffff
}

/// The partition of a record whose serialized key is `key_bytes`, among `num_partitions`:
/// `to_positive(murmur2(key_bytes)) % num_partitions`, as Kafka's Java producer.
///
/// A topic always has at least one partition; for `num_partitions <= 0` this returns 0 instead of
/// panicking.
pub fn default_partition(key_bytes: &[u8], num_partitions: i32) -> i32 {
    if num_partitions <= 0 {
        return 0;
    }
    to_positive(murmur2(key_bytes)) % num_partitions
}

/// Chooses the partition of a record from its serialized key and value.
///
/// ```
/// use kstreams_streams::partitioner::{DefaultPartitioner, Partitioner};
///
/// /// Sends everything to partition 0.
/// struct First;
/// impl Partitioner for First {
///     fn partition(&self, _: &str, _: Option<&[u8]>, _: Option<&[u8]>, _: i32) -> Option<i32> {
///         Some(0)
///     }
/// }
///
/// assert_eq!(First.partition("t", Some(b"k"), None, 6), Some(0));
/// assert_eq!(DefaultPartitioner.partition("t", Some(b"foobar"), None, 6), Some(0));
/// assert_eq!(DefaultPartitioner.partition("t", None, Some(b"v"), 6), None);
/// ```
pub trait Partitioner: Send + Sync + 'static {
    /// The partition (in `0..num_partitions`) for a record on `topic`, or `None` to let the
    /// producer choose (its sticky partitioning, as Kafka does for records without a key).
    fn partition(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, num_partitions: i32) -> Option<i32>;
}

/// Kafka's default: murmur2 of the key bytes ([`default_partition`]); records with a null key, or a
/// topic reported with no partitions, are left to the producer (`None`).
///
/// ```
/// use kstreams_streams::partitioner::{default_partition, DefaultPartitioner, Partitioner};
/// assert_eq!(DefaultPartitioner.partition("t", Some(b"key"), None, 6), Some(default_partition(b"key", 6)));
/// assert_eq!(DefaultPartitioner.partition("t", None, Some(b"v"), 6), None, "the producer picks");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, _value: Option<&[u8]>, num_partitions: i32) -> Option<i32> {
        match key {
            Some(key) if num_partitions > 0 => Some(default_partition(key, num_partitions)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn matches_kafka_utils_test() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107), // Java: new byte[]{'a', 'b', 'c'}
        ];
        for (data, hash) in cases {
            assert_eq!(murmur2(data), hash, "murmur2({:?})", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(-790_332_482), 1_357_151_166);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn default_partitioner_leaves_null_keys_to_the_producer() {
        assert_eq!(DefaultPartitioner.partition("t", None, Some(b"v"), 3), None);
        assert_eq!(DefaultPartitioner.partition("t", Some(b"foobar"), None, 0), None);
        assert_eq!(DefaultPartitioner.partition("t", Some(b"foobar"), None, 10), Some(6));
        assert_eq!(default_partition(b"foobar", 0), 0);
        assert_eq!(default_partition(b"foobar", -3), 0);
    }
}
