//! Whole applications as separate processes on the real broker, killed, paused and scaled by the test,
//! modelled on Kafka's own `streams_eos_test` and `streams_broker_bounce_test`.
//!
//! The app under test ([`child`]) reads keyed integers and writes four outputs: `echo` (every input
//! as is), `sum` and `max` (running sum and maximum per key, each in a logged RocksDB key-value store)
//! and `win` (a count per key and 1 s tumbling window, in a logged RocksDB window store). The input
//! holds, per key, the values 0, 1, 2, … in order, so the outputs are fully predictable: under
//! exactly-once each key's committed `echo` is exactly 0..n, its `sum` exactly the prefix sums, its
//! `max` exactly 0..n again, and each of its windows counts exactly 1, 2, … up, the windows' last
//! counts adding up to n — a lost, duplicated or wrongly restored update breaks the sequence.
//!
//! This file has its own `main` (`harness = false`): started with `KSTREAMS_TEST_APP=eos` it *is* the
//! app; otherwise it runs the scenarios, each of which starts the app as child processes of the
//! current executable. `cargo test --test processes -- <filter>` runs the scenarios whose name
//! contains `<filter>`.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Isolation, Outgoing, TopicSpec};

const KEYS: usize = 10;
const PARTITIONS: i32 = 3;

// ---------------------------------------------------------------------------------------------
// The app under test (runs in the child process)
// ---------------------------------------------------------------------------------------------

mod child {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::time::Duration;

