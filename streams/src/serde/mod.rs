//! Serdes: how keys and values become bytes and back.
//!
//! A [`Serde`] turns a `T` into the bytes of a Kafka record (or a store entry) and back. Kafka records
//! may carry a null key or value; a serde sees that as `None`. The plain serdes reject a null with
//! [`SerdeError::Null`]; wrap them in [`Serdes::nullable`] (type `Option<T>`) where nulls are expected.
//!
//! ```
//! use kstreams_streams::header::Headers;
//! use kstreams_streams::serde::{Serde, Serdes};
//!
//! let serde = Serdes::i64();
//! let bytes = serde.serialize("counts", &Headers::new(), &42).unwrap();
//! assert_eq!(bytes.as_deref(), Some(&[0, 0, 0, 0, 0, 0, 0, 42][..]));
//! assert_eq!(serde.deserialize("counts", &Headers::new(), bytes.as_deref()).unwrap(), 42);
//! ```
//!
//! Every serde here writes the same bytes as its counterpart in Apache Kafka's Java clients
//! (`org.apache.kafka.common.serialization.Serdes`, Kafka Streams' windowed serdes and Confluent's
//! Avro serdes), so a kstreams application and a Java one can share topics:
//!
//! | constructor | Rust type | Java counterpart | bytes |
//! |---|---|---|---|
//! | [`Serdes::string`] | `String` | `Serdes.String()` | UTF-8 |
//! | [`Serdes::bytes`] | `Vec<u8>` | `Serdes.ByteArray()` | as is |
//! | [`Serdes::i16`], [`Serdes::i32`], [`Serdes::i64`] | `i16`, `i32`, `i64` | `Short`, `Integer`, `Long` | 2, 4, 8 bytes big-endian |
//! | [`Serdes::f32`], [`Serdes::f64`] | `f32`, `f64` | `Float`, `Double` | IEEE 754 bits, big-endian |
//! | [`Serdes::bool`] | `bool` | `Serdes.Boolean()` | one byte, `0x01` or `0x00` |
//! | [`Serdes::uuid`] | [`Uuid`] | `Serdes.UUID()` | the 36-character string form, UTF-8 |
//! | [`Serdes::unit`] | `()` | `Serdes.Void()` | null |
//! | [`Serdes::nullable`] | `Option<T>` | (any Java serde: they map null to null) | null or the inner bytes |
//! | [`Serdes::json`] | `T: Serialize + DeserializeOwned` | a Jackson serde | JSON text |
//! | [`Serdes::bincode`] | `T: Serialize + DeserializeOwned` | — | bincode 2, standard config |
//! | [`Serdes::avro`], [`Serdes::avro_generic`] | derived records, [`avro::Value`](apache_avro::types::Value) | Confluent `SpecificAvroSerde`, `GenericAvroSerde` | `0x00`, schema id, Avro binary |
//! | [`Serdes::time_windowed`], [`Serdes::session_windowed`] | [`Windowed<K>`](crate::windowed::Windowed) | `WindowedSerdes` | key bytes, then window times |
//!
//! Serdes may also give their values a JSON form ([`Serde::to_json`], [`Serde::parse_json`]): the HTTP
//! endpoint of interactive queries reads keys and answers values with it. Every serde above has one,
//! except bytes and unit.

use std::sync::Arc;

use crate::header::Headers;

pub mod avro;
mod bincode;
pub mod connect;
mod json;
mod primitive;
pub mod registry;

pub use self::bincode::BincodeSerde;
pub use self::json::JsonSerde;
pub use self::primitive::{
    BoolSerde, BytesSerde, F32Serde, F64Serde, I16Serde, I32Serde, I64Serde, NullableSerde, StringSerde, UnitSerde,
    UuidSerde,
};
pub use apache_avro::Uuid;

