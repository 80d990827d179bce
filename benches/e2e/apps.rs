//! The processes under test on the kstreams side: the S1–S5 topologies (exactly the Java peer's,
//! see `benches/peer-java/README.md`) and the S0 ceilings, plain librdkafka with no framework.
//!
//! The harness starts the bench binary again with `KSTREAMS_BENCH_APP=<kind>` and the settings in
//! `BENCH_*` variables; the process runs until SIGTERM, then closes cleanly and exits 0.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kstreams::dsl::{Consumed, Grouped, Joined, Materialized, Produced, Repartitioned, StreamsBuilder, TimeWindows};
use kstreams::runtime::{KafkaStreams, State, StreamsConfig};
use kstreams::serde::Serdes;
use kstreams::windowed::Windowed;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The variable that turns the bench binary into a process under test.
pub const APP_ENV: &str = "KSTREAMS_BENCH_APP";

/// S5's grace (as the peer's): far longer than the inputs' event-time span, so nothing is late.
pub const S5_GRACE: Duration = Duration::from_secs(3600);

/// The settings a child reads from its environment.
pub struct ChildEnv {
    pub bootstrap: String,
    pub app_id: String,
    pub input: String,
    pub output: String,
    pub table: String,
    pub guarantee: String,
    pub commit_ms: String,
    pub state_dir: String,
}

impl ChildEnv {
    fn read() -> ChildEnv {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        ChildEnv {
            bootstrap: var("BENCH_BOOTSTRAP"),
            app_id: var("BENCH_APP_ID"),
            input: var("BENCH_INPUT"),
            output: var("BENCH_OUTPUT"),
            table: var("BENCH_TABLE"),
            guarantee: var("BENCH_GUARANTEE"),
            commit_ms: var("BENCH_COMMIT_MS"),
            state_dir: var("BENCH_STATE_DIR"),
        }
    }

    /// The variables for a child with these settings.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BENCH_BOOTSTRAP", self.bootstrap.clone()),
            ("BENCH_APP_ID", self.app_id.clone()),
            ("BENCH_INPUT", self.input.clone()),
            ("BENCH_OUTPUT", self.output.clone()),
            ("BENCH_TABLE", self.table.clone()),
            ("BENCH_GUARANTEE", self.guarantee.clone()),
            ("BENCH_COMMIT_MS", self.commit_ms.clone()),
            ("BENCH_STATE_DIR", self.state_dir.clone()),
        ]
    }
}

/// Runs the child `kind` (`S1`..`S5`, `s0-consume`, `s0-produce`, `s0-txn`); returns the exit code.
pub fn run_child(kind: &str) -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(std::env::var("BENCH_APP_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let env = ChildEnv::read();
    let stop = sigterm_flag();
    let result = match kind {
        "s0-consume" => ceiling_consume(&env, &stop),
        "s0-produce" => ceiling_produce(&env, &stop, false),
        "s0-txn" => ceiling_produce(&env, &stop, true),
        scenario => run_streams(scenario, &env, &stop),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench app {kind}: {e}");
            2
        }
    }
}

/// A flag raised by SIGTERM.
fn sigterm_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("signal runtime");
        runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            let _ = ready_tx.send(());
            term.recv().await;
            raised.store(true, Ordering::SeqCst);
        });
    });
    let _ = ready_rx.recv();
    flag
}

/// 16 bytes: the key then the window start, both big-endian (the peer's windowed output key).
fn windowed_key(wk: &Windowed<i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&wk.key.to_be_bytes());
    out.extend_from_slice(&wk.window.start.to_be_bytes());
    out
}

/// S4's joiner: the stream value, then the first 8 bytes of the table value if there is one.
fn join_value(mut v: Vec<u8>, t: Option<Vec<u8>>) -> Vec<u8> {
    if let Some(t) = t {
        v.extend_from_slice(&t[..t.len().min(8)]);
    }
    v
}

