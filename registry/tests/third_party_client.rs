//! A third-party client against the registry: the `schema_registry_converter` crate's Avro
//! encoder and decoder, in the Confluent wire format.

mod support;

use apache_avro::types::Value;
use apache_avro::Schema;
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::avro_common::get_supplied_schema;
use schema_registry_converter::schema_registry_common::SubjectNameStrategy;
use support::*;

const BEAT_V1: &str =
    r#"{"type":"record","name":"Heartbeat","namespace":"test","fields":[{"name":"beat","type":"long"}]}"#;
const BEAT_V2: &str = r#"{"type":"record","name":"Heartbeat","namespace":"test","fields":[{"name":"beat","type":"long"},{"name":"zone","type":"string","default":"utc"}]}"#;
const BEAT_V3_BREAKING: &str =
    r#"{"type":"record","name":"Heartbeat","namespace":"test","fields":[{"name":"beat","type":"string"}]}"#;

fn schema_id(bytes: &[u8]) -> u32 {
    assert_eq!(bytes[0], 0, "magic byte");
    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])
}

#[test]
fn the_converter_crate_encodes_and_decodes_through_the_registry() {
    let registry = RegistryProcess::start(&unique_topic("converter"));
    let url = registry.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let encoder = EasyAvroEncoder::new(SrSettings::new(url.clone()));
        let decoder = EasyAvroDecoder::new(SrSettings::new(url.clone()));
        let v1 = Schema::parse_str(BEAT_V1).unwrap();
        let with_v1 =
            SubjectNameStrategy::TopicNameStrategyWithSchema("heartbeat".into(), false, get_supplied_schema(&v1));

        // The encoder registers v1 (POST /subjects/heartbeat-value/versions) and writes its id.
        let bytes = encoder.encode(vec![("beat", Value::Long(3))], with_v1).await.expect("encode with v1");
        let v1_id = schema_id(&bytes);
        let latest = json(&get(&format!("{url}/subjects/heartbeat-value/versions/latest")).1);
        assert_eq!(latest["id"].as_u64(), Some(u64::from(v1_id)), "the id in the record is the registered one");
        assert_eq!(&bytes[5..], &[6], "Avro zig-zag long 3");

        // The decoder fetches the writer schema by id (GET /schemas/ids/{id}).
        let decoded = decoder.decode(Some(&bytes)).await.expect("decode v1");
        assert_eq!(decoded.value, Value::Record(vec![("beat".into(), Value::Long(3))]));

        // v2 adds a field with a default: registered as a new id, and its records decode too. (The
        // converter caches ids by subject, so a new schema takes a new encoder, as a new producer would.)
        let encoder = EasyAvroEncoder::new(SrSettings::new(url.clone()));
        let v2 = Schema::parse_str(BEAT_V2).unwrap();
        let with_v2 =
            SubjectNameStrategy::TopicNameStrategyWithSchema("heartbeat".into(), false, get_supplied_schema(&v2));
        let bytes = encoder
            .encode(vec![("beat", Value::Long(4)), ("zone", Value::String("cet".into()))], with_v2)
            .await
            .expect("encode with v2");
        let v2_id = schema_id(&bytes);
        assert_ne!(v2_id, v1_id);
        let decoded = decoder.decode(Some(&bytes)).await.expect("decode v2");
        assert_eq!(
            decoded.value,
            Value::Record(vec![("beat".into(), Value::Long(4)), ("zone".into(), Value::String("cet".into()))])
        );

        // Without a schema of its own, the encoder writes with the subject's latest version.
        let encoder = EasyAvroEncoder::new(SrSettings::new(url.clone()));
        let latest_strategy = SubjectNameStrategy::TopicNameStrategy("heartbeat".into(), false);
        let bytes = encoder
            .encode(vec![("beat", Value::Long(5)), ("zone", Value::String("utc".into()))], latest_strategy)
            .await
            .expect("encode with the latest version");
        assert_eq!(schema_id(&bytes), v2_id);

        // An incompatible v3 is refused, so the converter cannot write with it.
        let encoder = EasyAvroEncoder::new(SrSettings::new(url.clone()));
        let v3 = Schema::parse_str(BEAT_V3_BREAKING).unwrap();
        let with_v3 =
            SubjectNameStrategy::TopicNameStrategyWithSchema("heartbeat".into(), false, get_supplied_schema(&v3));
        let refused = encoder.encode(vec![("beat", Value::String("x".into()))], with_v3).await;
        assert!(refused.is_err(), "an incompatible schema must not be registered: {refused:?}");
        assert_eq!(json(&get(&format!("{url}/subjects/heartbeat-value/versions")).1), serde_json::json!([1, 2]));

        // A record naming an id the registry does not have fails to decode.
        let unknown = decoder.decode(Some(&[0, 0, 0, 0x7f, 0x7f, 6])).await;
        assert!(unknown.is_err(), "{unknown:?}");
    });
}