/// Converts `T` to and from the bytes of a record key or value.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, SerdeError};
/// /// A temperature in tenths of a degree, as text.
/// struct Celsius;
/// impl Serde<f64> for Celsius {
///     fn serialize(&self, _: &str, _: &Headers, t: &f64) -> Result<Option<Vec<u8>>, SerdeError> {
///         Ok(Some(format!("{}", (t * 10.0).round() as i64).into_bytes()))
///     }
///     fn deserialize(&self, topic: &str, _: &Headers, data: Option<&[u8]>) -> Result<f64, SerdeError> {
///         let text = data.ok_or_else(|| SerdeError::null(topic, "celsius"))?;
///         let tenths: i64 = std::str::from_utf8(text)
///             .ok()
///             .and_then(|s| s.parse().ok())
///             .ok_or_else(|| SerdeError::malformed(topic, "celsius", "not a number"))?;
///         Ok(tenths as f64 / 10.0)
///     }
/// }
/// let bytes = Celsius.serialize("t", &Headers::new(), &21.5).unwrap();
/// assert_eq!(bytes.as_deref(), Some(&b"215"[..]));
/// assert_eq!(Celsius.deserialize("t", &Headers::new(), bytes.as_deref()).unwrap(), 21.5);
/// ```
pub trait Serde<T>: Send + Sync + 'static {
    /// The bytes of `data`, for a record on `topic`; `None` writes a null (a tombstone).
    fn serialize(&self, topic: &str, headers: &Headers, data: &T) -> Result<Option<Vec<u8>>, SerdeError>;
    /// The `T` in `data`, read from `topic`; `data` is `None` for a null key or value.
    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<T, SerdeError>;
    /// The JSON form of `data`, which interactive queries over HTTP answer with; `None` (the default)
    /// when the serde has none. The built-in serdes of strings, numbers, JSON, bincode and Avro have one.
    fn to_json(&self, data: &T) -> Option<serde_json::Value> {
        let _ = data;
        None
    }
    /// A `T` from its JSON form (a key in a query's URL); `None` (the default) when the serde has none
    /// or `json` is not a `T`.
    fn parse_json(&self, json: &serde_json::Value) -> Option<T> {
        let _ = json;
        None
    }
}

/// The JSON form of a serde-serializable value.
pub(crate) fn json_of<T: serde::Serialize>(data: &T) -> Option<serde_json::Value> {
    serde_json::to_value(data).ok()
}

/// A serde-deserializable value from JSON.
pub(crate) fn from_json_value<T: serde::de::DeserializeOwned>(json: &serde_json::Value) -> Option<T> {
    T::deserialize(json).ok()
}

/// A shareable serde, as topologies and stores hold them.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serdes, SharedSerde};
/// let serde: SharedSerde<i64> = Serdes::i64();
/// let bytes = serde.serialize("t", &Headers::new(), &7).unwrap();
/// assert_eq!(bytes, Some(7i64.to_be_bytes().to_vec()));
/// ```
pub type SharedSerde<T> = Arc<dyn Serde<T>>;

/// Why bytes could not become a value, or a value bytes.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{SerdeError, Serdes};
/// let err = Serdes::i64().deserialize("t", &Headers::new(), Some(b"abc")).unwrap_err();
/// assert!(matches!(err, SerdeError::Malformed { .. }), "{err}");
/// let err = Serdes::string().deserialize("t", &Headers::new(), None).unwrap_err();
/// assert!(matches!(err, SerdeError::Null { .. }), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum SerdeError {
    /// A null key or value reached a serde that does not accept one.
    #[error("null {what} on topic `{topic}`, but its serde ({serde}) does not accept null: use Serdes::nullable(..) for a type that may be null")]
    Null {
        /// The topic.
        topic: String,
        /// The serde's name.
        serde: &'static str,
        /// "data".
        what: &'static str,
    },
    /// The bytes do not have the expected layout.
    #[error("malformed {serde} data on topic `{topic}`: {detail}")]
    Malformed {
        /// The topic.
        topic: String,
        /// The serde's name.
        serde: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A value could not be encoded.
    #[error("{serde} could not serialize a value for topic `{topic}`: {detail}")]
    Encode {
        /// The topic.
        topic: String,
        /// The serde's name.
        serde: &'static str,
        /// What failed.
        detail: String,
    },
    /// The schema the data was written with is unknown, cannot be fetched, or cannot be read with
    /// the serde's schema (Avro schema resolution failed).
    #[error("{serde} schema problem on topic `{topic}`: {detail}")]
    Schema {
        /// The topic.
        topic: String,
        /// The serde's name.
        serde: &'static str,
        /// The schema id in the data, when there was one.
        schema_id: Option<u32>,
        /// What failed and what to do about it.
        detail: String,
    },
    /// The serde panicked (a user serde's bug, or data it did not expect).
    #[error("the serde panicked on topic `{topic}`: {message}")]
    Panicked {
        /// The topic.
        topic: String,
        /// The panic's message.
        message: String,
    },
}

