//! The serdes of Kafka's `org.apache.kafka.common.serialization` package: text, bytes, numbers,
//! booleans, UUIDs, null, and `Option` over any of them.

use std::sync::Arc;

use super::{Serde, SerdeError, SharedSerde, Uuid};
use crate::header::Headers;

/// UTF-8 text, byte-identical to Kafka's `StringSerializer` / `StringDeserializer`.
///
/// Invalid UTF-8 is an error (Java would substitute U+FFFD; use [`BytesSerde`] to keep such bytes).
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, StringSerde};
/// let bytes = StringSerde.serialize("t", &Headers::new(), &"kafka".to_string()).unwrap();
/// assert_eq!(bytes, Some(b"kafka".to_vec()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn to_json(&self, data: &String) -> Option<serde_json::Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &serde_json::Value) -> Option<String> {
        super::from_json_value(json)
    }
    fn serialize(&self, _topic: &str, _headers: &Headers, data: &String) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(data.as_bytes().to_vec()))
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<String, SerdeError> {
        let bytes = data.ok_or_else(|| SerdeError::null(topic, "string"))?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            SerdeError::malformed(
                topic,
                "string",
                format!(
                    "not UTF-8 ({e}); the producer did not write UTF-8 text: read these records with Serdes::bytes() instead"
                ),
            )
        })
    }
}

/// Raw bytes, unchanged, as Kafka's `ByteArraySerializer` / `ByteArrayDeserializer`.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, BytesSerde};
/// let bytes = BytesSerde.serialize("t", &Headers::new(), &vec![1u8, 2]).unwrap();
/// assert_eq!(bytes, Some(vec![1u8, 2]));
/// assert_eq!(BytesSerde.deserialize("t", &Headers::new(), bytes.as_deref()).unwrap(), vec![1u8, 2]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, _topic: &str, _headers: &Headers, data: &Vec<u8>) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(data.clone()))
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<Vec<u8>, SerdeError> {
        data.map(<[u8]>::to_vec).ok_or_else(|| SerdeError::null(topic, "bytes"))
    }
}

/// Reads exactly `N` bytes for a fixed-size serde, or says what was there instead.
fn fixed<const N: usize>(
    topic: &str,
    serde: &'static str,
    java: &str,
    data: Option<&[u8]>,
) -> Result<[u8; N], SerdeError> {
    let bytes = data.ok_or_else(|| SerdeError::null(topic, serde))?;
    <[u8; N]>::try_from(bytes).map_err(|_| {
        SerdeError::malformed(
            topic,
            serde,
            format!(
                "expected exactly {N} bytes as Java's {java} writes, got {}: the topic holds another type, so pick the serde matching its producer",
                bytes.len()
            ),
        )
    })
}

macro_rules! big_endian_serde {
    ($name:ident, $ty:ty, $len:literal, $label:literal, $java:literal) => {
        #[doc = concat!("A `", stringify!($ty), "` as ", stringify!($len), " big-endian bytes, byte-identical to Kafka's `", $java, "`.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde<$ty> for $name {
            fn serialize(&self, _topic: &str, _headers: &Headers, data: &$ty) -> Result<Option<Vec<u8>>, SerdeError> {
                Ok(Some(data.to_be_bytes().to_vec()))
            }
            fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<$ty, SerdeError> {
                fixed::<$len>(topic, $label, $java, data).map(<$ty>::from_be_bytes)
            }
            fn to_json(&self, data: &$ty) -> Option<serde_json::Value> {
                super::json_of(data)
            }
            fn parse_json(&self, json: &serde_json::Value) -> Option<$ty> {
                super::from_json_value(json)
            }
        }
    };
}

big_endian_serde!(I16Serde, i16, 2, "i16", "ShortSerializer");
big_endian_serde!(I32Serde, i32, 4, "i32", "IntegerSerializer");
big_endian_serde!(I64Serde, i64, 8, "i64", "LongSerializer");
big_endian_serde!(F32Serde, f32, 4, "f32", "FloatSerializer");
big_endian_serde!(F64Serde, f64, 8, "f64", "DoubleSerializer");

