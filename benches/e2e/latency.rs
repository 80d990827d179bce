//! Fixed-rate mode: end-to-end latency seen by an external read_committed consumer.
//!
//! Once the process under test runs, a producer writes `rate` records/s for `secs` seconds to a
//! fresh input topic, each stamped with the wall clock at send; a consumer reads the output and
//! takes `now - record timestamp` for each record (both frameworks keep the input timestamp on
//! S1's and S2's output).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::kafka::Res;
use crate::loader::{bulk_producer, event_key, send, value, PARTITIONS};
use crate::run::{child_env, cleanup, side_label, Guarantee, Process, Scenario, Side, Workspace};

/// Latency percentiles of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    pub records: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs `side` on `kind` (S1 or S2) at `rate` records/s for `secs` and measures latency.
pub fn measure(ws: &Workspace, side: Side, kind: &str, guarantee: Guarantee, rate: u64, secs: u64) -> Res<Latency> {
    let app_id = ws.next_app_id(&format!("lat-{kind}-{}-{}", guarantee.short(), side_label(side)));
    let (input, output) = (format!("{app_id}-in"), format!("{app_id}-out"));
    ws.admin.create(&[(input.as_str(), PARTITIONS), (output.as_str(), PARTITIONS)])?;
    let scenario = Scenario {
        id: kind.to_string(),
        kind: kind.to_string(),
        input: input.clone(),
        records: rate * secs,
        table: None,
        expected_output: 0,
    };
    let env = child_env(ws, &scenario, guarantee, &app_id, &output);
    let log = ws.out_dir.join("logs").join(format!("{app_id}.log"));
    let result = measure_inner(ws, side, &scenario, &env, &log, rate, secs);
    cleanup(ws, &app_id, &output, Path::new(&env.state_dir));
    result.map_err(|e| format!("{e} (log: {})", log.display()))
}

fn measure_inner(
    ws: &Workspace,
    side: Side,
    scenario: &Scenario,
    env: &crate::apps::ChildEnv,
    log: &Path,
    rate: u64,
    secs: u64,
) -> Res<Latency> {
    let mut process = Process::spawn(ws, side, scenario, env, log)?;
    let running = process.wait_running(Duration::from_secs(90));
    if let Err(e) = running {
        let _ = process.stop();
        return Err(e);
    }
    // Let the first assignment settle before the clock starts.
    std::thread::sleep(Duration::from_secs(3));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &ws.bootstrap)
        .set("group.id", format!("{}-latency", env.app_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "5")
        .create()
        .map_err(|e| format!("latency consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&env.output, p, Offset::Beginning).map_err(|e| format!("assignment: {e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;

    let total = rate * secs;
    let expected = if scenario.kind == "S1" { (0..total).filter(|i| value(*i)[0] != 0).count() as u64 } else { total };
    let (bootstrap, input) = (ws.bootstrap.clone(), env.input.clone());
    let producer_thread = std::thread::spawn(move || -> Res<()> {
        let producer = bulk_producer(&bootstrap)?;
        let started = Instant::now();
        let tick = Duration::from_millis(10);
        let per_tick = (rate / 100).max(1);
        let mut sent = 0;
        let mut next = started;
        while sent < total {
            for _ in 0..per_tick.min(total - sent) {
                let key = event_key(sent);
                send(&producer, &input, key.rem_euclid(i64::from(PARTITIONS)) as i32, key, &value(sent), now_ms());
                sent += 1;
            }
            next += tick;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        producer.flush(Duration::from_secs(30)).map_err(|e| format!("latency producer flush: {e}"))
    });

    let mut latencies: Vec<i64> = Vec::with_capacity(expected as usize);
    let deadline = Instant::now() + Duration::from_secs(secs + 120);
    while (latencies.len() as u64) < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let sent = m.timestamp().to_millis().unwrap_or(0);
                latencies.push(now_ms() - sent);
            }
            Some(Err(e)) => tracing::warn!(%e, "latency consumer"),
            None => {}
        }
    }
    let produced = producer_thread.join().map_err(|_| "the latency producer panicked".to_string())?;
    let stopped = process.stop();
    produced?;
    stopped?;
    if (latencies.len() as u64) < expected {
        return Err(format!("only {} of {expected} output records arrived", latencies.len()));
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize] as f64;
    Ok(Latency { records: latencies.len() as u64, p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: pct(1.0) })
}
