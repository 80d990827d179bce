//! Kafka Connect's JSON: Debezium change events, and records for sinks that need a schema.
//!
//! Connect's `JsonConverter` writes a value in one of two forms: compact (`schemas.enable=false`:
//! the value itself) or wrapped (`schemas.enable=true`: `{"schema":{..},"payload":<value>}`). The
//! serdes here read both, so an application does not depend on the connector's converter settings:
//!
//! | constructor | reads | writes |
//! |---|---|---|
//! | [`Serdes::change_event`] | a Debezium change event, as a [`ChangeEvent<T>`] | the compact form |
//! | [`Serdes::connect_json`] | any JSON value (a Debezium key, a row unwrapped by `ExtractNewRecordState`) | the compact form |
//! | [`Serdes::connect_json_with_schema`] | any JSON value | the wrapped form, with a [`ConnectSchema`] |
//!
//! The wrapped form is recognised only as `JsonConverter` itself recognises it: an object with
//! exactly the two keys `schema` (an object or null) and `payload`. A compact value with other keys
//! besides those two is read as it is.
//!
//! A null value (Debezium's tombstone after a delete, to let Kafka compact the key away) is a
//! [`SerdeError::Null`], as with [`Serdes::json`]. [`builder.table`](crate::dsl::StreamsBuilder::table)
//! reads tombstones as deletes by itself; a stream of a CDC topic needs
//! `Serdes::nullable(Serdes::change_event::<Row>())`.
//!
//! A table of the rows of a captured table, here the products to reorder:
//!
//! ```
//! use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
//! use kstreams_streams::serde::connect::ChangeEvent;
//! use kstreams_streams::serde::Serdes;
//! use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
//! struct Key { product_id: String }
//! #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
//! struct Inventory { product_id: String, stock: i64, reorder_point: i64 }
//!
//! let builder = StreamsBuilder::new();
//! let inventory = builder.table(
//!     "retail.public.inventory",
//!     // The table reads tombstones as deletes: no Serdes::nullable here.
//!     Consumed::with(Serdes::connect_json::<Key>(), Serdes::change_event::<Inventory>()),
//!     Materialized::as_("inventory-cdc").in_memory(),
//! );
//! inventory
//!     // A delete event ("op":"d") has no row: it leaves the filter, which deletes the key downstream.
//!     .filter(|_, event| event.row().is_some_and(|row| row.stock <= row.reorder_point))
//!     .map_values(|event| event.row().map_or(0, |row| row.stock))
//!     .to_stream()
//!     .to("reorder", Produced::with(Serdes::connect_json(), Serdes::nullable(Serdes::i64())));
//!
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
//! let input = driver.input_topic("retail.public.inventory", Serdes::connect_json(), Serdes::nullable(Serdes::change_event()));
//! let output = driver.output_topic("reorder", Serdes::connect_json::<Key>(), Serdes::nullable(Serdes::i64()));
//! let key = Key { product_id: "sku-2".into() };
//! let lamp = |stock| Inventory { product_id: "sku-2".into(), stock, reorder_point: 20 };
//! input.pipe(key.clone(), Some(ChangeEvent::read(lamp(300))), 1).unwrap();
//! input.pipe(key.clone(), Some(ChangeEvent::update(lamp(300), lamp(10))), 2).unwrap();
//! input.pipe(key.clone(), Some(ChangeEvent::delete(lamp(10))), 3).unwrap();
//! input.pipe(key.clone(), None, 3).unwrap(); // Debezium's tombstone
//! assert_eq!(output.read_key_values().unwrap(), vec![(key.clone(), Some(10)), (key, None)]);
//! ```
//!
//! To aggregate the rows as they change (sums, counts), use [`ChangeEvent::changes`]: the row to
//! subtract and the row to add.

use std::marker::PhantomData;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{Serde, SerdeError, Serdes, SharedSerde};
use crate::header::Headers;

/// What a Debezium change event did to its row (its `op`).
///
/// ```
/// use kstreams_streams::serde::connect::Op;
/// let op: Op = serde_json::from_str(r#""u""#).unwrap();
/// assert_eq!(op, Op::Update);
/// assert_eq!(serde_json::to_string(&Op::Read).unwrap(), r#""r""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `c`: an insert.
    #[serde(rename = "c")]
    Create,
    /// `r`: a row read by a snapshot.
    #[serde(rename = "r")]
    Read,
    /// `u`: an update.
    #[serde(rename = "u")]
    Update,
    /// `d`: a delete.
    #[serde(rename = "d")]
    Delete,
    /// `t`: a truncate of the table (no row).
    #[serde(rename = "t")]
    Truncate,
    /// `m`: a logical decoding message (no row).
    #[serde(rename = "m")]
    Message,
}

/// The useful fields of a Debezium event's `source` block; the others are ignored.
///
/// `lsn` and `snapshot` are kept as text: connectors write them differently (PostgreSQL's `lsn` is
/// a number, SQL Server's a string; old versions wrote `snapshot` as a boolean).
///
/// ```
/// use kstreams_streams::serde::connect::Source;
/// let source: Source = serde_json::from_str(
///     r#"{"connector":"postgresql","db":"retail","schema":"public","table":"inventory","lsn":23456,"snapshot":"last","xmin":null}"#,
/// ).unwrap();
/// assert_eq!(source.table.as_deref(), Some("inventory"));
/// assert_eq!(source.lsn.as_deref(), Some("23456"));
/// assert!(source.is_snapshot());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Source {
    /// The connector: `postgresql`, `mysql`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// The database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// The database schema (PostgreSQL, SQL Server, Oracle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The position in the database's log, as text.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text")]
    pub lsn: Option<String>,
    /// When the change was made in the database (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
    /// `true`, `first`, `last`, `incremental`, … while snapshotting; `false` (or absent) for a change
    /// read from the log.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text")]
    pub snapshot: Option<String>,
}

