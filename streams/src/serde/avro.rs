//! Avro in the Confluent Schema Registry wire format, as Confluent's `GenericAvroSerde` and
//! `SpecificAvroSerde` write it.
//!
//! Each record is a magic byte `0x00`, the writer schema's registry id as a 4-byte big-endian
//! integer, then the Avro binary encoding of the value. Reading looks the writer schema up by that
//! id through a [`SchemaLookup`] and resolves the data to the serde's own (reader) schema with
//! Avro's schema resolution rules: fields the reader adds take their defaults, fields it dropped are
//! skipped, and an incompatible change is a [`SerdeError::Schema`].
//!
//! The writer schema's id comes from a Schema Registry ([`AvroSerdeConfig`], over
//! [`SchemaRegistryClient`]): the serde registers its schema under the topic's subject on first use
//! (Confluent's `auto.register.schemas`) and reads any id the registry knows. Without a registry,
//! [`InMemorySchemas`] holds a fixed set of schemas and the serde writes a fixed id, for tests and
//! applications whose schemas never change.
//!
//! ```
//! use std::sync::Arc;
//! use apache_avro::{AvroSchema, Schema};
//! use kstreams_streams::header::Headers;
//! use kstreams_streams::serde::avro::InMemorySchemas;
//! use kstreams_streams::serde::{Serde, Serdes};
//!
//! #[derive(AvroSchema, serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Payment { id: String, cents: i64 }
//!
//! let schemas = Arc::new(InMemorySchemas::new());
//! schemas.register(7, Payment::get_schema()).unwrap();
//! let serde = Serdes::avro::<Payment>(7, schemas);
//!
//! let payment = Payment { id: "p1".into(), cents: 250 };
//! let bytes = serde.serialize("payments", &Headers::new(), &payment).unwrap().unwrap();
//! assert_eq!(&bytes[..5], &[0x00, 0, 0, 0, 7]); // magic byte, schema id 7
//! assert_eq!(serde.deserialize("payments", &Headers::new(), Some(&bytes)).unwrap(), payment);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{AvroSchema, Schema};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::registry::{RegistryClientError, SchemaRegistryClient};
use super::{Serde, SerdeError};
use crate::header::Headers;

/// The first byte of every record in the Schema Registry wire format.
pub const MAGIC_BYTE: u8 = 0x00;

/// The length of the wire-format prefix: the magic byte and the 4-byte schema id.
pub const PREFIX_LEN: usize = 5;

/// Finds the Avro schema registered under a Schema Registry id.
///
/// The Schema Registry client implements it over HTTP; [`InMemorySchemas`] over a map.
///
/// ```
/// use std::sync::Arc;
/// use kstreams_streams::serde::avro::{SchemaLookup, SchemaLookupError};
/// /// A registry that cannot be reached.
/// struct Down;
/// impl SchemaLookup for Down {
///     fn schema_by_id(&self, _id: u32) -> Result<Arc<apache_avro::Schema>, SchemaLookupError> {
///         Err(SchemaLookupError::Unavailable { detail: "connection refused".into() })
///     }
/// }
/// assert!(Down.schema_by_id(1).unwrap_err().to_string().contains("unavailable"));
/// ```
pub trait SchemaLookup: Send + Sync + 'static {
    /// The schema registered as `id`.
    fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, SchemaLookupError>;
}

/// Why a schema could not be found.
///
/// ```
/// use kstreams_streams::serde::avro::{InMemorySchemas, SchemaLookup, SchemaLookupError};
/// let schemas = InMemorySchemas::new();
/// assert_eq!(schemas.schema_by_id(9).unwrap_err(), SchemaLookupError::UnknownId { id: 9 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaLookupError {
    /// No schema has this id.
    #[error("no schema is registered with id {id}: register the writer's schema (or point the serde at the registry the producer used)")]
    UnknownId {
        /// The id looked up.
        id: u32,
    },
    /// The id is taken by another schema (registry ids are immutable).
    #[error("schema id {id} is already registered with a different schema; pick a new id for the new schema")]
    Conflict {
        /// The id.
        id: u32,
    },
    /// The registry could not be asked (network, authentication, ...).
    #[error("the schema registry is unavailable: {detail}")]
    Unavailable {
        /// What failed.
        detail: String,
    },
}

