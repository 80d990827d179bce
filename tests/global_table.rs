//! A global table on the real broker: a stream with 2 partitions joined with a global table of a
//! topic with 3 partitions. The global store is restored before the stream threads start, kept up
//! to date while the application runs, checkpointed, and restored (only the records it missed)
//! after a restart.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams::query::{QueryableStoreTypes, StoreQueryParameters};
use kstreams::runtime::{KafkaStreams, State, StreamsConfig};
use kstreams::serde::Serdes;
use kstreams::state::rocksdb::{RocksDbKeyValueStore, RocksDbResources};
use kstreams::state::{Checkpoint, KeyValueBytesStore, RestoreListener};
use support::{eventually, Isolation, Outgoing, TopicSpec};

const GLOBAL_PARTITIONS: i32 = 3;
const STREAM_PARTITIONS: i32 = 2;

/// Every finished restoration: (store, partition, records restored).
#[derive(Default)]
struct Restores(Mutex<Vec<(String, i32, u64)>>);

impl RestoreListener for Restores {
    fn on_restore_end(&self, _topic: &str, partition: i32, store: &str, total_restored: u64) {
        self.0.lock().unwrap().push((store.to_string(), partition, total_restored));
    }
}

impl Restores {
    fn of(&self, store: &str) -> Vec<(i32, u64)> {
        let mut v: Vec<(i32, u64)> =
            self.0.lock().unwrap().iter().filter(|(s, _, _)| s == store).map(|(_, p, n)| (*p, *n)).collect();
        v.sort();
        v
    }
    fn total(&self, store: &str) -> u64 {
        self.of(store).iter().map(|(_, n)| n).sum()
    }
}

struct App {
    products: String,
    orders: String,
    inner: String,
    left: String,
    id: String,
}

impl App {
    /// orders (order id -> product id) joined with the global table of products (id -> name).
    fn topology(&self) -> kstreams::topology::Topology {
        let builder = StreamsBuilder::new();
        let products = builder.global_table(
            &self.products,
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::as_("products"),
        );
        let orders = builder.stream(&self.orders, Consumed::with(Serdes::string(), Serdes::string()));
        orders
            .join_global(
                &products,
                |_, product: &String| product.clone(),
                |p: &String, name: &String| format!("{p}={name}"),
            )
            .to(&self.inner, Produced::with(Serdes::string(), Serdes::string()));
        orders
            .left_join_global(
                &products,
                |_, product: &String| product.clone(),
                |p: &String, name: Option<&String>| format!("{p}={}", name.map_or("?", String::as_str)),
            )
            .to(&self.left, Produced::with(Serdes::string(), Serdes::string()));
        builder.build().unwrap()
    }

    fn start(&self, state_dir: &Path) -> (KafkaStreams, Arc<Restores>) {
        let config = StreamsConfig::new()
            .set("application.id", &self.id)
            .set("bootstrap.servers", support::bootstrap())
            .set("processing.guarantee", "exactly_once_v2")
            .set("commit.interval.ms", "200")
            .set("state.dir", state_dir.to_string_lossy());
        let restores = Arc::new(Restores::default());
        let mut streams = KafkaStreams::new(self.topology(), config).unwrap();
        streams.set_global_state_restore_listener(restores.clone());
        streams.start().unwrap();
        (streams, restores)
    }
}

/// Produces `(key, value)` records; a `None` value is a tombstone.
fn produce(topic: &str, records: &[(String, Option<String>)]) {
    let producer = support::producer().unwrap();
    for (k, v) in records {
        let record = Outgoing { key: Some(k.as_bytes()), value: v.as_deref().map(str::as_bytes), ..Default::default() };
        support::send(&producer, topic, &record).unwrap();
    }
    support::flush(&producer).unwrap();
}

fn upsert(k: &str, v: &str) -> (String, Option<String>) {
    (k.to_string(), Some(v.to_string()))
}

/// The output as key -> value (keys are unique order ids).
fn output(topic: &str) -> BTreeMap<String, String> {
    support::read_to_end(topic, Isolation::ReadCommitted)
        .unwrap()
        .iter()
        .map(|r| (r.key_str(), r.value_str()))
        .collect()
}

fn output_len(topic: &str) -> usize {
    support::read_to_end(topic, Isolation::ReadCommitted).map(|r| r.len()).unwrap_or(0)
}

