//! Interactive queries on the real broker: three instances of one application, each with its
//! `application.server`, answer for any key — through the Rust API on the instance that
//! `query_metadata_for_key` names, and over HTTP on every instance (forwarded to the owner) — with
//! the value the output topic holds; each partition has a standby on another instance, which answers
//! stale queries; while an instance leaves, answers are that value or a retryable error, never
//! another value.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams::query::{QueryableStoreTypes, StoreQueryParameters};
use kstreams::runtime::{KafkaStreams, State, StreamsConfig};
use kstreams::serde::Serdes;
use support::{eventually, Outgoing, TopicSpec};

const KEYS: usize = 60;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Instance {
    app: KafkaStreams,
    endpoint: String,
    _dir: tempfile::TempDir,
}

fn start(app_id: &str, input: &str, output: &str) -> Instance {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Default::default())
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(output, Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("127.0.0.1:{}", free_port());
    let config = StreamsConfig::new()
        .set("application.id", app_id)
        .set("bootstrap.servers", support::bootstrap())
        .set("processing.guarantee", "exactly_once_v2")
        .set("commit.interval.ms", "100")
        .set("application.server", &endpoint)
        .set("num.standby.replicas", "1")
        .set("state.dir", dir.path().to_string_lossy());
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    app.start().unwrap();
    Instance { app, endpoint, _dir: dir }
}