/// Schemas by Schema Registry id, in memory; shareable (`Arc<InMemorySchemas>`) and safe to extend
/// while serdes use it.
///
/// ```
/// use apache_avro::Schema;
/// use kstreams_streams::serde::avro::{InMemorySchemas, SchemaLookup};
///
/// let schemas = InMemorySchemas::new();
/// let schema = Schema::parse_str(r#"{"type":"record","name":"A","fields":[{"name":"a","type":"int"}]}"#).unwrap();
/// schemas.register(1, schema.clone()).unwrap();
/// assert_eq!(schemas.id_of(&schema), Some(1));
/// assert!(schemas.schema_by_id(2).is_err());
/// ```
#[derive(Debug, Default)]
pub struct InMemorySchemas {
    by_id: RwLock<HashMap<u32, Arc<Schema>>>,
}

impl InMemorySchemas {
    /// No schemas.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `schema` as `id` and returns it. Registering the same schema (same canonical
    /// form) again is a no-op; another schema under a taken id is a [`SchemaLookupError::Conflict`].
    pub fn register(&self, id: u32, schema: Schema) -> Result<Arc<Schema>, SchemaLookupError> {
        let mut by_id = self.by_id.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = by_id.get(&id) {
            return if existing.canonical_form() == schema.canonical_form() {
                Ok(Arc::clone(existing))
            } else {
                Err(SchemaLookupError::Conflict { id })
            };
        }
        let schema = Arc::new(schema);
        by_id.insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    /// The id `schema` is registered under (compared by canonical form), if any; the lowest if
    /// several.
    pub fn id_of(&self, schema: &Schema) -> Option<u32> {
        let canonical = schema.canonical_form();
        let by_id = self.by_id.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        by_id.iter().filter(|(_, s)| s.canonical_form() == canonical).map(|(id, _)| *id).min()
    }

    /// How many schemas are registered.
    pub fn len(&self) -> usize {
        self.by_id.read().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SchemaLookup for InMemorySchemas {
    fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, SchemaLookupError> {
        let by_id = self.by_id.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        by_id.get(&id).cloned().ok_or(SchemaLookupError::UnknownId { id })
    }
}

/// Splits a wire-format record into its schema id and its Avro body.
///
/// Errors (as [`SerdeError::Malformed`] naming `serde`) if the data is shorter than the 5-byte
/// prefix or does not start with [`MAGIC_BYTE`].
pub fn split_wire_format<'a>(topic: &str, serde: &'static str, data: &'a [u8]) -> Result<(u32, &'a [u8]), SerdeError> {
    let Some((prefix, body)) = data.split_first_chunk::<PREFIX_LEN>() else {
        return Err(SerdeError::malformed(
            topic,
            serde,
            format!(
                "{} bytes is shorter than the 5-byte Schema Registry prefix (magic byte + schema id): the record was not written by a Schema Registry Avro serializer",
                data.len()
            ),
        ));
    };
    if prefix[0] != MAGIC_BYTE {
        return Err(SerdeError::malformed(
            topic,
            serde,
            format!(
                "unknown magic byte 0x{:02x} (expected 0x00): the record was not written in the Schema Registry wire format; read it with a serde matching its producer",
                prefix[0]
            ),
        ));
    }
    let id = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
    Ok((id, body))
}

/// Prefixes an Avro body with the magic byte and `schema_id`.
pub fn wire_format(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// How a serde finds the subject its schema is registered under (Confluent's
/// `key.subject.name.strategy` / `value.subject.name.strategy`).
///
/// ```
/// use apache_avro::Schema;
/// use kstreams_streams::serde::avro::SubjectNameStrategy;
/// let schema = Schema::parse_str(r#"{"type":"record","name":"Sale","namespace":"retail","fields":[]}"#).unwrap();
/// assert_eq!(SubjectNameStrategy::TopicName.subject("pos-sales", false, &schema), "pos-sales-value");
/// assert_eq!(SubjectNameStrategy::RecordName.subject("pos-sales", true, &schema), "retail.Sale");
/// assert_eq!(SubjectNameStrategy::TopicRecordName.subject("pos-sales", false, &schema), "pos-sales-retail.Sale");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value`: one schema per topic (Confluent's default).
    #[default]
    TopicName,
    /// The record's full name: one schema per type, on any topic.
    RecordName,
    /// `<topic>-<record full name>`: several types per topic.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for `schema` written to `topic`.
    pub fn subject(self, topic: &str, is_key: bool, schema: &Schema) -> String {
        let record = || schema.name().map(|n| n.fullname(None)).unwrap_or_else(|| "unnamed".into());
        match self {
            SubjectNameStrategy::TopicName => format!("{topic}-{}", if is_key { "key" } else { "value" }),
            SubjectNameStrategy::RecordName => record(),
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{}", record()),
        }
    }

    fn parse(setting: &'static str, value: &str) -> Result<Self, RegistryClientError> {
        let class = value.rsplit('.').next().unwrap_or(value);
        match class {
            "TopicNameStrategy" => Ok(SubjectNameStrategy::TopicName),
            "RecordNameStrategy" => Ok(SubjectNameStrategy::RecordName),
            "TopicRecordNameStrategy" => Ok(SubjectNameStrategy::TopicRecordName),
            _ => Err(RegistryClientError::Config {
                setting,
                detail: format!(
                    "`{value}` is not one of TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy"
                ),
            }),
        }
    }
}

/// The Schema Registry settings of the Avro serdes, by Confluent's names: which registry, whether
/// serdes register their schema, and how subjects are named.
///
/// ```no_run
/// use kstreams_streams::serde::avro::AvroSerdeConfig;
/// use kstreams_streams::serde::Serdes;
/// #[derive(apache_avro::AvroSchema, serde::Serialize, serde::Deserialize)]
/// struct Sale { sku: String, qty: i32 }
///
/// let config = AvroSerdeConfig::from_props([("schema.registry.url", "http://127.0.0.1:8081")]).unwrap();
/// let values = Serdes::avro_registry::<Sale>(&config, false); // subject `<topic>-value`
/// ```
#[derive(Debug, Clone)]
pub struct AvroSerdeConfig {
    client: Arc<SchemaRegistryClient>,
    auto_register: bool,
    key_strategy: SubjectNameStrategy,
    value_strategy: SubjectNameStrategy,
}

impl AvroSerdeConfig {
    /// Serdes on `client`'s registry that register their schemas, subjects named by topic.
    pub fn new(client: Arc<SchemaRegistryClient>) -> Self {
        AvroSerdeConfig {
            client,
            auto_register: true,
            key_strategy: SubjectNameStrategy::TopicName,
            value_strategy: SubjectNameStrategy::TopicName,
        }
    }

    /// From Confluent's serde settings: `schema.registry.url` (required), `basic.auth.user.info`,
    /// `auto.register.schemas` (default true), `key.subject.name.strategy` and
    /// `value.subject.name.strategy` (`TopicNameStrategy`, `RecordNameStrategy`,
    /// `TopicRecordNameStrategy`, with or without their Java package). `use.latest.version=true` is
    /// refused: kstreams' serdes always write with their own schema.
    pub fn from_props<K: AsRef<str>, V: AsRef<str>>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, RegistryClientError> {
        let props: BTreeMap<String, String> =
            props.into_iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect();
        let mut config = AvroSerdeConfig::new(Arc::new(SchemaRegistryClient::from_props(&props)?));
        if let Some(value) = props.get("auto.register.schemas") {
            config.auto_register = parse_bool("auto.register.schemas", value)?;
        }
        if let Some(value) = props.get("use.latest.version") {
            if parse_bool("use.latest.version", value)? {
                return Err(RegistryClientError::Config {
                    setting: "use.latest.version",
                    detail:
                        "is not supported: the serde writes with its own schema (register it, or evolve the Rust type)"
                            .into(),
                });
            }
        }
        if let Some(value) = props.get("key.subject.name.strategy") {
            config.key_strategy = SubjectNameStrategy::parse("key.subject.name.strategy", value)?;
        }
        if let Some(value) = props.get("value.subject.name.strategy") {
            config.value_strategy = SubjectNameStrategy::parse("value.subject.name.strategy", value)?;
        }
        Ok(config)
    }

    /// Whether serdes register their schema (true), or only look up its id (false: the schema must
    /// be registered beforehand, as under Confluent's `auto.register.schemas=false`).
    pub fn auto_register(mut self, register: bool) -> Self {
        self.auto_register = register;
        self
    }

    /// How key (`is_key`) or value subjects are named.
    pub fn subject_name_strategy(mut self, is_key: bool, strategy: SubjectNameStrategy) -> Self {
        if is_key {
            self.key_strategy = strategy;
        } else {
            self.value_strategy = strategy;
        }
        self
    }

    /// The registry client, shared by every serde of this config.
    pub fn client(&self) -> &Arc<SchemaRegistryClient> {
        &self.client
    }
}

fn parse_bool(setting: &'static str, value: &str) -> Result<bool, RegistryClientError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(RegistryClientError::Config { setting, detail: format!("`{value}` is not true or false") }),
    }
}

/// Where the id written before each record comes from.
enum WriterId {
    /// One id, given.
    Fixed(u32),
    /// The registry's id for the serde's schema under the topic's subject, found once per topic.
    Registry { config: AvroSerdeConfig, is_key: bool, by_topic: RwLock<HashMap<String, u32>> },
}

/// What both Avro serdes share: the reader/writer schema, where its id comes from, and the lookup
/// of writer schemas by id.
struct AvroCore {
    name: &'static str,
    schema: Arc<Schema>,
    writer_id: WriterId,
    schemas: Arc<dyn SchemaLookup>,
}

impl AvroCore {
    fn fixed(schema: Arc<Schema>, schema_id: u32, schemas: Arc<dyn SchemaLookup>) -> Self {
        AvroCore { name: "avro", schema, writer_id: WriterId::Fixed(schema_id), schemas }
    }