/// The expected join outputs of `orders` against `table`: (inner, left).
fn joins(
    orders: &[(String, Option<String>)],
    table: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (mut inner, mut left) = (BTreeMap::new(), BTreeMap::new());
    for (order, product) in orders {
        let product = product.clone().unwrap_or_default();
        match table.get(&product) {
            Some(name) => {
                inner.insert(order.clone(), format!("{product}={name}"));
                left.insert(order.clone(), format!("{product}={name}"));
            }
            None => {
                left.insert(order.clone(), format!("{product}=?"));
            }
        }
    }
    (inner, left)
}

/// Every entry of the global store on disk.
fn global_store_contents(state_dir: &Path, app: &str) -> BTreeMap<String, String> {
    let path = state_dir.join(app).join("global").join("rocksdb").join("products");
    let store = RocksDbKeyValueStore::open("products", &path, &RocksDbResources::shared_default()).unwrap();
    store
        .all()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
        })
        .collect()
}

#[test]
fn a_stream_joins_a_global_table_of_all_partitions_which_is_restored_after_a_restart() {
    support::require_broker();
    let app = App {
        products: support::unique_topic("gt-products"),
        orders: support::unique_topic("gt-orders"),
        inner: support::unique_topic("gt-inner"),
        left: support::unique_topic("gt-left"),
        id: support::unique_name("gt"),
    };
    let _cleanup = support::app_cleanup(&app.id);
    let _topics = support::create_topics(&[
        TopicSpec::new(&app.products, GLOBAL_PARTITIONS),
        TopicSpec::new(&app.orders, STREAM_PARTITIONS),
        TopicSpec::new(&app.inner, STREAM_PARTITIONS),
        TopicSpec::new(&app.left, STREAM_PARTITIONS),
    ])
    .unwrap();
    let state_dir = tempfile::tempdir().unwrap();

    // 1. The table: 20 products over 3 partitions, one updated, one deleted (22 records).
    let mut products: Vec<(String, Option<String>)> =
        (0..20).map(|i| upsert(&format!("p{i}"), &format!("name{i}"))).collect();
    products.push(upsert("p0", "name0-v2"));
    products.push(("p19".to_string(), None));
    produce(&app.products, &products);
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &products {
        match v {
            Some(v) => table.insert(k.clone(), v.clone()),
            None => table.remove(k),
        };
    }
    // 30 orders over 2 partitions; p19 (deleted), p20 and p21 (never existed) find nothing.
    let orders: Vec<(String, Option<String>)> =
        (0..30).map(|i| upsert(&format!("o{i}"), &format!("p{}", i % 22))).collect();
    produce(&app.orders, &orders);
    let (mut expected_inner, mut expected_left) = joins(&orders, &table);
    assert_eq!((expected_inner.len(), expected_left.len()), (27, 30));

    // 2. `start` returns once the global store holds every partition of its topic.
    let (mut streams, restores) = app.start(state_dir.path());
    assert_eq!(restores.of("products").len(), GLOBAL_PARTITIONS as usize, "{:?}", restores.of("products"));
    assert_eq!(restores.total("products"), products.len() as u64, "the whole topic was restored");
    let done = eventually(Duration::from_secs(90), || {
        output_len(&app.inner) >= expected_inner.len() && output_len(&app.left) >= expected_left.len()
    });
    assert!(done, "no join output (state {:?}, error {:?})", streams.state(), streams.error());
    assert_eq!(streams.state(), State::Running, "{:?}", streams.error());
    assert_eq!(output(&app.inner), expected_inner);
    assert_eq!(output(&app.left), expected_left);

    // 3. The global stream thread applies updates while the application runs: orders for p1 sent
    // after the update see it, once it arrived (no ordering between the threads is promised).
    produce(&app.products, &[upsert("p1", "name1-live")]);
    table.insert("p1".to_string(), "name1-live".to_string());
    let mut live = 0;
    let seen = eventually(Duration::from_secs(30), || {
        produce(&app.orders, &[upsert(&format!("live{live:03}"), "p1")]);
        live += 1;
        std::thread::sleep(Duration::from_millis(300));
        output(&app.left).values().any(|v| v == "p1=name1-live")
    });
    assert!(seen, "the update of the global table never reached the join");
    // An order sent once a join saw the update sees it too: the store only moves forward.
    produce(&app.orders, &[upsert("live-after", "p1")]);
    let live_orders = live + 1;
    let done = eventually(Duration::from_secs(30), || {
        output_len(&app.inner) >= expected_inner.len() + live_orders
            && output_len(&app.left) >= expected_left.len() + live_orders
    });
    assert!(done, "the live orders were not all joined");
    for (topic, expected) in [(&app.inner, &mut expected_inner), (&app.left, &mut expected_left)] {
        let live_values: BTreeMap<String, String> =
            output(topic).into_iter().filter(|(k, _)| k.starts_with("live")).collect();
        assert_eq!(live_values.len(), live_orders);
        assert!(live_values.values().all(|v| v == "p1=name1" || v == "p1=name1-live"), "{live_values:?}");
        assert_eq!(live_values["live-after"], "p1=name1-live");
        expected.extend(live_values);
    }
    // Interactive queries read the global table on this instance, updates included.
    let products = streams
        .store(StoreQueryParameters::from_store_name("products", QueryableStoreTypes::key_value::<String, String>()))
        .unwrap();
    assert_eq!(products.get(&"p1".to_string()).unwrap(), Some("name1-live".to_string()));
    assert_eq!(products.all().unwrap().into_iter().collect::<BTreeMap<_, _>>(), table);
    streams.close(Duration::from_secs(30)).unwrap();
    assert_eq!(streams.state(), State::NotRunning);

    // 4. On disk: the store holds the table, the checkpoint every partition's end.
    let global_dir = state_dir.path().join(&app.id).join("global");
    let checkpoint = Checkpoint::read(&global_dir).unwrap().expect("a checkpoint of the global store");
    let ends = support::high_watermarks(&app.products).unwrap();
    for (partition, end) in &ends {
        assert_eq!(checkpoint.get(&app.products, *partition), Some(*end), "{checkpoint:?}");
    }
    assert_eq!(global_store_contents(state_dir.path(), &app.id), table);

    // 5. While the application is down, the table changes and more orders arrive.
    let changes = vec![upsert("p2", "name2-v3"), upsert("p30", "name30")];
    produce(&app.products, &changes);
    for (k, v) in &changes {
        table.insert(k.clone(), v.clone().unwrap_or_default());
    }
    let more: Vec<(String, Option<String>)> = vec![upsert("r0", "p2"), upsert("r1", "p30"), upsert("r2", "p19")];
    produce(&app.orders, &more);
    let (more_inner, more_left) = joins(&more, &table);
    expected_inner.extend(more_inner);
    expected_left.extend(more_left);

    // 6. After a restart only the records the store missed are restored, and joins see them.
    let (mut streams, restores) = app.start(state_dir.path());
    assert_eq!(restores.total("products"), changes.len() as u64, "only the tail: {:?}", restores.of("products"));
    let done = eventually(Duration::from_secs(90), || {
        output_len(&app.inner) >= expected_inner.len() && output_len(&app.left) >= expected_left.len()
    });
    let error = streams.error();
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(done, "no join output after the restart (error {error:?})");
    let inner = support::read_to_end(&app.inner, Isolation::ReadCommitted).unwrap();
    let left = support::read_to_end(&app.left, Isolation::ReadCommitted).unwrap();
    assert_eq!(inner.len(), expected_inner.len(), "exactly once: no duplicate");
    assert_eq!(left.len(), expected_left.len(), "exactly once: no duplicate");
    assert_eq!(output(&app.inner), expected_inner);
    assert_eq!(output(&app.left), expected_left);
    assert_eq!(global_store_contents(state_dir.path(), &app.id), table);
}