impl Source {
    /// Whether the event comes from a snapshot (`snapshot` set to anything but `false`).
    pub fn is_snapshot(&self) -> bool {
        self.snapshot.as_deref().is_some_and(|s| s != "false")
    }
}

/// A string, number or boolean as text; null as `None`.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// A Debezium change event: the row before and after a change of a captured table.
///
/// Read it with [`Serdes::change_event`]. `before` is null for inserts and snapshot reads, `after`
/// for deletes. With PostgreSQL's default `REPLICA IDENTITY`, `before` is null for updates too,
/// and holds only the key columns for deletes: set `REPLICA IDENTITY FULL` on the tables whose
/// old rows you need (for [`changes`](Self::changes)), or make `T`'s other fields optional.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::connect::{ChangeEvent, Op};
/// use kstreams_streams::serde::Serdes;
///
/// #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// struct Stock { product_id: String, stock: i64 }
///
/// let bytes = br#"{"before":{"product_id":"sku-2","stock":300},"after":{"product_id":"sku-2","stock":10},
///     "source":{"connector":"postgresql","table":"inventory"},"op":"u","ts_ms":1764497100123}"#;
/// let event = Serdes::change_event::<Stock>().deserialize("cdc", &Headers::new(), Some(bytes)).unwrap();
/// assert_eq!(event.op, Op::Update);
/// assert_eq!(event.row().map(|r| r.stock), Some(10));
/// let (subtract, add) = event.changes();
/// assert_eq!((subtract.map(|r| r.stock), add.map(|r| r.stock)), (Some(300), Some(10)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent<T> {
    /// The row before the change (updates, deletes).
    pub before: Option<T>,
    /// The row after the change (inserts, snapshot reads, updates).
    pub after: Option<T>,
    /// Where the change comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// What the change did.
    pub op: Op,
    /// When Debezium processed the change (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
}

impl<T> ChangeEvent<T> {
    fn new(op: Op, before: Option<T>, after: Option<T>) -> Self {
        ChangeEvent { before, after, source: None, op, ts_ms: None }
    }
    /// An insert of `row` (for tests and producers).
    pub fn create(row: T) -> Self {
        Self::new(Op::Create, None, Some(row))
    }
    /// A snapshot read of `row`.
    pub fn read(row: T) -> Self {
        Self::new(Op::Read, None, Some(row))
    }
    /// An update from `before` to `after`.
    pub fn update(before: T, after: T) -> Self {
        Self::new(Op::Update, Some(before), Some(after))
    }
    /// A delete of `row`.
    pub fn delete(row: T) -> Self {
        Self::new(Op::Delete, Some(row), None)
    }
    /// Whether the row was deleted (`op` is `d`).
    pub fn is_delete(&self) -> bool {
        self.op == Op::Delete
    }
    /// The row as it is now: `after`; `None` for a delete, truncate or message.
    pub fn row(&self) -> Option<&T> {
        if self.is_delete() {
            None
        } else {
            self.after.as_ref()
        }
    }
    /// [`row`](Self::row), by value.
    pub fn into_row(self) -> Option<T> {
        if self.is_delete() {
            None
        } else {
            self.after
        }
    }
    /// What an aggregate over the rows (a sum, a count) must do: `(subtract, add)`, the old row to
    /// take out (`before`, for updates and deletes) and the new row to put in (`after`, for
    /// inserts, snapshot reads and updates). Both are `None` for truncates and messages, and
    /// `subtract` is `None` for an update whose `before` Debezium did not send (see the type's docs).
    ///
    /// ```
    /// use kstreams_streams::serde::connect::ChangeEvent;
    /// let mut total = 0;
    /// for event in [ChangeEvent::create(5), ChangeEvent::update(5, 7), ChangeEvent::create(1), ChangeEvent::delete(1)] {
    ///     let (subtract, add) = event.changes();
    ///     total += add.copied().unwrap_or(0) - subtract.copied().unwrap_or(0);
    /// }
    /// assert_eq!(total, 7);
    /// ```
    pub fn changes(&self) -> (Option<&T>, Option<&T>) {
        let subtract = matches!(self.op, Op::Update | Op::Delete).then_some(self.before.as_ref()).flatten();
        let add = matches!(self.op, Op::Create | Op::Read | Op::Update).then_some(self.after.as_ref()).flatten();
        (subtract, add)
    }
    /// [`changes`](Self::changes), by value (for `flat_map_values`).
    pub fn into_changes(self) -> (Option<T>, Option<T>) {
        let subtract = matches!(self.op, Op::Update | Op::Delete).then_some(self.before).flatten();
        let add = matches!(self.op, Op::Create | Op::Read | Op::Update).then_some(self.after).flatten();
        (subtract, add)
    }
}