    use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder, TimeWindows};
    use kstreams::runtime::{KafkaStreams, State, StreamsConfig};
    use kstreams::serde::Serdes;
    use kstreams::state::RestoreListener;

    struct PrintRestores;

    impl RestoreListener for PrintRestores {
        fn on_restore_end(&self, _topic: &str, partition: i32, store: &str, total: u64) {
            println!("RESTORED {store} {partition} {total}");
        }
    }

    fn env(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| panic!("the test app needs {name}"))
    }

    /// Runs until its stdin closes (then closes cleanly and exits 0) or the app fails (exit 2).
    pub fn run() {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(std::env::var("APP_LOG").unwrap_or_else(|_| "warn".into()))
            .try_init();
        let (input, prefix) = (env("INPUT"), env("PREFIX"));
        let builder = StreamsBuilder::new();
        let data = builder.stream(&input, Consumed::with(Serdes::string(), Serdes::i32()));
        data.to(&format!("{prefix}-echo"), Produced::default());
        let grouped = data.group_by_key(Default::default());
        grouped
            .reduce(|a, b| a + b, Materialized::as_("sum"))
            .to_stream()
            .to(&format!("{prefix}-sum"), Produced::with(Serdes::string(), Serdes::nullable(Serdes::i32())));
        grouped
            .reduce(|a: i32, b: i32| a.max(b), Materialized::as_("max"))
            .to_stream()
            .to(&format!("{prefix}-max"), Produced::with(Serdes::string(), Serdes::nullable(Serdes::i32())));
        grouped
            .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(1)))
            .count(Materialized::as_("win"))
            .to_stream()
            .to(
                &format!("{prefix}-win"),
                Produced::with(Serdes::time_windowed(Serdes::string(), 1_000), Serdes::nullable(Serdes::i64())),
            );
        let guarantee = env("GUARANTEE");
        let commit = if guarantee == "exactly_once_v2" { "100" } else { "500" };
        let mut config = StreamsConfig::new()
            .set("application.id", env("APP_ID"))
            .set("bootstrap.servers", env("BOOTSTRAP"))
            .set("processing.guarantee", &guarantee)
            .set("commit.interval.ms", commit)
            .set("state.dir", env("STATE_DIR"))
            .set("consumer.session.timeout.ms", "6000")
            .set("consumer.heartbeat.interval.ms", "1000");
        if let Ok(id) = std::env::var("INSTANCE_ID") {
            config = config.set("group.instance.id", id);
        }
        let topology = builder.build().expect("topology");
        let mut app = KafkaStreams::new(topology, config).expect("config");
        app.set_global_state_restore_listener(Arc::new(PrintRestores));
        app.set_state_listener(|_, new| println!("STATE {new:?}"));
        app.start().expect("start");
        // The parent closes stdin to ask for a clean stop.
        let watcher = std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        });
        while !watcher.is_finished() {
            if app.state() == State::Error {
                println!("ERROR {}", app.error().unwrap_or_default());
                let _ = std::io::stdout().flush();
                std::process::exit(2);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        app.close(Duration::from_secs(60)).expect("close");
        println!("CLOSED");
        let _ = std::io::stdout().flush();
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the app from the test
// ---------------------------------------------------------------------------------------------

/// One test-app process and the lines it printed.
struct AppProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

struct Setup {
    app_id: String,
    input: String,
    prefix: String,
    guarantee: &'static str,
    _topics: support::Topics,
}

impl Setup {
    fn new(name: &str, guarantee: &'static str) -> Setup {
        let app_id = support::unique_name(name);
        let input = format!("{app_id}-data");
        let prefix = app_id.clone();
        let outputs = ["echo", "sum", "max", "win"].map(|o| format!("{prefix}-{o}"));
        let mut specs = vec![TopicSpec::new(&input, PARTITIONS)];
        specs.extend(outputs.iter().map(|o| TopicSpec::new(o, PARTITIONS)));
        let topics = support::create_topics(&specs).expect("create topics");
        Setup { app_id, input, prefix, guarantee, _topics: topics }
    }

    fn spawn(&self, name: &str, state_dir: &Path, instance_id: Option<&str>) -> AppProcess {
        let exe = std::env::current_exe().expect("test executable");
        let mut cmd = Command::new(exe);
        cmd.env("KSTREAMS_TEST_APP", "eos")
            .env("INPUT", &self.input)
            .env("PREFIX", &self.prefix)
            .env("APP_ID", &self.app_id)
            .env("BOOTSTRAP", support::bootstrap())
            .env("GUARANTEE", self.guarantee)
            .env("STATE_DIR", state_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(id) = instance_id {
            cmd.env("INSTANCE_ID", id);
        }
        let mut child = cmd.spawn().expect("spawn the test app");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let tag = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("  [{tag}] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        AppProcess { name: name.to_string(), child, stdin, lines }
    }

    fn read(&self, output: &str) -> Vec<support::Record> {
        support::read_to_end(&format!("{}-{output}", self.prefix), Isolation::ReadCommitted).expect("read output")
    }

    fn cleanup(&self) {
        let internal: Vec<String> =
            ["sum", "max", "win"].iter().map(|s| format!("{}-{s}-changelog", self.app_id)).collect();
        let _ = support::delete_topics(&internal.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

impl AppProcess {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn wait_for_line(&self, what: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.lines().iter().any(|l| l.contains(what)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// SIGKILL: no commit, no close, no checkpoint.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        eprintln!("  [{}] killed", self.name);
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} failed");
    }

    /// Asks for a clean stop (stdin closes) and waits for the exit; returns the exit code.
    fn stop(mut self) -> Option<i32> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("  [{}] exited: {status}", self.name);
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not stop within 90 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Writes, per key `k0..k9`, the values 0, 1, 2, … in order until stopped; returns how many values
/// each key got.
struct InputWriter {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<i32>>,
}

impl InputWriter {
    fn start(topic: &str, per_second: u64) -> InputWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, topic) = (stop.clone(), topic.to_string());
        let handle = std::thread::spawn(move || {
            let producer = support::producer().expect("producer");
            let mut next = vec![0i32; KEYS];
            let pause = Duration::from_micros(1_000_000 / per_second.max(1));
            let mut i = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let k = i % KEYS;
                let key = format!("k{k}");
                let value = next[k].to_be_bytes();
                support::send(
                    &producer,
                    &topic,
                    &Outgoing { key: Some(key.as_bytes()), value: Some(&value), ..Outgoing::default() },
                )
                .expect("send input");
                next[k] += 1;
                i += 1;
                producer.poll(Duration::ZERO);
                std::thread::sleep(pause);
            }
            support::flush(&producer).expect("flush input");
            next
        });
        InputWriter { stop, handle }
    }

    fn finish(self) -> Vec<i32> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("input writer")
    }
}

/// Per key, the values of `records` in offset order (each key lives in one partition).
fn per_key(records: &[support::Record]) -> BTreeMap<String, Vec<i32>> {
    let mut sorted: Vec<&support::Record> = records.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for r in sorted {
        let value = r.value.as_deref().and_then(|v| <[u8; 4]>::try_from(v).ok()).map(i32::from_be_bytes);
        out.entry(r.key_str()).or_default().push(value.unwrap_or(i32::MIN));
    }
    out
}

fn expected_sequences(counts: &[i32]) -> [BTreeMap<String, Vec<i32>>; 3] {
    let mut echo = BTreeMap::new();
    let mut sum = BTreeMap::new();
    for (k, &n) in counts.iter().enumerate() {
        let values: Vec<i32> = (0..n).collect();
        let mut running = 0;
        sum.insert(
            format!("k{k}"),
            values
                .iter()
                .map(|v| {
                    running += v;
                    running
                })
                .collect(),
        );
        echo.insert(format!("k{k}"), values);
    }
    [echo.clone(), sum, echo]
}

/// 2 to 6 seconds, so kills land at different points of the commit cycle from run to run.
fn random_pause() -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(2_000 + u64::from(nanos) % 4_000)
}

/// Waits until `echo` holds every input value, then checks all four outputs, and that no
/// transaction is left open on them (last stable offset = high watermark).
fn verify_exactly_once(setup: &Setup, counts: &[i32]) {
    let total: usize = counts.iter().map(|&n| n as usize).sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while setup.read("echo").len() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    for output in ["echo", "sum", "max", "win"] {
        let topic = format!("{}-{output}", setup.prefix);
        support::await_stable(&topic, Duration::from_secs(30)).expect("no open transaction on the outputs");
    }
    let [echo, sum, max] = expected_sequences(counts);
    for (output, expected) in [("echo", echo), ("sum", sum), ("max", max)] {
        let actual = per_key(&setup.read(output));
        for (key, want) in &expected {
            let got = actual.get(key).cloned().unwrap_or_default();
            if &got != want {
                let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
                let around = |v: &[i32]| v[at.saturating_sub(3)..(at + 3).min(v.len())].to_vec();
                panic!(
                    "`{output}` of {key}: expected {} values, got {}; first difference at {at}: expected {:?}, got {:?}",
                    want.len(),
                    got.len(),
                    around(want),
                    around(&got)
                );
            }
        }
    }
    verify_window_counts(&setup.read("win"), counts);
}

/// Each (key, window) of `win` counts 1, 2, 3, … in offset order, and the windows' last counts of a
/// key add up to the number of its inputs.
fn verify_window_counts(records: &[support::Record], counts: &[i32]) {
    let mut sorted: Vec<&support::Record> = records.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut windows: BTreeMap<Vec<u8>, Vec<i64>> = BTreeMap::new();
    for r in sorted {
        let count = r.value.as_deref().and_then(|v| <[u8; 8]>::try_from(v).ok()).map_or(i64::MIN, i64::from_be_bytes);
        windows.entry(r.key.clone().unwrap_or_default()).or_default().push(count);
    }
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for (key, seq) in &windows {
        let name = String::from_utf8_lossy(&key[..key.len().saturating_sub(8)]).into_owned();
        let want: Vec<i64> = (1..=seq.len() as i64).collect();
        assert_eq!(seq, &want, "`win` counts of {name} in window {:?}", key.get(key.len().saturating_sub(8)..));
        *totals.entry(name).or_default() += seq.len() as i64;
    }
    for (k, &n) in counts.iter().enumerate() {
        assert_eq!(totals.get(&format!("k{k}")).copied().unwrap_or(0), i64::from(n), "`win` total of k{k}");
    }
}

/// Every input value is in `echo` at least once and each key's last max is its largest value.
fn verify_at_least_once(setup: &Setup, counts: &[i32]) {
    let total: usize = counts.iter().map(|&n| n as usize).sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while setup.read("echo").len() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    let echo = per_key(&setup.read("echo"));
    let max = per_key(&setup.read("max"));
    for (k, &n) in counts.iter().enumerate() {
        let key = format!("k{k}");
        let seen: std::collections::BTreeSet<i32> = echo.get(&key).into_iter().flatten().copied().collect();
        assert_eq!(seen, (0..n).collect(), "`echo` of {key} lost values");
        assert_eq!(max.get(&key).and_then(|m| m.last()).copied(), Some(n - 1), "last `max` of {key}");
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// SIGKILL in the middle of commit intervals, three times, under exactly-once: the outputs hold each
/// input's effect exactly once, and the restarted instance resumes its RocksDB stores from their last
/// committed point instead of wiping and re-reading the whole changelog.
fn exactly_once_survives_sigkill() {
    let setup = Setup::new("eos-kill", "exactly_once_v2");
    let state = tempfile::tempdir().unwrap();
    let writer = InputWriter::start(&setup.input, 300);
    let mut app = setup.spawn("a1", state.path(), None);
    let mut restarts = Vec::new();
    for round in 2..=4 {
        assert!(app.wait_for_line("STATE Running", Duration::from_secs(60)), "app never ran");
        std::thread::sleep(random_pause());
        app.kill();
        let changelog: u64 = ["sum", "max", "win"]
            .iter()
            .map(|s| {
                let topic = format!("{}-{s}-changelog", setup.app_id);
                support::read_to_end(&topic, Isolation::ReadCommitted).map(|r| r.len() as u64).unwrap_or(0)
            })
            .sum();
        app = setup.spawn(&format!("a{round}"), state.path(), None);
        assert!(app.wait_for_line("STATE Running", Duration::from_secs(60)), "restarted app never ran");
        restarts.push((changelog, app.lines.clone()));
    }
    std::thread::sleep(Duration::from_secs(3));
    let counts = writer.finish();
    verify_exactly_once(&setup, &counts);
    assert_eq!(app.stop(), Some(0));
    for (changelog, lines) in restarts {
        // Lines `RESTORED <store> <partition> <records>`.
        let restored: u64 = lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("RESTORED ")?.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        eprintln!("  restart restored {restored} of {changelog} committed changelog records");
        assert!(changelog > 300, "the stores had a real changelog ({changelog} records)");
        assert!(restored * 4 < changelog, "a restart read {restored} of {changelog} changelog records: a full restore");
    }
    setup.cleanup();
}

/// SIGKILL under at-least-once: nothing is lost.
fn at_least_once_survives_sigkill() {
    let setup = Setup::new("alos-kill", "at_least_once");
    let state = tempfile::tempdir().unwrap();
    let writer = InputWriter::start(&setup.input, 300);
    let mut app = setup.spawn("a1", state.path(), None);
    for round in 2..=3 {
        assert!(app.wait_for_line("STATE Running", Duration::from_secs(60)), "app never ran");
        std::thread::sleep(random_pause());
        app.kill();
        app = setup.spawn(&format!("a{round}"), state.path(), None);
    }
    assert!(app.wait_for_line("STATE Running", Duration::from_secs(60)), "app never ran");
    std::thread::sleep(Duration::from_secs(3));
    let counts = writer.finish();
    verify_at_least_once(&setup, &counts);
    assert_eq!(app.stop(), Some(0));
    setup.cleanup();
}

/// One instance, then three, then one again, while input flows; exactly-once throughout.
fn scale_out_and_back_in() {
    let setup = Setup::new("eos-scale", "exactly_once_v2");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let writer = InputWriter::start(&setup.input, 300);
    let a = setup.spawn("a", dirs[0].path(), None);
    assert!(a.wait_for_line("STATE Running", Duration::from_secs(60)), "a never ran");
    std::thread::sleep(Duration::from_secs(3));
    let b = setup.spawn("b", dirs[1].path(), None);
    let c = setup.spawn("c", dirs[2].path(), None);
    // b and c only restore once the group gave them tasks with stores.
    assert!(b.wait_for_line("RESTORED", Duration::from_secs(60)), "b never got a task");
    assert!(c.wait_for_line("RESTORED", Duration::from_secs(60)), "c never got a task");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(b.stop(), Some(0));
    assert_eq!(c.stop(), Some(0));
    std::thread::sleep(Duration::from_secs(4));
    let counts = writer.finish();
    verify_exactly_once(&setup, &counts);
    assert_eq!(a.stop(), Some(0));
    setup.cleanup();
}

/// An instance frozen (SIGSTOP) past its session timeout loses its tasks to another instance; when it
/// wakes up, its open transaction must not reach the output.
fn a_zombie_is_fenced() {
    let setup = Setup::new("eos-zombie", "exactly_once_v2");
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let writer = InputWriter::start(&setup.input, 300);
    let zombie = setup.spawn("zombie", dirs[0].path(), None);
    assert!(zombie.wait_for_line("STATE Running", Duration::from_secs(60)), "zombie never ran");
    std::thread::sleep(Duration::from_secs(3));
    zombie.signal("STOP");
    let heir = setup.spawn("heir", dirs[1].path(), None);
    assert!(heir.wait_for_line("RESTORED", Duration::from_secs(60)), "the heir never got the tasks");
    std::thread::sleep(Duration::from_secs(8));
    zombie.signal("CONT");
    std::thread::sleep(Duration::from_secs(6));
    let counts = writer.finish();
    verify_exactly_once(&setup, &counts);
    // The zombie either rejoined the group or stopped with an error; both are fine, duplicates are not.
    let _ = zombie.stop();
    assert_eq!(heir.stop(), Some(0));
    setup.cleanup();
}

/// Static membership (`group.instance.id`): an instance killed and restarted at once takes its
/// assignment back without a rebalance, so the other instance keeps processing undisturbed.
fn a_static_member_restarts_without_a_rebalance() {
    let setup = Setup::new("eos-static", "exactly_once_v2");
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let writer = InputWriter::start(&setup.input, 300);
    // b joins first (and leads the group); a is the member that restarts.
    let b = setup.spawn("b", dirs[1].path(), Some("b"));
    assert!(b.wait_for_line("RESTORED", Duration::from_secs(60)), "b never got a task");
    let a = setup.spawn("a1", dirs[0].path(), Some("a"));
    assert!(a.wait_for_line("RESTORED", Duration::from_secs(60)), "a never got a task");
    std::thread::sleep(Duration::from_secs(4));
    let seen_by_b = b.lines().len();
    a.kill();
    let a = setup.spawn("a2", dirs[0].path(), Some("a"));
    assert!(a.wait_for_line("STATE Running", Duration::from_secs(60)), "a never came back");
    assert!(a.wait_for_line("RESTORED", Duration::from_secs(60)), "a did not get its tasks back");
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<String> = b.lines()[seen_by_b..].to_vec();
    assert!(!after.iter().any(|l| l.contains("Rebalancing")), "b went through a rebalance: {after:?}");
    let counts = writer.finish();
    verify_exactly_once(&setup, &counts);
    assert_eq!(a.stop(), Some(0));
    assert_eq!(b.stop(), Some(0));
    setup.cleanup();
}

fn main() {
    if std::env::var("KSTREAMS_TEST_APP").is_ok() {
        child::run();
        return;
    }
    let scenarios: [(&str, fn()); 5] = [
        ("exactly_once_survives_sigkill", exactly_once_survives_sigkill),
        ("at_least_once_survives_sigkill", at_least_once_survives_sigkill),
        ("scale_out_and_back_in", scale_out_and_back_in),
        ("a_zombie_is_fenced", a_zombie_is_fenced),
        ("a_static_member_restarts_without_a_rebalance", a_static_member_restarts_without_a_rebalance),
    ];
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let chosen: Vec<_> = scenarios.iter().filter(|(n, _)| filter.as_deref().is_none_or(|f| n.contains(f))).collect();
    if chosen.is_empty() {
        return;
    }
    support::require_broker();
    let mut failed = Vec::new();
    for (name, scenario) in chosen {
        eprintln!("scenario {name} ...");
        let started = Instant::now();
        match std::panic::catch_unwind(scenario) {
            Ok(()) => eprintln!("scenario {name} ok ({:.0} s)", started.elapsed().as_secs_f64()),
            Err(_) => {
                eprintln!("scenario {name} FAILED");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}
