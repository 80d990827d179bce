//! Byte vectors: what Kafka's Java serializers, Kafka Streams' windowed key schemas and the Java
//! producer's default partitioner produce, checked byte for byte.

use kstreams_streams::header::Headers;
use kstreams_streams::partitioner::{default_partition, murmur2, to_positive, DefaultPartitioner, Partitioner};
use kstreams_streams::serde::{Serde, Serdes, Uuid};
use kstreams_streams::windowed::{Window, Windowed};

fn ser<T: 'static>(serde: &dyn Serde<T>, value: T) -> Vec<u8> {
    serde.serialize("t", &Headers::new(), &value).unwrap().expect("a non-null serialization")
}

fn de<T: 'static>(serde: &dyn Serde<T>, bytes: &[u8]) -> T {
    serde.deserialize("t", &Headers::new(), Some(bytes)).unwrap()
}

#[test]
fn long_serializer() {
    let s = Serdes::i64();
    assert_eq!(ser(&*s, 42), [0, 0, 0, 0, 0, 0, 0, 0x2a]);
    assert_eq!(ser(&*s, -1), [0xff; 8]);
    assert_eq!(ser(&*s, i64::MIN), [0x80, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(ser(&*s, 1_700_000_000_000), [0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]);
    assert_eq!(de(&*s, &[0, 0, 0, 0, 0, 0, 0x01, 0x00]), 256);
}

#[test]
fn integer_and_short_serializers() {
    assert_eq!(ser(&*Serdes::i32(), 42), [0, 0, 0, 0x2a]);
    assert_eq!(ser(&*Serdes::i32(), -2), [0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(ser(&*Serdes::i32(), i32::MAX), [0x7f, 0xff, 0xff, 0xff]);
    assert_eq!(de(&*Serdes::i32(), &[0x80, 0, 0, 0]), i32::MIN);
    assert_eq!(ser(&*Serdes::i16(), 258), [0x01, 0x02]);
    assert_eq!(ser(&*Serdes::i16(), -1), [0xff, 0xff]);
}

#[test]
fn double_and_float_serializers() {
    assert_eq!(ser(&*Serdes::f64(), 1.5), [0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    assert_eq!(ser(&*Serdes::f64(), -2.0), [0xc0, 0, 0, 0, 0, 0, 0, 0]);
    // Java's Double.doubleToRawLongBits(Double.NaN) is 0x7ff8000000000000.
    assert_eq!(ser(&*Serdes::f64(), f64::NAN), [0x7f, 0xf8, 0, 0, 0, 0, 0, 0]);
    assert_eq!(de(&*Serdes::f64(), &[0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18]), std::f64::consts::PI);
    assert_eq!(ser(&*Serdes::f32(), 1.5), [0x3f, 0xc0, 0, 0]);
    assert_eq!(ser(&*Serdes::f32(), f32::INFINITY), [0x7f, 0x80, 0, 0]);
}

#[test]
fn string_bytes_boolean_uuid_serializers() {
    assert_eq!(ser(&*Serdes::string(), "kafka".to_string()), [0x6b, 0x61, 0x66, 0x6b, 0x61]);
    assert_eq!(ser(&*Serdes::string(), "é€".to_string()), [0xc3, 0xa9, 0xe2, 0x82, 0xac]);
    assert_eq!(ser(&*Serdes::bytes(), vec![0, 0xff]), [0, 0xff]);
    assert_eq!(ser(&*Serdes::bool(), true), [0x01]);
    assert_eq!(ser(&*Serdes::bool(), false), [0x00]);
    let id = Uuid::from_u128(0x123e4567_e89b_12d3_a456_426614174000);
    assert_eq!(ser(&*Serdes::uuid(), id), b"123e4567-e89b-12d3-a456-426614174000");
}

#[test]
fn time_windowed_key_is_key_then_start() {
    let s = Serdes::time_windowed(Serdes::string(), 5_000);
    let key = Windowed::new("k".to_string(), Window::new(1_000, 6_000));
    let bytes = ser(&*s, key.clone());
    assert_eq!(bytes, [0x6b, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
    assert_eq!(de(&*s, &bytes), key);
    // The end comes from the window size, not from the data.
    let other_size = Serdes::time_windowed(Serdes::string(), 10);
    assert_eq!(de(&*other_size, &bytes).window, Window::new(1_000, 1_010));
    // A long key in front of the start.
    let s = Serdes::time_windowed(Serdes::i64(), 60_000);
    let bytes = ser(&*s, Windowed::new(7, Window::new(0, 60_000)));
    assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn session_windowed_key_is_key_then_end_then_start() {
    let s = Serdes::session_windowed(Serdes::string());
    let key = Windowed::new("k".to_string(), Window::new(1_000, 2_000));
    let bytes = ser(&*s, key.clone());
    assert_eq!(
        bytes,
        [0x6b, 0, 0, 0, 0, 0, 0, 0x07, 0xd0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8],
        "key, end (2000), start (1000)"
    );
    assert_eq!(de(&*s, &bytes), key);
}

/// Kafka's `UtilsTest.testMurmur2`.
const MURMUR2: [(&[u8], i32); 6] = [
    (b"21", -973_932_308),
    (b"foobar", -790_332_482),
    (b"a-little-bit-long-string", -985_981_536),
    (b"a-little-bit-longer-string", -1_486_304_829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
    (b"abc", 479_470_107), // Java: new byte[]{'a', 'b', 'c'}
];

#[test]
fn murmur2_matches_kafka() {
    for (key, hash) in MURMUR2 {
        assert_eq!(murmur2(key), hash, "murmur2({})", String::from_utf8_lossy(key));
    }
    assert_eq!(murmur2(b""), 275_646_681);
}

#[test]
fn partitions_follow_to_positive_murmur2_mod_n() {
    // (key, partition of 3, partition of 6), from (murmur2(key) & 0x7fffffff) % n.
    let expected: [(&[u8], i32, i32); 9] = [
        (b"21", 0, 0),
        (b"foobar", 0, 0),
        (b"a-little-bit-long-string", 2, 2),
        (b"a-little-bit-longer-string", 2, 5),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 2, 5),
        (b"abc", 0, 3),
        (b"alice", 0, 3),
        (b"bob", 0, 0),
        (b"k", 2, 2),
    ];
    for (key, of3, of6) in expected {
        let name = String::from_utf8_lossy(key);
        assert_eq!(default_partition(key, 3), of3, "{name} among 3");
        assert_eq!(default_partition(key, 6), of6, "{name} among 6");
        assert_eq!(default_partition(key, 6), to_positive(murmur2(key)) % 6);
        assert_eq!(DefaultPartitioner.partition("t", Some(key), None, 6), Some(of6));
    }
    assert_eq!(default_partition(b"foobar", 50), 16);
    // The key's serialized bytes are what is hashed: a string key and its UTF-8 bytes agree.
    let key = ser(&*Serdes::string(), "alice".to_string());
    assert_eq!(default_partition(&key, 6), 3);
    assert_eq!(DefaultPartitioner.partition("t", None, Some(b"v"), 6), None);
}
