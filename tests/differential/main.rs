//! Differential tests: the same topology, over the same input, in Kafka Streams 4.3's own
//! `TopologyTestDriver` (the Java peer, `benches/peer-java`, class `Differential`, run through
//! `scripts/peer-java`) and in kstreams' test driver; the output records must be equal, record by
//! record: topic, key, value, timestamp and order (per output topic, for each input record).
//!
//! Each family runs [`SEEDS`] seeded random inputs (random keys, out-of-order and late timestamps,
//! tombstones) and the families' hand-written cases from the issue that started this harness.
//! A failure prints the first differing case: its inputs up to the first difference, and both sides'
//! outputs from there. Where kstreams deliberately differs from Kafka Streams, the difference is
//! written down in the README ("Differences from Kafka Streams") and tested in `streams/` instead.
//!
//! Needs Java 17+ and Maven (installed by `scripts/setup`); a missing one fails the test with the
//! command that installs it, never a silent skip.

mod inputs;
mod topologies;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use inputs::{generate, Input, Shape};
use kstreams::serde::Serdes;
use kstreams::test_driver::{TestDriverConfig, TestInputTopic, TopologyTestDriver};

/// Seeded inputs per family.
const SEEDS: u64 = 20;
/// How a null value is written in scripts and transcripts.
const NULL: &str = "~";

/// A case: a name, a topology and its inputs.
struct Case {
    name: String,
    topology: &'static str,
    inputs: Vec<Input>,
}

/// What one side printed for a case: `out INDEX TOPIC KEY VALUE TIMESTAMP` lines.
type Transcript = Vec<String>;

fn script(cases: &[Case]) -> String {
    let mut s = String::new();
    for case in cases {
        let _ = writeln!(s, "case\t{}\t{}", case.name, case.topology);
        for i in &case.inputs {
            let value = i.value.as_deref().unwrap_or(NULL);
            let _ = writeln!(s, "in\t{}\t{}\t{}\t{}", i.topic, i.key, value, i.timestamp);
        }
        let _ = writeln!(s, "end");
    }
    s
}

/// Runs `cases` in Kafka Streams: one transcript per case, by case name.
fn run_java(cases: &[Case]) -> HashMap<String, Transcript> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("bash")
        .arg(root.join("scripts/peer-java"))
        .args(["run", "Differential"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start scripts/peer-java: {e}"));
    let input = script(cases);
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("scripts/peer-java: {e}"));
    let written = writer.join().expect("the script writer does not panic");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || written.is_err() {
        panic!(
            "the Kafka Streams peer failed ({}); install Java 17+ and Maven with scripts/setup if they are \
             missing. Its stderr:\n{stderr}",
            output.status
        );
    }
    let mut transcripts = HashMap::new();
    let mut current: Option<(String, Transcript)> = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some(rest) = line.strip_prefix("case\t") {
            let name = rest.split('\t').next().unwrap_or_default().to_string();
            current = Some((name, Vec::new()));
        } else if line == "end" {
            if let Some((name, lines)) = current.take() {
                transcripts.insert(name, lines);
            }
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line.to_string());
        }
    }
    transcripts
}

