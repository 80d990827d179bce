//! State stores on the real broker: a logged RocksDB store is rebuilt from its changelog after its
//! folder is deleted, and a store that stopped cleanly restores only the changelog tail it missed.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams::runtime::{KafkaStreams, StreamsConfig};
use kstreams::serde::Serdes;
use kstreams::state::rocksdb::{RocksDbKeyValueStore, RocksDbResources};
use kstreams::state::{KeyValueBytesStore, RestoreListener};
use support::{Isolation, TopicSpec};

/// Records every finished restoration: (changelog partition, records restored).
#[derive(Default)]
struct Restores(Mutex<Vec<(i32, u64)>>);

impl RestoreListener for Restores {
    fn on_restore_end(&self, _topic: &str, partition: i32, _store: &str, total_restored: u64) {
        self.0.lock().unwrap().push((partition, total_restored));
    }
}

impl Restores {
    fn finished(&self) -> Vec<(i32, u64)> {
        self.0.lock().unwrap().clone()
    }
    fn total(&self) -> u64 {
        self.finished().iter().map(|(_, n)| n).sum()
    }
}

struct App {
    input: String,
    output: String,
    id: String,
}

const PARTITIONS: i32 = 3;

impl App {
    fn topology(&self) -> kstreams::topology::Topology {
        let builder = StreamsBuilder::new();
        builder
            .stream(&self.input, Consumed::with(Serdes::string(), Serdes::string()))
            .flat_map_values(|l: String| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .group_by(|_, w: &String| w.clone(), Default::default())
            .count(Materialized::as_("counts"))
            .to_stream()
            .to(&self.output, Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
        builder.build().unwrap()
    }

    /// Runs the app on `state_dir` until the output holds `expected`, then closes it cleanly.
    /// Returns what was restored at start.
    fn run_until(&self, state_dir: &Path, expected: &BTreeMap<String, i64>) -> Arc<Restores> {
        let config = StreamsConfig::new()
            .set("application.id", &self.id)
            .set("bootstrap.servers", support::bootstrap())
            .set("processing.guarantee", "at_least_once")
            .set("commit.interval.ms", "200")
            .set("state.dir", state_dir.to_string_lossy());
        let restores = Arc::new(Restores::default());
        let mut streams = KafkaStreams::new(self.topology(), config).unwrap();
        streams.set_global_state_restore_listener(restores.clone());
        streams.start().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut done = false;
        while Instant::now() < deadline {
            // Every task restored its store and the output is complete.
            if restores.finished().len() == PARTITIONS as usize && &support::latest_counts(&self.output) == expected {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let error = streams.error();
        streams.close(Duration::from_secs(30)).unwrap();
        assert!(done, "app did not finish (error {error:?}; restores {:?})", restores.finished());
        restores
    }
}

fn produce_lines(topic: &str, from: usize, n: usize, expected: &mut BTreeMap<String, i64>) {
    let lines: Vec<(String, String)> =
        (from..from + n).map(|i| (i.to_string(), format!("w{} w{} common", i % 50, i % 7))).collect();
    for (_, line) in &lines {
        for w in line.split_whitespace() {
            *expected.entry(w.to_string()).or_default() += 1;
        }
    }
    support::produce_keyed(topic, lines).unwrap();
}

/// Every entry of every task's `counts` store under `<state_dir>/<app>`.
fn store_contents(state_dir: &Path, app: &str) -> BTreeMap<(String, Vec<u8>), Vec<u8>> {
    let mut out = BTreeMap::new();
    let app_dir = state_dir.join(app);
    let resources = RocksDbResources::shared_default();
    for entry in std::fs::read_dir(&app_dir).unwrap() {
        let task_dir: PathBuf = entry.unwrap().path();
        let path = task_dir.join("rocksdb").join("counts");
        if !path.exists() {
            continue;
        }
        let task = task_dir.file_name().unwrap().to_string_lossy().into_owned();
        let store = RocksDbKeyValueStore::open("counts", &path, &resources).unwrap();
        for item in store.all().unwrap() {
            let (k, v) = item.unwrap();
            out.insert((task.clone(), k), v);
        }
    }
    out
}

fn changelog_records(app: &str) -> u64 {
    support::read_to_end(&format!("{app}-counts-changelog"), Isolation::ReadUncommitted).unwrap().len() as u64
}

#[test]
fn a_deleted_store_is_rebuilt_from_its_changelog_and_a_stopped_one_restores_only_the_tail() {
    support::require_broker();
    let app = App {
        input: support::unique_topic("restore-in"),
        output: support::unique_topic("restore-out"),
        id: support::unique_name("restore"),
    };
    let _cleanup = support::app_cleanup(&app.id);
    let _topics =
        support::create_topics(&[TopicSpec::new(&app.input, PARTITIONS), TopicSpec::new(&app.output, PARTITIONS)])
            .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut expected = BTreeMap::new();

    // 1. Fill the store; nothing to restore on a first start.
    produce_lines(&app.input, 0, 300, &mut expected);
    let first = app.run_until(dir_a.path(), &expected);
    assert_eq!(first.total(), 0, "a new application has nothing to restore");
    let filled = store_contents(dir_a.path(), &app.id);
    let words = expected.len();
    assert_eq!(filled.len(), words, "one entry per word across the tasks");
    let logged = changelog_records(&app.id);
    assert_eq!(logged, 900, "one changelog record per counted word (no cache)");

    // 2. Delete the whole state folder: every store is rebuilt from the full changelog, identical.
    std::fs::remove_dir_all(dir_a.path().join(&app.id)).unwrap();
    let rebuilt = app.run_until(dir_a.path(), &expected);
    assert_eq!(rebuilt.total(), logged, "the full changelog was restored");
    assert_eq!(store_contents(dir_a.path(), &app.id), filled, "the rebuilt store equals the original");

    // 3. Another instance (state dir B) takes over and counts more input, writing more changelog.
    produce_lines(&app.input, 300, 100, &mut expected);
    let other = app.run_until(dir_b.path(), &expected);
    assert_eq!(other.total(), logged, "a new instance restores everything");
    let tail = changelog_records(&app.id) - logged;
    assert_eq!(tail, 300);

    // 4. A's checkpoint says where it stopped: it restores only the 300 records B added.
    let resumed = app.run_until(dir_a.path(), &expected);
    assert_eq!(resumed.total(), tail, "only the changelog tail is restored: {:?}", resumed.finished());
    let contents = store_contents(dir_a.path(), &app.id);
    // The count store is a table's: each value is stored after its 8-byte timestamp.
    let counts: BTreeMap<String, i64> = contents
        .iter()
        .map(|((_, k), v)| (String::from_utf8(k.clone()).unwrap(), i64::from_be_bytes(v[8..16].try_into().unwrap())))
        .collect();
    assert_eq!(counts, expected, "the resumed store holds the counts of all input");

    let internal = [format!("{}-counts-repartition", app.id), format!("{}-counts-changelog", app.id)];
    let _ = support::delete_topics(&internal.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Window starts in `topic` (time-windowed string keys of `k`), with the last count of each.
fn window_counts(topic: &str) -> BTreeMap<i64, i64> {
    support::read_to_end(topic, Isolation::ReadCommitted)
        .expect("read output")
        .into_iter()
        .filter_map(|r| {
            let key = r.key.as_deref()?;
            let start: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
            let count: [u8; 8] = r.value.as_deref()?.try_into().ok()?;
            Some((i64::from_be_bytes(start), i64::from_be_bytes(count)))
        })
        .collect()
}

/// Stream time is kept in the committed offsets' metadata, as Kafka Streams keeps it: a record too
/// late for its window (past grace) before a restart is still dropped right after the restart, by a
/// fresh instance (new state directory) as by the same one.
#[test]
fn stream_time_survives_a_restart() {
    use kstreams::dsl::TimeWindows;
    support::require_broker();
    let (input, output) = (support::unique_topic("st-in"), support::unique_topic("st-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 1), TopicSpec::new(&output, 1)]).unwrap();
    let app_id = support::unique_name("stream-time");
    let _cleanup = support::app_cleanup(&app_id);
    let start = |dir: &Path| {
        let builder = StreamsBuilder::new();
        builder
            .stream(&input, Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Default::default())
            .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(1)))
            .count(Materialized::as_("per-10s"))
            .to_stream()
            .to(
                &output,
                Produced::with(Serdes::time_windowed(Serdes::string(), 10_000), Serdes::nullable(Serdes::i64())),
            );
        let config = StreamsConfig::new()
            .set("application.id", &app_id)
            .set("bootstrap.servers", support::bootstrap())
            .set("processing.guarantee", "exactly_once_v2")
            .set("commit.interval.ms", "100")
            .set("state.dir", dir.to_string_lossy());
        let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        app.start().unwrap();
        app
    };
    let send = |timestamp: i64| {
        let producer = support::producer().unwrap();
        let record =
            support::Outgoing { key: Some(b"k"), value: Some(b"v"), timestamp: Some(timestamp), ..Default::default() };
        support::send(&producer, &input, &record).unwrap();
        support::flush(&producer).unwrap();
    };
    let wait_for = |start: i64, count: i64| {
        let found = support::eventually(Duration::from_secs(60), || window_counts(&output).get(&start) == Some(&count));
        assert!(found, "window {start} never counted {count}: {:?}", window_counts(&output));
    };

    // Stream time 100 s; a record at 2 s is past its window's grace, and dropped.
    let first_dir = tempfile::tempdir().unwrap();
    let mut app = start(first_dir.path());
    send(100_000);
    send(2_000);
    send(100_500);
    wait_for(100_000, 2);
    assert!(!window_counts(&output).contains_key(&0), "the late record was counted before the restart");
    app.close(Duration::from_secs(30)).unwrap();

    // The same instance again, then a fresh one: the first record after each restart is too late.
    for (round, dir) in [(1, first_dir.path().to_path_buf()), (2, tempfile::tempdir().unwrap().keep())] {
        let mut app = start(&dir);
        send(3_000 + round);
        send(101_000 + round);
        wait_for(100_000, 2 + round);
        assert!(
            !window_counts(&output).contains_key(&0),
            "round {round}: a record past grace was counted after the restart: {:?}",
            window_counts(&output)
        );
        app.close(Duration::from_secs(30)).unwrap();
    }
}

/// Holds the restoration of one changelog partition (in `on_restore_start`) until released, or
/// for at most a minute; records the partitions whose restoration ended.
struct HoldOne {
    partition: i32,
    released: std::sync::atomic::AtomicBool,
    held_until_released: std::sync::atomic::AtomicBool,
    ended: Mutex<Vec<(i32, u64)>>,
}

impl RestoreListener for HoldOne {
    fn on_restore_start(&self, _topic: &str, partition: i32, _store: &str, start: i64, end: i64) {
        use std::sync::atomic::Ordering;
        if partition != self.partition || start >= end {
            return;
        }
        let released = support::eventually(Duration::from_secs(60), || self.released.load(Ordering::SeqCst));
        self.held_until_released.store(released, Ordering::SeqCst);
    }
    fn on_restore_end(&self, _topic: &str, partition: i32, _store: &str, total_restored: u64) {
        self.ended.lock().unwrap().push((partition, total_restored));
    }
}

/// A task whose stores restore does not hold up the thread's other tasks: with one stream thread
/// and task 0_0's restoration held, task 0_1 processes new input; 0_0 runs once it is restored.
#[test]
fn a_restoring_task_does_not_hold_up_the_others() {
    use std::sync::atomic::{AtomicBool, Ordering};
    support::require_broker();
    let (input, output) = (support::unique_topic("par-in"), support::unique_topic("par-out"));
    let _topics = support::create_topics(&[TopicSpec::new(&input, 2), TopicSpec::new(&output, 2)]).unwrap();
    let app_id = support::unique_name("parallel-restore");
    let _cleanup = support::app_cleanup(&app_id);
    let dir = tempfile::tempdir().unwrap();
    let start = |listener: Option<Arc<HoldOne>>| {
        let builder = StreamsBuilder::new();
        builder
            .stream(&input, Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Default::default())
            .count(Materialized::as_("counts"))
            .to_stream()
            .to(&output, Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
        let config = StreamsConfig::new()
            .set("application.id", &app_id)
            .set("bootstrap.servers", support::bootstrap())
            .set("num.stream.threads", "1")
            .set("commit.interval.ms", "100")
            .set("state.dir", dir.path().to_string_lossy());
        let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
        if let Some(l) = listener {
            app.set_global_state_restore_listener(l);
        }
        app.start().unwrap();
        app
    };
    // Key `a` in partition 0, `b` in partition 1.
    let send = |key: &str, partition: i32| {
        let producer = support::producer().unwrap();
        let record = support::Outgoing {
            partition: Some(partition),
            key: Some(key.as_bytes()),
            value: Some(b"x"),
            ..Default::default()
        };
        support::send(&producer, &input, &record).unwrap();
        support::flush(&producer).unwrap();
    };
    let counted = |key: &str, n: i64| support::latest_counts(&output).get(key) == Some(&n);

    // 1. Both tasks count one record; the app stops cleanly.
    let mut app = start(None);
    send("a", 0);
    send("b", 1);
    assert!(support::eventually(Duration::from_secs(60), || counted("a", 1) && counted("b", 1)));
    app.close(Duration::from_secs(30)).unwrap();

    // 2. Task 0_0 loses its store, so it restores from its changelog, and that restoration is held.
    std::fs::remove_dir_all(dir.path().join(&app_id).join("0_0")).unwrap();
    let hold = Arc::new(HoldOne {
        partition: 0,
        released: AtomicBool::new(false),
        held_until_released: AtomicBool::new(false),
        ended: Mutex::new(Vec::new()),
    });
    let mut app = start(Some(hold.clone()));
    send("b", 1);
    send("a", 0);
    let b_counted = support::eventually(Duration::from_secs(50), || counted("b", 2));
    let a_restored_meanwhile = hold.ended.lock().unwrap().iter().any(|(p, _)| *p == 0);
    hold.released.store(true, Ordering::SeqCst);
    assert!(b_counted, "task 0_1 processed nothing while task 0_0 restored");
    assert!(!a_restored_meanwhile, "task 0_0's restoration was not held");

    // 3. Released, task 0_0 restores its one record and counts the new one.
    assert!(support::eventually(Duration::from_secs(60), || counted("a", 2)), "{:?}", support::latest_counts(&output));
    assert!(hold.ended.lock().unwrap().contains(&(0, 1)), "task 0_0 restored its changelog: {:?}", hold.ended);
    // (Read only now: the listener returned before the restoration ended.)
    assert!(hold.held_until_released.load(Ordering::SeqCst), "the restoration was held until released");
    app.close(Duration::from_secs(30)).unwrap();
    let _ = support::delete_topics(&[&format!("{app_id}-counts-changelog")]);
}
