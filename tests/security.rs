//! kstreams against a secured broker: `scripts/kafka start --secure` (its own cluster beside the
//! default one: `KSTREAMS_CLUSTER=secure`, port 9292) listens with SASL_SSL (SCRAM-SHA-512, a CA
//! made on the fly), authorizes with ACLs, and lets the user `app` use topics, groups and
//! transactional ids that start with `secure-`. The application is configured as a Kafka Streams
//! application would be (`sasl.jaas.config`, a PEM truststore); the tests' own clients use the
//! admin's credentials.
//!
//! Word count (at-least-once) and exactly-once sums run over it; a wrong password, an unknown CA and
//! a missing ACL each put the application in ERROR within seconds, with a message naming the cause.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams::runtime::{KafkaStreams, State, StreamsConfig};
use kstreams::serde::Serdes;
use support::{eventually, Isolation, TopicSpec};

const CLUSTER: &str = "secure";
const PORT_BASE: &str = "9290";
/// What the ACLs of user `app` cover.
const PREFIX: &str = "secure-";
/// How soon a misconfigured application must report ERROR.
const FAIL_FAST: Duration = Duration::from_secs(30);

fn scripts_kafka(args: &[&str]) -> String {
    support::scripts_kafka(&[("KSTREAMS_CLUSTER", CLUSTER), ("KSTREAMS_PORT_BASE", PORT_BASE)], args)
}

/// The secure cluster's folder, where `start --secure` wrote the client settings.
fn folder() -> PathBuf {
    PathBuf::from(scripts_kafka(&["folder"]))
}

/// The application's settings in Kafka Streams' names (`client-app.properties`), as a Java
/// application would have them.
fn app_settings() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(folder().join("client-app.properties")).expect("client-app.properties");
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn config(app: &str, guarantee: &str, state_dir: &Path, overrides: &[(&str, &str)]) -> StreamsConfig {
    let mut config = StreamsConfig::new()
        .set("application.id", app)
        .set("processing.guarantee", guarantee)
        .set("commit.interval.ms", "200")
        .set("state.dir", state_dir.to_string_lossy());
    for (key, value) in app_settings() {
        config = config.set(&key, &value);
    }
    for (key, value) in overrides {
        config = config.set(key, *value);
    }
    config
}