/// The value of a JSON text in either of `JsonConverter`'s forms.
fn read_connect<T: DeserializeOwned>(
    topic: &str,
    serde: &'static str,
    data: Option<&[u8]>,
    hint: &str,
) -> Result<T, SerdeError> {
    let bytes = data.ok_or_else(|| SerdeError::null(topic, serde))?;
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|e| SerdeError::malformed(topic, serde, format!("not JSON ({e}); {hint}")))?;
    let payload = match json {
        Value::Object(mut map) if is_envelope(&map) => map.remove("payload").unwrap_or(Value::Null),
        other => other,
    };
    serde_json::from_value(payload)
        .map_err(|e| SerdeError::malformed(topic, serde, format!("not a {} ({e}); {hint}", std::any::type_name::<T>())))
}

/// Whether `map` is `JsonConverter`'s envelope: exactly `schema` (an object or null) and `payload`.
fn is_envelope(map: &Map<String, Value>) -> bool {
    map.len() == 2 && map.get("schema").is_some_and(|s| s.is_object() || s.is_null()) && map.contains_key("payload")
}

/// `data` as compact JSON.
fn write_json<T: Serialize>(topic: &str, serde: &'static str, data: &T) -> Result<Option<Vec<u8>>, SerdeError> {
    serde_json::to_vec(data).map(Some).map_err(|e| {
        SerdeError::encode(topic, serde, format!("{} cannot be written as JSON ({e})", std::any::type_name::<T>()))
    })
}

macro_rules! stateless_serde {
    ($name:ident) => {
        impl<T> $name<T> {
            /// The serde.
            pub fn new() -> Self {
                $name { _type: PhantomData }
            }
        }
        impl<T> Default for $name<T> {
            fn default() -> Self {
                Self::new()
            }
        }
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                Self::new()
            }
        }
        impl<T> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}<{}>", stringify!($name), std::any::type_name::<T>())
            }
        }
    };
}

const CONNECT_HINT: &str = "expected JSON as Kafka Connect's JsonConverter writes it; a topic written with another converter (Avro, Protobuf) needs its serde";
const DEBEZIUM_HINT: &str = "expected a Debezium change event (`op`, `before`, `after`) as JsonConverter writes it; rows unwrapped by the ExtractNewRecordState transform are plain values: read them with Serdes::connect_json";

/// Any JSON value written by Kafka Connect's `JsonConverter`, with or without its schema
/// envelope; writes the compact form. Build it with [`Serdes::connect_json`].
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::Serdes;
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Key { product_id: String, location: String }
/// let serde = Serdes::connect_json::<Key>();
/// let key = Key { product_id: "SKU-1".into(), location: "store-01".into() };
/// let compact = br#"{"product_id":"SKU-1","location":"store-01"}"#;
/// let wrapped = br#"{"schema":{"type":"struct","fields":[],"optional":false},"payload":{"product_id":"SKU-1","location":"store-01"}}"#;
/// assert_eq!(serde.deserialize("t", &Headers::new(), Some(compact)).unwrap(), key);
/// assert_eq!(serde.deserialize("t", &Headers::new(), Some(wrapped)).unwrap(), key);
/// assert_eq!(serde.serialize("t", &Headers::new(), &key).unwrap().as_deref(), Some(&compact[..]));
/// ```
pub struct ConnectJsonSerde<T> {
    _type: PhantomData<fn() -> T>,
}
stateless_serde!(ConnectJsonSerde);

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for ConnectJsonSerde<T> {
    fn serialize(&self, topic: &str, _headers: &Headers, data: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        write_json(topic, "connect json", data)
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<T, SerdeError> {
        read_connect(topic, "connect json", data, CONNECT_HINT)
    }
    fn to_json(&self, data: &T) -> Option<Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &Value) -> Option<T> {
        super::from_json_value(json)
    }
}

/// Debezium change events ([`ChangeEvent<T>`]) in either of `JsonConverter`'s forms; writes the
/// compact form. Build it with [`Serdes::change_event`].
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::connect::{ChangeEvent, Op};
/// use kstreams_streams::serde::{SerdeError, Serdes};
/// let serde = Serdes::change_event::<i64>();
/// let wrapped = br#"{"schema":{"type":"struct","optional":false},"payload":{"before":null,"after":3,"op":"c"}}"#;
/// assert_eq!(serde.deserialize("t", &Headers::new(), Some(wrapped)).unwrap(), ChangeEvent::create(3));
/// let tombstone = serde.deserialize("t", &Headers::new(), None).unwrap_err();
/// assert!(matches!(tombstone, SerdeError::Null { .. }));
/// assert_eq!(Serdes::nullable(serde).deserialize("t", &Headers::new(), None).unwrap(), None);
/// ```
pub struct ChangeEventSerde<T> {
    _type: PhantomData<fn() -> T>,
}
stateless_serde!(ChangeEventSerde);

impl<T: Serialize + DeserializeOwned + 'static> Serde<ChangeEvent<T>> for ChangeEventSerde<T> {
    fn serialize(&self, topic: &str, _: &Headers, data: &ChangeEvent<T>) -> Result<Option<Vec<u8>>, SerdeError> {
        write_json(topic, "debezium", data)
    }
    fn deserialize(&self, topic: &str, _: &Headers, data: Option<&[u8]>) -> Result<ChangeEvent<T>, SerdeError> {
        read_connect(topic, "debezium", data, DEBEZIUM_HINT)
    }
    fn to_json(&self, data: &ChangeEvent<T>) -> Option<Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &Value) -> Option<ChangeEvent<T>> {
        super::from_json_value(json)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Struct,
}

