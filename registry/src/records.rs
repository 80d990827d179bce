//! The records of the `_schemas` topic, in Confluent's layout.
//!
//! Every change is one record: its key says what it is about, its value what it is now, and a null
//! value (a tombstone) removes it. The topic is compacted, so the latest record per key is the state.
//!
//! | change | key | value |
//! |---|---|---|
//! | a subject's version | `{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}` | `{"subject":"s","version":1,"id":7,"schema":"…","deleted":false}`; soft delete sets `deleted`, permanent delete is a tombstone |
//! | a compatibility level | `{"keytype":"CONFIG","subject":"s","magic":0}` (`"subject":null` for the global one) | `{"compatibilityLevel":"FULL"}`, or a tombstone |
//! | the next schema id | `{"keytype":"NEXT_ID","magic":0}` | `{"id":8}` |
//! | the instance that writes | `{"keytype":"LEADER","magic":0}` | `{"url":"http://10.0.0.5:8081"}` |
//!
//! `NEXT_ID` and `LEADER` are kstreams' additions. Confluent's registry derives the next id from
//! the largest id it has read, which after a permanent delete and compaction can hand a deleted
//! schema's id to another schema; keeping the high-water mark keeps ids unique forever. Confluent
//! elects its leader through Kafka's group protocol; here the writer announces itself in the topic
//! (see [`store`](crate::store)). Key types this registry does not use (`NOOP`, `MODE`,
//! `DELETE_SUBJECT`, …) are skipped when read.

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;

/// A record of the `_schemas` topic, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRecord {
    /// A subject's version: registered, soft-deleted (`deleted`), or removed (`None`).
    Schema {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
        /// The version's entry; `None` for a permanent delete.
        value: Option<SchemaValue>,
    },
    /// A compatibility level: of a subject, or the global one (`subject: None`); `None` removes it.
    Config {
        /// The subject, or `None` for the global level.
        subject: Option<String>,
        /// The level; `None` removes a subject's level.
        level: Option<CompatibilityLevel>,
    },
    /// The next schema id to hand out.
    NextId(u32),
    /// The instance that writes, by the URL other instances forward writes to.
    Leader(String),
    /// A key type this registry does not use.
    Ignored,
}

/// The value of a `SCHEMA` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    /// The subject.
    pub subject: String,
    /// The version in the subject.
    pub version: u32,
    /// The global schema id.
    pub id: u32,
    /// The schema text.
    pub schema: String,
    /// Whether the version is soft-deleted.
    #[serde(default)]
    pub deleted: bool,
    /// The schema type; absent for Avro.
    #[serde(rename = "schemaType", default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Key {
    keytype: String,
    #[serde(default, skip_serializing_if = "KeySubject::is_absent")]
    subject: KeySubject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    magic: u32,
}

/// A key's subject: absent (NEXT_ID), null (the global CONFIG) or a name. Confluent writes
/// `"subject":null` for the global config, so null and absent must stay apart.
#[derive(Default)]
enum KeySubject {
    #[default]
    Absent,
    Null,
    Name(String),
}

impl KeySubject {
    fn is_absent(&self) -> bool {
        matches!(self, KeySubject::Absent)
    }
}