impl SerdeError {
    /// A [`SerdeError::Null`] for `serde` on `topic`.
    pub fn null(topic: &str, serde: &'static str) -> Self {
        SerdeError::Null { topic: topic.to_string(), serde, what: "data" }
    }
    /// A [`SerdeError::Malformed`] for `serde` on `topic`.
    pub fn malformed(topic: &str, serde: &'static str, detail: impl Into<String>) -> Self {
        SerdeError::Malformed { topic: topic.to_string(), serde, detail: detail.into() }
    }
    /// A [`SerdeError::Encode`] for `serde` on `topic`.
    pub fn encode(topic: &str, serde: &'static str, detail: impl Into<String>) -> Self {
        SerdeError::Encode { topic: topic.to_string(), serde, detail: detail.into() }
    }
}

/// Constructors of the built-in serdes, named after Kafka's `Serdes` class.
///
/// Each returns a [`SharedSerde`], ready for `Consumed::with`, `Produced::with`, stores and the test
/// driver.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, Serdes};
///
/// let h = Headers::new();
/// let name = Serdes::string();
/// assert_eq!(name.serialize("t", &h, &"kafka".to_string()).unwrap(), Some(b"kafka".to_vec()));
///
/// // A value that may be a tombstone:
/// let count = Serdes::nullable(Serdes::i64());
/// assert_eq!(count.serialize("t", &h, &None).unwrap(), None);
/// assert_eq!(count.deserialize("t", &h, None).unwrap(), None);
/// assert_eq!(count.deserialize("t", &h, Some(&[0, 0, 0, 0, 0, 0, 0, 7])).unwrap(), Some(7));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Serdes;

