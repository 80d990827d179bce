//! The runtime on the real broker: word count under both guarantees, and the deserialization
//! handlers (dead-letter topic, log-and-fail).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams::runtime::{KafkaStreams, State, StreamsConfig};
use kstreams::serde::Serdes;
use support::{eventually, Isolation, TopicSpec};

fn config(app: &str, guarantee: &str, state_dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new()
        .set("application.id", app)
        .set("bootstrap.servers", support::bootstrap())
        .set("processing.guarantee", guarantee)
        .set("commit.interval.ms", "200")
        .set("repartition.purge.interval.ms", "200")
        .set("state.dir", state_dir.to_string_lossy())
}

/// The low watermark of every partition of `topic`: where its oldest retained record is.
fn low_watermarks(topic: &str) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = support::client_config().create().unwrap();
    support::partitions(topic)
        .unwrap()
        .into_iter()
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().0)
        .collect()
}

/// Counts the words of the lines in `input` into `output` (word → count), with the store `counts`.
fn word_count_topology(input: &str, output: &str, store: Materialized<String, i64>) -> kstreams::topology::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(Serdes::string(), Serdes::string()))
        .flat_map_values(|l: String| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .group_by(|_, w: &String| w.clone(), Default::default())
        .count(store)
        .to_stream()
        .to(output, Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
    builder.build().unwrap()
}

fn word_count(guarantee: &str) {
    support::require_broker();
    let (input, output) = (support::unique_topic("wc-in"), support::unique_topic("wc-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 3), TopicSpec::new(&output, 3)]).unwrap();
    let lines: Vec<String> = (0..200).map(|i| format!("kafka streams {} rust {}", i % 7, i % 3)).collect();
    support::produce_keyed(&input, lines.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone()))).unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for word in lines.iter().flat_map(|l| l.split_whitespace()) {
        *expected.entry(word.to_string()).or_default() += 1;
    }

    let topology = word_count_topology(&input, &output, Materialized::as_("counts"));
    let state_dir = tempfile::tempdir().unwrap();
    let app = support::unique_name("wc");
    let _cleanup = support::app_cleanup(&app);
    let mut streams = KafkaStreams::new(topology, config(&app, guarantee, state_dir.path())).unwrap();
    streams.start().unwrap();
    let done = eventually(Duration::from_secs(90), || support::latest_counts(&output) == expected);
    let state = streams.state();
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(
        done,
        "counts never matched the input (state {state:?}, error {:?}): {:?}",
        streams.error(),
        support::latest_counts(&output)
    );
    assert_eq!(streams.state(), State::NotRunning);
    // Every update of a count is in the output, exactly once per word occurrence under exactly-once.
    let updates = support::read_to_end(&output, Isolation::ReadCommitted).unwrap().len() as i64;
    let occurrences: i64 = expected.values().sum();
    if guarantee == "exactly_once_v2" {
        assert_eq!(updates, occurrences);
        support::await_stable(&output, Duration::from_secs(15)).unwrap();
    } else {
        assert!(updates >= occurrences);
    }
    // Consumed repartition records are purged (delete-records up to the committed offsets).
    let repartition = format!("{app}-counts-repartition");
    assert!(
        eventually(Duration::from_secs(10), || low_watermarks(&repartition).iter().sum::<i64>() > 0),
        "repartition topic never purged: low watermarks {:?}",
        low_watermarks(&repartition)
    );
    let internal = [format!("{app}-counts-repartition"), format!("{app}-counts-changelog")];
    let _ = support::delete_topics(&internal.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn word_count_exactly_once() {
    word_count("exactly_once_v2");
}

#[test]
fn word_count_at_least_once() {
    word_count("at_least_once");
}

/// A topology doubling i64 values; some input values are not 8 bytes long.
fn doubler(input: &str, output: &str) -> kstreams::topology::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(Serdes::string(), Serdes::i64()))
        .map_values(|v| v * 2)
        .to(output, Produced::default());
    builder.build().unwrap()
}

fn produce_with_poison(topic: &str) -> (Vec<(String, Vec<u8>)>, usize) {
    // 1% poison pills: records 3, 103, 203, 303, 403.
    let records: Vec<(String, Vec<u8>)> = (0..500i64)
        .map(|i| {
            if i % 100 == 3 {
                (format!("bad{i}"), b"not a long".to_vec())
            } else {
                (format!("k{i}"), i.to_be_bytes().to_vec())
            }
        })
        .collect();
    support::produce_keyed(topic, records.clone()).unwrap();
    let bad = records.iter().filter(|(k, _)| k.starts_with("bad")).count();
    (records, bad)
}

#[test]
fn poison_pills_go_to_the_dead_letter_topic_and_good_records_are_processed() {
    support::require_broker();
    let (input, output, dlq) =
        (support::unique_topic("pp-in"), support::unique_topic("pp-out"), support::unique_topic("pp-dlq"));
    let _topics =
        support::create_topics(&[TopicSpec::new(&input, 2), TopicSpec::new(&output, 2), TopicSpec::new(&dlq, 1)])
            .unwrap();
    let (records, bad) = produce_with_poison(&input);
    let app_id = support::unique_name("pp");
    let _cleanup = support::app_cleanup(&app_id);
    let state_dir = tempfile::tempdir().unwrap();
    let cfg = config(&app_id, "exactly_once_v2", state_dir.path())
        .set("default.deserialization.exception.handler", "dead_letter_queue")
        .set("errors.dead.letter.queue.topic.name", &dlq);
    let mut streams = KafkaStreams::new(doubler(&input, &output), cfg).unwrap();
    streams.start().unwrap();
    let good = records.len() - bad;
    let done = eventually(Duration::from_secs(60), || {
        support::read_to_end(&output, Isolation::ReadCommitted).map(|r| r.len()).unwrap_or(0) >= good
            && support::read_to_end(&dlq, Isolation::ReadCommitted).map(|r| r.len()).unwrap_or(0) >= bad
    });
    assert_eq!(streams.state(), State::Running, "the app keeps running: {:?}", streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "not every record arrived");
    let out = support::read_to_end(&output, Isolation::ReadCommitted).unwrap();
    assert_eq!(out.len(), good);
    for r in &out {
        let i: i64 = r.key_str()[1..].parse().unwrap();
        assert_eq!(r.value.as_deref(), Some(&(i * 2).to_be_bytes()[..]));
    }
    let dead = support::read_to_end(&dlq, Isolation::ReadCommitted).unwrap();
    assert_eq!(dead.len(), bad);
    for r in &dead {
        assert_eq!(r.value.as_deref(), Some(&b"not a long"[..]), "original bytes are kept");
        let header = |name: &str| r.header_str(name);
        assert_eq!(header("__streams.errors.topic").as_deref(), Some(input.as_str()));
        assert!(header("__streams.errors.partition").is_some() && header("__streams.errors.offset").is_some());
        assert!(header("__streams.errors.message").unwrap_or_default().contains("i64"), "{:?}", r.headers);
    }
}

#[test]
fn log_and_fail_stops_in_error_naming_the_record() {
    support::require_broker();
    let (input, output) = (support::unique_topic("lf-in"), support::unique_topic("lf-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1), TopicSpec::new(&output, 1)]).unwrap();
    produce_with_poison(&input);
    let state_dir = tempfile::tempdir().unwrap();
    let app = support::unique_name("lf");
    let _cleanup = support::app_cleanup(&app);
    let cfg = config(&app, "exactly_once_v2", state_dir.path());
    let mut streams = KafkaStreams::new(doubler(&input, &output), cfg).unwrap();
    streams.start().unwrap();
    assert!(eventually(Duration::from_secs(60), || streams.state() == State::Error), "state {:?}", streams.state());
    let error = streams.error().unwrap_or_default();
    // The first poison pill is record 3, at offset 3 of the only partition.
    assert!(error.contains(&format!("{input}-0@3")), "{error}");
    streams.close(Duration::from_secs(30)).unwrap();
    // Under exactly-once nothing after the last commit is visible: at most the 3 good records before it.
    let out = support::read_to_end(&output, Isolation::ReadCommitted).unwrap();
    assert!(out.len() <= 3, "{} records visible", out.len());

    // Restarted (now skipping bad records), the app resumes from the last commit: every good record
    // exactly once, none of those before the failure twice.
    let cfg = config(&app, "exactly_once_v2", state_dir.path())
        .set("default.deserialization.exception.handler", "log_and_continue");
    let mut streams = KafkaStreams::new(doubler(&input, &output), cfg).unwrap();
    streams.start().unwrap();
    let read = || support::read_to_end(&output, Isolation::ReadCommitted).unwrap_or_default();
    let done = eventually(Duration::from_secs(60), || read().len() >= 495);
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "only {} of 495 good records after the restart", read().len());
    let keys: std::collections::BTreeSet<String> = read().iter().map(|r| r.key_str()).collect();
    assert_eq!((read().len(), keys.len()), (495, 495), "each good record exactly once");
}

#[test]
fn a_bad_setting_fails_at_start_naming_it() {
    let err = KafkaStreams::new(doubler("a", "b"), StreamsConfig::new().set("application.id", "x")).err().unwrap();
    assert!(err.to_string().contains("bootstrap.servers"), "{err}");
    let err = KafkaStreams::new(
        doubler("a", "b"),
        StreamsConfig::new()
            .set("application.id", "x")
            .set("bootstrap.servers", "h:1")
            .set("processing.guarantee", "twice"),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("processing.guarantee"), "{err}");
}

/// The value of the first sample of `metric` whose labels contain `label` in a Prometheus text page.
fn sample(page: &str, metric: &str, label: &str) -> Option<f64> {
    page.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the metrics server");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    page
}

#[test]
fn metrics_are_served_over_http_with_kafka_streams_names() {
    support::require_broker();
    let (input, output) = (support::unique_topic("m-in"), support::unique_topic("m-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 2), TopicSpec::new(&output, 2)]).unwrap();
    support::produce_keyed(&input, (0..50).map(|i| (format!("k{}", i % 5), format!("word{} other", i % 3)))).unwrap();
    let topology = word_count_topology(&input, &output, Materialized::as_("counts"));
    let state_dir = tempfile::tempdir().unwrap();
    let app = support::unique_name("metrics");
    let _cleanup = support::app_cleanup(&app);
    let cfg = config(&app, "at_least_once", state_dir.path()).set("metrics.http.address", "127.0.0.1:0");
    let mut streams = KafkaStreams::new(topology, cfg).unwrap();
    streams.start().unwrap();
    let address = streams.metrics_address().expect("metrics are served");
    let expected_counts = BTreeMap::from([
        ("other".to_string(), 50),
        ("word0".to_string(), 17),
        ("word1".to_string(), 17),
        ("word2".to_string(), 16),
    ]);
    let done = eventually(Duration::from_secs(60), || support::latest_counts(&output) == expected_counts);
    // Lag comes from librdkafka's statistics, every 2 s.
    std::thread::sleep(Duration::from_secs(3));
    let page = http_get(address, "/metrics");
    let not_found = http_get(address, "/other");
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "the app did not count the input");
    let body = page.split("\r\n\r\n").nth(1).unwrap_or_default();
    // 50 input records and 100 repartitioned words, over all tasks.
    let processed: f64 = body
        .lines()
        .filter(|l| l.starts_with("kstreams_process_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(processed, 150.0, "{body}");
    assert!(sample(body, "kstreams_commit_latency_seconds_count", "StreamThread-1").unwrap_or(0.0) >= 1.0, "{body}");
    assert!(sample(body, "kstreams_state_put_latency_seconds_count", "store=\"counts\"").unwrap_or(0.0) >= 1.0);
    assert_eq!(sample(body, "kstreams_active_tasks", "StreamThread-1"), Some(4.0), "2 source + 2 count tasks");
    assert_eq!(sample(body, "kstreams_state", ""), Some(2.0), "running");
    assert_eq!(sample(body, "kstreams_records_lag", &input), Some(0.0), "{body}");
    assert!(not_found.starts_with("HTTP/1.1 404") || not_found.starts_with("HTTP/1.0 404"), "{not_found}");
    let internal = [format!("{app}-counts-repartition"), format!("{app}-counts-changelog")];
    let _ = support::delete_topics(&internal.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn a_failed_thread_is_replaced_when_the_handler_says_so() {
    use kstreams::runtime::StreamThreadExceptionResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    support::require_broker();
    let (input, output) = (support::unique_topic("rt-in"), support::unique_topic("rt-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1), TopicSpec::new(&output, 1)]).unwrap();
    produce_with_poison(&input);
    let app_id = support::unique_name("rt");
    let _cleanup = support::app_cleanup(&app_id);
    let state_dir = tempfile::tempdir().unwrap();
    let cfg = config(&app_id, "exactly_once_v2", state_dir.path());
    let mut streams = KafkaStreams::new(doubler(&input, &output), cfg).unwrap();
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = failures.clone();
    streams.set_uncaught_exception_handler(move |error| {
        assert!(error.to_string().contains("i64"), "{error}");
        // Replace the thread twice, then give up.
        if seen.fetch_add(1, Ordering::SeqCst) < 2 {
            StreamThreadExceptionResponse::ReplaceThread
        } else {
            StreamThreadExceptionResponse::ShutdownClient
        }
    });
    streams.start().unwrap();
    assert!(
        eventually(Duration::from_secs(90), || streams.state() == State::Error),
        "state {:?} after {} failures",
        streams.state(),
        failures.load(Ordering::SeqCst)
    );
    streams.close(Duration::from_secs(30)).unwrap();
    // The poison pill fails the first thread and both replacements, each after a restart from the
    // last commit.
    assert_eq!(failures.load(Ordering::SeqCst), 3);
}

/// Produces `(key, value, timestamp)` records in order.
fn produce_timed(topic: &str, records: &[(String, String, i64)]) {
    use rdkafka::producer::{BaseRecord, Producer};
    let producer = support::producer().unwrap();
    for (k, v, ts) in records {
        producer.send(BaseRecord::to(topic).key(k.as_str()).payload(v.as_str()).timestamp(*ts)).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Writes `orders` then `prices` (key, value, timestamp) to fresh one-partition topics, runs orders
/// left-joined with the prices table (`order@price`) with `config_extra`, and returns the output once
/// it holds one record per order.
fn join_orders_with_prices(
    prefix: &str,
    orders: &[(String, String, i64)],
    prices: &[(String, String, i64)],
    config_extra: &[(&str, &str)],
) -> Vec<support::Record> {
    let topic = |suffix: &str| support::unique_topic(&format!("{prefix}-{suffix}"));
    let (orders_topic, prices_topic, output) = (topic("orders"), topic("prices"), topic("out"));
    let _topics = support::create_topics(&[
        TopicSpec::new(&orders_topic, 1),
        TopicSpec::new(&prices_topic, 1),
        TopicSpec::new(&output, 1),
    ])
    .unwrap();
    produce_timed(&orders_topic, orders);
    produce_timed(&prices_topic, prices);

    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let table = builder.table(&prices_topic, strings(), Materialized::as_("prices"));
    builder
        .stream(&orders_topic, strings())
        .left_join(&table, |o: String, p: Option<String>| format!("{o}@{}", p.unwrap_or_default()), Default::default())
        .to(&output, Produced::with(Serdes::string(), Serdes::string()));
    let state_dir = tempfile::tempdir().unwrap();
    let app = support::unique_name(prefix);
    let _cleanup = support::app_cleanup(&app);
    let cfg = config_extra.iter().fold(config(&app, "at_least_once", state_dir.path()), |c, (k, v)| c.set(k, *v));
    let mut streams = KafkaStreams::new(builder.build().unwrap(), cfg).unwrap();
    streams.start().unwrap();
    let read = || support::read_to_end(&output, Isolation::ReadCommitted).unwrap_or_default();
    let done = eventually(Duration::from_secs(60), || read().len() >= orders.len());
    streams.close(Duration::from_secs(30)).unwrap();
    let _ = support::delete_topics(&[format!("{app}-prices-changelog").as_str()]);
    assert!(done, "not every order was joined");
    read()
}

/// A stream-table join reads both topics in one task; records are taken in timestamp order, so
/// orders see the prices that are older than them even though the orders were written first.
#[test]
fn a_task_takes_its_partitions_records_in_timestamp_order() {
    support::require_broker();
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 60_000;
    // Orders first in the log, but ten seconds younger than the prices written after them.
    let order_records: Vec<_> = (0..10).map(|i| (format!("p{i}"), format!("order{i}"), base + 10_000 + i)).collect();
    let price_records: Vec<_> = (0..10).map(|i| (format!("p{i}"), format!("{}", 100 + i), base + i)).collect();
    let output = join_orders_with_prices("to", &order_records, &price_records, &[("max.task.idle.ms", "2000")]);
    let joined: BTreeMap<String, String> = output.iter().map(|r| (r.key_str(), r.value_str())).collect();
    let expected: BTreeMap<String, String> =
        (0..10).map(|i| (format!("p{i}"), format!("order{i}@{}", 100 + i))).collect();
    assert_eq!(joined, expected, "every order met its (older) price");
}

/// With the default `max.task.idle.ms` (0) a task still waits for an empty partition that has data
/// on the broker (KIP-695): the orders, fetched first and younger than every price, wait until the
/// prices are read, so each order meets its price. Without that wait the first fetched orders would
/// be joined with an empty table (with `max.task.idle.ms=-1`, 4 010 of the 5 000 did).
#[test]
fn a_task_waits_for_a_partition_with_data_on_the_broker() {
    support::require_broker();
    // 10 MB of prices take several fetches (1 MB per partition each); the orders arrive in one and
    // ask for the last prices first.
    let n = 5_000;
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 600_000;
    let order_records: Vec<_> =
        (0..n).map(|i| (format!("p{}", n - 1 - i), format!("order{i}"), base + 100_000 + i)).collect();
    let pad = "x".repeat(2_000);
    let price_records: Vec<_> = (0..n).map(|i| (format!("p{i}"), format!("{}{pad}", 100 + i), base + i)).collect();
    let output = join_orders_with_prices("lag", &order_records, &price_records, &[]);
    let unmatched: Vec<String> = output.iter().map(|r| r.value_str()).filter(|v| v.ends_with('@')).collect();
    assert!(unmatched.is_empty(), "{} orders met an empty table, e.g. {:?}", unmatched.len(), unmatched.first());
}

/// With a record cache (`with_caching_enabled`, `statestore.cache.max.bytes` > 0), updates of a key
/// between commits reach the output and the changelog once, and the counts stay exact.
#[test]
fn a_record_cache_coalesces_updates_between_commits() {
    support::require_broker();
    let (input, output) = (support::unique_topic("cache-in"), support::unique_topic("cache-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 2), TopicSpec::new(&output, 2)]).unwrap();
    let lines: Vec<String> = (0..300).map(|i| format!("a{} b{} c", i % 5, i % 3)).collect();
    support::produce_keyed(&input, lines.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone()))).unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for w in lines.iter().flat_map(|l| l.split_whitespace()) {
        *expected.entry(w.to_string()).or_default() += 1;
    }
    let topology = word_count_topology(&input, &output, Materialized::as_("counts").with_caching_enabled());
    let state_dir = tempfile::tempdir().unwrap();
    let app = support::unique_name("cache");
    let _cleanup = support::app_cleanup(&app);
    let cfg = config(&app, "exactly_once_v2", state_dir.path()).set("commit.interval.ms", "1000");
    let mut streams = KafkaStreams::new(topology, cfg).unwrap();
    streams.start().unwrap();
    let done = eventually(Duration::from_secs(60), || support::latest_counts(&output) == expected);
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "counts never matched: {:?}", support::latest_counts(&output));
    let occurrences: i64 = expected.values().sum();
    let updates = support::read_to_end(&output, Isolation::ReadCommitted).unwrap().len() as i64;
    let logged =
        support::read_to_end(&format!("{app}-counts-changelog"), Isolation::ReadCommitted).unwrap().len() as i64;
    assert!(updates * 4 < occurrences, "{updates} output records for {occurrences} updates: not coalesced");
    assert!(logged * 4 < occurrences, "{logged} changelog records for {occurrences} updates: not coalesced");
    let internal = [format!("{app}-counts-repartition"), format!("{app}-counts-changelog")];
    let _ = support::delete_topics(&internal.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Fails on values starting with "bad", forwards the others upper-cased.
struct Picky;

impl kstreams::processor::Processor<String, String, String, String> for Picky {
    fn process(
        &mut self,
        ctx: &mut kstreams::processor::ProcessorContext<'_, String, String>,
        record: kstreams::record::Record<String, String>,
    ) -> kstreams::Result<()> {
        if record.value.starts_with("bad") {
            return Err(kstreams::StreamsError::processing(format!("cannot handle `{}`", record.value)));
        }
        let upper = record.value.to_uppercase();
        ctx.forward(record.with_value(upper))
    }
}

/// `processing.exception.handler=log_and_continue` skips records whose processor failed, and
/// `default.production.exception.handler=log_and_continue` skips records the producer refuses (larger
/// than its `message.max.bytes`); both are counted in `kstreams_dropped_records_total`.
#[test]
fn processing_and_production_failures_are_skipped_when_configured() {
    support::require_broker();
    let (input, output) = (support::unique_topic("h-in"), support::unique_topic("h-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1), TopicSpec::new(&output, 1)]).unwrap();
    let records: Vec<(String, String)> = (0..30)
        .map(|i| match i % 10 {
            3 => (format!("k{i}"), format!("bad{i}")),
            7 => (format!("k{i}"), "x".repeat(5000)),
            _ => (format!("k{i}"), format!("good{i}")),
        })
        .collect();
    support::produce_keyed(&input, records.clone()).unwrap();
    let builder = StreamsBuilder::new();
    builder
        .stream(&input, Consumed::with(Serdes::string(), Serdes::string()))
        .process(|| Picky, &[])
        .to(&output, Produced::with(Serdes::string(), Serdes::string()));
    let app_id = support::unique_name("h");
    let _cleanup = support::app_cleanup(&app_id);
    let state_dir = tempfile::tempdir().unwrap();
    let cfg = config(&app_id, "at_least_once", state_dir.path())
        .set("processing.exception.handler", "log_and_continue")
        .set("default.production.exception.handler", "log_and_continue")
        .set("producer.message.max.bytes", "4000")
        .set("metrics.http.address", "127.0.0.1:0");
    let mut streams = KafkaStreams::new(builder.build().unwrap(), cfg).unwrap();
    streams.start().unwrap();
    let read = || support::read_to_end(&output, Isolation::ReadCommitted).unwrap_or_default();
    let done = eventually(Duration::from_secs(60), || read().len() >= 24);
    std::thread::sleep(Duration::from_secs(1));
    let page = http_get(streams.metrics_address().unwrap(), "/metrics");
    assert_eq!(streams.state(), State::Running, "{:?}", streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "good records missing: {}", read().len());
    let out: Vec<String> = read().iter().map(|r| r.value_str()).collect();
    assert_eq!(out.len(), 24, "3 failed processing, 3 were too large: {out:?}");
    assert!(out.iter().all(|v| v.starts_with("GOOD")));
    let dropped: f64 = page
        .lines()
        .filter(|l| l.starts_with("kstreams_dropped_records_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(dropped, 6.0, "{page}");
}

/// Doubles i64 values, panicking on every value ending in 07 (1 % of 0..1000).
fn panicking_doubler(input: &str, output: &str) -> kstreams::topology::Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(input, Consumed::with(Serdes::string(), Serdes::i64()))
        .map_values(|v: i64| {
            if v % 100 == 7 {
                panic!("boom on {v}");
            }
            v * 2
        })
        .to(output, Produced::default());
    builder.build().unwrap()
}

fn produce_numbers(topic: &str, n: i64) {
    support::produce_keyed(topic, (0..n).map(|i| (format!("k{i}"), i.to_be_bytes().to_vec()))).unwrap();
}

/// A closure that panics on 1 % of the records, with `processing.exception.handler=log_and_continue`
/// under exactly-once: the panics are processing errors, their records are skipped, and every other
/// record is processed exactly once; the application keeps running.
#[test]
fn a_panicking_closure_skips_its_records_with_log_and_continue() {
    support::require_broker();
    let (input, output) = (support::unique_topic("pc-in"), support::unique_topic("pc-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 2), TopicSpec::new(&output, 2)]).unwrap();
    produce_numbers(&input, 1000);
    let app_id = support::unique_name("pc");
    let _cleanup = support::app_cleanup(&app_id);
    let state_dir = tempfile::tempdir().unwrap();
    let cfg =
        config(&app_id, "exactly_once_v2", state_dir.path()).set("processing.exception.handler", "log_and_continue");
    let mut streams = KafkaStreams::new(panicking_doubler(&input, &output), cfg).unwrap();
    streams.start().unwrap();
    let read = || support::read_to_end(&output, Isolation::ReadCommitted).unwrap_or_default();
    let done = eventually(Duration::from_secs(60), || read().len() >= 990);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(streams.state(), State::Running, "{:?}", streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "only {} of 990 records", read().len());
    let out = read();
    let mut values: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &out {
        let v = r.value.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_be_bytes);
        values.entry(r.key_str()).or_default().push(v.unwrap_or(-1));
    }
    let expected: BTreeMap<String, Vec<i64>> =
        (0..1000i64).filter(|i| i % 100 != 7).map(|i| (format!("k{i}"), vec![i * 2])).collect();
    assert_eq!(values, expected, "every record but the ten that panicked, exactly once");
}

/// The same closure with the default `log_and_fail`: the panic fails the stream thread with an error
/// that names the panic, the task and the record; the uncaught-exception handler hears of it and
/// replaces the thread (which meets the same record again), then shuts the client down, and
/// `state()` says ERROR.
#[test]
fn a_panicking_closure_fails_the_thread_through_the_handler_with_log_and_fail() {
    use kstreams::runtime::StreamThreadExceptionResponse;
    use std::sync::{Arc, Mutex};
    support::require_broker();
    let (input, output) = (support::unique_topic("pf-in"), support::unique_topic("pf-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1), TopicSpec::new(&output, 1)]).unwrap();
    produce_numbers(&input, 100);
    let app_id = support::unique_name("pf");
    let _cleanup = support::app_cleanup(&app_id);
    let state_dir = tempfile::tempdir().unwrap();
    let cfg = config(&app_id, "exactly_once_v2", state_dir.path());
    let mut streams = KafkaStreams::new(panicking_doubler(&input, &output), cfg).unwrap();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    streams.set_uncaught_exception_handler(move |error| {
        let mut seen = seen.lock().unwrap();
        seen.push(error.to_string());
        if seen.len() < 2 {
            StreamThreadExceptionResponse::ReplaceThread
        } else {
            StreamThreadExceptionResponse::ShutdownClient
        }
    });
    streams.start().unwrap();
    assert!(eventually(Duration::from_secs(90), || streams.state() == State::Error), "state {:?}", streams.state());
    let reported = streams.error().unwrap_or_default();
    streams.close(Duration::from_secs(30)).unwrap();
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 2, "the first thread and its replacement failed: {errors:?}");
    for e in errors.iter().chain([&reported]) {
        assert!(e.contains("panicked: boom on 7"), "{e}");
        assert!(e.contains(&format!("{input}-0@7")) && e.contains("task 0_0"), "{e}");
    }
    // Under exactly-once nothing after the last commit is visible: at most the records before 7.
    let out = support::read_to_end(&output, Isolation::ReadCommitted).unwrap();
    assert!(out.len() <= 7, "{} records visible", out.len());
}