impl Serialize for KeySubject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            KeySubject::Name(name) => s.serialize_str(name),
            KeySubject::Absent | KeySubject::Null => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for KeySubject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<String>::deserialize(d)? {
            Some(name) => KeySubject::Name(name),
            None => KeySubject::Null,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct ConfigValue {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: String,
}

#[derive(Serialize, Deserialize)]
struct NextIdValue {
    id: u32,
}

#[derive(Serialize, Deserialize)]
struct LeaderValue {
    url: String,
}

/// Why a record of the topic could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable record in the schemas topic: {0}")]
pub struct RecordError(String);

impl StoreRecord {
    /// The record's key and value bytes (`None` for a tombstone).
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let (key, value) = match self {
            StoreRecord::Schema { subject, version, value } => (
                Key {
                    keytype: "SCHEMA".into(),
                    subject: KeySubject::Name(subject.clone()),
                    version: Some(*version),
                    magic: 1,
                },
                value.as_ref().map(json),
            ),
            StoreRecord::Config { subject, level } => (
                Key {
                    keytype: "CONFIG".into(),
                    subject: subject.clone().map_or(KeySubject::Null, KeySubject::Name),
                    version: None,
                    magic: 0,
                },
                level.map(|l| json(&ConfigValue { compatibility_level: l.as_str().into() })),
            ),
            StoreRecord::NextId(id) => (
                Key { keytype: "NEXT_ID".into(), subject: KeySubject::Absent, version: None, magic: 0 },
                Some(json(&NextIdValue { id: *id })),
            ),
            StoreRecord::Leader(url) => (
                Key { keytype: "LEADER".into(), subject: KeySubject::Absent, version: None, magic: 0 },
                Some(json(&LeaderValue { url: url.clone() })),
            ),
            StoreRecord::Ignored => {
                (Key { keytype: "NOOP".into(), subject: KeySubject::Absent, version: None, magic: 0 }, None)
            }
        };
        (json(&key), value)
    }

    /// Decodes a record read from the topic.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<StoreRecord, RecordError> {
        let key: Key = serde_json::from_slice(key).map_err(|e| RecordError(format!("key: {e}")))?;
        let subject = match key.subject {
            KeySubject::Name(name) => Some(name),
            KeySubject::Absent | KeySubject::Null => None,
        };
        let keytype = key.keytype.as_str();
        match keytype {
            "SCHEMA" => {
                let subject = subject.ok_or_else(|| RecordError("a SCHEMA key without a subject".into()))?;
                let version = key.version.ok_or_else(|| RecordError("a SCHEMA key without a version".into()))?;
                let value = parsed::<SchemaValue>(keytype, value)?;
                Ok(StoreRecord::Schema { subject, version, value })
            }
            "CONFIG" => {
                let level = match parsed::<ConfigValue>(keytype, value)? {
                    None => None,
                    Some(config) => Some(
                        config
                            .compatibility_level
                            .parse()
                            .map_err(|_| RecordError(format!("CONFIG level {}", config.compatibility_level)))?,
                    ),
                };
                Ok(StoreRecord::Config { subject, level })
            }
            "NEXT_ID" => {
                Ok(parsed::<NextIdValue>(keytype, value)?.map_or(StoreRecord::Ignored, |v| StoreRecord::NextId(v.id)))
            }
            "LEADER" => {
                Ok(parsed::<LeaderValue>(keytype, value)?.map_or(StoreRecord::Ignored, |v| StoreRecord::Leader(v.url)))
            }
            _ => Ok(StoreRecord::Ignored),
        }
    }
}

/// A record's value as `T`; `None` for a tombstone.
fn parsed<T: serde::de::DeserializeOwned>(keytype: &str, value: Option<&[u8]>) -> Result<Option<T>, RecordError> {
    value.map(serde_json::from_slice).transpose().map_err(|e| RecordError(format!("{keytype} value: {e}")))
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(record: StoreRecord) {
        let (key, value) = record.encode();
        assert_eq!(StoreRecord::decode(&key, value.as_deref()).unwrap(), record);
    }

    #[test]
    fn records_round_trip() {
        let value = SchemaValue {
            subject: "s".into(),
            version: 2,
            id: 9,
            schema: r#""string""#.into(),
            deleted: true,
            schema_type: None,
        };
        roundtrip(StoreRecord::Schema { subject: "s".into(), version: 2, value: Some(value) });
        roundtrip(StoreRecord::Schema { subject: "s".into(), version: 2, value: None });
        roundtrip(StoreRecord::Config { subject: None, level: Some(CompatibilityLevel::Full) });
        roundtrip(StoreRecord::Config { subject: Some("s".into()), level: None });
        roundtrip(StoreRecord::NextId(42));
        roundtrip(StoreRecord::Leader("http://127.0.0.1:8081".into()));
    }

    #[test]
    fn keys_are_confluents() {
        let (key, value) = StoreRecord::Schema {
            subject: "orders-value".into(),
            version: 1,
            value: Some(SchemaValue {
                subject: "orders-value".into(),
                version: 1,
                id: 3,
                schema: "\"string\"".into(),
                deleted: false,
                schema_type: None,
            }),
        }
        .encode();
        assert_eq!(
            String::from_utf8(key).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(value.unwrap()).unwrap(),
            r#"{"subject":"orders-value","version":1,"id":3,"schema":"\"string\"","deleted":false}"#
        );
        let (key, _) = StoreRecord::Config { subject: None, level: Some(CompatibilityLevel::None) }.encode();
        assert_eq!(String::from_utf8(key).unwrap(), r#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
    }

    #[test]
    fn confluents_other_key_types_are_skipped_and_garbage_is_an_error() {
        assert_eq!(StoreRecord::decode(br#"{"keytype":"NOOP","magic":0}"#, None).unwrap(), StoreRecord::Ignored);
        assert_eq!(
            StoreRecord::decode(br#"{"keytype":"MODE","subject":null,"magic":0}"#, Some(br#"{"mode":"READWRITE"}"#))
                .unwrap(),
            StoreRecord::Ignored
        );
        assert!(StoreRecord::decode(b"not json", None).is_err());
        assert!(StoreRecord::decode(br#"{"keytype":"SCHEMA","magic":1}"#, None).is_err());
    }
}