    fn registry(schema: Arc<Schema>, config: &AvroSerdeConfig, is_key: bool) -> Self {
        let schemas: Arc<dyn SchemaLookup> = Arc::clone(config.client()) as Arc<dyn SchemaLookup>;
        let writer_id = WriterId::Registry { config: config.clone(), is_key, by_topic: RwLock::new(HashMap::new()) };
        AvroCore { name: "avro", schema, writer_id, schemas }
    }

    fn fixed_id(&self) -> Option<u32> {
        match self.writer_id {
            WriterId::Fixed(id) => Some(id),
            WriterId::Registry { .. } => None,
        }
    }

    /// The id to write before records on `topic`.
    fn id_for(&self, topic: &str) -> Result<u32, SerdeError> {
        let (config, is_key, by_topic) = match &self.writer_id {
            WriterId::Fixed(id) => return Ok(*id),
            WriterId::Registry { config, is_key, by_topic } => (config, is_key, by_topic),
        };
        if let Some(id) = by_topic.read().unwrap_or_else(|p| p.into_inner()).get(topic) {
            return Ok(*id);
        }
        let strategy = if *is_key { config.key_strategy } else { config.value_strategy };
        let subject = strategy.subject(topic, *is_key, &self.schema);
        let client = config.client();
        let id = if config.auto_register {
            client.register(&subject, &self.schema)
        } else {
            client.id_of(&subject, &self.schema)
        }
        .map_err(|e| SerdeError::Schema {
            topic: topic.to_string(),
            serde: self.name,
            schema_id: None,
            detail: format!(
                "cannot {} the serde's schema under subject `{subject}`: {e}",
                if config.auto_register { "register" } else { "look up" }
            ),
        })?;
        by_topic.write().unwrap_or_else(|p| p.into_inner()).insert(topic.to_string(), id);
        Ok(id)
    }