impl Serdes {
    /// UTF-8 text, as Kafka's `Serdes.String()` (`StringSerializer` with its default UTF-8 encoding).
    pub fn string() -> SharedSerde<String> {
        Arc::new(StringSerde)
    }
    /// Raw bytes, unchanged, as Kafka's `Serdes.ByteArray()`.
    pub fn bytes() -> SharedSerde<Vec<u8>> {
        Arc::new(BytesSerde)
    }
    /// A 2-byte big-endian `i16`, as Kafka's `Serdes.Short()`.
    pub fn i16() -> SharedSerde<i16> {
        Arc::new(I16Serde)
    }
    /// A 4-byte big-endian `i32`, as Kafka's `Serdes.Integer()`.
    pub fn i32() -> SharedSerde<i32> {
        Arc::new(I32Serde)
    }
    /// An 8-byte big-endian `i64`, as Kafka's `Serdes.Long()`.
    pub fn i64() -> SharedSerde<i64> {
        Arc::new(I64Serde)
    }
    /// The 4-byte big-endian IEEE 754 bits of an `f32`, as Kafka's `Serdes.Float()`.
    pub fn f32() -> SharedSerde<f32> {
        Arc::new(F32Serde)
    }
    /// The 8-byte big-endian IEEE 754 bits of an `f64`, as Kafka's `Serdes.Double()`.
    pub fn f64() -> SharedSerde<f64> {
        Arc::new(F64Serde)
    }
    /// One byte, `0x01` for true and `0x00` for false, as Kafka's `Serdes.Boolean()`.
    pub fn bool() -> SharedSerde<bool> {
        Arc::new(BoolSerde)
    }
    /// A UUID as its 36-character hyphenated string in UTF-8, as Kafka's `Serdes.UUID()`.
    pub fn uuid() -> SharedSerde<Uuid> {
        Arc::new(UuidSerde)
    }
    /// No data: writes a null and reads any key or value as `()`, for keys (or values) an
    /// application ignores. Unlike Kafka's `Serdes.Void()`, it does not reject non-null data.
    pub fn unit() -> SharedSerde<()> {
        Arc::new(UnitSerde)
    }
    /// `Option<T>` over `inner`: `None` is a Kafka null (a tombstone), `Some(v)` the bytes of `v`.
    pub fn nullable<T: 'static>(inner: SharedSerde<T>) -> SharedSerde<Option<T>> {
        Arc::new(NullableSerde::new(inner))
    }
    /// JSON text through serde_json.
    pub fn json<T>() -> SharedSerde<T>
    where
        T: ::serde::Serialize + ::serde::de::DeserializeOwned + 'static,
    {
        Arc::new(JsonSerde::<T>::new())
    }
    /// bincode 2 with its standard configuration, through serde. Compact, but only Rust reads it.
    pub fn bincode<T>() -> SharedSerde<T>
    where
        T: ::serde::Serialize + ::serde::de::DeserializeOwned + 'static,
    {
        Arc::new(BincodeSerde::<T>::new())
    }
    /// Avro records of a type with a derived schema (`#[derive(AvroSchema, Serialize, Deserialize)]`),
    /// in the Schema Registry wire format, as Confluent's `SpecificAvroSerde`: writes with schema
    /// `schema_id`; reads data of any schema id `schemas` knows, resolved to `T`'s schema.
    /// See [`avro::SpecificAvroSerde`].
    pub fn avro<T>(schema_id: u32, schemas: Arc<dyn avro::SchemaLookup>) -> SharedSerde<T>
    where
        T: apache_avro::AvroSchema + ::serde::Serialize + ::serde::de::DeserializeOwned + 'static,
    {
        Arc::new(avro::SpecificAvroSerde::<T>::new(schema_id, schemas))
    }
    /// Avro records of a type with a derived schema, in the Schema Registry wire format, with ids
    /// from a Schema Registry: `T`'s schema is registered under each topic's key (`is_key`) or value
    /// subject, and records of any writer schema the registry knows are read and resolved to `T`'s
    /// schema, as Confluent's `SpecificAvroSerde` configured with `schema.registry.url`.
    /// See [`avro::AvroSerdeConfig`].
    pub fn avro_registry<T>(config: &avro::AvroSerdeConfig, is_key: bool) -> SharedSerde<T>
    where
        T: apache_avro::AvroSchema + ::serde::Serialize + ::serde::de::DeserializeOwned + 'static,
    {
        Arc::new(avro::SpecificAvroSerde::<T>::with_registry(config, is_key))
    }
    /// Generic Avro values of `schema` with ids from a Schema Registry, as Confluent's
    /// `GenericAvroSerde` configured with `schema.registry.url`. See [`avro::AvroSerdeConfig`].
    pub fn avro_generic_registry(
        schema: Arc<apache_avro::Schema>,
        config: &avro::AvroSerdeConfig,
        is_key: bool,
    ) -> SharedSerde<apache_avro::types::Value> {
        Arc::new(avro::GenericAvroSerde::with_registry(schema, config, is_key))
    }
    /// Generic Avro values ([`apache_avro::types::Value`]) of `schema`, registered as `schema_id`, in
    /// the Schema Registry wire format, as Confluent's `GenericAvroSerde`. See [`avro::GenericAvroSerde`].
    pub fn avro_generic(
        schema: Arc<apache_avro::Schema>,
        schema_id: u32,
        schemas: Arc<dyn avro::SchemaLookup>,
    ) -> SharedSerde<apache_avro::types::Value> {
        Arc::new(avro::GenericAvroSerde::new(schema, schema_id, schemas))
    }
    /// Keys of time windows (tumbling, hopping) in Kafka Streams' layout: the key bytes, then the
    /// window start as an 8-byte big-endian long. The end is not stored, so reading needs the window
    /// size: end = start + `window_size_ms`. See [`TimeWindowedSerde`](crate::windowed::TimeWindowedSerde).
    pub fn time_windowed<K: 'static>(
        inner: SharedSerde<K>,
        window_size_ms: i64,
    ) -> SharedSerde<crate::windowed::Windowed<K>> {
        Arc::new(crate::windowed::TimeWindowedSerde::new(inner, window_size_ms))
    }
    /// Keys of session windows in Kafka Streams' layout: the key bytes, the window end, then the
    /// window start, both 8-byte big-endian longs.
    /// See [`SessionWindowedSerde`](crate::windowed::SessionWindowedSerde).
    pub fn session_windowed<K: 'static>(inner: SharedSerde<K>) -> SharedSerde<crate::windowed::Windowed<K>> {
        Arc::new(crate::windowed::SessionWindowedSerde::new(inner))
    }
}