/// Runs one case in kstreams' test driver.
fn run_rust(case: &Case) -> Transcript {
    let (topology, outputs) =
        topologies::build(case.topology).unwrap_or_else(|| panic!("no Rust twin for topology `{}`", case.topology));
    let driver = TopologyTestDriver::new(topology, TestDriverConfig::new("differential"))
        .unwrap_or_else(|e| panic!("{}: the test driver does not start: {e}", case.name));
    let mut inputs: HashMap<&str, TestInputTopic<String, Option<String>>> = HashMap::new();
    let outputs: Vec<_> = outputs
        .iter()
        .map(|topic| (*topic, driver.output_topic(topic, Serdes::string(), Serdes::nullable(Serdes::string()))))
        .collect();
    let mut lines = Vec::new();
    for (index, input) in case.inputs.iter().enumerate() {
        let topic = inputs
            .entry(input.topic)
            .or_insert_with(|| driver.input_topic(input.topic, Serdes::string(), Serdes::nullable(Serdes::string())));
        topic
            .pipe(input.key.clone(), input.value.clone(), input.timestamp)
            .unwrap_or_else(|e| panic!("{}: input {index} fails in kstreams: {e}", case.name));
        for (name, output) in &outputs {
            let records = output.read_records().unwrap_or_else(|e| panic!("{}: reading {name}: {e}", case.name));
            for (_, r) in records {
                let value = r.value.as_deref().unwrap_or(NULL);
                lines.push(format!("out\t{index}\t{name}\t{}\t{value}\t{}", r.key, r.timestamp));
            }
        }
    }
    lines
}

/// The report of the first difference in a case, or `None` when both transcripts are equal.
fn difference(case: &Case, java: &Transcript, rust: &Transcript) -> Option<String> {
    let at = java.iter().zip(rust).position(|(j, r)| j != r).unwrap_or(java.len().min(rust.len()));
    if at == java.len() && at == rust.len() {
        return None;
    }
    let index_of = |line: Option<&String>| -> Option<usize> { line?.split('\t').nth(1)?.parse().ok() };
    let input_index = index_of(java.get(at)).into_iter().chain(index_of(rust.get(at))).min().unwrap_or(0);
    let mut report = format!("case {} (topology {}): first difference at output line {at}\n", case.name, case.topology);
    let _ = writeln!(report, "inputs up to #{input_index}:");
    for (i, input) in case.inputs.iter().enumerate().take(input_index + 1) {
        let value = input.value.as_deref().unwrap_or(NULL);
        let _ = writeln!(report, "  #{i} {} {} {} @{}", input.topic, input.key, value, input.timestamp);
    }
    let show = |lines: &Transcript| -> String {
        let end = (at + 6).min(lines.len());
        let shown: Vec<&str> = lines[at.min(end)..end].iter().map(String::as_str).collect();
        if shown.is_empty() {
            "  (nothing more)\n".to_string()
        } else {
            shown.iter().map(|l| format!("  {l}\n")).collect()
        }
    };
    let _ = write!(report, "Kafka Streams wrote, from there:\n{}kstreams wrote:\n{}", show(java), show(rust));
    Some(report)
}

/// Runs a family's seeded cases and `extra` hand-written ones on both sides and compares them.
fn check(topology: &'static str, shape: Shape, extra: Vec<Vec<Input>>) {
    let mut cases: Vec<Case> = (1..=SEEDS)
        .map(|seed| Case { name: format!("{topology}-seed{seed}"), topology, inputs: generate(shape, seed) })
        .collect();
    for (i, inputs) in extra.into_iter().enumerate() {
        cases.push(Case { name: format!("{topology}-case{}", i + 1), topology, inputs });
    }
    let java = run_java(&cases);
    let mut failures = Vec::new();
    let mut outputs = 0;
    for case in &cases {
        let expected =
            java.get(&case.name).unwrap_or_else(|| panic!("the peer printed no transcript for {}", case.name));
        let actual = run_rust(case);
        outputs += expected.len();
        if let Some(report) = difference(case, expected, &actual) {
            failures.push(report);
        }
    }
    assert!(outputs > 0, "{topology}: no case produced any output: the comparison would prove nothing");
    if let Some(first) = failures.first() {
        panic!("{topology}: {} of {} cases differ from Kafka Streams.\n{first}", failures.len(), cases.len());
    }
}

fn rec(topic: &'static str, key: &str, value: Option<&str>, timestamp: i64) -> Input {
    Input { topic, key: key.to_string(), value: value.map(str::to_string), timestamp }
}