impl Kind {
    /// The type's name in `JsonConverter`'s JSON (`float32` is `float`, `float64` `double`).
    fn json_name(self) -> &'static str {
        match self {
            Kind::Int8 => "int8",
            Kind::Int16 => "int16",
            Kind::Int32 => "int32",
            Kind::Int64 => "int64",
            Kind::Float32 => "float",
            Kind::Float64 => "double",
            Kind::Boolean => "boolean",
            Kind::String => "string",
            Kind::Bytes => "bytes",
            Kind::Struct => "struct",
        }
    }
}

/// A Kafka Connect schema, written as `JsonConverter` writes it, for sinks that need one (the
/// JDBC sink, with `value.converter.schemas.enable=true`). Build it with the constructors and use
/// it with [`Serdes::connect_json_with_schema`]; its JSON is its `Serialize` form.
///
/// ```
/// use kstreams_streams::serde::connect::ConnectSchema;
/// let schema = ConnectSchema::structure("retail.AutoOrder")
///     .field("sku", ConnectSchema::string())
///     .field("quantity", ConnectSchema::int64())
///     .field("note", ConnectSchema::string().optional());
/// assert_eq!(
///     serde_json::to_string(&schema).unwrap(),
///     r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"sku"},{"type":"int64","optional":false,"field":"quantity"},{"type":"string","optional":true,"field":"note"}],"optional":false,"name":"retail.AutoOrder"}"#,
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectSchema {
    kind: Kind,
    optional: bool,
    name: Option<String>,
    version: Option<i32>,
    fields: Vec<(String, ConnectSchema)>,
}

impl ConnectSchema {
    fn of(kind: Kind) -> Self {
        ConnectSchema { kind, optional: false, name: None, version: None, fields: Vec::new() }
    }
    /// `int8`, a Rust `i8`.
    pub fn int8() -> Self {
        Self::of(Kind::Int8)
    }
    /// `int16`, a Rust `i16`.
    pub fn int16() -> Self {
        Self::of(Kind::Int16)
    }
    /// `int32`, a Rust `i32`.
    pub fn int32() -> Self {
        Self::of(Kind::Int32)
    }
    /// `int64`, a Rust `i64`.
    pub fn int64() -> Self {
        Self::of(Kind::Int64)
    }
    /// `float32` (written `"float"`), a Rust `f32`.
    pub fn float32() -> Self {
        Self::of(Kind::Float32)
    }
    /// `float64` (written `"double"`), a Rust `f64`.
    pub fn float64() -> Self {
        Self::of(Kind::Float64)
    }
    /// `boolean`.
    pub fn boolean() -> Self {
        Self::of(Kind::Boolean)
    }
    /// `string`.
    pub fn string() -> Self {
        Self::of(Kind::String)
    }
    /// `bytes`, whose payload is a base64 string.
    pub fn bytes() -> Self {
        Self::of(Kind::Bytes)
    }
    /// A `struct` named `name`, without fields yet: add them with [`field`](Self::field).
    pub fn structure(name: impl Into<String>) -> Self {
        Self::of(Kind::Struct).named(name)
    }
    /// Connect's `Timestamp` logical type: `int64` milliseconds since the epoch.
    pub fn timestamp() -> Self {
        Self::int64().named("org.apache.kafka.connect.data.Timestamp").version(1)
    }
    /// Connect's `Date` logical type: `int32` days since the epoch.
    pub fn date() -> Self {
        Self::int32().named("org.apache.kafka.connect.data.Date").version(1)
    }
    /// This schema, accepting null (a `None`, or an absent field).
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    /// This schema, named `name` (a struct's name, or a logical type's).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// This schema, with version `version`.
    pub fn version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }
    /// This struct schema with one more field, `name` of `schema`, after the others.
    ///
    /// # Panics
    ///
    /// If this is not a struct schema, or already has a field `name` (as Connect's `SchemaBuilder`).
    pub fn field(mut self, name: impl Into<String>, schema: ConnectSchema) -> Self {
        let name = name.into();
        assert!(self.kind == Kind::Struct, "field `{name}` added to a {} schema, not a struct", self.kind.json_name());
        assert!(self.fields.iter().all(|(n, _)| *n != name), "duplicate field `{name}` in a Connect schema");
        self.fields.push((name, schema));
        self
    }
    /// Whether null fits this schema.
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// The type, for messages: `int64`, or `struct retail.AutoOrder`.
    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{} {name}", self.kind.json_name()),
            None => self.kind.json_name().to_string(),
        }
    }

    /// Checks `value`, at `path` (dotted field names; empty for the payload), as `JsonConverter`
    /// would read it with this schema; `Err` says what does not fit.
    fn check(&self, value: &Value, path: &str) -> Result<(), String> {
        let at = || if path.is_empty() { "the payload".to_string() } else { format!("field `{path}`") };
        if value.is_null() {
            return match self.optional {
                true => Ok(()),
                false => Err(format!("{} is null, but its schema ({}) is not optional", at(), self.describe())),
            };
        }
        let int_in = |min: i64, max: i64| value.as_i64().is_some_and(|i| (min..=max).contains(&i));
        let fits = match self.kind {
            Kind::Int8 => int_in(i8::MIN.into(), i8::MAX.into()),
            Kind::Int16 => int_in(i16::MIN.into(), i16::MAX.into()),
            Kind::Int32 => int_in(i32::MIN.into(), i32::MAX.into()),
            Kind::Int64 => value.is_i64(),
            Kind::Float32 => value.as_f64().is_some_and(|f| f.abs() <= f64::from(f32::MAX)),
            Kind::Float64 => value.is_number(),
            Kind::Boolean => value.is_boolean(),
            Kind::String => value.is_string(),
            Kind::Bytes => value.as_str().is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok()),
            Kind::Struct => return self.check_struct(value, path),
        };
        if fits {
            return Ok(());
        }
        let hint = match self.kind {
            Kind::Bytes => " (bytes are a base64 string)",
            Kind::Int8 | Kind::Int16 | Kind::Int32 | Kind::Int64 | Kind::Float32 => " (or out of its range)",
            _ => "",
        };
        Err(format!("{} is {value}, which does not fit its schema ({}){hint}", at(), self.describe()))
    }

    fn check_struct(&self, value: &Value, path: &str) -> Result<(), String> {
        let join = |name: &str| if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
        let Value::Object(map) = value else {
            let at = if path.is_empty() { "the payload".to_string() } else { format!("field `{path}`") };
            return Err(format!("{at} is {value}, but its schema ({}) is a struct: a JSON object", self.describe()));
        };
        for (name, schema) in &self.fields {
            match map.get(name) {
                Some(v) => schema.check(v, &join(name))?,
                None if !schema.optional => {
                    return Err(format!("required field `{}` ({}) is missing", join(name), schema.describe()))
                }
                None => {}
            }
        }
        match map.keys().find(|k| self.fields.iter().all(|(name, _)| name != *k)) {
            Some(extra) => Err(format!(
                "field `{}` is not in the schema ({}), and the converter would drop it: add it to the schema, or leave it out of the value (#[serde(skip)])",
                join(extra),
                self.describe()
            )),
            None => Ok(()),
        }
    }
}