/// `GET /stores/counts/keys/<key>` on `endpoint`: the status and the JSON answer.
fn http_get(endpoint: &str, key: &str) -> (u16, serde_json::Value) {
    let url = format!("http://{endpoint}/stores/counts/keys/{key}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    let mut response = agent.get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("GET {url}: not JSON: {body}")))
}

fn all_running(instances: &[Instance]) -> bool {
    instances.iter().all(|i| i.app.state() == State::Running)
}

#[test]
fn any_instance_answers_for_any_key() {
    support::require_broker();
    let (input, output) = (support::unique_topic("iq-in"), support::unique_topic("iq-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 6), TopicSpec::new(&output, 6)]).unwrap();
    // Key k<i> appears i % 7 + 1 times.
    let mut records = Vec::new();
    let mut expected = BTreeMap::new();
    for i in 0..KEYS {
        let key = format!("k{i}");
        for n in 0..(i % 7 + 1) {
            records.push((key.clone(), format!("v{n}")));
        }
        expected.insert(key, (i % 7 + 1) as i64);
    }
    // Partitioned as Kafka's Java producer does (murmur2), which key lookups assume, as in Kafka
    // Streams; librdkafka's default partitioner would need `partitioner=murmur2_random`.
    let producer = support::producer().unwrap();
    for (key, value) in &records {
        let partition = Some(kstreams::partitioner::default_partition(key.as_bytes(), 6));
        let record =
            Outgoing { key: Some(key.as_bytes()), value: Some(value.as_bytes()), partition, ..Default::default() };
        support::send(&producer, &input, &record).unwrap();
    }
    support::flush(&producer).unwrap();

    let app_id = support::unique_name("iq");
    let _cleanup = support::app_cleanup(&app_id);
    let mut instances: Vec<Instance> = (0..3).map(|_| start(&app_id, &input, &output)).collect();
    assert!(
        eventually(Duration::from_secs(120), || support::latest_counts(&output) == expected && all_running(&instances)),
        "the output never matched the input: {:?}",
        support::latest_counts(&output)
    );
    // The output topic is the reference.
    let truth = support::latest_counts(&output);

    // Rust API: the instance the metadata names answers with the output's value; the others refuse
    // (the key is not theirs), without a value.
    let settled = eventually(Duration::from_secs(30), || {
        instances.iter().all(|i| i.app.query_metadata_for_key("counts", &"k0".to_string(), &Serdes::string()).is_ok())
    });
    assert!(settled, "the metadata never settled");
    let mut owners_seen = std::collections::BTreeSet::new();
    for (key, count) in &truth {
        let owner = instances[0].app.query_metadata_for_key("counts", key, &Serdes::string()).unwrap();
        for other in &instances[1..] {
            let theirs = other.app.query_metadata_for_key("counts", key, &Serdes::string()).unwrap();
            assert_eq!(theirs, owner, "instances disagree on where {key} lives");
        }
        owners_seen.insert(owner.active_host.to_string());
        for instance in &instances {
            let store = instance
                .app
                .store(StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>()))
                .unwrap();
            let answer = store.get(key);
            if instance.endpoint == owner.active_host.to_string() {
                assert_eq!(answer.unwrap(), Some(*count), "{key} on its owner {}", instance.endpoint);
            } else {
                let e = answer.expect_err("a key of another instance must not answer from here");
                assert!(!e.is_retryable(), "{key} on {}: {e}", instance.endpoint);
            }
        }
    }
    assert_eq!(owners_seen.len(), 3, "six partitions over three instances: every one owns some keys");
    // One standby per partition, on another instance; it answers stale queries with the same value
    // once it has read the changelog.
    for (key, count) in &truth {
        let owner = instances[0].app.query_metadata_for_key("counts", key, &Serdes::string()).unwrap();
        assert_eq!(owner.standby_hosts.len(), 1, "{key}: {owner:?}");
        let standby = &owner.standby_hosts[0];
        assert_ne!(standby, &owner.active_host, "{key}: the standby is on the active instance");
        let instance = instances.iter().find(|i| i.endpoint == standby.to_string()).expect("the standby's instance");
        let stale = instance
            .app
            .store(
                StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>())
                    .enable_stale_stores(),
            )
            .unwrap();
        let warm = eventually(Duration::from_secs(30), || stale.get(key).is_ok_and(|v| v == Some(*count)));
        assert!(warm, "{key}: the standby on {standby} never answered {count}: {:?}", stale.get(key));
    }
    // The local views hold, together, every key once.
    let mut union = BTreeMap::new();
    for instance in &instances {
        let store = instance
            .app
            .store(StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>()))
            .unwrap();
        for (k, v) in store.all().unwrap() {
            assert!(union.insert(k.clone(), v).is_none(), "{k} is held by two instances");
        }
    }
    assert_eq!(union, truth);
    // A wrong type is a clear, final error.
    let wrong = instances[0]
        .app
        .store(StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, String>()));
    assert!(wrong.is_err_and(|e| !e.is_retryable() && e.to_string().contains("counts")));

    // HTTP: every instance answers for every key, forwarding to the owner.
    for instance in &instances {
        for (key, count) in &truth {
            let (status, body) = http_get(&instance.endpoint, key);
            assert_eq!(status, 200, "{key} via {}: {body}", instance.endpoint);
            assert_eq!(body["value"], serde_json::json!(count), "{key} via {}: {body}", instance.endpoint);
            assert_eq!(body["key"], serde_json::json!(key));
        }
        let (status, body) = http_get(&instance.endpoint, "no-such-key");
        assert_eq!(status, 404, "{body}");
        let (health, body) = {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let mut r = agent.get(format!("http://{}/health", instance.endpoint)).call().unwrap();
            (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
        };
        assert_eq!((health, body.as_str()), (200, r#"{"state":"RUNNING"}"#));
    }

    // An instance leaves: its partitions move. Meanwhile queries on the first instance answer with
    // the output's value or a retryable error, never another value.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, retry) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let asker = {
        let (stop, ok, retry, truth) = (stop.clone(), ok.clone(), retry.clone(), truth.clone());
        let endpoint = instances[0].endpoint.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for (key, count) in &truth {
                    let (status, body) = http_get(&endpoint, key);
                    match status {
                        200 => {
                            assert_eq!(body["value"], serde_json::json!(count), "{key} during the rebalance: {body}");
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        503 => {
                            assert_eq!(body["retryable"], serde_json::json!(true), "{body}");
                            retry.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("{key} during the rebalance: {other} {body}"),
                    }
                }
            }
        })
    };
    let mut leaving = instances.pop().unwrap();
    leaving.app.close(Duration::from_secs(30)).unwrap();
    let moved = eventually(Duration::from_secs(60), || {
        all_running(&instances) && truth.keys().all(|k| http_get(&instances[1].endpoint, k).0 == 200)
    });
    stop.store(true, Ordering::Relaxed);
    asker.join().expect("a query during the rebalance returned a wrong answer");
    assert!(moved, "the two remaining instances never answered for every key");
    println!(
        "during the rebalance: {} answers with the value, {} retryable refusals",
        ok.load(Ordering::Relaxed),
        retry.load(Ordering::Relaxed)
    );
    for instance in &mut instances {
        instance.app.close(Duration::from_secs(30)).unwrap();
    }
}
