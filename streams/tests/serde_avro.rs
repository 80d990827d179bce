//! Avro serdes: the Schema Registry wire format and writer/reader schema resolution.

use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::{AvroSchema, Schema};
use kstreams_streams::header::Headers;
use kstreams_streams::serde::avro::{
    split_wire_format, wire_format, GenericAvroSerde, InMemorySchemas, SchemaLookup, SchemaLookupError,
};
use kstreams_streams::serde::{Serde, SerdeError, Serdes};
use serde::{Deserialize, Serialize};

const V1: &str = r#"{"type":"record","name":"User","namespace":"test","fields":[
    {"name":"a","type":"string"},
    {"name":"b","type":"int"}]}"#;
/// V1 plus a field with a default.
const V2_ADDED: &str = r#"{"type":"record","name":"User","namespace":"test","fields":[
    {"name":"a","type":"string"},
    {"name":"b","type":"int"},
    {"name":"c","type":"long","default":42}]}"#;
/// V1 without `b`.
const V3_REMOVED: &str = r#"{"type":"record","name":"User","namespace":"test","fields":[
    {"name":"a","type":"string"}]}"#;
/// `a` changed from string to int: not readable from V1 data.
const INCOMPATIBLE_TYPE: &str = r#"{"type":"record","name":"User","namespace":"test","fields":[
    {"name":"a","type":"int"},
    {"name":"b","type":"int"}]}"#;
/// A new field without a default: not readable from V1 data.
const INCOMPATIBLE_NO_DEFAULT: &str = r#"{"type":"record","name":"User","namespace":"test","fields":[
    {"name":"a","type":"string"},
    {"name":"b","type":"int"},
    {"name":"c","type":"long"}]}"#;

fn h() -> Headers {
    Headers::new()
}

fn parse(schema: &str) -> Schema {
    Schema::parse_str(schema).expect("test schema parses")
}

/// A registry with V1 as 1, V2 as 2, V3 as 3, and the two incompatible schemas as 10 and 11.
fn registry() -> Arc<InMemorySchemas> {
    let schemas = InMemorySchemas::new();
    for (id, s) in [(1, V1), (2, V2_ADDED), (3, V3_REMOVED), (10, INCOMPATIBLE_TYPE), (11, INCOMPATIBLE_NO_DEFAULT)] {
        schemas.register(id, parse(s)).unwrap();
    }
    Arc::new(schemas)
}

fn generic(schemas: &Arc<InMemorySchemas>, id: u32) -> GenericAvroSerde {
    let schema = schemas.schema_by_id(id).unwrap();
    GenericAvroSerde::new(schema, id, schemas.clone())
}

fn user_v1(a: &str, b: i32) -> Value {
    Value::Record(vec![("a".into(), Value::String(a.into())), ("b".into(), Value::Int(b))])
}

#[test]
fn generic_writes_magic_byte_schema_id_and_avro_binary() {
    let schemas = registry();
    let serde = generic(&schemas, 1);
    let bytes = serde.serialize("users", &h(), &user_v1("hi", 3)).unwrap().unwrap();
    // 0x00, id 1 big-endian, then Avro: string "hi" (zigzag length 2 -> 0x04), int 3 (zigzag -> 0x06).
    assert_eq!(bytes, vec![0x00, 0, 0, 0, 1, 0x04, b'h', b'i', 0x06]);
    assert_eq!(serde.deserialize("users", &h(), Some(&bytes)).unwrap(), user_v1("hi", 3));
    assert_eq!(split_wire_format("users", "avro", &bytes).unwrap(), (1, &bytes[5..]));
    assert_eq!(wire_format(0x0102_0304, &[9]), vec![0, 1, 2, 3, 4, 9]);
}

#[test]
fn a_reader_with_an_added_field_fills_in_its_default() {
    let schemas = registry();
    let bytes = generic(&schemas, 1).serialize("users", &h(), &user_v1("x", 7)).unwrap();
    let v2 = generic(&schemas, 2).deserialize("users", &h(), bytes.as_deref()).unwrap();
    assert_eq!(
        v2,
        Value::Record(vec![
            ("a".into(), Value::String("x".into())),
            ("b".into(), Value::Int(7)),
            ("c".into(), Value::Long(42)),
        ])
    );
}