/// A schema as `JsonConverter` writes it, in its key order; `field` is set for a struct's field.
struct SchemaJson<'a> {
    schema: &'a ConnectSchema,
    field: Option<&'a str>,
}

impl Serialize for SchemaJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.schema;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", s.kind.json_name())?;
        if s.kind == Kind::Struct {
            let fields: Vec<_> =
                s.fields.iter().map(|(name, schema)| SchemaJson { schema, field: Some(name) }).collect();
            map.serialize_entry("fields", &fields)?;
        }
        map.serialize_entry("optional", &s.optional)?;
        if let Some(name) = &s.name {
            map.serialize_entry("name", name)?;
        }
        if let Some(version) = s.version {
            map.serialize_entry("version", &version)?;
        }
        if let Some(field) = self.field {
            map.serialize_entry("field", field)?;
        }
        map.end()
    }
}

impl Serialize for ConnectSchema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SchemaJson { schema: self, field: None }.serialize(serializer)
    }
}

/// Values with their Connect schema, as `JsonConverter` writes them with `schemas.enable=true`:
/// `{"schema":<schema>,"payload":<value>}`. Reads either form. Build it with
/// [`Serdes::connect_json_with_schema`].
///
/// Before writing, it checks the value against the schema (required fields present and not null,
/// no field the schema lacks, JSON types and integer ranges fitting), and fails with a
/// [`SerdeError::Encode`] naming the field rather than write a record the sink would reject or
/// read wrong. A `None` of `Serdes::nullable(..)` around it is written as a null (a tombstone,
/// which the JDBC sink takes as a delete with `delete.enabled=true`).
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::connect::ConnectSchema;
/// use kstreams_streams::serde::{SerdeError, Serdes};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct AutoOrder { sku: String, quantity: i64 }
/// let schema = ConnectSchema::structure("retail.AutoOrder")
///     .field("sku", ConnectSchema::string())
///     .field("quantity", ConnectSchema::int32());
/// let serde = Serdes::nullable(Serdes::connect_json_with_schema::<AutoOrder>(schema));
/// let order = AutoOrder { sku: "sku-2".into(), quantity: 40 };
/// let bytes = serde.serialize("orders", &Headers::new(), &Some(order)).unwrap().unwrap();
/// let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
/// assert_eq!(written["schema"]["name"], "retail.AutoOrder");
/// assert_eq!(written["payload"], serde_json::json!({"sku": "sku-2", "quantity": 40}));
/// assert_eq!(serde.serialize("orders", &Headers::new(), &None).unwrap(), None);
///
/// let too_many = Some(AutoOrder { sku: "sku-2".into(), quantity: 1 << 40 });
/// let err = serde.serialize("orders", &Headers::new(), &too_many).unwrap_err();
/// assert!(matches!(err, SerdeError::Encode { .. }) && err.to_string().contains("`quantity`"), "{err}");
/// ```
pub struct ConnectJsonWithSchemaSerde<T> {
    schema: ConnectSchema,
    _type: PhantomData<fn() -> T>,
}

impl<T> ConnectJsonWithSchemaSerde<T> {
    /// Writes values with `schema`.
    pub fn new(schema: ConnectSchema) -> Self {
        ConnectJsonWithSchemaSerde { schema, _type: PhantomData }
    }
    /// The schema it writes.
    pub fn schema(&self) -> &ConnectSchema {
        &self.schema
    }
}

impl<T> Clone for ConnectJsonWithSchemaSerde<T> {
    fn clone(&self) -> Self {
        Self::new(self.schema.clone())
    }
}