/// A `bool` as one byte, `0x01` or `0x00`, as Kafka's `BooleanSerializer`; any other byte is an error,
/// as in Java's `BooleanDeserializer`.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, BoolSerde};
/// let bytes = BoolSerde.serialize("t", &Headers::new(), &true).unwrap();
/// assert_eq!(bytes, Some(vec![1u8]));
/// assert_eq!(BoolSerde.deserialize("t", &Headers::new(), bytes.as_deref()).unwrap(), true);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BoolSerde;

impl Serde<bool> for BoolSerde {
    fn to_json(&self, data: &bool) -> Option<serde_json::Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &serde_json::Value) -> Option<bool> {
        super::from_json_value(json)
    }
    fn serialize(&self, _topic: &str, _headers: &Headers, data: &bool) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(vec![u8::from(*data)]))
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<bool, SerdeError> {
        match fixed::<1>(topic, "bool", "BooleanSerializer", data)? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(SerdeError::malformed(
                topic,
                "bool",
                format!(
                    "byte 0x{b:02x} is neither 0x00 (false) nor 0x01 (true): the topic does not hold Kafka booleans"
                ),
            )),
        }
    }
}

/// A UUID as its 36-character hyphenated lowercase string in UTF-8, as Kafka's `UUIDSerializer`
/// (`UUID.toString()`). Reading also accepts the other forms the `uuid` crate parses.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, Uuid, UuidSerde};
/// let id = Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
/// let bytes = UuidSerde.serialize("t", &Headers::new(), &id).unwrap();
/// assert_eq!(bytes.as_deref(), Some(&b"67e55044-10b1-426f-9247-bb680e5fe0c8"[..])); // as Kafka's UUIDSerializer
/// assert_eq!(UuidSerde.deserialize("t", &Headers::new(), bytes.as_deref()).unwrap(), id);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidSerde;

impl Serde<Uuid> for UuidSerde {
    fn to_json(&self, data: &Uuid) -> Option<serde_json::Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &serde_json::Value) -> Option<Uuid> {
        super::from_json_value(json)
    }
    fn serialize(&self, _topic: &str, _headers: &Headers, data: &Uuid) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(data.hyphenated().to_string().into_bytes()))
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<Uuid, SerdeError> {
        let bytes = data.ok_or_else(|| SerdeError::null(topic, "uuid"))?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| SerdeError::malformed(topic, "uuid", format!("not UTF-8 text ({e}); Kafka's UUIDSerializer writes the string form, so this topic holds something else")))?;
        Uuid::parse_str(text).map_err(|e| {
            SerdeError::malformed(
                topic,
                "uuid",
                format!("`{text}` is not a UUID ({e}); expected a form like 123e4567-e89b-12d3-a456-426614174000"),
            )
        })
    }
}

/// `()` as a null, for keys or values an application ignores: writes a null, and reads any data
/// (null or not) as `()`.
///
/// Kafka's `VoidDeserializer` rejects non-null data; this one ignores it, so a topic whose producer
/// sets keys can still be read with the keys dropped.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, UnitSerde};
/// let bytes = UnitSerde.serialize("t", &Headers::new(), &()).unwrap();
/// assert_eq!(bytes, None);
/// assert_eq!(UnitSerde.deserialize("t", &Headers::new(), bytes.as_deref()).unwrap(), ());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _topic: &str, _headers: &Headers, _data: &()) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(None)
    }
    fn deserialize(&self, _topic: &str, _headers: &Headers, _data: Option<&[u8]>) -> Result<(), SerdeError> {
        Ok(())
    }
}