macro_rules! family {
    ($test:ident, $topology:literal, $shape:expr) => {
        family!($test, $topology, $shape, vec![]);
    };
    ($test:ident, $topology:literal, $shape:expr, $extra:expr) => {
        #[test]
        fn $test() {
            check($topology, $shape, $extra);
        }
    };
}

family!(stateless, "stateless", Shape::TwoStreams);
family!(count, "count", Shape::Stream);
family!(
    reduce,
    "reduce",
    Shape::Stream,
    // An aggregate's timestamp is the largest of its records'.
    vec![vec![rec("in", "k", Some("5"), 100), rec("in", "k", Some("7"), 50)]]
);
family!(aggregate, "aggregate", Shape::Stream);
family!(regroup_count, "regroup-count", Shape::Stream);
family!(tumbling, "tumbling", Shape::Stream);
family!(tumbling_reduce, "tumbling-reduce", Shape::Stream);
family!(hopping, "hopping", Shape::Stream);
family!(
    sliding,
    "sliding",
    Shape::Stream,
    // An out-of-order record updates the latest-starting window first.
    vec![vec![rec("in", "k", Some("1"), 20), rec("in", "k", Some("1"), 25), rec("in", "k", Some("1"), 22)]]
);
family!(
    session,
    "session",
    Shape::Stream,
    vec![
        // The close time subtracts the gap as well as the grace.
        vec![rec("in", "k", Some("1"), 0), rec("in", "j", Some("1"), 10), rec("in", "k", Some("1"), 4)],
        // Results and tombstones carry the session's end; a merge first removes the old session.
        vec![rec("in", "k", Some("1"), 0), rec("in", "k", Some("1"), 1), rec("in", "k", Some("1"), 0)],
    ]
);
family!(
    session_reduce,
    "session-reduce",
    Shape::Stream,
    // A record bridging two sessions: their values in order, then the record's.
    vec![vec![rec("in", "k", Some("1"), 0), rec("in", "k", Some("2"), 10), rec("in", "k", Some("3"), 5)]]
);
family!(suppress, "suppress", Shape::Stream);
family!(ss_inner, "ss-inner", Shape::TwoStreams);
family!(ss_left, "ss-left", Shape::TwoStreams);
family!(
    ss_outer,
    "ss-outer",
    Shape::TwoStreams,
    vec![vec![
        rec("in", "k", Some("1"), 0),
        // Closes the window of 1: its unmatched result comes before anything this record causes.
        rec("in2", "k", Some("2"), 20),
        // Joins 2 (within 5 ms).
        rec("in", "k", Some("3"), 15),
        // Late (its window ended before stream time): joins what the store still holds, or is
        // emitted alone at once.
        rec("in", "k", Some("4"), 1),
        rec("in2", "j", Some("5"), 40),
    ]]
);
family!(st_inner, "st-inner", Shape::StreamTable);
family!(st_left, "st-left", Shape::StreamTable);
family!(tt_inner, "tt-inner", Shape::TwoTables);
family!(
    tt_left,
    "tt-left",
    Shape::TwoTables,
    // A delete for a key the table never held still reaches the join.
    vec![vec![rec("t2", "k", Some("b"), 1), rec("t1", "k", None, 2)]]
);
family!(tt_outer, "tt-outer", Shape::TwoTables, vec![vec![rec("t2", "k", Some("b"), 1), rec("t1", "k", None, 2)]]);
family!(fk_inner, "fk-inner", Shape::ForeignKey);
family!(fk_left, "fk-left", Shape::ForeignKey);
family!(global_inner, "global-inner", Shape::Global);
family!(global_left, "global-left", Shape::Global);
family!(
    table_count,
    "table-count",
    Shape::Regrouped,
    // An update that stays in its group emits no transient subtraction (KIP-904).
    vec![vec![rec("t1", "u1", Some("east"), 1), rec("t1", "u1", Some("east"), 2)]]
);
family!(table_aggregate, "table-aggregate", Shape::Regrouped);
family!(table_map_values, "table-map-values", Shape::Regrouped);