impl<T> std::fmt::Debug for ConnectJsonWithSchemaSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectJsonWithSchemaSerde")
            .field("type", &std::any::type_name::<T>())
            .field("schema", &self.schema)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for ConnectJsonWithSchemaSerde<T> {
    fn serialize(&self, topic: &str, _headers: &Headers, data: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        const NAME: &str = "connect json with schema";
        let type_name = std::any::type_name::<T>();
        let payload = serde_json::to_value(data)
            .map_err(|e| SerdeError::encode(topic, NAME, format!("{type_name} cannot be written as JSON ({e})")))?;
        self.schema.check(&payload, "").map_err(|detail| {
            SerdeError::encode(topic, NAME, format!("{type_name} does not fit its Connect schema: {detail}"))
        })?;
        #[derive(Serialize)]
        struct Envelope<'a> {
            schema: &'a ConnectSchema,
            payload: &'a Value,
        }
        write_json(topic, NAME, &Envelope { schema: &self.schema, payload: &payload })
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<T, SerdeError> {
        read_connect(topic, "connect json with schema", data, CONNECT_HINT)
    }
    fn to_json(&self, data: &T) -> Option<Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &Value) -> Option<T> {
        super::from_json_value(json)
    }
}

impl Serdes {
    /// JSON values as Kafka Connect's `JsonConverter` writes them, with or without the schema
    /// envelope (for Debezium's keys, or rows unwrapped by `ExtractNewRecordState`); writes plain
    /// JSON. See [`ConnectJsonSerde`].
    pub fn connect_json<T>() -> SharedSerde<T>
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        std::sync::Arc::new(ConnectJsonSerde::<T>::new())
    }
    /// Debezium change events with rows of type `T`, with or without the schema envelope. A null
    /// (Debezium's tombstone after a delete) is an error: a stream of a CDC topic needs
    /// `Serdes::nullable(Serdes::change_event::<T>())` (a table reads tombstones as deletes by
    /// itself). See [`ChangeEvent`] and the [module's docs](self) for a table of a captured table.
    pub fn change_event<T>() -> SharedSerde<ChangeEvent<T>>
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        std::sync::Arc::new(ChangeEventSerde::<T>::new())
    }
    /// Values with their Connect `schema`, as `JsonConverter` writes them with
    /// `schemas.enable=true`, for sinks that need a schema (the JDBC sink); values that do not fit
    /// the schema fail to serialize. Reads either form. See [`ConnectJsonWithSchemaSerde`].
    pub fn connect_json_with_schema<T>(schema: ConnectSchema) -> SharedSerde<T>
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        std::sync::Arc::new(ConnectJsonWithSchemaSerde::<T>::new(schema))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    struct Inventory {
        product_id: String,
        name: String,
        stock: i64,
        reorder_point: i64,
        updated_at: String,
    }

    fn lamp(stock: i64, at: &str) -> Inventory {
        Inventory {
            product_id: "sku-2".into(),
            name: "Lamp".into(),
            stock,
            reorder_point: 0,
            updated_at: format!("2026-11-30T10:{at}:00.000000Z"),
        }
    }

    const UPDATE: &str = r#"{"before":{"product_id":"sku-2","name":"Lamp","stock":300,"reorder_point":0,"updated_at":"2026-11-30T10:00:00.000000Z"},"after":{"product_id":"sku-2","name":"Lamp","stock":10,"reorder_point":0,"updated_at":"2026-11-30T10:05:00.000000Z"},"source":{"version":"3.6.1.Final","connector":"postgresql","name":"example_x","ts_ms":1764497100000,"snapshot":"false","db":"retail","sequence":"[null,\"23456\"]","ts_us":1764497100000000,"ts_ns":1764497100000000000,"schema":"public","table":"inventory","txId":770,"lsn":23456,"xmin":null},"transaction":null,"op":"u","ts_ms":1764497100123,"ts_us":1764497100123456,"ts_ns":1764497100123456789}"#;

    fn read<T: Serialize + DeserializeOwned + 'static>(text: &str) -> Result<ChangeEvent<T>, SerdeError> {
        Serdes::change_event::<T>().deserialize("cdc", &Headers::new(), Some(text.as_bytes()))
    }

    fn wrap(envelope: &str) -> String {
        format!(
            r#"{{"schema":{{"type":"struct","fields":[],"optional":false,"name":"x.Envelope"}},"payload":{envelope}}}"#
        )
    }

    #[test]
    fn reads_debezium_updates_in_both_forms() {
        for text in [UPDATE.to_string(), wrap(UPDATE)] {
            let event = read::<Inventory>(&text).unwrap();
            assert_eq!(event.op, Op::Update);
            assert_eq!(event.before, Some(lamp(300, "00")));
            assert_eq!(event.after, Some(lamp(10, "05")));
            assert_eq!(event.ts_ms, Some(1764497100123));
            let source = event.source.clone().unwrap();
            assert_eq!(
                (source.connector.as_deref(), source.db.as_deref(), source.schema.as_deref()),
                (Some("postgresql"), Some("retail"), Some("public"))
            );
            assert_eq!((source.table.as_deref(), source.lsn.as_deref()), (Some("inventory"), Some("23456")));
            assert_eq!((source.ts_ms, source.is_snapshot()), (Some(1764497100000), false));
            assert_eq!(event.row(), Some(&lamp(10, "05")));
            assert_eq!(event.changes(), (Some(&lamp(300, "00")), Some(&lamp(10, "05"))));
        }
    }

    #[test]
    fn reads_creates_snapshot_reads_and_deletes() {
        let row = r#"{"product_id":"sku-2","name":"Lamp","stock":300,"reorder_point":0,"updated_at":"2026-11-30T10:00:00.000000Z","extra":[1]}"#;
        let create = format!(r#"{{"before":null,"after":{row},"source":{{"snapshot":"false"}},"op":"c"}}"#);
        let snapshot =
            format!(r#"{{"before":null,"after":{row},"source":{{"snapshot":"last","lsn":"0:1"}},"op":"r"}}"#);
        let delete = format!(r#"{{"before":{row},"after":null,"op":"d","ts_ms":5}}"#);
        for wrapped in [false, true] {
            let form = |s: &str| if wrapped { wrap(s) } else { s.to_string() };
            let c = read::<Inventory>(&form(&create)).unwrap();
            assert_eq!(
                (c.op, c.row(), c.changes()),
                (Op::Create, Some(&lamp(300, "00")), (None, Some(&lamp(300, "00"))))
            );
            let r = read::<Inventory>(&form(&snapshot)).unwrap();
            assert_eq!((r.op, r.row()), (Op::Read, Some(&lamp(300, "00"))));
            assert!(r.source.as_ref().is_some_and(Source::is_snapshot));
            let d = read::<Inventory>(&form(&delete)).unwrap();
            assert!(d.is_delete());
            assert_eq!((d.row(), d.changes()), (None, (Some(&lamp(300, "00")), None)));
            assert_eq!(d.clone().into_changes(), (Some(lamp(300, "00")), None));
            assert_eq!(d.into_row(), None);
        }
        let truncate = read::<Inventory>(r#"{"op":"t","source":{"snapshot":true}}"#).unwrap();
        assert_eq!(truncate.changes(), (None, None));
        assert_eq!(truncate.source.and_then(|s| s.snapshot).as_deref(), Some("true"));
    }

    #[test]
    fn bad_events_are_errors() {
        let malformed = |text: &str| {
            let err = read::<Inventory>(text).unwrap_err();
            assert!(matches!(err, SerdeError::Malformed { serde: "debezium", .. }), "{text}: {err:?}");
            err.to_string()
        };
        assert!(malformed(r#"{"before":null,"after":{"#).contains("not JSON"));
        assert!(malformed(r#"{"before":null,"after":null}"#).contains("missing field `op`"));
        assert!(malformed(r#"{"before":null,"after":null,"op":"x"}"#).contains("unknown variant `x`"));
        assert!(malformed(r#"{"after":{"product_id":1},"op":"c"}"#).contains("invalid type"));
        assert!(malformed(r#"{"after":null,"op":"c","ts_ms":"soon"}"#).contains("invalid type"));
        malformed(r#"[1,2]"#);
        malformed("\u{0}\u{0}\u{0}\u{0}\u{1}avro");
        malformed(&format!("{}{}", "[".repeat(1000), "]".repeat(1000)));
        let null = Serdes::change_event::<Inventory>().deserialize("cdc", &Headers::new(), None).unwrap_err();
        assert!(matches!(null, SerdeError::Null { serde: "debezium", .. }), "{null:?}");
    }

    #[test]
    fn reads_keys_in_both_forms() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Key {
            product_id: String,
            location: String,
        }
        let key = || Key { product_id: "SKU-1".into(), location: "store-01".into() };
        let serde = Serdes::connect_json::<Key>();
        let h = Headers::new();
        let compact = br#"{"product_id":"SKU-1","location":"store-01"}"#;
        let wrapped = br#"{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"product_id"},{"type":"string","optional":false,"field":"location"}],"optional":false,"name":"x.public.stock.Key"},"payload":{"product_id":"SKU-1","location":"store-01"}}"#;
        assert_eq!(serde.deserialize("k", &h, Some(compact)).unwrap(), key());
        assert_eq!(serde.deserialize("k", &h, Some(wrapped)).unwrap(), key());
        assert_eq!(serde.serialize("k", &h, &key()).unwrap().as_deref(), Some(&compact[..]));
        let text = Serdes::connect_json::<String>();
        assert_eq!(
            text.deserialize("k", &h, Some(br#"{"schema":{"type":"string","optional":false},"payload":"a"}"#)).unwrap(),
            "a"
        );
        // Only exactly `schema` and `payload` make the envelope.
        let plain = Serdes::connect_json::<Value>();
        for value in [json!({"schema": {}, "payload": 1, "id": 2}), json!({"schema": "v2", "payload": 1})] {
            let bytes = value.to_string();
            assert_eq!(plain.deserialize("k", &h, Some(bytes.as_bytes())).unwrap(), value);
        }
        assert!(matches!(serde.deserialize("k", &h, Some(b"{}")), Err(SerdeError::Malformed { .. })));
        assert!(matches!(serde.deserialize("k", &h, None), Err(SerdeError::Null { .. })));
    }

    fn auto_order() -> ConnectSchema {
        ConnectSchema::structure("retail.AutoOrder")
            .field("sku", ConnectSchema::string())
            .field("quantity", ConnectSchema::int32())
            .field("unit_cost", ConnectSchema::float64())
            .field("urgent", ConnectSchema::boolean())
            .field("ordered_at", ConnectSchema::timestamp())
            .field("note", ConnectSchema::string().optional())
    }

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    struct AutoOrder {
        sku: String,
        quantity: i64,
        unit_cost: f64,
        urgent: bool,
        ordered_at: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    fn order() -> AutoOrder {
        AutoOrder {
            sku: "sku-2".into(),
            quantity: 40,
            unit_cost: 2.5,
            urgent: true,
            ordered_at: 1764497100123,
            note: None,
        }
    }

    #[test]
    fn schema_json_is_json_converters() {
        let expected = json!({
            "type": "struct",
            "fields": [
                {"type": "string", "optional": false, "field": "sku"},
                {"type": "int32", "optional": false, "field": "quantity"},
                {"type": "double", "optional": false, "field": "unit_cost"},
                {"type": "boolean", "optional": false, "field": "urgent"},
                {"type": "int64", "optional": false, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1, "field": "ordered_at"},
                {"type": "string", "optional": true, "field": "note"},
            ],
            "optional": false,
            "name": "retail.AutoOrder",
        });
        assert_eq!(serde_json::to_value(auto_order()).unwrap(), expected);
        let types = [
            ConnectSchema::int8(),
            ConnectSchema::int16(),
            ConnectSchema::float32(),
            ConnectSchema::bytes(),
            ConnectSchema::date(),
        ];
        let names: Vec<String> = types.iter().map(|s| serde_json::to_value(s).unwrap()["type"].to_string()).collect();
        assert_eq!(names, [r#""int8""#, r#""int16""#, r#""float""#, r#""bytes""#, r#""int32""#]);
        assert!(ConnectSchema::string().optional().is_optional());
    }

    #[test]
    fn writes_the_envelope_and_round_trips() {
        let serde = Serdes::connect_json_with_schema::<AutoOrder>(auto_order());
        let h = Headers::new();
        let bytes = serde.serialize("orders", &h, &order()).unwrap().unwrap();
        let written: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(written["schema"], serde_json::to_value(auto_order()).unwrap());
        assert_eq!(
            written["payload"],
            json!({"sku": "sku-2", "quantity": 40, "unit_cost": 2.5, "urgent": true, "ordered_at": 1764497100123i64})
        );
        assert_eq!(serde.deserialize("orders", &h, Some(&bytes)).unwrap(), order());
        let compact = serde_json::to_vec(&order()).unwrap();
        assert_eq!(serde.deserialize("orders", &h, Some(&compact)).unwrap(), order());
        let with_note = AutoOrder { note: Some("call first".into()), ..order() };
        let bytes = serde.serialize("orders", &h, &with_note).unwrap().unwrap();
        assert_eq!(serde.deserialize("orders", &h, Some(&bytes)).unwrap(), with_note);
        // Tombstones stay null bytes.
        let nullable = Serdes::nullable(serde);
        assert_eq!(nullable.serialize("orders", &h, &None).unwrap(), None);
        // Change events round trip in the compact form.
        let events = Serdes::change_event::<Inventory>();
        let event = ChangeEvent {
            ts_ms: Some(7),
            source: Some(Source::default()),
            ..ChangeEvent::update(lamp(1, "00"), lamp(2, "01"))
        };
        let bytes = events.serialize("cdc", &h, &event).unwrap().unwrap();
        assert!(bytes.starts_with(br#"{"before":{"#), "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(events.deserialize("cdc", &h, Some(&bytes)).unwrap(), event);
    }

    #[test]
    fn values_not_fitting_the_schema_are_not_written() {
        let err_of = |payload: Value, schema: ConnectSchema| {
            let serde = Serdes::connect_json_with_schema::<Value>(schema);
            let err = serde.serialize("orders", &Headers::new(), &payload).unwrap_err();
            assert!(matches!(err, SerdeError::Encode { serde: "connect json with schema", .. }), "{err:?}");
            err.to_string()
        };
        let mut missing = serde_json::to_value(order()).unwrap();
        missing.as_object_mut().unwrap().remove("sku");
        let err = err_of(missing, auto_order());
        assert!(err.contains("required field `sku` (string) is missing"), "{err}");
        let mut null = serde_json::to_value(order()).unwrap();
        null["urgent"] = Value::Null;
        assert!(err_of(null, auto_order()).contains("field `urgent` is null"));
        let mut wrong = serde_json::to_value(order()).unwrap();
        wrong["quantity"] = json!(1.5);
        assert!(err_of(wrong.clone(), auto_order()).contains("field `quantity` is 1.5"));
        wrong["quantity"] = json!(1u64 << 40);
        assert!(err_of(wrong, auto_order()).contains("`quantity`"));
        let mut extra = serde_json::to_value(order()).unwrap();
        extra["supplier"] = json!("acme");
        assert!(err_of(extra, auto_order()).contains("field `supplier` is not in the schema"));
        let nested = ConnectSchema::structure("x.Outer")
            .field("inner", ConnectSchema::structure("x.Inner").field("blob", ConnectSchema::bytes()));
        assert!(err_of(json!({"inner": {"blob": [1, 2]}}), nested.clone()).contains("field `inner.blob`"));
        assert!(err_of(json!({"inner": 3}), nested.clone()).contains("is a struct"));
        let ok = Serdes::connect_json_with_schema::<Value>(nested);
        assert!(ok.serialize("t", &Headers::new(), &json!({"inner": {"blob": "AQI="}})).is_ok());
        assert!(err_of(json!("sku-1"), ConnectSchema::int64()).contains("the payload is \"sku-1\""));
        assert!(err_of(Value::Null, ConnectSchema::string()).contains("the payload is null"));
        assert!(err_of(json!(1e300), ConnectSchema::float32()).contains("float"));
        let optional = Serdes::connect_json_with_schema::<Option<String>>(ConnectSchema::string().optional());
        let bytes = optional.serialize("k", &Headers::new(), &None).unwrap().unwrap();
        assert_eq!(bytes, br#"{"schema":{"type":"string","optional":true},"payload":null}"#);
    }
}