    fn prefixed(
        &self,
        topic: &str,
        encoded: Result<Vec<u8>, apache_avro::Error>,
    ) -> Result<Option<Vec<u8>>, SerdeError> {
        let id = self.id_for(topic)?;
        let body = encoded.map_err(|e| {
            SerdeError::encode(
                topic,
                self.name,
                format!(
                    "the value does not fit the serde's schema (id {id}): {e}; make the value match the schema, or give the serde the schema the value was built for"
                ),
            )
        })?;
        Ok(Some(wire_format(id, &body)))
    }

    /// Decodes `data` with its writer schema and resolves it to the serde's schema.
    fn read(&self, topic: &str, data: Option<&[u8]>) -> Result<Value, SerdeError> {
        let data = data.ok_or_else(|| SerdeError::null(topic, self.name))?;
        let (id, mut body) = split_wire_format(topic, self.name, data)?;
        let schema_error = |detail: String| SerdeError::Schema {
            topic: topic.to_string(),
            serde: self.name,
            schema_id: Some(id),
            detail,
        };
        let writer = self
            .schemas
            .schema_by_id(id)
            .map_err(|e| schema_error(format!("cannot find the writer schema {id}: {e}")))?;
        let reader = GenericDatumReader::builder(&writer)
            .build()
            .map_err(|e| schema_error(format!("the writer schema {id} is not usable: {e}")))?;
        let written = reader.read_value(&mut body).map_err(|e| {
            SerdeError::malformed(
                topic,
                self.name,
                format!("the Avro body does not decode with its writer schema {id}: {e}; the record is corrupt or was registered under the wrong id"),
            )
        })?;
        written.resolve(&self.schema).map_err(|e| {
            schema_error(format!(
                "data written with schema {id} cannot be read with the serde's schema: {e}; evolve schemas compatibly (give added fields defaults, keep types promotable) or read with the writer's schema"
            ))
        })
    }
}

/// Generic Avro values ([`Value`]) of one schema, in the Schema Registry wire format, as
/// Confluent's `GenericAvroSerde`.
///
/// It writes with its schema and id (the value must match the schema); it reads data of any id
/// its [`SchemaLookup`] knows and resolves it to its schema.
///
/// ```
/// use std::sync::Arc;
/// use apache_avro::{types::Value, Schema};
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::avro::InMemorySchemas;
/// use kstreams_streams::serde::{Serde, Serdes};
///
/// let schema = Schema::parse_str(r#"{"type":"record","name":"Hit","fields":[{"name":"page","type":"string"}]}"#).unwrap();
/// let schemas = Arc::new(InMemorySchemas::new());
/// let schema = schemas.register(3, schema).unwrap();
/// let serde = Serdes::avro_generic(schema, 3, schemas);
///
/// let hit = Value::Record(vec![("page".into(), Value::String("/".into()))]);
/// let bytes = serde.serialize("hits", &Headers::new(), &hit).unwrap().unwrap();
/// assert_eq!(bytes, vec![0, 0, 0, 0, 3, 2, b'/']);
/// assert_eq!(serde.deserialize("hits", &Headers::new(), Some(&bytes)).unwrap(), hit);
/// ```
pub struct GenericAvroSerde {
    core: AvroCore,
}

impl GenericAvroSerde {
    /// Values of `schema`, registered as `schema_id`; writer schemas are looked up in `schemas`.
    pub fn new(schema: Arc<Schema>, schema_id: u32, schemas: Arc<dyn SchemaLookup>) -> Self {
        GenericAvroSerde { core: AvroCore::fixed(schema, schema_id, schemas) }
    }
    /// Values of `schema` through a Schema Registry: the schema is registered (or looked up) under
    /// each topic's key (`is_key`) or value subject, and writer schemas are fetched by id.
    pub fn with_registry(schema: Arc<Schema>, config: &AvroSerdeConfig, is_key: bool) -> Self {
        GenericAvroSerde { core: AvroCore::registry(schema, config, is_key) }
    }
    /// The serde's schema: what it writes, and what it resolves read data to.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.core.schema
    }
    /// The id written into every record, when it is fixed (`None` when a registry gives it per topic).
    pub fn schema_id(&self) -> Option<u32> {
        self.core.fixed_id()
    }
}