/// `Option<T>` over an inner serde: `None` is a Kafka null (a tombstone), `Some(v)` the inner bytes.
///
/// This is how every Java serde treats `null`; build it with [`Serdes::nullable`](super::Serdes::nullable).
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::Serdes;
/// let serde = Serdes::nullable(Serdes::i64());
/// assert_eq!(serde.serialize("t", &Headers::new(), &None).unwrap(), None); // a tombstone
/// assert_eq!(serde.deserialize("t", &Headers::new(), None).unwrap(), None);
/// assert_eq!(serde.deserialize("t", &Headers::new(), Some(&5i64.to_be_bytes())).unwrap(), Some(5));
/// ```
pub struct NullableSerde<T> {
    inner: SharedSerde<T>,
}

impl<T> NullableSerde<T> {
    /// `Option<T>` over `inner`.
    pub fn new(inner: SharedSerde<T>) -> Self {
        NullableSerde { inner }
    }
    /// The serde of the present values.
    pub fn inner(&self) -> &SharedSerde<T> {
        &self.inner
    }
}

impl<T> Clone for NullableSerde<T> {
    fn clone(&self) -> Self {
        NullableSerde { inner: Arc::clone(&self.inner) }
    }
}

impl<T> std::fmt::Debug for NullableSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NullableSerde").field("inner", &std::any::type_name::<T>()).finish()
    }
}