#[test]
fn a_reader_without_a_field_skips_it_and_newer_data_reads_as_older() {
    let schemas = registry();
    let bytes = generic(&schemas, 1).serialize("users", &h(), &user_v1("x", 7)).unwrap();
    let v3 = generic(&schemas, 3).deserialize("users", &h(), bytes.as_deref()).unwrap();
    assert_eq!(v3, Value::Record(vec![("a".into(), Value::String("x".into()))]));

    // V2 data (with c) read by a V1 reader: c is dropped.
    let v2_value = Value::Record(vec![
        ("a".into(), Value::String("y".into())),
        ("b".into(), Value::Int(1)),
        ("c".into(), Value::Long(5)),
    ]);
    let bytes = generic(&schemas, 2).serialize("users", &h(), &v2_value).unwrap();
    assert_eq!(bytes.as_ref().map(|b| b[4]), Some(2), "written with the serde's own id");
    assert_eq!(generic(&schemas, 1).deserialize("users", &h(), bytes.as_deref()).unwrap(), user_v1("y", 1));
}

#[test]
fn incompatible_schemas_are_schema_errors_not_panics() {
    let schemas = registry();
    let bytes = generic(&schemas, 1).serialize("users", &h(), &user_v1("x", 7)).unwrap();
    for id in [10, 11] {
        let err = generic(&schemas, id).deserialize("users", &h(), bytes.as_deref()).unwrap_err();
        match &err {
            SerdeError::Schema { topic, schema_id, detail, .. } => {
                assert_eq!(topic, "users");
                assert_eq!(*schema_id, Some(1));
                assert!(detail.contains("cannot be read with the serde's schema"), "{detail}");
            }
            other => panic!("reader {id}: expected a Schema error, got {other:?}"),
        }
    }
}