/// A global table of rates (currency -> i64, big-endian) whose timestamp extractor gives a rate of
/// 0 the invalid timestamp -1; amounts (currency -> i64) left-joined with it into `out` (amount ×
/// rate, or -amount without a rate).
fn rates_topology(rates: &str, amounts: &str, out: &str) -> kstreams::topology::Topology {
    let builder = StreamsBuilder::new();
    let consumed = Consumed::with(Serdes::string(), Serdes::i64())
        .with_timestamp_extractor(|_: &String, rate: &i64, ts: i64, _pt: i64| if *rate == 0 { -1 } else { ts });
    let table = builder.global_table(rates, consumed, Materialized::as_("rates"));
    builder
        .stream(amounts, Consumed::with(Serdes::string(), Serdes::i64()))
        .left_join_global(&table, |c: &String, _| c.clone(), |a: &i64, r: Option<&i64>| a * r.copied().unwrap_or(-1))
        .to(out, Produced::with(Serdes::string(), Serdes::i64()));
    builder.build().unwrap()
}

fn rates_config(id: &str, state_dir: &Path) -> StreamsConfig {
    StreamsConfig::new()
        .set("application.id", id)
        .set("bootstrap.servers", support::bootstrap())
        .set("commit.interval.ms", "200")
        .set("state.dir", state_dir.to_string_lossy())
}