impl std::fmt::Debug for GenericAvroSerde {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericAvroSerde").field("schema_id", &self.core.fixed_id()).finish_non_exhaustive()
    }
}

impl Serde<Value> for GenericAvroSerde {
    fn to_json(&self, data: &Value) -> Option<serde_json::Value> {
        serde_json::Value::try_from(data.clone()).ok()
    }
    fn serialize(&self, topic: &str, _headers: &Headers, data: &Value) -> Result<Option<Vec<u8>>, SerdeError> {
        let encoded = GenericDatumWriter::builder(&self.core.schema).build().and_then(|writer| {
            let mut body = Vec::new();
            writer.write_value_ref(&mut body, data).map(|_| body)
        });
        self.core.prefixed(topic, encoded)
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<Value, SerdeError> {
        self.core.read(topic, data)
    }
}

/// Records of a Rust type with a derived Avro schema (`#[derive(AvroSchema, Serialize,
/// Deserialize)]`), in the Schema Registry wire format, as Confluent's `SpecificAvroSerde`.
///
/// Its schema is `T::get_schema()`, registered as the serde's id; reading resolves data of any
/// known writer schema to it, so `T` may add fields with `#[serde(default)]` and
/// `#[avro(default = "…")]`. See the [module](self) for an example.
///
/// ```
/// use std::sync::Arc;
/// use apache_avro::AvroSchema;
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::avro::{InMemorySchemas, SpecificAvroSerde};
/// use kstreams_streams::serde::Serde;
/// #[derive(AvroSchema, serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Click { page: String }
/// let schemas = Arc::new(InMemorySchemas::new());
/// schemas.register(1, Click::get_schema()).unwrap();
/// let serde = SpecificAvroSerde::<Click>::new(1, schemas);
/// let click = Click { page: "/".into() };
/// let bytes = serde.serialize("clicks", &Headers::new(), &click).unwrap();
/// assert_eq!(serde.deserialize("clicks", &Headers::new(), bytes.as_deref()).unwrap(), click);
/// ```
pub struct SpecificAvroSerde<T> {
    core: AvroCore,
    _type: PhantomData<fn() -> T>,
}

impl<T: AvroSchema> SpecificAvroSerde<T> {
    /// `T`'s records, its schema registered as `schema_id`; writer schemas are looked up in `schemas`.
    pub fn new(schema_id: u32, schemas: Arc<dyn SchemaLookup>) -> Self {
        SpecificAvroSerde { core: AvroCore::fixed(Arc::new(T::get_schema()), schema_id, schemas), _type: PhantomData }
    }
    /// `T`'s records through a Schema Registry: `T`'s schema is registered (or looked up) under
    /// each topic's key (`is_key`) or value subject on first use, and records of any registered
    /// writer schema are read and resolved to `T`'s.
    pub fn with_registry(config: &AvroSerdeConfig, is_key: bool) -> Self {
        SpecificAvroSerde { core: AvroCore::registry(Arc::new(T::get_schema()), config, is_key), _type: PhantomData }
    }
    /// `T`'s schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.core.schema
    }
    /// The id written into every record, when it is fixed (`None` when a registry gives it per topic).
    pub fn schema_id(&self) -> Option<u32> {
        self.core.fixed_id()
    }
}