fn word_count_topology(input: &str, output: &str) -> kstreams::topology::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(Serdes::string(), Serdes::string()))
        .flat_map_values(|l: String| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .group_by(|_, w: &String| w.clone(), Default::default())
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(output, Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
    builder.build().expect("topology")
}

/// Word count over SASL_SSL under `guarantee`: the counts match the input (exactly one update per
/// word occurrence under exactly-once).
fn word_count(guarantee: &str) {
    let input = support::unique_name(&format!("{PREFIX}wc-in"));
    let output = support::unique_name(&format!("{PREFIX}wc-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 3), TopicSpec::new(&output, 3)]).unwrap();
    let lines: Vec<String> = (0..200).map(|i| format!("kafka streams {} rust {}", i % 7, i % 3)).collect();
    support::produce_keyed(&input, lines.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone()))).unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for word in lines.iter().flat_map(|l| l.split_whitespace()) {
        *expected.entry(word.to_string()).or_default() += 1;
    }
    let state_dir = tempfile::tempdir().unwrap();
    let app = support::unique_name(&format!("{PREFIX}wc"));
    let _cleanup = support::app_cleanup(&app);
    let config = config(&app, guarantee, state_dir.path(), &[]);
    let mut streams = KafkaStreams::new(word_count_topology(&input, &output), config).unwrap();
    streams.start().unwrap();
    let done = eventually(Duration::from_secs(90), || support::latest_counts(&output) == expected);
    let (state, error) = (streams.state(), streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "counts never matched (state {state:?}, error {error:?}): {:?}", support::latest_counts(&output));
    let updates = support::read_to_end(&output, Isolation::ReadCommitted).unwrap().len() as i64;
    let occurrences: i64 = expected.values().sum();
    if guarantee == "exactly_once_v2" {
        assert_eq!(updates, occurrences, "one update per occurrence under exactly-once");
    } else {
        assert!(updates >= occurrences);
    }
    let internal = [format!("{app}-counts-repartition"), format!("{app}-counts-changelog")];
    let _ = support::delete_topics(&internal.iter().map(String::as_str).collect::<Vec<_>>());
}

fn word_count_at_least_once_over_sasl_ssl() {
    word_count("at_least_once");
}

fn word_count_exactly_once_over_sasl_ssl() {
    word_count("exactly_once_v2");
}

/// Starts the word count reading `input` with `overrides`, and returns the error the application
/// reports (from `start`, or its state once ERROR), failing the test if none comes within
/// [`FAIL_FAST`].
fn failure_of(input: &str, overrides: &[(&str, &str)]) -> String {
    let state_dir = tempfile::tempdir().unwrap();
    let app = support::unique_name(&format!("{PREFIX}bad"));
    let _cleanup = support::app_cleanup(&app);
    let output = format!("{app}-out");
    let config = config(&app, "exactly_once_v2", state_dir.path(), overrides);
    let mut streams = KafkaStreams::new(word_count_topology(input, &output), config).unwrap();
    let started = Instant::now();
    let error = match streams.start() {
        Err(e) => e.to_string(),
        Ok(()) => {
            let failed = eventually(FAIL_FAST, || streams.state() == State::Error);
            assert!(failed, "no ERROR within {FAIL_FAST:?}: state {:?}", streams.state());
            streams.error().unwrap_or_default()
        }
    };
    let took = started.elapsed();
    let _ = streams.close(Duration::from_secs(30));
    eprintln!("  failed after {:.1} s: {error}", took.as_secs_f64());
    assert!(took < FAIL_FAST, "took {took:?}");
    error
}

fn a_wrong_password_fails_fast() {
    let input = support::unique_name(&format!("{PREFIX}pw-in"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1)]).unwrap();
    let jaas = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="app" password="wrong";"#;
    let error = failure_of(&input, &[("sasl.jaas.config", jaas)]);
    let lower = error.to_lowercase();
    assert!(lower.contains("authentication") && lower.contains("credentials"), "{error}");
}

fn an_unknown_ca_fails_fast() {
    let input = support::unique_name(&format!("{PREFIX}ca-in"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1)]).unwrap();
    // A CA that did not sign the broker's certificate.
    let other = tempfile::tempdir().unwrap();
    let ca = other.path().join("other-ca.pem");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=another CA"])
        .arg("-keyout")
        .arg(other.path().join("key.pem"))
        .arg("-out")
        .arg(&ca)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl req failed");
    let error = failure_of(&input, &[("ssl.truststore.location", &ca.to_string_lossy())]);
    assert!(error.to_lowercase().contains("certificate verify failed"), "{error}");
}

fn a_missing_acl_fails_fast() {
    // Outside the prefix that user `app` may read.
    let input = support::unique_name("denied-in");
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1)]).unwrap();
    let error = failure_of(&input, &[]);
    assert!(error.contains(&input) && error.to_lowercase().contains("authoriz"), "{error}");
}

fn main() {
    let scenarios: [(&str, fn()); 5] = [
        ("word_count_at_least_once_over_sasl_ssl", word_count_at_least_once_over_sasl_ssl),
        ("word_count_exactly_once_over_sasl_ssl", word_count_exactly_once_over_sasl_ssl),
        ("a_wrong_password_fails_fast", a_wrong_password_fails_fast),
        ("an_unknown_ca_fails_fast", an_unknown_ca_fails_fast),
        ("a_missing_acl_fails_fast", a_missing_acl_fails_fast),
    ];
    support::scenarios::run(&scenarios, || {
        let bootstrap = scripts_kafka(&["start", "--secure"]);
        // The tests' own clients (topics, input, reading outputs) connect as the admin. Set before
        // any other thread runs.
        std::env::set_var(support::BOOTSTRAP_ENV, bootstrap.lines().last().unwrap_or_default());
        std::env::set_var(support::CLIENT_PROPERTIES_ENV, folder().join("client-admin.librdkafka.properties"));
        support::require_broker();
    });
}