fn long(v: i64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// Every entry of the global store `rates` on disk, values decoded.
fn rates_on_disk(state_dir: &Path, app: &str) -> BTreeMap<String, i64> {
    let path = state_dir.join(app).join("global").join("rocksdb").join("rates");
    let store = RocksDbKeyValueStore::open("rates", &path, &RocksDbResources::shared_default()).unwrap();
    store
        .all()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (String::from_utf8(k).unwrap(), i64::from_be_bytes(v.as_slice().try_into().unwrap()))
        })
        .collect()
}

#[test]
fn poison_records_of_a_global_topic_go_to_the_dead_letter_topic_during_restore_and_updates() {
    support::require_broker();
    let (rates, amounts, out, dlq) = (
        support::unique_topic("gp-rates"),
        support::unique_topic("gp-amounts"),
        support::unique_topic("gp-out"),
        support::unique_topic("gp-dlq"),
    );
    let _topics = support::create_topics(&[
        TopicSpec::new(&rates, 2),
        TopicSpec::new(&amounts, 1),
        TopicSpec::new(&out, 1),
        TopicSpec::new(&dlq, 1),
    ])
    .unwrap();
    // Before the start: `eur` is a poison pill (restoration meets it), `chf` = 0 gets timestamp -1.
    let before: Vec<(&str, Vec<u8>)> = vec![("usd", long(2)), ("eur", b"not a long".to_vec()), ("chf", long(0))];
    support::produce_keyed(&rates, before).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let id = support::unique_name("gp");
    let _cleanup = support::app_cleanup(&id);
    let cfg = rates_config(&id, state_dir.path())
        .set("default.deserialization.exception.handler", "dead_letter_queue")
        .set("errors.dead.letter.queue.topic.name", &dlq);
    let mut streams = KafkaStreams::new(rates_topology(&rates, &amounts, &out), cfg).unwrap();
    streams.start().unwrap();
    // `start` returned after restoration, which flushed its dead-letter record.
    let dead = support::read_to_end(&dlq, Isolation::ReadUncommitted).unwrap();
    assert_eq!(dead.iter().map(|r| r.key_str()).collect::<Vec<_>>(), ["eur"]);

    // While running: another poison pill, then a valid `eur`.
    support::produce_keyed(&rates, [("gbp", b"bad".to_vec()), ("eur", long(3))]).unwrap();
    let mut n = 0;
    let updated = eventually(Duration::from_secs(60), || {
        support::produce_keyed(&amounts, [("eur", long(1))]).unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(300));
        support::read_to_end(&out, Isolation::ReadUncommitted).unwrap().iter().any(|r| r.value == Some(long(3)))
    });
    assert!(updated, "the valid update after the poison pill never reached the join: {:?}", streams.error());
    support::produce_keyed(&amounts, [("usd", long(10)), ("chf", long(10))]).unwrap();
    let joined = eventually(Duration::from_secs(60), || {
        support::read_to_end(&out, Isolation::ReadUncommitted).map(|r| r.len()).unwrap_or(0) >= n + 2
    });
    assert_eq!(streams.state(), State::Running, "the application keeps running: {:?}", streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(joined, "not every amount was joined");
    let results: BTreeMap<String, i64> = support::read_to_end(&out, Isolation::ReadUncommitted)
        .unwrap()
        .iter()
        .filter(|r| r.key_str() != "eur")
        .map(|r| (r.key_str(), i64::from_be_bytes(r.value.clone().unwrap().try_into().unwrap())))
        .collect();
    // usd: 10 × 2; chf was never stored (negative timestamp): -10.
    assert_eq!(results, BTreeMap::from([("chf".to_string(), -10), ("usd".to_string(), 20)]));

    let dead = support::read_to_end(&dlq, Isolation::ReadUncommitted).unwrap();
    assert_eq!(dead.iter().map(|r| r.key_str()).collect::<Vec<_>>(), ["eur", "gbp"]);
    for r in &dead {
        let header = |name: &str| r.header_str(name);
        assert_eq!(header("__streams.errors.topic").as_deref(), Some(rates.as_str()));
        assert_eq!(header("__streams.errors.exception").as_deref(), Some("DeserializationException"));
        assert!(header("__streams.errors.partition").is_some() && header("__streams.errors.offset").is_some());
    }
    assert_eq!(dead[0].value.as_deref(), Some(&b"not a long"[..]), "the original bytes are kept");
    assert_eq!(rates_on_disk(state_dir.path(), &id), BTreeMap::from([("eur".to_string(), 3), ("usd".to_string(), 2)]));
}