/// Builds the topology of `scenario`, as `Peer.buildTopology` does.
pub fn topology(scenario: &str, env: &ChildEnv) -> Result<kstreams::topology::Topology, String> {
    let b = StreamsBuilder::new();
    let input = b.stream(&env.input, Consumed::with(Serdes::i64(), Serdes::bytes()));
    let out = env.output.as_str();
    match scenario {
        "S1" => input
            .filter(|_, v: &Vec<u8>| v.first().is_some_and(|b| *b != 0))
            .map_values(|mut v: Vec<u8>| {
                v.reverse();
                v
            })
            .to(out, Produced::with(Serdes::i64(), Serdes::bytes())),
        "S2" => input
            .group_by_key(Grouped::with(Serdes::i64(), Serdes::bytes()))
            .count(
                Materialized::as_("counts")
                    .with_key_serde(Serdes::i64())
                    .with_value_serde(Serdes::i64())
                    .with_caching_disabled(),
            )
            .to_stream()
            .to(out, Produced::with(Serdes::i64(), Serdes::nullable(Serdes::i64()))),
        "S3" => input
            .group_by_key(Grouped::with(Serdes::i64(), Serdes::bytes()))
            .windowed_by(
                TimeWindows::of_size_with_no_grace(Duration::from_secs(1)).advance_by(Duration::from_millis(500)),
            )
            .count(Materialized::with(Serdes::i64(), Serdes::i64()).with_caching_disabled())
            .to_stream()
            .map(|wk, count| (windowed_key(&wk), count))
            .to(out, Produced::with(Serdes::bytes(), Serdes::nullable(Serdes::i64()))),
        "S4" => {
            let table = b.table(
                &env.table,
                Consumed::with(Serdes::i64(), Serdes::bytes()),
                Materialized::as_("table")
                    .with_key_serde(Serdes::i64())
                    .with_value_serde(Serdes::bytes())
                    .with_caching_disabled(),
            );
            input
                .left_join(&table, join_value, Joined::with(Serdes::i64(), Serdes::bytes(), Serdes::bytes()))
                .to(out, Produced::with(Serdes::i64(), Serdes::bytes()))
        }
        "S5" => input
            .select_key(|k: &i64, _| k / 7)
            // Serdes: the builder's defaults for i64 and bytes, the peer's Long / ByteArray.
            .repartition(Repartitioned::as_("rekey"))
            .group_by_key(Grouped::with(Serdes::i64(), Serdes::bytes()))
            .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(10), S5_GRACE))
            .count(Materialized::with(Serdes::i64(), Serdes::i64()).with_caching_disabled())
            .to_stream()
            .map(|wk, count| (windowed_key(&wk), count))
            .to(out, Produced::with(Serdes::bytes(), Serdes::nullable(Serdes::i64()))),
        other => return Err(format!("unknown scenario {other}")),
    }
    b.build().map_err(|e| format!("topology {scenario}: {e}"))
}