impl<T> std::fmt::Debug for SpecificAvroSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecificAvroSerde")
            .field("type", &std::any::type_name::<T>())
            .field("schema_id", &self.core.fixed_id())
            .finish_non_exhaustive()
    }
}

impl<T: AvroSchema + Serialize + DeserializeOwned + 'static> Serde<T> for SpecificAvroSerde<T> {
    fn to_json(&self, data: &T) -> Option<serde_json::Value> {
        super::json_of(data)
    }
    fn parse_json(&self, json: &serde_json::Value) -> Option<T> {
        super::from_json_value(json)
    }
    fn serialize(&self, topic: &str, _headers: &Headers, data: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        let encoded =
            GenericDatumWriter::builder(&self.core.schema).build().and_then(|writer| writer.write_ser_to_vec(data));
        self.core.prefixed(topic, encoded)
    }
    fn deserialize(&self, topic: &str, _headers: &Headers, data: Option<&[u8]>) -> Result<T, SerdeError> {
        let value = self.core.read(topic, data)?;
        apache_avro::from_value::<T>(&value).map_err(|e| SerdeError::Schema {
            topic: topic.to_string(),
            serde: self.core.name,
            schema_id: data.and_then(|d| split_wire_format(topic, self.core.name, d).ok()).map(|(id, _)| id),
            detail: format!(
                "the record, resolved to {}'s schema, does not deserialize into it: {e}; keep the Rust type and its derived schema in step",
                std::any::type_name::<T>()
            ),
        })
    }
}