#[test]
fn a_poison_record_met_while_restoring_a_global_table_fails_the_start_under_log_and_fail() {
    support::require_broker();
    let (rates, amounts, out) =
        (support::unique_topic("gf-rates"), support::unique_topic("gf-amounts"), support::unique_topic("gf-out"));
    let _topics =
        support::create_topics(&[TopicSpec::new(&rates, 1), TopicSpec::new(&amounts, 1), TopicSpec::new(&out, 1)])
            .unwrap();
    support::produce_keyed(&rates, [("usd", long(2)), ("eur", b"not a long".to_vec())]).unwrap();
    let app_id = support::unique_name("gf");
    let _cleanup = support::app_cleanup(&app_id);
    let state_dir = tempfile::tempdir().unwrap();
    let cfg = rates_config(&app_id, state_dir.path());
    let mut streams = KafkaStreams::new(rates_topology(&rates, &amounts, &out), cfg).unwrap();
    let error = streams.start().expect_err("the default handler is log_and_fail").to_string();
    // The poison pill is at offset 1 of the only partition.
    assert!(error.contains(&format!("the value of the record at {rates}-0@1")), "{error}");
    let _ = streams.close(Duration::from_secs(30));
}

#[test]
fn poison_records_of_a_global_topic_are_skipped_under_log_and_continue() {
    support::require_broker();
    let (rates, amounts, out) =
        (support::unique_topic("gc-rates"), support::unique_topic("gc-amounts"), support::unique_topic("gc-out"));
    let _topics =
        support::create_topics(&[TopicSpec::new(&rates, 1), TopicSpec::new(&amounts, 1), TopicSpec::new(&out, 1)])
            .unwrap();
    support::produce_keyed(&rates, [("usd", long(2)), ("eur", b"bad".to_vec()), ("gbp", long(5))]).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let id = support::unique_name("gc");
    let _cleanup = support::app_cleanup(&id);
    let cfg = rates_config(&id, state_dir.path()).set("default.deserialization.exception.handler", "log_and_continue");
    let mut streams = KafkaStreams::new(rates_topology(&rates, &amounts, &out), cfg).unwrap();
    streams.start().unwrap();
    support::produce_keyed(&rates, [("usd", b"bad again".to_vec())]).unwrap();
    support::produce_keyed(&amounts, [("usd", long(10)), ("eur", long(10)), ("gbp", long(10))]).unwrap();
    let joined = eventually(Duration::from_secs(60), || {
        support::read_to_end(&out, Isolation::ReadUncommitted).map(|r| r.len()).unwrap_or(0) >= 3
    });
    assert_eq!(streams.state(), State::Running, "{:?}", streams.error());
    streams.close(Duration::from_secs(30)).unwrap();
    assert!(joined);
    let results: Vec<(String, i64)> = support::read_to_end(&out, Isolation::ReadUncommitted)
        .unwrap()
        .iter()
        .map(|r| (r.key_str(), i64::from_be_bytes(r.value.clone().unwrap().try_into().unwrap())))
        .collect();
    // The bad usd update was skipped: usd keeps 2; eur was never stored.
    assert_eq!(results, [("usd".to_string(), 20), ("eur".to_string(), -10), ("gbp".to_string(), 50)]);
    assert_eq!(rates_on_disk(state_dir.path(), &id), BTreeMap::from([("gbp".to_string(), 5), ("usd".to_string(), 2)]));
}
