//! Avro serdes with a Schema Registry, in an application on the real broker: records written with
//! v1 and v2 of a schema decode into one Rust type; unknown ids, broken records and an unreachable
//! registry go to the dead-letter topic, and the application keeps running.

mod support;

use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value;
use apache_avro::{AvroSchema, Schema};
use kstreams::dsl::{Consumed, Produced, StreamsBuilder};
use kstreams::header::Headers;
use kstreams::runtime::{KafkaStreams, State, StreamsConfig};
use kstreams::serde::avro::{wire_format, AvroSerdeConfig};
use kstreams::serde::registry::SchemaRegistryClient;
use kstreams::serde::Serdes;
use kstreams_registry::store::StoreConfig;
use kstreams_registry::{BlockingRegistry, RegistryConfig};
use support::{Isolation, TopicSpec};

/// The reader's type: v2 of the sale, whose `promo` v1 records lack.
#[derive(AvroSchema, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
#[avro(namespace = "retail")]
struct Sale {
    sku: String,
    qty: i32,
    #[avro(default = "null")]
    #[serde(default)]
    promo: Option<String>,
}

const SALE_V1: &str = r#"{"type":"record","name":"Sale","namespace":"retail","fields":[
    {"name":"sku","type":"string"},{"name":"qty","type":"int"}]}"#;

/// A registry on a topic of its own.
fn start_registry() -> BlockingRegistry {
    let store = StoreConfig::new(support::bootstrap()).topic(support::unique_topic("_schemas"));
    BlockingRegistry::start(RegistryConfig::new(store).listen("127.0.0.1:0".parse().unwrap()))
        .expect("start a registry")
}

fn config(app: &str, state_dir: &std::path::Path, dlq: &str) -> StreamsConfig {
    StreamsConfig::new()
        .set("application.id", app)
        .set("bootstrap.servers", support::bootstrap())
        .set("processing.guarantee", "exactly_once_v2")
        .set("commit.interval.ms", "200")
        .set("state.dir", state_dir.to_string_lossy())
        .set("default.deserialization.exception.handler", "dead_letter_queue")
        .set("errors.dead.letter.queue.topic.name", dlq)
}

/// sales (Avro, any registered version) → `sku:qty:promo` strings.
fn topology(input: &str, output: &str, avro: &AvroSerdeConfig) -> kstreams::topology::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(Serdes::string(), Serdes::avro_registry::<Sale>(avro, false)))
        .map_values(|s: Sale| format!("{}:{}:{}", s.sku, s.qty, s.promo.unwrap_or_else(|| "-".into())))
        .to(output, Produced::with(Serdes::string(), Serdes::string()));
    builder.build().unwrap()
}