impl<T: 'static> Serde<Option<T>> for NullableSerde<T> {
    fn serialize(&self, topic: &str, headers: &Headers, data: &Option<T>) -> Result<Option<Vec<u8>>, SerdeError> {
        match data {
            Some(value) => self.inner.serialize(topic, headers, value),
            None => Ok(None),
        }
    }
    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<Option<T>, SerdeError> {
        match data {
            Some(bytes) => self.inner.deserialize(topic, headers, Some(bytes)).map(Some),
            None => Ok(None),
        }
    }
    fn to_json(&self, data: &Option<T>) -> Option<serde_json::Value> {
        match data {
            Some(value) => self.inner.to_json(value),
            None => Some(serde_json::Value::Null),
        }
    }
    fn parse_json(&self, json: &serde_json::Value) -> Option<Option<T>> {
        match json {
            serde_json::Value::Null => Some(None),
            other => self.inner.parse_json(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Serdes;

    fn h() -> Headers {
        Headers::new()
    }

    #[test]
    fn numbers_are_big_endian_and_round_trip() {
        let s = Serdes::i16();
        assert_eq!(s.serialize("t", &h(), &-2).unwrap(), Some(vec![0xff, 0xfe]));
        assert_eq!(s.deserialize("t", &h(), Some(&[0x01, 0x02])).unwrap(), 0x0102);
        let s = Serdes::i32();
        assert_eq!(s.serialize("t", &h(), &0x0102_0304).unwrap(), Some(vec![1, 2, 3, 4]));
        assert_eq!(s.deserialize("t", &h(), Some(&[0xff, 0xff, 0xff, 0xff])).unwrap(), -1);
        let s = Serdes::f32();
        assert_eq!(s.serialize("t", &h(), &1.0).unwrap(), Some(vec![0x3f, 0x80, 0, 0]));
        assert_eq!(s.deserialize("t", &h(), Some(&[0xc0, 0, 0, 0])).unwrap(), -2.0);
        for v in [i64::MIN, -1, 0, 1, i64::MAX] {
            let bytes = Serdes::i64().serialize("t", &h(), &v).unwrap();
            assert_eq!(Serdes::i64().deserialize("t", &h(), bytes.as_deref()).unwrap(), v);
        }
    }

    #[test]
    fn wrong_lengths_and_nulls_are_errors_naming_the_serde() {
        let err = Serdes::i64().deserialize("orders", &h(), Some(&[1, 2, 3])).unwrap_err();
        match &err {
            SerdeError::Malformed { topic, serde, detail } => {
                assert_eq!(topic, "orders");
                assert_eq!(*serde, "i64");
                assert!(detail.contains("exactly 8 bytes") && detail.contains("got 3"), "{detail}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert!(matches!(
            Serdes::i32().deserialize("t", &h(), Some(&[0; 8])),
            Err(SerdeError::Malformed { serde: "i32", .. })
        ));
        assert!(matches!(
            Serdes::f64().deserialize("t", &h(), Some(&[])),
            Err(SerdeError::Malformed { serde: "f64", .. })
        ));
        assert!(matches!(Serdes::i16().deserialize("t", &h(), None), Err(SerdeError::Null { serde: "i16", .. })));
        assert!(matches!(Serdes::string().deserialize("t", &h(), None), Err(SerdeError::Null { serde: "string", .. })));
        assert!(matches!(Serdes::bytes().deserialize("t", &h(), None), Err(SerdeError::Null { serde: "bytes", .. })));
        assert!(matches!(Serdes::bool().deserialize("t", &h(), None), Err(SerdeError::Null { .. })));
    }

    #[test]
    fn strings_must_be_utf8() {
        let err = Serdes::string().deserialize("t", &h(), Some(&[0x66, 0xff, 0x6f])).unwrap_err();
        assert!(matches!(&err, SerdeError::Malformed { serde: "string", .. }), "{err:?}");
        assert!(err.to_string().contains("Serdes::bytes()"), "{err}");
        let s = Serdes::string().deserialize("t", &h(), Some("größe".as_bytes())).unwrap();
        assert_eq!(s, "größe");
        assert_eq!(Serdes::string().serialize("t", &h(), &String::new()).unwrap(), Some(vec![]));
    }

    #[test]
    fn booleans_are_one_byte() {
        let s = Serdes::bool();
        assert_eq!(s.serialize("t", &h(), &true).unwrap(), Some(vec![1]));
        assert_eq!(s.serialize("t", &h(), &false).unwrap(), Some(vec![0]));
        assert!(s.deserialize("t", &h(), Some(&[1])).unwrap());
        assert!(!s.deserialize("t", &h(), Some(&[0])).unwrap());
        assert!(matches!(s.deserialize("t", &h(), Some(&[2])), Err(SerdeError::Malformed { .. })));
        assert!(matches!(s.deserialize("t", &h(), Some(&[0, 1])), Err(SerdeError::Malformed { .. })));
    }

    #[test]
    fn uuids_are_their_string_form() {
        let text = "123e4567-e89b-12d3-a456-426614174000";
        let id = Uuid::parse_str(text).unwrap();
        assert_eq!(Serdes::uuid().serialize("t", &h(), &id).unwrap(), Some(text.as_bytes().to_vec()));
        assert_eq!(Serdes::uuid().deserialize("t", &h(), Some(text.as_bytes())).unwrap(), id);
        assert!(matches!(
            Serdes::uuid().deserialize("t", &h(), Some(b"not-a-uuid")),
            Err(SerdeError::Malformed { .. })
        ));
        assert!(matches!(Serdes::uuid().deserialize("t", &h(), Some(&[0xff; 36])), Err(SerdeError::Malformed { .. })));
    }

    #[test]
    fn unit_is_null_and_ignores_data() {
        assert_eq!(Serdes::unit().serialize("t", &h(), &()).unwrap(), None);
        Serdes::unit().deserialize("t", &h(), None).unwrap();
        Serdes::unit().deserialize("t", &h(), Some(b"a key")).unwrap();
    }

    #[test]
    fn nullable_maps_none_to_null_and_passes_errors_on() {
        let s = Serdes::nullable(Serdes::string());
        assert_eq!(s.serialize("t", &h(), &None).unwrap(), None);
        assert_eq!(s.serialize("t", &h(), &Some("x".into())).unwrap(), Some(b"x".to_vec()));
        assert_eq!(s.deserialize("t", &h(), None).unwrap(), None);
        assert_eq!(s.deserialize("t", &h(), Some(b"")).unwrap(), Some(String::new()));
        let n = Serdes::nullable(Serdes::i32());
        assert!(matches!(n.deserialize("t", &h(), Some(&[1])), Err(SerdeError::Malformed { serde: "i32", .. })));
    }
}