#[test]
fn wrong_magic_unknown_ids_short_and_corrupt_data_are_errors() {
    let schemas = registry();
    let serde = generic(&schemas, 1);
    let good = serde.serialize("users", &h(), &user_v1("hi", 3)).unwrap().unwrap();

    let mut wrong_magic = good.clone();
    wrong_magic[0] = 0x01;
    let err = serde.deserialize("users", &h(), Some(&wrong_magic)).unwrap_err();
    assert!(matches!(&err, SerdeError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("magic byte 0x01"), "{err}");

    let unknown = wire_format(99, &good[5..]);
    let err = serde.deserialize("users", &h(), Some(&unknown)).unwrap_err();
    assert!(matches!(err, SerdeError::Schema { schema_id: Some(99), .. }), "{err:?}");
    assert!(err.to_string().contains("no schema is registered with id 99"), "{err}");

    for short in [&good[..0], &good[..4]] {
        assert!(matches!(serde.deserialize("users", &h(), Some(short)), Err(SerdeError::Malformed { .. })));
    }
    // The body stops inside the string.
    let truncated = &good[..7];
    assert!(matches!(serde.deserialize("users", &h(), Some(truncated)), Err(SerdeError::Malformed { .. })));
    // A string length far beyond the data.
    let huge = wire_format(1, &[0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert!(serde.deserialize("users", &h(), Some(&huge)).is_err());
    assert!(matches!(serde.deserialize("users", &h(), None), Err(SerdeError::Null { .. })));
}

#[test]
fn values_that_do_not_fit_the_schema_are_encode_errors() {
    let schemas = registry();
    let serde = generic(&schemas, 1);
    let wrong = Value::Record(vec![("a".into(), Value::Int(1)), ("b".into(), Value::Int(2))]);
    let err = serde.serialize("users", &h(), &wrong).unwrap_err();
    assert!(matches!(err, SerdeError::Encode { .. }), "{err:?}");
}

#[test]
fn the_registry_keeps_ids_immutable() {
    let schemas = InMemorySchemas::new();
    assert!(schemas.is_empty());
    schemas.register(1, parse(V1)).unwrap();
    schemas.register(1, parse(V1)).unwrap();
    assert_eq!(schemas.register(1, parse(V2_ADDED)).unwrap_err(), SchemaLookupError::Conflict { id: 1 });
    assert_eq!(schemas.len(), 1);
    assert_eq!(schemas.id_of(&parse(V1)), Some(1));
    assert_eq!(schemas.id_of(&parse(V2_ADDED)), None);
    assert_eq!(schemas.schema_by_id(5).unwrap_err(), SchemaLookupError::UnknownId { id: 5 });
}

#[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq, Clone)]
#[avro(namespace = "test")]
#[serde(rename = "User")]
struct UserV1 {
    a: String,
    b: i32,
}

/// Differs from the schema default (42), so the tests see which one filled `c` in.
fn default_c() -> i64 {
    -1
}

#[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq, Clone)]
#[avro(namespace = "test")]
#[serde(rename = "User")]
struct UserV2 {
    a: String,
    b: i32,
    #[avro(default = "42")]
    #[serde(default = "default_c")]
    c: i64,
    tag: Option<String>,
}

#[test]
fn derived_records_round_trip_and_evolve() {
    let schemas = Arc::new(InMemorySchemas::new());
    schemas.register(21, UserV1::get_schema()).unwrap();
    schemas.register(22, UserV2::get_schema()).unwrap();
    let v1 = Serdes::avro::<UserV1>(21, schemas.clone());
    let v2 = Serdes::avro::<UserV2>(22, schemas.clone());

    let old = UserV1 { a: "x".into(), b: 7 };
    let bytes = v1.serialize("users", &h(), &old).unwrap();
    assert_eq!(bytes.as_deref(), Some(&[0, 0, 0, 0, 21, 0x02, b'x', 0x0e][..]));
    assert_eq!(v1.deserialize("users", &h(), bytes.as_deref()).unwrap(), old);

    // Old data, new type: `c` takes its schema default, the optional `tag` (a union with null,
    // given a null default by the derive) is None.
    let upgraded = v2.deserialize("users", &h(), bytes.as_deref());
    assert_eq!(upgraded.unwrap(), UserV2 { a: "x".into(), b: 7, c: 42, tag: None });

    // New data, old type: the extra fields are skipped.
    let new = UserV2 { a: "y".into(), b: 1, c: 9, tag: Some("t".into()) };
    let bytes = v2.serialize("users", &h(), &new).unwrap();
    assert_eq!(v2.deserialize("users", &h(), bytes.as_deref()).unwrap(), new);
    assert_eq!(v1.deserialize("users", &h(), bytes.as_deref()).unwrap(), UserV1 { a: "y".into(), b: 1 });
}

#[test]
fn derived_records_and_generic_values_share_bytes() {
    let schemas = Arc::new(InMemorySchemas::new());
    let schema = schemas.register(1, parse(V1)).unwrap();
    let generic = Serdes::avro_generic(schema, 1, schemas.clone());
    let specific = Serdes::avro::<UserV1>(1, schemas.clone());
    let user = UserV1 { a: "hi".into(), b: 3 };
    let from_specific = specific.serialize("users", &h(), &user).unwrap();
    let from_generic = generic.serialize("users", &h(), &user_v1("hi", 3)).unwrap();
    assert_eq!(from_specific, from_generic);
    assert_eq!(specific.deserialize("users", &h(), from_generic.as_deref()).unwrap(), user);
}

#[derive(AvroSchema, Serialize, Deserialize, Debug, PartialEq)]
#[avro(namespace = "test")]
#[serde(rename = "User")]
struct UserWrongType {
    a: i64,
    b: i32,
}

#[test]
fn a_derived_type_that_cannot_read_the_writer_is_an_error() {
    let schemas = Arc::new(InMemorySchemas::new());
    schemas.register(1, parse(V1)).unwrap();
    schemas.register(2, UserWrongType::get_schema()).unwrap();
    let bytes =
        Serdes::avro::<UserV1>(1, schemas.clone()).serialize("users", &h(), &UserV1 { a: "x".into(), b: 1 }).unwrap();
    let err = Serdes::avro::<UserWrongType>(2, schemas).deserialize("users", &h(), bytes.as_deref()).unwrap_err();
    assert!(matches!(err, SerdeError::Schema { schema_id: Some(1), .. }), "{err:?}");
}

/// A lookup that is down, as a registry client might be.
struct Down;

impl SchemaLookup for Down {
    fn schema_by_id(&self, _id: u32) -> Result<Arc<Schema>, SchemaLookupError> {
        Err(SchemaLookupError::Unavailable { detail: "connection refused".into() })
    }
}

#[test]
fn an_unavailable_registry_is_a_schema_error_with_its_cause() {
    let serde = Serdes::avro_generic(Arc::new(parse(V1)), 1, Arc::new(Down));
    let bytes = serde.serialize("users", &h(), &user_v1("a", 1)).unwrap();
    let err = serde.deserialize("users", &h(), bytes.as_deref()).unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
}