#[test]
fn v1_and_v2_records_decode_into_one_type_and_bad_ones_go_to_the_dead_letter_topic() {
    support::require_broker();
    let registry = start_registry();
    let (input, output, dlq) =
        (support::unique_topic("sr-in"), support::unique_topic("sr-out"), support::unique_topic("sr-dlq"));
    let _topics =
        support::create_topics(&[TopicSpec::new(&input, 2), TopicSpec::new(&output, 2), TopicSpec::new(&dlq, 1)])
            .unwrap();

    // The producer side: a generic serde writing v1, then the typed serde writing v2. Both register
    // their schema under `<input>-value`.
    let avro = AvroSerdeConfig::from_props([("schema.registry.url", registry.url())]).unwrap();
    let v1 = Serdes::avro_generic_registry(Arc::new(Schema::parse_str(SALE_V1).unwrap()), &avro, false);
    let v2 = Serdes::avro_registry::<Sale>(&avro, false);
    let h = Headers::new();
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..20 {
        let sale =
            Value::Record(vec![("sku".into(), Value::String(format!("sku-{i}"))), ("qty".into(), Value::Int(i))]);
        records.push((format!("v1-{i}"), v1.serialize(&input, &h, &sale).unwrap().unwrap()));
    }
    for i in 0..20 {
        let sale = Sale { sku: format!("sku-{i}"), qty: i, promo: (i % 2 == 0).then(|| "spring".to_string()) };
        records.push((format!("v2-{i}"), v2.serialize(&input, &h, &sale).unwrap().unwrap()));
    }
    let client = SchemaRegistryClient::new(registry.url()).unwrap();
    assert_eq!(client.versions(&format!("{input}-value")).unwrap(), vec![1, 2], "v1 and v2 registered");
    let unknown_id = wire_format(7_777_777, &[2, b'x', 2]);
    records.push(("unknown-id".into(), unknown_id.clone()));
    records.push(("no-magic".into(), b"{\"sku\":\"json?\"}".to_vec()));
    support::produce_keyed(&input, records.clone()).unwrap();

    // The application reads with a serde of its own (a fresh client: nothing cached).
    let app_avro = AvroSerdeConfig::from_props([("schema.registry.url", registry.url())]).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let app_id = support::unique_name("sr");
    let _cleanup = support::app_cleanup(&app_id);
    let mut streams =
        KafkaStreams::new(topology(&input, &output, &app_avro), config(&app_id, state_dir.path(), &dlq)).unwrap();
    streams.start().unwrap();
    let done = support::eventually(Duration::from_secs(60), || {
        support::read_to_end(&output, Isolation::ReadCommitted).map(|r| r.len()).unwrap_or(0) >= 40
            && support::read_to_end(&dlq, Isolation::ReadCommitted).map(|r| r.len()).unwrap_or(0) >= 2
    });
    assert_eq!(streams.state(), State::Running, "{:?}", streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "not every record arrived");

    let mut out: Vec<(String, String)> = support::read_to_end(&output, Isolation::ReadCommitted)
        .unwrap()
        .iter()
        .map(|r| (r.key_str(), r.value_str()))
        .collect();
    out.sort();
    let mut expected: Vec<(String, String)> = (0..20)
        .flat_map(|i| {
            [
                (format!("v1-{i}"), format!("sku-{i}:{i}:-")),
                (format!("v2-{i}"), format!("sku-{i}:{i}:{}", if i % 2 == 0 { "spring" } else { "-" })),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(out, expected, "v1 records read with v2's default, v2 records as written");

    let dead = support::read_to_end(&dlq, Isolation::ReadCommitted).unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    let by_key = |key: &str| dead.iter().find(|r| r.key_str() == key).unwrap_or_else(|| panic!("{key} not in the DLQ"));
    let unknown = by_key("unknown-id");
    assert_eq!(unknown.value.as_deref(), Some(&unknown_id[..]), "the original bytes are kept");
    let message = unknown.header_str("__streams.errors.message").unwrap_or_default();
    assert!(message.contains("7777777"), "{message}");
    let message = by_key("no-magic").header_str("__streams.errors.message").unwrap_or_default();
    assert!(message.contains("magic byte"), "{message}");
}

#[test]
fn an_unreachable_registry_sends_records_to_the_dead_letter_topic_without_stopping_the_app() {
    support::require_broker();
    let (input, output, dlq) =
        (support::unique_topic("srx-in"), support::unique_topic("srx-out"), support::unique_topic("srx-dlq"));
    let _topics =
        support::create_topics(&[TopicSpec::new(&input, 1), TopicSpec::new(&output, 1), TopicSpec::new(&dlq, 1)])
            .unwrap();
    // Records in the wire format whose schema no registry can be asked for.
    let records: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("k{i}"), wire_format(1, &[2, b'a', 2]))).collect();
    support::produce_keyed(&input, records).unwrap();
    // Nothing listens on port 9 of loopback.
    let avro = AvroSerdeConfig::from_props([("schema.registry.url", "http://127.0.0.1:9")]).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let app_id = support::unique_name("srx");
    let _cleanup = support::app_cleanup(&app_id);
    let mut streams =
        KafkaStreams::new(topology(&input, &output, &avro), config(&app_id, state_dir.path(), &dlq)).unwrap();
    streams.start().unwrap();
    let done = support::eventually(Duration::from_secs(60), || {
        support::read_to_end(&dlq, Isolation::ReadCommitted).map(|r| r.len()).unwrap_or(0) >= 5
    });
    assert_eq!(streams.state(), State::Running, "{:?}", streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "the records did not reach the dead-letter topic");
    let dead = support::read_to_end(&dlq, Isolation::ReadCommitted).unwrap();
    assert_eq!(dead.len(), 5);
    let message = dead[0].header_str("__streams.errors.message").unwrap_or_default();
    assert!(message.contains("cannot be reached") && message.contains("127.0.0.1:9"), "{message}");
    assert!(support::read_to_end(&output, Isolation::ReadCommitted).unwrap().is_empty());
}