/// Runs a kstreams app until SIGTERM.
fn run_streams(scenario: &str, env: &ChildEnv, stop: &AtomicBool) -> Result<(), String> {
    let topology = topology(scenario, env)?;
    let config = StreamsConfig::new()
        .set("application.id", &env.app_id)
        .set("bootstrap.servers", &env.bootstrap)
        .set("processing.guarantee", &env.guarantee)
        .set("commit.interval.ms", &env.commit_ms)
        .set("num.stream.threads", "1")
        .set("statestore.cache.max.bytes", "0")
        .set("replication.factor", "1")
        .set("state.dir", &env.state_dir)
        .set("consumer.auto.offset.reset", "earliest");
    // Extra settings for experiments, `name=value;name=value` (e.g. librdkafka queue sizes).
    let extra = std::env::var("BENCH_KSTREAMS_CONFIG").unwrap_or_default();
    let config =
        extra.split(';').filter_map(|kv| kv.split_once('=')).fold(config, |c, (k, v)| c.set(k.trim(), v.trim()));
    let mut app = KafkaStreams::new(topology, config).map_err(|e| format!("config: {e}"))?;
    let announced = Arc::new(AtomicBool::new(false));
    let flag = announced.clone();
    app.set_state_listener(move |_, new| {
        if new == State::Running && !flag.swap(true, Ordering::SeqCst) {
            println!("APP RUNNING");
        }
    });
    app.start().map_err(|e| format!("start: {e}"))?;
    while !stop.load(Ordering::SeqCst) {
        if app.state() == State::Error {
            return Err(format!("kstreams failed: {}", app.error().unwrap_or_default()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    app.close(Duration::from_secs(30)).map_err(|e| format!("close: {e}"))?;
    println!("APP STOPPED");
    Ok(())
}

fn consumer(env: &ChildEnv, auto_commit: bool, read_committed: bool) -> Result<BaseConsumer, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .set("group.id", &env.app_id)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", if auto_commit { "true" } else { "false" })
        .set("auto.commit.interval.ms", "100")
        .set("isolation.level", if read_committed { "read_committed" } else { "read_uncommitted" })
        // kstreams' stream-thread defaults, so the ceiling is measured with the same queues.
        .set("queued.max.messages.kbytes", "2048")
        .set("fetch.queue.backoff.ms", "5")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    consumer.subscribe(&[&env.input]).map_err(|e| format!("subscribe {}: {e}", env.input))?;
    Ok(consumer)
}

/// S0, consume only: reads everything, touches each value, commits every 100 ms (auto-commit).
fn ceiling_consume(env: &ChildEnv, stop: &AtomicBool) -> Result<(), String> {
    let consumer = consumer(env, true, false)?;
    println!("APP RUNNING");
    let mut sum = 0u64;
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => sum = sum.wrapping_add(m.payload().map_or(0, |p| p.len() as u64)),
            Some(Err(e)) => tracing::warn!(%e, "poll"),
            None => {}
        }
    }
    let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
    println!("APP STOPPED {sum}");
    Ok(())
}

/// S0, consume → produce (optionally in transactions committed with the offsets every 100 ms).
fn ceiling_produce(env: &ChildEnv, stop: &AtomicBool, transactional: bool) -> Result<(), String> {
    let consumer = consumer(env, !transactional, transactional)?;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &env.bootstrap).set("linger.ms", "100").set("queue.buffering.max.kbytes", "16384");
    if transactional {
        config.set("transactional.id", format!("{}-txn", env.app_id));
    }
    let producer: BaseProducer = config.create().map_err(|e| format!("producer: {e}"))?;
    let timeout = Duration::from_secs(30);
    if transactional {
        producer.init_transactions(timeout).map_err(|e| format!("init_transactions: {e}"))?;
        producer.begin_transaction().map_err(|e| format!("begin_transaction: {e}"))?;
    }
    println!("APP RUNNING");
    let mut last_commit = Instant::now();
    let mut positions: std::collections::BTreeMap<i32, i64> = Default::default();
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(m)) => {
                let mut record = BaseRecord::<[u8], [u8]>::to(&env.output)
                    .key(m.key().unwrap_or_default())
                    .payload(m.payload().unwrap_or_default())
                    .timestamp(m.timestamp().to_millis().unwrap_or(0));
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((_, r)) => {
                            producer.poll(Duration::from_millis(5));
                            record = r;
                        }
                    }
                }
                positions.insert(m.partition(), m.offset() + 1);
            }
            Some(Err(e)) => tracing::warn!(%e, "poll"),
            None => {}
        }
        producer.poll(Duration::ZERO);
        if transactional && last_commit.elapsed() >= Duration::from_millis(100) {
            commit_transaction(&producer, &consumer, &env.input, &positions, timeout)?;
            last_commit = Instant::now();
        }
    }
    if transactional {
        commit_transaction(&producer, &consumer, &env.input, &positions, timeout)?;
    } else {
        flush_now(&producer, timeout)?;
    }
    println!("APP STOPPED");
    Ok(())
}

/// Flushes without waiting for `linger.ms`, as kstreams' commit does (rdkafka's `flush`, called by
/// `commit_transaction` too, calls `rd_kafka_flush` with 0 ms, which ends before the broker threads
/// see it, so every round waits for the linger): `rd_kafka_flush` calls of 5 ms, serving delivery
/// reports in between.
fn flush_now(producer: &BaseProducer, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: the pointer is the producer's live librdkafka handle.
        let err = unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), 5) };
        if err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Ok(());
        }
        producer.poll(Duration::from_millis(1));
        if producer.in_flight_count() == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("flush: timed out ({err:?})"));
        }
    }
}

fn commit_transaction(
    producer: &BaseProducer,
    consumer: &BaseConsumer,
    topic: &str,
    positions: &std::collections::BTreeMap<i32, i64>,
    timeout: Duration,
) -> Result<(), String> {
    let mut offsets = TopicPartitionList::new();
    for (p, o) in positions {
        offsets.add_partition_offset(topic, *p, Offset::Offset(*o)).map_err(|e| format!("offsets: {e}"))?;
    }
    let group = consumer.group_metadata().ok_or("no consumer group metadata")?;
    producer.send_offsets_to_transaction(&offsets, &group, timeout).map_err(|e| format!("send offsets: {e}"))?;
    flush_now(producer, timeout)?;
    producer.commit_transaction(timeout).map_err(|e| format!("commit_transaction: {e}"))?;
    producer.begin_transaction().map_err(|e| format!("begin_transaction: {e}"))
}
